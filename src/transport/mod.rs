//! The store transport: tonic channels per store, and an in-process backend.
//!
//! [`Transport`] is the innermost service of every stack: a
//! `tower::Service<StoreCall, Response = StoreResponse, Error = TransportError>`. A call
//! names its store address; the transport keeps one [`StoreClient`] per address, made by
//! a [`StoreConnector`]:
//!
//! * gRPC ([`GrpcConnector`], client-go `internal/client/client.go` + `conn_pool.go`): a
//!   pool of `connection_count` HTTP/2 channels per address used round-robin, keep-alive,
//!   message-size limits, dial timeout and TLS ([`GrpcOptions`], [`TlsConfig`]); every
//!   [`StoreRequest`](tikv_tower_proto::rpc::StoreRequest) variant goes to its unary
//!   `tikvpb.Tikv` method. A channel that fails with `Unavailable` is rebuilt on next use,
//!   re-reading the TLS files.
//! * BatchCommands ([`BatchConnector`], client-go `client_batch.go`): one bidirectional
//!   stream per store carrying many requests per frame; unary-only kinds use the pool.
//! * in-process (feature `embedded`): `MockCluster::store_by_addr(addr)` then
//!   `MockStore::handle(req)`, no sockets.
//!
//! The call's timeout (or the transport's default) bounds the wait: no reply in time is
//! [`TransportError::Timeout`](tikv_tower_layers::call::TransportError::Timeout);
//! connection failures are `Unavailable`.
//!
//! ```no_run
//! use tikv_tower::transport::{GrpcOptions, Transport};
//! let transport = Transport::grpc(GrpcOptions::default());
//! # let _ = transport;
//! ```

pub mod batch;
pub mod client;
mod dispatch;
#[cfg(feature = "embedded")]
pub mod inproc;
pub mod options;
mod service;

pub use batch::{BatchConnector, BatchStats, BatchStoreClient};
pub use client::{status_to_error, GrpcConnector, GrpcStoreClient, StoreClient, StoreConnector};
#[cfg(feature = "embedded")]
pub use inproc::{InProcConnector, InProcStoreClient};
pub use options::{EndpointError, GrpcOptions, TlsConfig};
#[cfg(feature = "embedded")]
pub use service::InProcTransport;
pub use service::{BatchTransport, GrpcTransport, ResponseFuture, Transport};

#[cfg(test)]
mod tests;
