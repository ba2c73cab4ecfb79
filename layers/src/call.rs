//! The innermost contract: one RPC addressed to one store.
//!
//! Everything above the transport works with key- or region-addressed requests; once
//! routing and replica selection are done, a request becomes a [`StoreCall`]: a fully
//! stamped kvrpcpb request (its `Context` names region, epoch and peer) plus the store it
//! goes to. The transport (`tikv_tower::transport`) is a `tower::Service<StoreCall>` whose
//! response is the server's reply ([`StoreResponse`]), region errors included: those are
//! server answers, classified by the layers above. Only a failure to get an answer at all
//! (connection refused, stream broken, deadline passed, store stopped) is an `Err`
//! ([`TransportError`]) — client-go's "send fail" (`onSendFail`).

use std::sync::Arc;
use std::time::Duration;

use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};

/// One RPC addressed to one store: the request handed to the transport service.
#[derive(Debug, Clone)]
pub struct StoreCall {
    /// The store the request goes to.
    pub store_id: u64,
    /// The store's address as PD reports it (`host:port`, or an in-process name).
    pub addr: Arc<str>,
    /// The request, its `Context` already stamped.
    pub request: StoreRequest,
    /// How long the transport may wait for the reply (client-go's per-RPC timeout).
    pub timeout: Option<Duration>,
}

/// The reply of the transport service.
pub type StoreReply = StoreResponse;

/// Why no reply came back from a store (client-go treats all of these as a send failure).
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// The store could not be reached (connect failed, store stopped, stream closed).
    #[error("store {addr} unreachable: {message}")]
    Unavailable {
        /// Address of the store.
        addr: Arc<str>,
        /// What the transport saw.
        message: String,
    },
    /// No reply within the call's timeout.
    #[error("request to {addr} timed out after {elapsed:?}")]
    Timeout {
        /// Address of the store.
        addr: Arc<str>,
        /// How long was waited.
        elapsed: Duration,
    },
    /// The server answered with a gRPC status other than OK.
    #[error("store {addr} answered gRPC status {code:?}: {message}")]
    Status {
        /// Address of the store.
        addr: Arc<str>,
        /// The gRPC status code.
        code: tonic::Code,
        /// The status message.
        message: String,
    },
    /// The store answered with something that cannot be the reply to this request: a
    /// BatchCommands frame whose request ids and responses differ in number, or an empty
    /// response. The request reached the store; its outcome is unknown.
    #[error("store {addr} sent a malformed reply: {message}")]
    BadReply {
        /// Address of the store.
        addr: Arc<str>,
        /// What was wrong with the reply.
        message: String,
    },
    /// The store already has `limit` requests in flight from this client (client-go
    /// `ErrTokenLimit`, `TiKVClient.StoreLimit`). The request was not sent; like client-go,
    /// this is final for the operation, not retried.
    #[error("store {store_id} ({addr}) token limit reached: {limit} requests in flight")]
    TokenLimit {
        /// The store.
        store_id: u64,
        /// Address of the store.
        addr: Arc<str>,
        /// The configured per-store limit.
        limit: usize,
    },
    /// The caller went away (the future was dropped or the operation cancelled).
    #[error("request canceled")]
    Canceled,
}

impl TransportError {
    /// Whether the failure leaves the outcome of a write unknown (the request may have
    /// reached the store): client-go reports such a commit as an undetermined result.
    pub fn may_have_reached_store(&self) -> bool {
        matches!(
            self,
            TransportError::Timeout { .. }
                | TransportError::Status { .. }
                | TransportError::BadReply { .. }
        ) || matches!(self, TransportError::Unavailable { message, .. } if !message.starts_with("connect"))
    }
}
