//! Fluent composition: a `tower::ServiceBuilder` extension adding each layer by name.
//!
//! Each method is `.layer(XLayer::..)` with the layer's usual arguments, so a user can
//! write the standard stack by hand, reorder it, or slip their own layer in between.
//! Layers listed first wrap those listed later (they are *outer*).
//!
//! # Example
//!
//! ```
//! # use std::sync::Arc;
//! # use tikv_tower_proto::metapb;
//! # use tikv_tower_layers::testing::StaticLocator;
//! use tikv_tower_layers::route::RouteConfig;
//! use tikv_tower_layers::timeout::Timeouts;
//! use tikv_tower_layers::{Request, RequestTags, ServiceBuilderExt, StoreCall, TransportError};
//! use tikv_tower_proto::kvrpcpb::RawGetRequest;
//! use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tikv_tower_layers::Error> {
//! # let cache = StaticLocator::split_at(&[]);
//! # let transport = tower::service_fn(|call: StoreCall| async move {
//! #     Ok::<_, TransportError>(StoreResponse::default_for(call.request.kind()))
//! # });
//! let svc = tower::ServiceBuilder::new()
//!     .tikv_trace()
//!     .tikv_tag(RequestTags::default())
//!     .tikv_timeouts(Timeouts::default())
//!     .tikv_shard(cache.clone())
//!     .tikv_retry()
//!     .tikv_route(cache.clone(), RouteConfig::default())
//!     .concurrency_limit(64) // any tower layer fits in: here at most 64 RPCs in flight
//!     .tikv_timeouts(Timeouts::default())
//!     .service(transport);
//! let get = StoreRequest::from(RawGetRequest { key: "k".into(), ..Default::default() });
//! let resp = svc.oneshot(Request::new(get)).await?;
//! assert_eq!(resp.details.attempts, 1);
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use tower::layer::util::Stack;
use tower::ServiceBuilder;

use crate::intercept::InterceptLayer;
use crate::limit::RateLimitLayer;
use crate::locate::RegionLocator;
use crate::request::RequestTags;
use crate::resolve_lock::{LockResolver, ResolveLockLayer};
use crate::retry::RetryLayer;
use crate::route::{RouteConfig, RouteLayer};
use crate::shard::ShardLayer;
use crate::tag::TagLayer;
use crate::timeout::{TimeoutLayer, Timeouts};
use crate::trace::TraceLayer;

/// Adds tikv-tower's layers to a `ServiceBuilder`.
pub trait ServiceBuilderExt<L>: Sized {
    /// [`TraceLayer`]: operation spans.
    fn tikv_trace(self) -> ServiceBuilder<Stack<TraceLayer, L>>;
    /// [`RateLimitLayer`].
    fn tikv_rate_limit(self, layer: RateLimitLayer) -> ServiceBuilder<Stack<RateLimitLayer, L>>;
    /// [`InterceptLayer`].
    fn tikv_intercept(self, layer: InterceptLayer) -> ServiceBuilder<Stack<InterceptLayer, L>>;
    /// [`TagLayer`] with these defaults.
    fn tikv_tag(self, defaults: RequestTags) -> ServiceBuilder<Stack<TagLayer, L>>;
    /// [`TimeoutLayer`] (use it above the route layer *and* below it, see its docs).
    fn tikv_timeouts(self, timeouts: Timeouts) -> ServiceBuilder<Stack<TimeoutLayer, L>>;
    /// [`ShardLayer`].
    fn tikv_shard<R: RegionLocator>(
        self,
        locator: Arc<R>,
    ) -> ServiceBuilder<Stack<ShardLayer<R>, L>>;
    /// [`ResolveLockLayer`].
    fn tikv_resolve_lock<R: LockResolver>(
        self,
        resolver: Arc<R>,
    ) -> ServiceBuilder<Stack<ResolveLockLayer<R>, L>>;
    /// [`RetryLayer`] with client-go's policy.
    fn tikv_retry(self) -> ServiceBuilder<Stack<RetryLayer, L>>;
    /// [`RouteLayer`] with client-go's replica selector.
    fn tikv_route<R: RegionLocator>(
        self,
        locator: Arc<R>,
        config: RouteConfig,
    ) -> ServiceBuilder<Stack<RouteLayer<R>, L>>;
}

impl<L> ServiceBuilderExt<L> for ServiceBuilder<L> {
    fn tikv_trace(self) -> ServiceBuilder<Stack<TraceLayer, L>> {
        self.layer(TraceLayer::new())
    }
    fn tikv_rate_limit(self, layer: RateLimitLayer) -> ServiceBuilder<Stack<RateLimitLayer, L>> {
        self.layer(layer)
    }
    fn tikv_intercept(self, layer: InterceptLayer) -> ServiceBuilder<Stack<InterceptLayer, L>> {
        self.layer(layer)
    }
    fn tikv_tag(self, defaults: RequestTags) -> ServiceBuilder<Stack<TagLayer, L>> {
        self.layer(TagLayer::new(defaults))
    }
    fn tikv_timeouts(self, timeouts: Timeouts) -> ServiceBuilder<Stack<TimeoutLayer, L>> {
        self.layer(TimeoutLayer::new(timeouts))
    }
    fn tikv_shard<R: RegionLocator>(
        self,
        locator: Arc<R>,
    ) -> ServiceBuilder<Stack<ShardLayer<R>, L>> {
        self.layer(ShardLayer::new(locator))
    }
    fn tikv_resolve_lock<R: LockResolver>(
        self,
        resolver: Arc<R>,
    ) -> ServiceBuilder<Stack<ResolveLockLayer<R>, L>> {
        self.layer(ResolveLockLayer::new(resolver))
    }
    fn tikv_retry(self) -> ServiceBuilder<Stack<RetryLayer, L>> {
        self.layer(RetryLayer::new())
    }
    fn tikv_route<R: RegionLocator>(
        self,
        locator: Arc<R>,
        config: RouteConfig,
    ) -> ServiceBuilder<Stack<RouteLayer<R>, L>> {
        self.layer(RouteLayer::new(locator, config))
    }
}
