//! The standard stack, composed in one call.
//!
//! Order, outermost first, and why:
//!
//! 1. **trace** — the operation span must enclose everything, including time spent
//!    waiting for a rate-limit permit, so traces show the whole latency.
//! 2. **rate limit (global)** — paces logical operations before any work (locating,
//!    splitting) is done for them.
//! 3. **intercept** — user hooks see the logical request once (not once per shard or
//!    attempt) and may refuse it before any RPC.
//! 4. **tag** — stamps request source / resource group / priority once; every shard and
//!    attempt inherits the context. After the interceptors, so they may change the tags.
//! 5. **timeout (request level)** — fixes the per-RPC timeout and
//!    `max_execution_duration_ms` before requests are split and cloned for retries.
//! 6. **shard** — splits by region; every part below is single-region. Above
//!    resolve-lock and retry so that a stale part is *re-split* (not blindly retried) and
//!    so that parts retry independently and concurrently.
//! 7. **resolve lock** — per part: a lock found in one region's reply is resolved and only
//!    that part is read again. Above retry, because a resolution round is a new read, not
//!    a transport retry.
//! 8. **retry** — per part: executes the region-error matrix' hints with the shared
//!    budget; pinned parts with stale routes go back up to the shard layer.
//! 9. **route** — one attempt: locate, pick the replica, stamp `Context`, send.
//! 10. **rate limit (per store)** — below routing, where the store is known.
//! 11. **timeout (store-call level)** — enforces the per-RPC timeout (capped by the
//!     operation deadline) around the transport call only.
//!
//! client-go counterpart: the wiring of `tikv.KVStore` (`RegionRequestSender` over the
//! `client.Client` with its interceptor and timeouts) and the txn/raw clients' loops.
//!
//! # Example
//!
//! ```
//! # use std::sync::Arc;
//! # use tikv_tower_proto::metapb;
//! # use tikv_tower_layers::testing::StaticLocator;
//! use tikv_tower_layers::route::RouteConfig;
//! use tikv_tower_layers::stack::{self, StackConfig};
//! use tikv_tower_layers::{Request, RequestTags, StoreCall, TransportError};
//! use tikv_tower_proto::kvrpcpb::RawPutRequest;
//! use tikv_tower_proto::rpc::{RpcKind, StoreRequest, StoreResponse};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tikv_tower_layers::Error> {
//! # let region_cache = StaticLocator::split_at(&[]);
//! // A fake store checking what the stack stamped into the request's `Context`.
//! let transport = tower::service_fn(|call: StoreCall| async move {
//!     let ctx = call.request.context().cloned().unwrap_or_default();
//!     assert_eq!(ctx.cluster_id, 7); // route
//!     assert_eq!(ctx.request_source, "app"); // tag
//!     assert_eq!(ctx.max_execution_duration_ms, 20_000); // timeout: MaxWriteExecutionTime
//!     Ok::<_, TransportError>(StoreResponse::default_for(RpcKind::RawPut))
//! });
//! let cfg = StackConfig {
//!     route: RouteConfig { cluster_id: 7, ..Default::default() },
//!     tags: RequestTags { request_source: Some("app".into()), ..Default::default() },
//!     ..Default::default()
//! };
//! let svc = stack::raw(transport, region_cache.clone(), cfg);
//! let boxed = stack::boxed(svc); // tower::util::BoxCloneService at the public boundary
//! let put = RawPutRequest { key: "k".into(), value: "v".into(), ..Default::default() };
//! let resp = boxed.oneshot(Request::new(StoreRequest::from(put))).await?;
//! assert_eq!(resp.details.attempts, 1);
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use tikv_tower_proto::rpc::StoreResponse;
use tower::layer::util::Identity;
use tower::util::BoxCloneService;
use tower::ServiceBuilder;
use tower_service::Service;

use crate::call::{StoreCall, TransportError};
use crate::error::Error;
use crate::intercept::InterceptLayer;
use crate::limit::RateLimitLayer;
use crate::locate::RegionLocator;
use crate::request::{Request, RequestTags, Response};
use crate::resolve_lock::{LockResolver, ResolveLockLayer};
use crate::retry::{ClientGoRetry, RetryLayer};
use crate::route::{RouteConfig, RouteLayer};
use crate::shard::{ShardConfig, ShardLayer};
use crate::tag::TagLayer;
use crate::timeout::{TimeoutLayer, Timeouts};
use crate::trace::TraceLayer;

/// Configuration of the standard stack.
#[derive(Debug, Clone, Default)]
pub struct StackConfig {
    /// Cluster id, API version, keyspace.
    pub route: RouteConfig,
    /// Shard fan-out and re-split bounds.
    pub shard: ShardConfig,
    /// Per-command timeouts.
    pub timeouts: Timeouts,
    /// Default request tags.
    pub tags: RequestTags,
    /// Optional resource-group tagger and interceptors.
    pub tag_layer: Option<TagLayer>,
    /// User interceptors.
    pub interceptors: InterceptLayer,
    /// Global rate limit (request level).
    pub rate_limit: Option<RateLimitLayer>,
    /// Per-store rate limit (store-call level).
    pub store_rate_limit: Option<RateLimitLayer>,
    /// Retry policy.
    pub retry: ClientGoRetry,
}

/// The layer order both presets share (see the module docs); `$lock` sits between shard
/// and retry: lock resolution for transactional reads, `Identity` (no layer at all) for
/// RawKV.
macro_rules! chain {
    ($transport:expr, $locator:expr, $cfg:expr, $lock:expr) => {{
        let (locator, cfg) = ($locator, $cfg);
        let timeouts = TimeoutLayer::new(cfg.timeouts.clone());
        let tag = cfg
            .tag_layer
            .clone()
            .unwrap_or_else(|| TagLayer::new(cfg.tags.clone()));
        ServiceBuilder::new()
            .layer(TraceLayer::new())
            .option_layer(cfg.rate_limit.clone())
            .layer(cfg.interceptors.clone())
            .layer(tag)
            .layer(timeouts.clone())
            .layer(ShardLayer::with_config(locator.clone(), cfg.shard))
            .layer($lock)
            .layer(RetryLayer::with_policy(cfg.retry))
            .layer(RouteLayer::new(locator, cfg.route.clone()))
            .option_layer(cfg.store_rate_limit.clone())
            .layer(timeouts)
            .service($transport)
    }};
}

/// The standard stack without lock resolution (RawKV never meets locks).
pub fn raw<T, L>(
    transport: T,
    locator: Arc<L>,
    cfg: StackConfig,
) -> impl Service<Request, Response = Response, Error = Error, Future: Send>
       + Clone
       + Send
       + Sync
       + 'static
where
    T: Service<StoreCall, Response = StoreResponse, Error = TransportError>
        + Clone
        + Send
        + Sync
        + 'static,
    T::Future: Send + 'static,
    L: RegionLocator,
{
    chain!(transport, locator, cfg, Identity::new())
}

/// The standard stack with lock resolution (transactional reads).
pub fn standard<T, L, R>(
    transport: T,
    locator: Arc<L>,
    resolver: Arc<R>,
    cfg: StackConfig,
) -> impl Service<Request, Response = Response, Error = Error, Future: Send>
       + Clone
       + Send
       + Sync
       + 'static
where
    T: Service<StoreCall, Response = StoreResponse, Error = TransportError>
        + Clone
        + Send
        + Sync
        + 'static,
    T::Future: Send + 'static,
    L: RegionLocator,
    R: LockResolver,
{
    chain!(transport, locator, cfg, ResolveLockLayer::new(resolver))
}

/// Box a stack at the public boundary.
pub fn boxed<S>(svc: S) -> BoxCloneService<Request, Response, Error>
where
    S: Service<Request, Response = Response, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    BoxCloneService::new(svc)
}
