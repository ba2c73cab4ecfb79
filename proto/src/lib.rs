//! tikv-tower's own protobuf definitions of the TiKV / PD wire protocol.
//!
//! The `.proto` files under `proto/proto/` describe the subset of kvproto that the client
//! and mockstore speak. They keep kvproto's package, message, field and enum names and
//! numbers, so the generated types are wire-compatible with a real TiKV / PD; messages and
//! fields not needed here are simply absent (protobuf skips unknown fields on decode).
//!
//! The code is generated at build time by `protox` + `tonic-prost-build`: prost messages
//! (`bytes::Bytes` for every `bytes` field, so cloning a message shares its key and value
//! buffers instead of copying them; `Option<M>` for message fields; `i32` plus a Rust enum
//! for enum fields; `module::message::Oneof` enums for oneofs) and tonic clients and
//! servers (`tikvpb::tikv_client::TikvClient`, `pdpb::pd_server::Pd`, ...).
//!
//! [`rpc`] adds a hand-written, typed view of the store RPCs: one enum variant per RPC,
//! with helpers for the request [`kvrpcpb::Context`], region errors and the
//! BatchCommands oneof.
#![deny(missing_docs)]

macro_rules! generated {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        $(
            $(#[$doc])*
            #[allow(missing_docs, clippy::all, clippy::pedantic, rustdoc::all)]
            pub mod $name {
                include!(concat!(env!("OUT_DIR"), "/", stringify!($name), ".rs"));
            }
        )*
    };
}

generated!(
    /// Keyspace identity (`apipb`).
    apipb,
    /// Trace propagation carried in the request context (`tracepb`).
    tracepb,
    /// Resource-manager accounting types referenced by the context (`resource_manager`).
    resource_manager,
    /// Deadlock-detector wait-for entries (`deadlock`).
    deadlock,
    /// Cluster metadata: stores, regions, peers, epochs (`metapb`).
    metapb,
    /// Region-level errors (`errorpb`).
    errorpb,
    /// Key-value RPC messages, the request context and key errors (`kvrpcpb`).
    kvrpcpb,
    /// The `Tikv` store service and the BatchCommands stream (`tikvpb`).
    tikvpb,
    /// The `PD` service: members, TSO, regions, stores, GC (`pdpb`).
    pdpb,
    /// The `Keyspace` service served by PD (`keyspacepb`).
    keyspacepb,
);

pub mod memcomparable;
pub mod rpc;
