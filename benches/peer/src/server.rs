//! Starts the mockstore cluster's gRPC servers (PD + stores) on 127.0.0.1 in
//! this process, on the runtime this is called from.

/// Keeps the server alive while held.
pub type ServerHandle = Box<dyn std::any::Any + Send>;

/// Starts one mockstore cluster served over gRPC on loopback; returns the PD
/// address (`host:port`).
pub async fn start() -> Result<(String, ServerHandle), String> {
    Err(
        "in-process mockstore server not wired yet; pass --pd HOST:PORT of a running `mockstore`"
            .into(),
    )
}
