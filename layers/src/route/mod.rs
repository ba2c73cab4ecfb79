//! Routing: from a key-addressed [`Request`] to one [`StoreCall`], and back.
//!
//! For each attempt [`Route`]:
//!
//! 1. resolves the request's [`Target`] to a region through the [`RegionLocator`]
//!    (a key, a region id, or a region pinned at an epoch by the shard layer — a pinned
//!    region whose epoch moved fails at once with a stale-route error, so the shard layer
//!    re-splits; client-go `getRPCContext` returning nil → pseudo `EpochNotMatch`);
//! 2. asks the [`ReplicaPolicy`] for a peer, using the shard's [`SelectorState`](crate::replica::SelectorState)
//!    (re-initialized when the region or epoch changed), sleeping a pending backoff for
//!    that store first; with no candidate left it invalidates the region and fails with
//!    [`Error::RegionUnavailable`] (client-go "all replicas tried");
//! 3. stamps the `kvrpcpb::Context`: region id, epoch, peer, cluster id, API version,
//!    keyspace id/name, `replica_read` / `stale_read`, `is_retry_request` (every attempt
//!    after the first);
//! 4. builds the [`StoreCall`] (store id and address, timeout = the request's override
//!    capped by the operation deadline) and calls the inner transport service;
//! 5. classifies the reply: no region error → [`Response`]; a region error → the
//!    region-error matrix ([`on_region_error`](crate::retry::matrix::on_region_error))
//!    updates cache and selector and the error carries its [`RetryHint`];
//!    a transport error → [`on_send_fail`](crate::retry::matrix::on_send_fail).
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
use crate::error::{Error, RegionErrorKind, RetryHint};
use crate::locate::{LocateError, RegionLocator, RegionRoute};
use crate::replica::{ClientGoSelector, ReplicaPolicy};
use crate::request::{ExecDetails, Request, Response, Target};
use crate::retry::matrix::{self, Attempt};
use crate::retry::BoxFuture;

/// Cluster-wide values stamped into every request's `Context`.
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
}

/// Layer adding [`Route`].
#[derive(Debug)]
pub struct RouteLayer<L, P = ClientGoSelector> {
    locator: Arc<L>,
    policy: Arc<P>,
    config: Arc<RouteConfig>,
}

impl<L, P> Clone for RouteLayer<L, P> {
    fn clone(&self) -> Self {
        RouteLayer {
            locator: self.locator.clone(),
            policy: self.policy.clone(),
            config: self.config.clone(),
        }
    }
}

impl<L: RegionLocator> RouteLayer<L> {
    /// Route with client-go's replica selector.
    pub fn new(locator: Arc<L>, config: RouteConfig) -> Self {
        RouteLayer {
            locator,
            policy: Arc::new(ClientGoSelector::new()),
            config: Arc::new(config),
        }
    }
}

impl<L: RegionLocator, P: ReplicaPolicy> RouteLayer<L, P> {
    /// Route with a custom replica policy.
    pub fn with_policy(locator: Arc<L>, policy: Arc<P>, config: RouteConfig) -> Self {
        RouteLayer {
            locator,
            policy,
            config: Arc::new(config),
        }
    }
}

impl<S, L, P> Layer<S> for RouteLayer<L, P> {
    type Service = Route<S, L, P>;
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
pub struct Route<S, L, P = ClientGoSelector> {
    inner: S,
    locator: Arc<L>,
    policy: Arc<P>,
    config: Arc<RouteConfig>,
}

impl<S: Clone, L, P> Clone for Route<S, L, P> {
    fn clone(&self) -> Self {
        Route {
            inner: self.inner.clone(),
            locator: self.locator.clone(),
            policy: self.policy.clone(),
            config: self.config.clone(),
        }
    }
}

impl<S, L, P> Service<Request> for Route<S, L, P>
where
    S: Service<StoreCall, Response = StoreResponse, Error = TransportError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    L: RegionLocator,
    P: ReplicaPolicy,
{
    type Response = Response;
    type Error = Error;
    type Future = BoxFuture<Result<Response, Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        Box::pin(route_once(
            self.inner.clone(),
            self.locator.clone(),
            self.policy.clone(),
            self.config.clone(),
            req,
        ))
    }
}

/// Reads whose timeouts may be configurable (client-go `isReadReq`).
fn is_timeout_configurable_read(kind: RpcKind) -> bool {
    matches!(
        kind,
        RpcKind::Get | RpcKind::BatchGet | RpcKind::Scan | RpcKind::BufferBatchGet
    )
}

fn stale_route(region: &RegionRoute, message: &str) -> Error {
    Error::Region {
        region: region.ver_id(),
        store_id: 0,
        kind: RegionErrorKind::EpochNotMatch,
        hint: RetryHint::Relocate(None),
        error: Box::new(errorpb::Error {
            message: message.to_string(),
            epoch_not_match: Some(errorpb::EpochNotMatch::default()),
            ..Default::default()
        }),
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
                &r,
                "region epoch changed since the request was split",
            )),
            Err(LocateError::RegionNotFound(m)) => Err(Error::Region {
                region: *ver,
                store_id: 0,
                kind: RegionErrorKind::RegionNotFound,
                hint: RetryHint::Relocate(None),
                error: Box::new(errorpb::Error {
                    message: m,
                    region_not_found: Some(errorpb::RegionNotFound { region_id: ver.id }),
                    ..Default::default()
                }),
            }),
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

fn stamp(ctx: &mut kvrpcpb::Context, cfg: &RouteConfig, region: &RegionRoute) {
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
        ctx.keyspace_name = name.clone();
    }
}

fn min_timeout(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

async fn route_once<S, L, P>(
    inner: S,
    locator: Arc<L>,
    policy: Arc<P>,
    cfg: Arc<RouteConfig>,
    req: Request,
) -> Result<Response, Error>
where
    S: Service<StoreCall, Response = StoreResponse, Error = TransportError> + Send + 'static,
    S::Future: Send + 'static,
    L: RegionLocator,
    P: ReplicaPolicy,
{
    let region = resolve_target(&*locator, &req).await?;
    let ver = region.ver_id();
    let kind = req.inner.kind();
    let session = req.session().clone();

    // Pick the peer (client-go `replicaSelector.next`).
    let (pick, pending, is_retry) = {
        let mut s = session.lock();
        if s.region != Some(ver) || (s.invalidated && !s.retry_after_invalidation) {
            policy.init(&mut s, &region, req.replica_read, kind.is_read_only());
        }
        match policy.pick(&mut s).or_else(|| policy.fallback(&mut s)) {
            Some(p) => {
                let pending = s
                    .take_pending_backoff(p.peer.store_id)
                    .into_iter()
                    .collect::<Vec<_>>();
                let retry = s.sent > 0;
                s.sent += 1;
                (Some(p), pending, retry)
            }
            None => {
                s.invalidated = true;
                (
                    None,
                    std::mem::take(&mut s.pending_backoffs)
                        .into_iter()
                        .map(|(_, k, e)| (k, e))
                        .collect(),
                    false,
                )
            }
        }
    };
    // client-go `backoffOnRetry` / `backoffOnNoCandidate`.
    for (kind, cause) in &pending {
        req.op.backoff(*kind, cause).await?;
    }
    let Some(pick) = pick else {
        locator.invalidate_region(ver, crate::locate::InvalidReason::Other);
        return Err(Error::RegionUnavailable(ver));
    };

    let store = match locator.store(pick.peer.store_id).await {
        Ok(store) => store,
        Err(e) => {
            // client-go `buildRPCContext`: an unknown / tombstoned store makes the cached
            // region useless; drop it and let the retry layer re-locate.
            {
                let mut s = session.lock();
                if let Some(t) = s.target_slot() {
                    t.flags.unreachable = true;
                }
                s.invalidated = true;
            }
            locator.invalidate_region(ver, crate::locate::InvalidReason::StoreNotMatch);
            return Err(e.into());
        }
    };
    let Request {
        inner: mut request,
        op,
        timeout,
        ..
    } = req;
    let max_execution_duration_ms = {
        let ctx = request.context_mut();
        stamp(ctx, &cfg, &region);
        ctx.peer = Some(pick.peer);
        ctx.replica_read = pick.replica_read;
        ctx.stale_read = pick.stale_read;
        ctx.is_retry_request = is_retry;
        ctx.max_execution_duration_ms
    };
    let call = StoreCall {
        store_id: store.id,
        addr: store.addr.clone(),
        request,
        timeout: min_timeout(timeout, op.remaining()),
    };
    let attempt_no = op.count_rpc();
    let span = crate::trace::rpc_span(&op, kind, ver.id, &store.addr, attempt_no);
    let result = inner.oneshot(call).instrument(span.clone()).await;

    let at = Attempt {
        region: ver,
        store_id: store.id,
        is_read: is_timeout_configurable_read(kind),
        max_execution_duration_ms,
    };
    match result {
        Ok(mut resp) => match resp.take_region_error() {
            None => {
                let attempts = {
                    let mut s = session.lock();
                    policy.on_success(&mut s);
                    s.sent
                };
                // client-go `onSendSuccess`: a peer that served a leader read is the leader.
                let believed = region.leader.as_ref().map(|l| l.id);
                if !pick.replica_read && !pick.stale_read && believed != Some(pick.peer.id) {
                    locator.update_leader(ver, Some(pick.peer));
                }
                crate::trace::record_outcome(&span, "ok");
                Ok(Response {
                    inner: resp,
                    details: ExecDetails {
                        attempts,
                        region: Some(ver),
                        store_id: Some(store.id),
                        store_addr: Some(store.addr.clone()),
                        backoff: Duration::ZERO,
                        shards: 1,
                    },
                })
            }
            Some(e) => {
                let kind = RegionErrorKind::of(&e);
                crate::trace::record_outcome(&span, kind.label());
                let hint =
                    matrix::on_region_error(&*locator, &*policy, &mut session.lock(), &at, &e)?;
                Err(Error::Region {
                    region: ver,
                    store_id: store.id,
                    kind,
                    hint,
                    error: Box::new(e),
                })
            }
        },
        Err(source) => {
            crate::trace::record_outcome(&span, "send_failed");
            let hint = matrix::on_send_fail(&*locator, &*policy, &mut session.lock(), &at, &source);
            Err(Error::SendFailed {
                store_id: store.id,
                hint,
                source,
            })
        }
    }
}
