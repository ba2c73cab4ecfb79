//! Compiles the `.proto` files under `proto/` with protox (pure Rust, no system protoc)
//! and generates prost messages plus tonic clients and servers.

const PROTO_DIR: &str = "proto";
const FILES: &[&str] = &[
    "apipb.proto",
    "tracepb.proto",
    "resource_manager.proto",
    "deadlock.proto",
    "metapb.proto",
    "errorpb.proto",
    "kvrpcpb.proto",
    "tikvpb.proto",
    "pdpb.proto",
    "keyspacepb.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_DIR}");
    let paths: Vec<String> = FILES.iter().map(|f| format!("{PROTO_DIR}/{f}")).collect();
    for p in &paths {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(&paths, [PROTO_DIR])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Execution details are large (~700 bytes) and rarely set: box them so response
        // enums stay small on the hot path.
        .boxed("exec_details_v2")
        // Every protobuf `bytes` field (keys, values, start/end keys, ...) becomes a
        // `bytes::Bytes`: cloning a request (retry attempts, shard parts) then bumps a
        // refcount instead of copying the payload.
        .bytes(".")
        .compile_fds(fds)?;
    Ok(())
}
