//! Starts the mockstore cluster's gRPC servers (PD + stores) on 127.0.0.1 in
//! this process, on the runtime this is called from (the server runtime, so the
//! servers' tasks run on its threads).

use tikv_tower_mockstore::cluster::BoundaryEncoding;
use tikv_tower_mockstore::server::ServeOptions;
use tikv_tower_mockstore::MockCluster;

/// Keeps the server alive while held.
pub type ServerHandle = Box<dyn std::any::Any + Send>;

/// Starts one mockstore cluster (one store, one region, API V1 with raw region
/// boundaries, as a V1 RawKV client expects) served over gRPC on loopback with
/// OS-picked ports; returns the PD address (`host:port`).
pub async fn start() -> Result<(String, ServerHandle), String> {
    let cluster = MockCluster::builder()
        .boundary_encoding(BoundaryEncoding::Raw)
        .build();
    let served = cluster
        .serve_grpc(ServeOptions::default())
        .await
        .map_err(|e| format!("serve_grpc: {e}"))?;
    let pd = served.pd_addr().to_string();
    Ok((pd, Box::new(served)))
}
