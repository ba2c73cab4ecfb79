//! Per-address store clients: the seam between the [`Transport`](super::Transport) service
//! and a wire.
//!
//! A [`StoreConnector`] makes one [`StoreClient`] per store address; the transport caches
//! them. Today's clients are unary gRPC over a channel pool ([`GrpcStoreClient`]) and the
//! in-process mockstore (`InProcStoreClient`, feature `embedded`); a
//! BatchCommands-stream client (client-go `batchCommandsClient`) plugs in here as another
//! [`StoreClient`].

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::Mutex;
use tikv_tower_layers::call::TransportError;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
use tikv_tower_proto::tikvpb::tikv_client::TikvClient;
use tonic::transport::Channel;

use super::dispatch::call_unary;
use super::options::GrpcOptions;

/// One store address's client (client-go `connArray` / `RPCClient` per address).
pub trait StoreClient: Clone + Send + Sync + 'static {
    /// The reply future.
    type Future: Future<Output = Result<StoreResponse, TransportError>> + Send + 'static;
    /// Sends `req`; `timeout` is a hint for the server (the transport enforces it too).
    fn call(&self, req: StoreRequest, timeout: Option<Duration>) -> Self::Future;
}

/// Makes [`StoreClient`]s for addresses.
pub trait StoreConnector: Clone + Send + Sync + 'static {
    /// The client type.
    type Client: StoreClient;
    /// A client for `addr` (connection may be lazy).
    fn connect(&self, addr: &Arc<str>) -> Result<Self::Client, TransportError>;
}

/// Maps a gRPC status from `addr` to a [`TransportError`] (client-go `onSendFail`
/// classification).
pub fn status_to_error(addr: &Arc<str>, status: &tonic::Status) -> TransportError {
    match status.code() {
        tonic::Code::Unavailable => {
            let msg = status.message();
            let lower = msg.to_ascii_lowercase();
            // Only a failed dial proves the request never left (`may_have_reached_store`).
            let connect = [
                "trying to connect",
                "connection refused",
                "dns error",
                "tcp connect",
            ]
            .iter()
            .any(|p| lower.contains(p));
            TransportError::Unavailable {
                addr: addr.clone(),
                message: if connect {
                    format!("connect: {msg}")
                } else if msg.starts_with("connect") {
                    format!("unavailable: {msg}")
                } else {
                    msg.to_string()
                },
            }
        }
        // A status tonic made from a broken connection (the server never answered with a
        // status of its own): the request may or may not have been processed.
        tonic::Code::Unknown | tonic::Code::Internal
            if std::error::Error::source(status).is_some() =>
        {
            TransportError::Unavailable {
                addr: addr.clone(),
                message: format!("broken connection: {}", status.message()),
            }
        }
        // We never cancel with a status (a caller that goes away drops the future), so a
        // `Cancelled` status comes from the peer: the stream was reset, typically by a store
        // shutting down. client-go `onSendFail` treats it as a send failure too ("it must be
        // from grpc remote ... when tikv is killed and exiting").
        tonic::Code::Cancelled => TransportError::Unavailable {
            addr: addr.clone(),
            message: format!("stream canceled by the peer: {}", status.message()),
        },
        tonic::Code::DeadlineExceeded => TransportError::Timeout {
            addr: addr.clone(),
            elapsed: Duration::ZERO,
        },
        code => TransportError::Status {
            addr: addr.clone(),
            code,
            message: status.message().to_string(),
        },
    }
}

/// Connects store addresses over gRPC.
#[derive(Debug, Clone, Default)]
pub struct GrpcConnector {
    options: Arc<GrpcOptions>,
}

impl GrpcConnector {
    /// A connector with `options`.
    pub fn new(options: GrpcOptions) -> Self {
        GrpcConnector {
            options: Arc::new(options),
        }
    }

    /// The options.
    pub fn options(&self) -> &GrpcOptions {
        &self.options
    }
}

impl StoreConnector for GrpcConnector {
    type Client = GrpcStoreClient;

    fn connect(&self, addr: &Arc<str>) -> Result<GrpcStoreClient, TransportError> {
        // Validate the address now so a bad one fails fast.
        self.options
            .endpoint(addr)
            .map_err(|e| TransportError::Unavailable {
                addr: addr.clone(),
                message: format!("connect: {e}"),
            })?;
        let n = self.options.connection_count.max(1);
        Ok(GrpcStoreClient {
            addr: addr.clone(),
            options: self.options.clone(),
            slots: Arc::new((0..n).map(|_| Mutex::new(None)).collect()),
            next: Arc::new(AtomicUsize::new(0)),
        })
    }
}

/// Unary gRPC to one store over `connection_count` channels used round-robin (client-go
/// `connArray`). A channel that fails with `Unavailable` is rebuilt on next use, which
/// re-reads the TLS files (certificate rotation).
#[derive(Debug, Clone)]
pub struct GrpcStoreClient {
    addr: Arc<str>,
    options: Arc<GrpcOptions>,
    slots: Arc<Vec<Mutex<Option<Channel>>>>,
    next: Arc<AtomicUsize>,
}

impl GrpcStoreClient {
    fn channel(&self, idx: usize) -> Result<Channel, TransportError> {
        let slot = &self.slots[idx % self.slots.len()];
        let mut guard = slot.lock();
        if let Some(ch) = guard.as_ref() {
            return Ok(ch.clone());
        }
        let ep = self
            .options
            .endpoint(&self.addr)
            .map_err(|e| TransportError::Unavailable {
                addr: self.addr.clone(),
                message: format!("connect: {e}"),
            })?;
        let ch = ep.connect_lazy();
        *guard = Some(ch.clone());
        Ok(ch)
    }

    fn reset(&self, idx: usize) {
        *self.slots[idx % self.slots.len()].lock() = None;
    }
}

impl StoreClient for GrpcStoreClient {
    type Future = BoxFuture<'static, Result<StoreResponse, TransportError>>;

    fn call(&self, req: StoreRequest, timeout: Option<Duration>) -> Self::Future {
        let idx = self.next.fetch_add(1, Ordering::Relaxed);
        let this = self.clone();
        Box::pin(async move {
            let ch = this.channel(idx)?;
            let client = TikvClient::new(ch)
                .max_decoding_message_size(this.options.max_recv_message_size)
                .max_encoding_message_size(this.options.max_send_message_size);
            call_unary(client, req, timeout).await.map_err(|status| {
                let err = status_to_error(&this.addr, &status);
                if matches!(err, TransportError::Unavailable { .. }) {
                    this.reset(idx);
                }
                err
            })
        })
    }
}
