//! The store-RPC contract of tikv-tower and one tower layer per cross-cutting concern.
//!
//! A logical operation ("get these keys", "scan this range", "prewrite these mutations")
//! enters the stack as a key-addressed [`Request`]: one kvrpcpb request
//! ([`StoreRequest`](tikv_tower_proto::rpc::StoreRequest)), a routing [`Target`], a
//! replica-read policy and a shared per-operation state ([`OpState`]: backoff budget,
//! deadline, resolved locks, tags, trace span). The layers turn it into region-addressed
//! [`StoreCall`]s for the transport, and the replies back into one [`Response`] or a typed
//! [`Error`].
//!
//! | module | concern | client-go counterpart |
//! |---|---|---|
//! | [`request`], [`error`] | request / response / error model | `tikvrpc.Request`, `tikverr` |
//! | [`route`] | locate region, pick peer, stamp `Context`, send | `RegionRequestSender.SendReqCtx` |
//! | [`replica`] | which peer serves an attempt: a swappable [`ReplicaPolicy`] | `replicaSelector` |
//! | [`retry`] | typed, budgeted backoff; the region-error matrix; a swappable [`RetryPolicy`] | `retry.Backoffer`, `onRegionError`, `onSendFail` |
//! | [`shard`] | split by region, fan out, merge, re-split | `GroupKeysByRegion`, batch loops |
//! | [`resolve_lock`] | resolve locks met by reads, retry | `LockResolver` use in snapshot reads |
//! | [`tag`] | request source, resource group, priority | `tikvrpc.Request` context setters |
//! | [`intercept`] | per-operation hooks (once per logical operation) | – |
//! | [`rpc_intercept`] | interceptors of every store RPC attempt | `tikvrpc/interceptor` (`RPCInterceptor`) |
//! | [`chain`] | the hook chain both interceptor layers are built on (onion order, answer in place) | `RPCInterceptorChain` |
//! | [`trace`] | tracing spans, OpenTelemetry | opentracing spans in the sender |
//! | [`limit`] | rate and concurrency limits | store token limit |
//! | [`timeout`] | per-command RPC timeouts | `client.ReadTimeout*` |
//! | [`builder`], [`stack`] | fluent composition and the standard order | `tikv.KVStore` wiring |
//!
//! # Example
//!
//! ```
//! # use std::sync::Arc;
//! # use tikv_tower_proto::metapb;
//! # use tikv_tower_layers::testing::StaticLocator;
//! use tikv_tower_layers::{stack, Request, StoreCall, TransportError};
//! use tikv_tower_proto::kvrpcpb::{RawGetRequest, RawGetResponse};
//! use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tikv_tower_layers::Error> {
//! // The innermost service takes region-addressed `StoreCall`s. In the client it is
//! // `tikv_tower::transport`; here a fake store answers every call.
//! let transport = tower::service_fn(|call: StoreCall| async move {
//!     assert_eq!(call.request.context().map(|c| c.region_id), Some(1));
//!     let reply = RawGetResponse { value: "v".into(), ..Default::default() };
//!     Ok::<_, TransportError>(StoreResponse::from(reply))
//! });
//! // The region cache (`tikv_tower`'s `RegionCache`; a one-region fake here).
//! let region_cache = StaticLocator::split_at(&[]);
//!
//! // RawKV: no lock resolution; transactions use `stack::standard(.., resolver, ..)`.
//! let svc = stack::raw(transport, region_cache, stack::StackConfig::default());
//! let get = StoreRequest::from(RawGetRequest { key: "k".into(), ..Default::default() });
//! let resp = svc.oneshot(Request::new(get)).await?;
//! assert!(matches!(resp.inner, StoreResponse::RawGet(r) if r.value == "v"));
//! assert_eq!(resp.details.store_id, Some(1));
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod builder;
pub mod call;
pub mod chain;
pub mod error;
pub mod intercept;
pub mod limit;
pub mod locate;
pub mod replica;
pub mod request;
pub mod resolve_lock;
pub mod retry;
pub mod route;
pub mod rpc_intercept;
pub mod shard;
pub mod stack;
pub mod tag;
pub mod testing;
pub mod timeout;
pub mod trace;
pub mod typed;

pub use builder::ServiceBuilderExt;
pub use call::{StoreCall, TransportError};
pub use error::{Decision, Error, RegionErrorKind};
pub use locate::{InvalidReason, LocateError, RegionLocator, RegionRoute, RegionVerId, StoreRoute};
pub use replica::{ReplicaPolicy, ReplicaSession};
pub use request::{
    ExecDetails, KeyRange, OpState, ReplicaRead, Request, RequestTags, Response, Target,
};
pub use retry::backoff::{BackoffKind, Backoffer, Jitter};
pub use retry::{RetryPolicy, RetrySession};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;
