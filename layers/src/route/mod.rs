//! Routing: from a key-addressed [`Request`] to one [`StoreCall`], and back.
//!
//! For each attempt [`Route`] runs three steps:
//!
//! 1. **select** ([`select`]): resolve the request's [`Target`] to a region through the
//!    [`RegionLocator`] (a key, a region id, or a region pinned at an epoch by the shard
//!    layer — a pinned region whose epoch moved fails at once with a stale-route error, so
//!    the shard layer re-splits; client-go `getRPCContext` returning nil → pseudo
//!    `EpochNotMatch`); make the shard's [`ReplicaSession`](crate::replica::ReplicaSession)
//!    from the [`ReplicaPolicy`] in effect (the request's or the layer's) when the region
//!    or epoch changed, with the metadata of the peers' stores; pick a peer, sleeping a
//!    pending backoff for its store first; with no candidate left invalidate the region
//!    and fail with [`Error::RegionUnavailable`] (client-go "all replicas tried");
//! 2. **stamp** ([`stamp`]): write the `kvrpcpb::Context` (region id, epoch, peer,
//!    cluster id, API version, keyspace id/name, `replica_read` / `stale_read`,
//!    `is_retry_request` on every attempt after the first) and build the [`StoreCall`]
//!    (store id and address, timeout = the request's override capped by the operation
//!    deadline), which the inner transport service is called with;
//! 3. **feedback** ([`feedback`]): classify the reply — no region error → [`Response`]
//!    (and the session and cache learn the peer served); a region error → the
//!    region-error matrix ([`on_region_error`](crate::retry::matrix::on_region_error))
//!    informs cache and session and the error carries its [`Decision`]; a transport error
//!    → [`on_send_fail`](crate::retry::matrix::on_send_fail).
//!
//! The route layer does not loop: retrying is the retry layer's job.
//!
//! client-go counterpart: one iteration of `RegionRequestSender.SendReqCtx`
//! (`getRPCContext`, `replicaSelector.next`, `buildRPCContext`, `send`).
//!
//! # Example
//!
//! ```
//! # use std::sync::Arc;
//! # use tikv_tower_proto::metapb;
//! # use tikv_tower_layers::testing::StaticLocator;
//! use tikv_tower_layers::route::{RouteConfig, RouteLayer};
//! use tikv_tower_layers::{Request, StoreCall, TransportError};
//! use tikv_tower_proto::kvrpcpb::{RawGetRequest, RawGetResponse};
//! use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tikv_tower_layers::Error> {
//! # let region_cache = StaticLocator::split_at(&[]);
//! // A fake store checking where the call went and what was stamped.
//! let transport = tower::service_fn(|call: StoreCall| async move {
//!     let ctx = call.request.context().cloned().unwrap_or_default();
//!     assert_eq!((call.store_id, &*call.addr), (1, "store-1")); // the leader's store
//!     assert_eq!((ctx.region_id, ctx.peer.map(|p| p.store_id)), (1, Some(1)));
//!     assert_eq!((ctx.cluster_id, ctx.is_retry_request), (7, false));
//!     let reply = RawGetResponse { not_found: true, ..Default::default() };
//!     Ok::<_, TransportError>(StoreResponse::from(reply))
//! });
//! let route = RouteLayer::new(region_cache.clone(), RouteConfig { cluster_id: 7, ..Default::default() });
//! let svc = tower::ServiceBuilder::new().layer(route).service(transport);
//! let get = StoreRequest::from(RawGetRequest { key: "k".into(), ..Default::default() });
//! let resp = svc.oneshot(Request::new(get)).await?;
//! assert_eq!(resp.details.region.map(|r| r.id), Some(1));
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tikv_tower_proto::rpc::{RpcKind, StoreResponse};
use tikv_tower_proto::{errorpb, kvrpcpb};
use tower::ServiceExt;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument;

use crate::call::{StoreCall, TransportError};
use crate::error::{Decision, Error, RegionErrorKind};
use crate::locate::{InvalidReason, LocateError, RegionLocator, RegionRoute, StoreRoute};
use crate::replica::{ClientGoSelector, Pick, ReplicaFailure, ReplicaPolicy};
use crate::request::{ExecDetails, Request, Response, SharedReplicaSession, Target};
use crate::retry::matrix::{self, Attempt};
use crate::retry::BoxFuture;

/// Cluster-wide values stamped into every request's `Context`, and the server limits the
/// client is configured with.
#[derive(Debug, Clone, Default)]
pub struct RouteConfig {
    /// `Context.cluster_id` (0 = not stamped).
    pub cluster_id: u64,
    /// `Context.api_version`.
    pub api_version: kvrpcpb::ApiVersion,
    /// `Context.keyspace_id` (API V2).
    pub keyspace_id: Option<u32>,
    /// `Context.keyspace_name`.
    pub keyspace_name: Option<String>,
    /// TiKV's `raft-entry-max-size`, reported with `RaftEntryTooLarge` (0 = unknown).
    pub raft_entry_max_size: u64,
}

/// Layer adding [`Route`].
#[derive(Debug, Clone)]
pub struct RouteLayer<L> {
    locator: Arc<L>,
    policy: Arc<dyn ReplicaPolicy>,
    config: Arc<RouteConfig>,
}

impl<L: RegionLocator> RouteLayer<L> {
    /// Route with client-go's replica selector.
    pub fn new(locator: Arc<L>, config: RouteConfig) -> Self {
        Self::with_policy(locator, Arc::new(ClientGoSelector::new()), config)
    }

    /// Route with a custom replica policy (requests may still bring their own).
    pub fn with_policy(
        locator: Arc<L>,
        policy: Arc<dyn ReplicaPolicy>,
        config: RouteConfig,
    ) -> Self {
        RouteLayer {
            locator,
            policy,
            config: Arc::new(config),
        }
    }
}

impl<S, L> Layer<S> for RouteLayer<L> {
    type Service = Route<S, L>;
    fn layer(&self, inner: S) -> Self::Service {
        Route {
            inner,
            locator: self.locator.clone(),
            policy: self.policy.clone(),
            config: self.config.clone(),
        }
    }
}

/// The routing service (see the [module docs](self)).
#[derive(Debug)]
pub struct Route<S, L> {
    inner: S,
    locator: Arc<L>,
    policy: Arc<dyn ReplicaPolicy>,
    config: Arc<RouteConfig>,
}

impl<S: Clone, L> Clone for Route<S, L> {
    fn clone(&self) -> Self {
        Route {
            inner: self.inner.clone(),
            locator: self.locator.clone(),
            policy: self.policy.clone(),
            config: self.config.clone(),
        }
    }
}

impl<S, L> Service<Request> for Route<S, L>
where
    S: Service<StoreCall, Response = StoreResponse, Error = TransportError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    L: RegionLocator,
{
    type Response = Response;
    type Error = Error;
    type Future = BoxFuture<Result<Response, Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let Route {
                inner,
                locator,
                policy,
                config,
            } = this;
            // Lookups (a PD call on a miss, once: the retry layer retries) end at the
            // operation deadline.
            let (region, selected) = req
                .op
                .within_deadline(async {
                    let region = resolve_target(&*locator, &req).await?;
                    let selected = select(&*locator, &*policy, &region, &req).await?;
                    Ok::<_, Error>((region, selected))
                })
                .await??;
            let session = req.replica_session().clone();
            let (call, at, span) = stamp(&config, &region, &selected, req);
            let result = inner.oneshot(call).instrument(span.clone()).await;
            feedback(&*locator, &session, &region, &selected, at, &span, result)
        })
    }
}

/// Reads whose timeouts may be configurable (client-go `isReadReq`): the table's
/// `configurable_read` fact.
fn is_timeout_configurable_read(kind: RpcKind) -> bool {
    kind.facts().configurable_read
}

/// The region error a route that went stale before sending stands for (client-go
/// `getRPCContext` returning nil → pseudo `EpochNotMatch`; a region gone from PD →
/// `RegionNotFound`): re-locate / re-split without backoff.
fn stale_route(region: crate::RegionVerId, error: errorpb::Error) -> Error {
    Error::Region {
        region,
        store_id: 0,
        kind: RegionErrorKind::of(&error),
        decision: Decision::Relocate(None),
        error: Box::new(error),
    }
}

/// Resolve the target to one region (client-go `LocateKey` / `LocateRegionByID` /
/// `LocateEndKey`).
pub async fn resolve_target<L: RegionLocator + ?Sized>(
    locator: &L,
    req: &Request,
) -> Result<RegionRoute, Error> {
    match &req.target {
        Target::Key(k) => Ok(locator.locate_key(k).await?),
        Target::RegionId(id) => Ok(locator.locate_region_id(*id).await?),
        Target::Region(ver) => match locator.locate_region_id(ver.id).await {
            Ok(r) if r.ver_id() == *ver => Ok(r),
            Ok(r) => Err(stale_route(
                r.ver_id(),
                errorpb::Error {
                    message: "region epoch changed since the request was split".into(),
                    epoch_not_match: Some(errorpb::EpochNotMatch::default()),
                    ..Default::default()
                },
            )),
            Err(LocateError::RegionNotFound(m)) => Err(stale_route(
                *ver,
                errorpb::Error {
                    message: m,
                    region_not_found: Some(errorpb::RegionNotFound { region_id: ver.id }),
                    ..Default::default()
                },
            )),
            Err(e) => Err(e.into()),
        },
        Target::Keys => {
            let keys = crate::shard::kinds::keys(&req.inner).ok_or_else(|| {
                Error::InvalidArgument(format!("{} has no keys to route by", req.inner.kind()))
            })?;
            let first = keys
                .first()
                .ok_or_else(|| Error::InvalidArgument("empty key list".into()))?;
            let region = locator.locate_key(first).await?;
            if keys.iter().all(|k| region.contains(k)) {
                Ok(region)
            } else {
                Err(Error::InvalidArgument(
                    "keys span several regions: add the shard layer".into(),
                ))
            }
        }
        Target::Range(r) | Target::EachRegion(r) => {
            let region = if r.reverse {
                locator.locate_end_key(&r.end).await?
            } else {
                locator.locate_key(&r.start).await?
            };
            let covers_start = &r.start[..] >= region.start_key();
            let covers_end = region.end_key().is_empty()
                || (!r.end.is_empty() && &r.end[..] <= region.end_key());
            if covers_start && covers_end {
                Ok(region)
            } else {
                Err(Error::InvalidArgument(
                    "range spans several regions: add the shard layer".into(),
                ))
            }
        }
        Target::Unrouted => Err(Error::InvalidArgument(format!(
            "{} request has no routing target",
            req.inner.kind()
        ))),
    }
}

/// The peer an attempt goes to, and its store.
#[derive(Debug, Clone)]
pub struct Selected {
    /// What the replica session picked.
    pub pick: Pick,
    /// The peer's store (address to dial).
    pub store: StoreRoute,
}

/// The stores of the region's peers that resolve (for replica policies that look at
/// labels and state); unknown stores are left out.
async fn peer_stores<L: RegionLocator + ?Sized>(
    locator: &L,
    region: &RegionRoute,
) -> Vec<StoreRoute> {
    let mut stores = Vec::with_capacity(region.region.peers.len());
    for p in region.region.peers.iter().filter(|p| !p.is_witness) {
        if let Ok(s) = locator.store(p.store_id).await {
            stores.push(s);
        }
    }
    stores
}

/// Step 1, select: the shard's replica session (made anew when the region moved or the
/// session gave up) picks the peer; pending backoffs for its store are slept; the store
/// is resolved (client-go `replicaSelector.next`, `backoffOnRetry`, `buildRPCContext`).
pub async fn select<L: RegionLocator + ?Sized>(
    locator: &L,
    default_policy: &dyn ReplicaPolicy,
    region: &RegionRoute,
    req: &Request,
) -> Result<Selected, Error> {
    let ver = region.ver_id();
    let slot = req.replica_session();
    let fresh = !matches!(&*slot.lock(), Some(s) if s.region() == ver && s.is_usable());
    if fresh {
        let policy = req.replica_policy.as_deref().unwrap_or(default_policy);
        let read_only = req.inner.kind().is_read_only();
        let stores = if policy.wants_stores(req.replica_read, read_only) {
            peer_stores(locator, region).await
        } else {
            Vec::new()
        };
        let session = policy.new_session(region, &stores, req.replica_read, read_only);
        *slot.lock() = Some(session);
    }
    let (pick, pending) = {
        let mut guard = slot.lock();
        let session = guard
            .as_mut()
            .ok_or_else(|| Error::Unexpected("replica session missing".into()))?;
        match session.pick() {
            Some(p) => {
                let pending = session.take_pending_backoff(p.peer.store_id);
                (Some(p), pending.into_iter().collect::<Vec<_>>())
            }
            None => (None, session.drain_pending_backoffs()),
        }
    };
    // client-go `backoffOnRetry` / `backoffOnNoCandidate`.
    for (kind, cause) in &pending {
        req.op.backoff(*kind, cause).await?;
    }
    let Some(pick) = pick else {
        locator.invalidate_region(ver, InvalidReason::Other);
        return Err(Error::RegionUnavailable(ver));
    };
    match locator.store(pick.peer.store_id).await {
        Ok(store) => Ok(Selected { pick, store }),
        Err(e) => {
            // client-go `buildRPCContext`: an unknown / tombstoned store makes the cached
            // region useless; drop it and let the retry layer re-locate.
            if let Some(s) = slot.lock().as_mut() {
                s.on_failure(&ReplicaFailure::StoreUnknown);
            }
            locator.invalidate_region(ver, InvalidReason::StoreNotMatch);
            Err(e.into())
        }
    }
}

fn min_timeout(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Step 2, stamp: the request's `Context` for this region, peer and attempt, and the
/// [`StoreCall`] carrying it (client-go `SendReqCtx` filling `req.Context`); also what
/// the matrix will need to know about the attempt, and the attempt's span.
pub fn stamp(
    cfg: &RouteConfig,
    region: &RegionRoute,
    selected: &Selected,
    req: Request,
) -> (StoreCall, Attempt, tracing::Span) {
    let kind = req.inner.kind();
    let Request {
        inner: mut request,
        op,
        timeout,
        attempt,
        ..
    } = req;
    let ctx = request.context_mut();
    ctx.region_id = region.region.id;
    ctx.region_epoch = region.region.region_epoch;
    if cfg.cluster_id != 0 {
        ctx.cluster_id = cfg.cluster_id;
    }
    ctx.api_version = cfg.api_version as i32;
    if let Some(id) = cfg.keyspace_id {
        ctx.keyspace = Some(kvrpcpb::context::Keyspace::KeyspaceId(id));
    }
    if let Some(name) = &cfg.keyspace_name {
        ctx.keyspace_name.clone_from(name);
    }
    ctx.peer = Some(selected.pick.peer);
    ctx.replica_read = selected.pick.replica_read;
    ctx.stale_read = selected.pick.stale_read;
    ctx.is_retry_request = attempt > 0;
    let at = Attempt {
        region: region.ver_id(),
        store_id: selected.store.id,
        is_read: is_timeout_configurable_read(kind),
        max_execution_duration_ms: ctx.max_execution_duration_ms,
        entry_limit: cfg.raft_entry_max_size,
        attempts: attempt + 1,
    };
    let span = crate::trace::rpc_span(
        &op,
        kind,
        region.region.id,
        &selected.store.addr,
        op.count_rpc(),
    );
    let call = StoreCall {
        store_id: selected.store.id,
        addr: selected.store.addr.clone(),
        request,
        timeout: min_timeout(timeout, op.remaining()),
    };
    (call, at, span)
}

/// Step 3, feedback: what the reply means for the session, the cache and the retry loop
/// (client-go `onSendSuccess`, `onRegionError`, `onSendFail`).
pub fn feedback<L: RegionLocator + ?Sized>(
    locator: &L,
    session: &SharedReplicaSession,
    region: &RegionRoute,
    selected: &Selected,
    at: Attempt,
    span: &tracing::Span,
    result: Result<StoreResponse, TransportError>,
) -> Result<Response, Error> {
    let mut guard = session.lock();
    let session = guard
        .as_mut()
        .ok_or_else(|| Error::Unexpected("replica session missing".into()))?;
    let store = &selected.store;
    match result {
        Ok(mut resp) => match resp.take_region_error() {
            None => {
                session.on_success();
                let pick = &selected.pick;
                // client-go `onSendSuccess`: a peer that served a leader read is the leader.
                let believed = region.leader.as_ref().map(|l| l.id);
                if !pick.replica_read && !pick.stale_read && believed != Some(pick.peer.id) {
                    locator.update_leader(at.region, Some(pick.peer));
                }
                crate::trace::record_outcome(span, "ok");
                Ok(Response {
                    inner: resp,
                    details: ExecDetails {
                        attempts: at.attempts,
                        region: Some(at.region),
                        store_id: Some(store.id),
                        store_addr: Some(store.addr.clone()),
                        backoff: Duration::ZERO,
                        shards: 1,
                    },
                })
            }
            Some(e) => {
                let kind = RegionErrorKind::of(&e);
                crate::trace::record_outcome(span, kind.label());
                let decision = matrix::on_region_error(locator, &mut **session, &at, &e)?;
                Err(Error::Region {
                    region: at.region,
                    store_id: store.id,
                    kind,
                    decision,
                    error: Box::new(e),
                })
            }
        },
        Err(source) => {
            crate::trace::record_outcome(span, "send_failed");
            let decision = matrix::on_send_fail(locator, &mut **session, &at, &source);
            Err(Error::SendFailed {
                store_id: store.id,
                decision,
                source,
            })
        }
    }
}
