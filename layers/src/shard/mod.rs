//! Sharding: split a multi-region request by region, fan out, merge, re-split.
//!
//! [`Shard`] looks at the request's [`Target`]:
//!
//! - [`Target::Keys`] (batch kinds, keys in any order): keys are grouped by region through
//!   the [`RegionLocator`] (sorted once, so consecutive keys of one region cost one
//!   lookup), each group becomes a part pinned to its region ([`Target::Region`]), parts
//!   run concurrently (at most [`ShardConfig::concurrency`] at once) and the replies are
//!   merged with item replies back in request order ([`kinds::Mergeable`]). A part is the
//!   request's header (its non-item fields, copied once per part) plus clones of its own
//!   items only ([`kinds::Shardable::header`], [`kinds::Shardable::select`]), so a batch
//!   of N items over R regions costs O(N), not O(N·R); an item's clone shares its key and
//!   value buffers (`Bytes`), no bytes are copied;
//! - [`Target::Range`] (scans): regions are visited one after the other in key order
//!   (descending for reverse scans), each part asking only for the results still missing
//!   under the limit; replies are concatenated;
//! - [`Target::EachRegion`] (delete range): every region overlapping the range gets its
//!   part, concurrently;
//! - any other target passes through untouched.
//!
//! A part whose routing went stale (`EpochNotMatch`, `RegionNotFound`, `KeyNotInRegion`,
//! all replicas tried: [`Error::is_stale_route`]) is re-split with the refreshed cache
//! and its sub-parts run again (at most [`ShardConfig::max_resplits`] levels). Backoffs
//! for those errors were already charged by the retry layer to the shared budget.
//!
//! client-go counterpart: `RegionCache.GroupKeysByRegion` + the batch loops of `rawkv`
//! (`sendBatchReq`, `doBatchReq`) and `txnkv` (`doActionOnBatches`, `batchGetSingleRegion`
//! re-splitting on region errors), and the scan loops (`rawkv.Scan`, `ReverseScan`).
//!
//! # Example
//!
//! ```
//! # use std::sync::Arc;
//! # use tikv_tower_proto::metapb;
//! # use tikv_tower_layers::testing::StaticLocator;
//! use tikv_tower_layers::retry::RetryLayer;
//! use tikv_tower_layers::route::{RouteConfig, RouteLayer};
//! use tikv_tower_layers::shard::ShardLayer;
//! use tikv_tower_layers::{Request, StoreCall, TransportError};
//! use tikv_tower_proto::kvrpcpb::{KvPair, RawBatchGetRequest, RawBatchGetResponse};
//! use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tikv_tower_layers::Error> {
//! // Two regions: [, "m") is region 1, ["m", ) region 2.
//! let region_cache = StaticLocator::split_at(&[b"m"]);
//! // A fake store: every part holds keys of one region; each key's value is its upper case.
//! let transport = tower::service_fn(|call: StoreCall| async move {
//!     let region_id = call.request.context().map_or(0, |c| c.region_id);
//!     let StoreRequest::RawBatchGet(req) = call.request else { unreachable!() };
//!     assert!(req.keys.iter().all(|k| (&k[..] < &b"m"[..]) == (region_id == 1)));
//!     let pair = |k: &bytes::Bytes| KvPair { key: k.clone(), value: k.to_ascii_uppercase().into(), ..Default::default() };
//!     let pairs = req.keys.iter().map(pair).collect();
//!     Ok::<_, TransportError>(StoreResponse::from(RawBatchGetResponse { pairs, ..Default::default() }))
//! });
//! let svc = tower::ServiceBuilder::new()
//!     .layer(ShardLayer::new(region_cache.clone()))
//!     .layer(RetryLayer::new())
//!     .layer(RouteLayer::new(region_cache.clone(), RouteConfig::default()))
//!     .service(transport);
//! let keys = vec!["x".into(), "a".into(), "n".into()];
//! let get = StoreRequest::from(RawBatchGetRequest { keys, ..Default::default() });
//! let resp = svc.oneshot(Request::new(get)).await?;
//! assert_eq!(resp.details.shards, 2); // one part per region
//! let StoreResponse::RawBatchGet(reply) = resp.inner else { unreachable!() };
//! let values: Vec<&[u8]> = reply.pairs.iter().map(|p| &p.value[..]).collect();
//! assert_eq!(values, [b"X", b"A", b"N"]); // merged back in request order
//! # Ok(())
//! # }
//! ```

pub mod kinds;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::Either;
use futures::{StreamExt, TryStreamExt};
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
use tower::util::Oneshot;
use tower::ServiceExt;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{Decision, Error};
use crate::locate::{LocateError, RegionLocator, RegionRoute};
use crate::request::{ExecDetails, KeyRange, OpState, Request, Response, Target};
use crate::retry::BoxFuture;

/// Sharding knobs.
#[derive(Debug, Clone, Copy)]
pub struct ShardConfig {
    /// Parts in flight at once per logical request (client-go batches run one goroutine
    /// per region; 16 keeps fan-out bounded).
    pub concurrency: usize,
    /// How many times a part may be re-split after stale routing.
    pub max_resplits: u32,
}

impl Default for ShardConfig {
    fn default() -> Self {
        ShardConfig {
            concurrency: 16,
            max_resplits: 16,
        }
    }
}

/// Layer adding [`Shard`].
#[derive(Debug)]
pub struct ShardLayer<L> {
    locator: Arc<L>,
    config: ShardConfig,
}

impl<L> Clone for ShardLayer<L> {
    fn clone(&self) -> Self {
        ShardLayer {
            locator: self.locator.clone(),
            config: self.config,
        }
    }
}

impl<L: RegionLocator> ShardLayer<L> {
    /// Shard with default knobs.
    pub fn new(locator: Arc<L>) -> Self {
        ShardLayer {
            locator,
            config: ShardConfig::default(),
        }
    }
    /// Shard with these knobs.
    pub fn with_config(locator: Arc<L>, config: ShardConfig) -> Self {
        ShardLayer { locator, config }
    }
}

impl<S, L> Layer<S> for ShardLayer<L> {
    type Service = Shard<S, L>;
    fn layer(&self, inner: S) -> Self::Service {
        Shard {
            inner,
            locator: self.locator.clone(),
            config: self.config,
        }
    }
}

/// The sharding service (see the [module docs](self)).
#[derive(Debug)]
pub struct Shard<S, L> {
    inner: S,
    locator: Arc<L>,
    config: ShardConfig,
}

impl<S: Clone, L> Clone for Shard<S, L> {
    fn clone(&self) -> Self {
        Shard {
            inner: self.inner.clone(),
            locator: self.locator.clone(),
            config: self.config,
        }
    }
}

struct Ctx<S, L> {
    inner: S,
    locator: Arc<L>,
    config: ShardConfig,
}

impl<S: Clone, L> Clone for Ctx<S, L> {
    fn clone(&self) -> Self {
        Ctx {
            inner: self.inner.clone(),
            locator: self.locator.clone(),
            config: self.config,
        }
    }
}

impl<S, L> Service<Request> for Shard<S, L>
where
    S: Service<Request, Response = Response, Error = Error> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    L: RegionLocator,
{
    type Response = Response;
    type Error = Error;
    /// Single-region targets pass through without boxing.
    type Future = Either<Oneshot<S, Request>, BoxFuture<Result<Response, Error>>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let range = match &req.target {
            Target::Keys => None,
            Target::Range(r) | Target::EachRegion(r) => Some(r.clone()),
            _ => return Either::Left(self.inner.clone().oneshot(req)),
        };
        let ctx = Ctx {
            inner: self.inner.clone(),
            locator: self.locator.clone(),
            config: self.config,
        };
        let fan_out = matches!(req.target, Target::EachRegion(_));
        Either::Right(match range {
            None => Box::pin(by_keys(ctx, req)),
            Some(range) if fan_out => Box::pin(each_region(ctx, req, range)),
            Some(range) => Box::pin(scan(ctx, req, range)),
        })
    }
}

/// Locate for splitting, backing off as [`Decision::for_locate`] says (client-go
/// `LocateKey` callers retry with `BoPDRPC` / `BoRegionMiss`), charged to the operation's
/// budget and deadline. This loop is the only retry of a failed PD lookup: the locator
/// asks PD once per call (client-go `loadRegion` backs off on the caller's Backoffer).
async fn locate<L: RegionLocator>(
    locator: &L,
    op: &OpState,
    key: &[u8],
    end: bool,
) -> Result<RegionRoute, Error> {
    loop {
        let r = op
            .within_deadline(async {
                if end {
                    locator.locate_end_key(key).await
                } else {
                    locator.locate_key(key).await
                }
            })
            .await?;
        let e = match r {
            Ok(r) => return Ok(r),
            Err(e) => e,
        };
        match Decision::for_locate(&e) {
            Decision::Backoff(kind) => {
                op.backoff(kind, &e).await?;
            }
            _ => return Err(e.into()),
        }
    }
}

/// The first 8 bytes of `key` as a big-endian integer, zero-padded. Ordering by it agrees
/// with ordering by key (a smaller prefix means a smaller key), so sorting by
/// `(prefix, key)` sorts by key while comparing whole keys only on equal prefixes.
fn key_prefix(key: &[u8]) -> u64 {
    let mut p = [0u8; 8];
    let n = key.len().min(8);
    p[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(p)
}

/// Group request positions `idx` by region (client-go `GroupKeysByRegion`); each group's
/// positions keep their order in `idx` (ascending: request order). Costs O(|idx| log |idx|): only the keys at `idx` are
/// looked at, so re-splitting a part does not walk the whole request.
async fn group_by_region<L: RegionLocator>(
    locator: &L,
    req: &Request,
    idx: &[usize],
) -> Result<Vec<(RegionRoute, Vec<usize>)>, Error> {
    let Some(n) = kinds::key_count(&req.inner) else {
        return Err(Error::InvalidArgument("request has no keys".into()));
    };
    // The keys at `idx` (one dispatch each), then (key prefix, index into `keys`) sorted:
    // 16-byte entries compared as integers, whole keys only on equal prefixes. Positions
    // past the request's items are skipped.
    let keys: Vec<&[u8]> = idx
        .iter()
        .map(|&i| kinds::key(&req.inner, i).unwrap_or_default())
        .collect();
    let mut order: Vec<(u64, u32)> = Vec::with_capacity(keys.len());
    order.extend(
        idx.iter()
            .zip(0u32..)
            .filter(|&(&i, _)| i < n)
            .map(|(_, j)| (key_prefix(keys[j as usize]), j)),
    );
    // Unstable: no scratch buffer; equal keys land in one group either way.
    order.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| keys[a.1 as usize].cmp(keys[b.1 as usize]))
    });
    // Consecutive keys of one region cost one lookup. Keys ascend, so a key is in the
    // last located region iff it is below that region's end.
    const SKIPPED: u32 = u32::MAX;
    let mut routes: Vec<(RegionRoute, usize)> = Vec::new();
    let mut end: Option<(u64, Bytes)> = None; // the last region's end, `None` = unbounded
    let mut group_of: Vec<u32> = vec![SKIPPED; keys.len()];
    for (prefix, j) in order {
        let key = keys[j as usize];
        let below_end = match &end {
            None => true,
            Some((end_prefix, end_key)) => {
                prefix < *end_prefix || (prefix == *end_prefix && key < &end_key[..])
            }
        };
        match routes.last_mut() {
            Some((_, count)) if below_end => *count += 1,
            _ => {
                let route = locate(locator, &req.op, key, false).await?;
                let e = &route.region.end_key;
                end = (!e.is_empty()).then(|| (key_prefix(e), e.clone()));
                routes.push((route, 1));
            }
        }
        group_of[j as usize] = (routes.len() - 1) as u32;
    }
    // Members in `idx` order (ascending for every caller) without sorting: one walk.
    let mut groups: Vec<(RegionRoute, Vec<usize>)> = routes
        .into_iter()
        .map(|(r, n)| (r, Vec::with_capacity(n)))
        .collect();
    for (&i, &g) in idx.iter().zip(&group_of) {
        if let Some((_, members)) = groups.get_mut(g as usize) {
            members.push(i);
        }
    }
    Ok(groups)
}

type Parts = Vec<(Vec<usize>, Response)>;

/// A batch request being split: the whole request (kept for re-splitting stale parts and
/// for ordering the merged reply) and its header, the request without its items.
struct Batch {
    req: Request,
    header: StoreRequest,
}

/// Run the part of `orig` holding positions `idx` pinned to `region`; re-split on stale
/// routing.
fn run_keyed_part<S, L>(
    ctx: Ctx<S, L>,
    orig: Arc<Batch>,
    region: RegionRoute,
    idx: Vec<usize>,
    depth: u32,
) -> BoxFuture<Result<Parts, Error>>
where
    S: Service<Request, Response = Response, Error = Error> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    L: RegionLocator,
{
    Box::pin(async move {
        let whole = &orig.req;
        let body = kinds::select(&whole.inner, &orig.header, &idx).ok_or_else(|| {
            Error::InvalidArgument(format!("{} cannot be split", whole.inner.kind()))
        })?;
        let part = whole.part(body, Target::Region(region.ver_id()));
        match ctx.inner.clone().oneshot(part).await {
            Ok(resp) => Ok(vec![(idx, resp)]),
            Err(e) if e.is_stale_route() && depth < ctx.config.max_resplits => {
                tracing::debug!(error = %e, depth, "re-splitting a stale part");
                let groups = group_by_region(&*ctx.locator, &orig.req, &idx).await?;
                run_groups(ctx, orig, groups, depth + 1).await
            }
            Err(e) => Err(e),
        }
    })
}

async fn run_groups<S, L>(
    ctx: Ctx<S, L>,
    orig: Arc<Batch>,
    groups: Vec<(RegionRoute, Vec<usize>)>,
    depth: u32,
) -> Result<Parts, Error>
where
    S: Service<Request, Response = Response, Error = Error> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    L: RegionLocator,
{
    let limit = ctx.config.concurrency;
    let parts = groups
        .into_iter()
        .map(|(region, idx)| run_keyed_part(ctx.clone(), orig.clone(), region, idx, depth));
    run_buffered(parts, limit).await
}

/// Runs `parts` at most `limit` at a time and concatenates their results in order.
async fn run_buffered<F>(parts: impl Iterator<Item = F>, limit: usize) -> Result<Parts, Error>
where
    F: Future<Output = Result<Parts, Error>>,
{
    let nested: Vec<Parts> = futures::stream::iter(parts)
        .buffered(limit.max(1))
        .try_collect()
        .await?;
    Ok(nested.into_iter().flatten().collect())
}

fn merge_parts(orig: &Request, parts: Parts) -> Result<Response, Error> {
    let kind = orig.inner.kind();
    if parts.is_empty() {
        return Ok(Response {
            inner: StoreResponse::default_for(kind),
            details: ExecDetails {
                backoff: orig.op.total_sleep(),
                ..Default::default()
            },
        });
    }
    let mut details = ExecDetails {
        shards: parts.len() as u32,
        ..Default::default()
    };
    let mut bodies = Vec::with_capacity(parts.len());
    for (idx, resp) in parts {
        details.attempts += resp.details.attempts;
        details.region = resp.details.region;
        details.store_id = resp.details.store_id;
        details.store_addr = resp.details.store_addr;
        bodies.push((idx, resp.inner));
    }
    details.backoff = orig.op.total_sleep();
    let keys = kinds::keys(&orig.inner).unwrap_or_default();
    let inner = kinds::merge(bodies, &keys)?;
    Ok(Response { inner, details })
}

async fn by_keys<S, L>(ctx: Ctx<S, L>, req: Request) -> Result<Response, Error>
where
    S: Service<Request, Response = Response, Error = Error> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    L: RegionLocator,
{
    let n = kinds::key_count(&req.inner).ok_or_else(|| {
        Error::InvalidArgument(format!("{} has no keys to shard by", req.inner.kind()))
    })?;
    let all: Vec<usize> = (0..n).collect();
    let groups = group_by_region(&*ctx.locator, &req, &all).await?;
    let mut req = req;
    let header = kinds::header(&mut req.inner)
        .ok_or_else(|| Error::InvalidArgument(format!("{} cannot be split", req.inner.kind())))?;
    let orig = Arc::new(Batch { req, header });
    let parts = run_groups(ctx, orig.clone(), groups, 0).await?;
    merge_parts(&orig.req, parts)
}

/// The bounds of the part of `[cur_start, cur_end)` (within `range`) that `region` holds:
/// shared clones of the range's or the region's key buffers, not copies.
fn part_bounds(
    range: &KeyRange,
    cur_start: &Bytes,
    cur_end: &Bytes,
    region: &RegionRoute,
) -> (Bytes, Bytes) {
    let (region_start, region_end) = (&region.region.start_key, &region.region.end_key);
    let start = if region_start > cur_start {
        region_start
    } else {
        cur_start
    };
    let start = if start < &range.start {
        &range.start
    } else {
        start
    };
    let end = match (cur_end.is_empty(), region_end.is_empty()) {
        (true, _) => region_end,
        (false, true) => cur_end,
        (false, false) => cur_end.min(region_end),
    };
    (start.clone(), end.clone())
}

async fn scan<S, L>(ctx: Ctx<S, L>, req: Request, range: KeyRange) -> Result<Response, Error>
where
    S: Service<Request, Response = Response, Error = Error> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    L: RegionLocator,
{
    let mut remaining = range.limit;
    let mut cur_start = range.start.clone();
    let mut cur_end = range.end.clone();
    let mut parts: Parts = Vec::new();
    let mut stale = 0u32;
    while remaining != Some(0) {
        let region = if range.reverse {
            locate(&*ctx.locator, &req.op, &cur_end, true).await?
        } else {
            locate(&*ctx.locator, &req.op, &cur_start, false).await?
        };
        // The region must cover the current bound, so each step moves past the part just
        // scanned; a locator (or PD) answering with another region would loop for ever.
        let covers = if range.reverse {
            cur_end.is_empty()
                || (region.start_key() < &cur_end[..]
                    && (region.end_key().is_empty() || &cur_end[..] <= region.end_key()))
        } else {
            region.contains(&cur_start)
        };
        if !covers {
            return Err(no_progress(
                &region,
                if range.reverse { &cur_end } else { &cur_start },
            ));
        }
        let (start, end) = part_bounds(&range, &cur_start, &cur_end, &region);
        let body = kinds::narrow(&req.inner, &start, &end, remaining).ok_or_else(|| {
            Error::InvalidArgument(format!("{} is not a range request", req.inner.kind()))
        })?;
        match ctx
            .inner
            .clone()
            .oneshot(req.part(body, Target::Region(region.ver_id())))
            .await
        {
            Ok(resp) => {
                stale = 0;
                let got = kinds::count(&resp.inner) as u32;
                remaining = remaining.map(|l| l.saturating_sub(got));
                parts.push((Vec::new(), resp));
            }
            Err(e) if e.is_stale_route() && stale < ctx.config.max_resplits => {
                stale += 1;
                continue;
            }
            Err(e) => return Err(e),
        }
        if range.reverse {
            if region.start_key().is_empty() || region.start_key() <= &range.start[..] {
                break;
            }
            cur_end = region.region.start_key.clone();
        } else {
            if region.end_key().is_empty()
                || (!range.end.is_empty() && region.end_key() >= &range.end[..])
            {
                break;
            }
            cur_start = region.region.end_key.clone();
        }
    }
    merge_parts(&req, parts)
}

/// A scan step whose located region does not cover the scan's current `bound`.
fn no_progress(region: &RegionRoute, bound: &[u8]) -> Error {
    Error::Locate(LocateError::Invalid(format!(
        "scan makes no progress: region {} [{:?}, {:?}) does not cover {bound:?}",
        region.region.id,
        region.start_key(),
        region.end_key()
    )))
}

/// The regions overlapping `[start, end)`, in key order.
async fn regions_in<L: RegionLocator>(
    locator: &L,
    op: &OpState,
    start: &Bytes,
    end: &[u8],
) -> Result<Vec<RegionRoute>, Error> {
    let mut out = Vec::new();
    let mut cur = start.clone();
    loop {
        let region = locate(locator, op, &cur, false).await?;
        let done = region.end_key().is_empty() || (!end.is_empty() && region.end_key() >= end);
        cur = region.region.end_key.clone();
        out.push(region);
        if done {
            return Ok(out);
        }
    }
}

fn run_range_parts<S, L>(
    ctx: Ctx<S, L>,
    orig: Arc<Request>,
    range: KeyRange,
    depth: u32,
) -> BoxFuture<Result<Parts, Error>>
where
    S: Service<Request, Response = Response, Error = Error> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    L: RegionLocator,
{
    Box::pin(async move {
        let regions = regions_in(&*ctx.locator, &orig.op, &range.start, &range.end).await?;
        let limit = ctx.config.concurrency;
        let futs = regions.into_iter().map(|region| {
            let ctx = ctx.clone();
            let orig = orig.clone();
            let range = range.clone();
            async move {
                let (start, end) = part_bounds(&range, &range.start, &range.end, &region);
                let body = kinds::narrow(&orig.inner, &start, &end, None).ok_or_else(|| {
                    Error::InvalidArgument(format!("{} is not a range request", orig.inner.kind()))
                })?;
                match ctx
                    .inner
                    .clone()
                    .oneshot(orig.part(body, Target::Region(region.ver_id())))
                    .await
                {
                    Ok(resp) => Ok(vec![(Vec::new(), resp)]),
                    Err(e) if e.is_stale_route() && depth < ctx.config.max_resplits => {
                        run_range_parts(ctx, orig, KeyRange::new(start, end), depth + 1).await
                    }
                    Err(e) => Err(e),
                }
            }
        });
        run_buffered(futs, limit).await
    })
}

async fn each_region<S, L>(ctx: Ctx<S, L>, req: Request, range: KeyRange) -> Result<Response, Error>
where
    S: Service<Request, Response = Response, Error = Error> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    L: RegionLocator,
{
    let orig = Arc::new(req);
    let parts = run_range_parts(ctx, orig.clone(), range, 0).await?;
    merge_parts(&orig, parts)
}
