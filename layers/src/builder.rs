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
//! # use tikv_tower_layers::{InvalidReason, LocateError, RegionLocator, RegionRoute, RegionVerId, StoreRoute};
//! # use tikv_tower_proto::metapb;
//! # /// A fake region cache: regions split at the given keys (ids 1, 2, ...), each with
//! # /// peers on stores 1, 2, 3 and led by store 1. Feedback from replies is ignored.
//! # struct FakeCache(Vec<RegionRoute>);
//! # impl FakeCache {
//! #     fn split_at(splits: &[&[u8]]) -> Arc<FakeCache> {
//! #         let mut bounds = vec![vec![]];
//! #         bounds.extend(splits.iter().map(|s| s.to_vec()));
//! #         bounds.push(vec![]);
//! #         let route = |(i, w): (usize, &[Vec<u8>])| {
//! #             let id = i as u64 + 1;
//! #             let peer = |s| metapb::Peer { id: id * 10 + s, store_id: s, ..Default::default() };
//! #             let peers: Vec<_> = (1..=3).map(peer).collect();
//! #             let epoch = Some(metapb::RegionEpoch { conf_ver: 1, version: 1 });
//! #             let (start_key, end_key) = (w[0].clone(), w[1].clone());
//! #             let region = metapb::Region { id, start_key, end_key, region_epoch: epoch, peers: peers.clone(), ..Default::default() };
//! #             RegionRoute { region: Arc::new(region), leader: Some(peers[0]) }
//! #         };
//! #         Arc::new(FakeCache(bounds.windows(2).enumerate().map(route).collect()))
//! #     }
//! #     fn find(&self, f: impl Fn(&RegionRoute) -> bool) -> Result<RegionRoute, LocateError> {
//! #         self.0.iter().find(|r| f(r)).cloned().ok_or_else(|| LocateError::RegionNotFound("fake".into()))
//! #     }
//! # }
//! # impl RegionLocator for FakeCache {
//! #     async fn locate_key(&self, key: &[u8]) -> Result<RegionRoute, LocateError> {
//! #         self.find(|r| r.contains(key))
//! #     }
//! #     async fn locate_end_key(&self, key: &[u8]) -> Result<RegionRoute, LocateError> {
//! #         self.find(|r| match key.is_empty() {
//! #             true => r.end_key().is_empty(),
//! #             false => r.start_key() < key && (r.end_key().is_empty() || key <= r.end_key()),
//! #         })
//! #     }
//! #     async fn locate_region_id(&self, id: u64) -> Result<RegionRoute, LocateError> {
//! #         self.find(|r| r.region.id == id)
//! #     }
//! #     async fn store(&self, id: u64) -> Result<StoreRoute, LocateError> {
//! #         Ok(StoreRoute { id, addr: format!("store-{id}").into(), labels: Arc::from(vec![]) })
//! #     }
//! #     fn update_leader(&self, _: RegionVerId, _: Option<metapb::Peer>) {}
//! #     fn on_epoch_not_match(&self, _: RegionVerId, _: &[metapb::Region]) -> bool { false }
//! #     fn invalidate_region(&self, _: RegionVerId, _: InvalidReason) {}
//! #     fn on_send_fail(&self, _: RegionVerId, _: u64) {}
//! # }
//! use tikv_tower_layers::route::RouteConfig;
//! use tikv_tower_layers::timeout::Timeouts;
//! use tikv_tower_layers::{Request, RequestTags, ServiceBuilderExt, StoreCall, TransportError};
//! use tikv_tower_proto::kvrpcpb::RawGetRequest;
//! use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tikv_tower_layers::Error> {
//! # let cache = FakeCache::split_at(&[]);
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
//! let get = StoreRequest::RawGet(RawGetRequest { key: b"k".to_vec(), ..Default::default() });
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
