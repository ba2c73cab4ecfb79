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
//! | [`replica`] | which peer serves an attempt | `replicaSelector` |
//! | [`retry`] | typed, budgeted backoff; the region-error matrix | `retry.Backoffer`, `onRegionError`, `onSendFail` |
//! | [`shard`] | split by region, fan out, merge, re-split | `GroupKeysByRegion`, batch loops |
//! | [`resolve_lock`] | resolve locks met by reads, retry | `LockResolver` use in snapshot reads |
//! | [`tag`] | request source, resource group, priority | `tikvrpc.Request` context setters |
//! | [`intercept`] | user interceptors | `tikvrpc/interceptor` |
//! | [`trace`] | tracing spans, OpenTelemetry | opentracing spans in the sender |
//! | [`limit`] | rate and concurrency limits | store token limit |
//! | [`timeout`] | per-command RPC timeouts | `client.ReadTimeout*` |
//! | [`builder`], [`stack`] | fluent composition and the standard order | `tikv.KVStore` wiring |
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
//!     let reply = RawGetResponse { value: b"v".to_vec(), ..Default::default() };
//!     Ok::<_, TransportError>(StoreResponse::RawGet(reply))
//! });
//! // The region cache (`tikv_tower`'s `RegionCache`; a one-region fake here).
//! let region_cache = FakeCache::split_at(&[]);
//!
//! // RawKV: no lock resolution; transactions use `stack::standard(.., resolver, ..)`.
//! let svc = stack::raw(transport, region_cache, stack::StackConfig::default());
//! let get = StoreRequest::RawGet(RawGetRequest { key: b"k".to_vec(), ..Default::default() });
//! let resp = svc.oneshot(Request::new(get)).await?;
//! assert!(matches!(resp.inner, StoreResponse::RawGet(r) if r.value == b"v"));
//! assert_eq!(resp.details.store_id, Some(1));
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod builder;
pub mod call;
pub mod error;
pub mod intercept;
pub mod limit;
pub mod locate;
pub mod replica;
pub mod request;
pub mod resolve_lock;
pub mod retry;
pub mod route;
pub mod shard;
pub mod stack;
pub mod tag;
pub mod timeout;
pub mod trace;

pub use builder::ServiceBuilderExt;
pub use call::{StoreCall, TransportError};
pub use error::{Error, RegionErrorKind, RetryHint};
pub use locate::{InvalidReason, LocateError, RegionLocator, RegionRoute, RegionVerId, StoreRoute};
pub use request::{
    ExecDetails, KeyRange, OpState, ReplicaRead, Request, RequestTags, Response, Target,
};
pub use retry::backoff::{BackoffKind, Backoffer, Jitter};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;
