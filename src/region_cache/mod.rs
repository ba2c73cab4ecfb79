//! The region and store cache (client-go `internal/locate/region_cache.go`,
//! `store_cache.go`).
//!
//! The layers route every request through a [`RegionLocator`]; [`RegionCache`] is the
//! production one. It keeps regions ordered by start key (a `BTreeMap` plus an id index
//! behind a sharded read-write lock: a reader locks only its own thread's shard), each
//! entry carrying its region (epoch, peers), believed leader, and expiry. Lookups take only
//! the read lock and write nothing shared on a hit: the leader, TTL and validity of an
//! entry are atomics changed in place, and the TTL is checked against a coarse clock
//! ([`clock`]). The write lock is taken to insert a region loaded from PD or learned from
//! an `EpochNotMatch` (after a staleness check under the read lock), and to drop one;
//! whatever it removes is freed after it is released.
//!
//! * **Miss**: the region is loaded from PD (`GetRegion`, or `GetPrevRegion` for end-key
//!   lookups, `GetRegionByID` by id); concurrent misses on the same key share one PD call
//!   (single-flight, on a task spawned in the PD client's [`TaskRegistry`], so closing the
//!   store core stops loads in flight).
//! * **One PD attempt per lookup**: a [`RegionLocator`] lookup is made on behalf of an
//!   operation, so it asks PD once ([`PdClient::single_attempt`]) and a failure comes back
//!   as [`LocateError::Pd`]; the operation's Backoffer retries it with `BoPDRPC`, charged
//!   to its budget and bounded by its deadline (client-go `loadRegion(bo, …)`). The
//!   standalone calls ([`RegionCache::load_ranges`], [`RegionCache::locate_range`]) keep
//!   the PD client's own bounded retry.
//! * **TTL**: an entry expires `ttl` (+ random jitter) after its last use (client-go
//!   `RegionCacheTTL` 600 s, jitter 60 s), then is reloaded.
//! * **Insertion** drops every overlapping entry, but never lets older information
//!   replace newer: an insert is refused if an overlapping or same-id entry has a newer
//!   epoch.
//! * **Feedback**: `NotLeader` moves the leader; `EpochNotMatch` inserts the regions TiKV
//!   returned (bounds decoded with the PD client's [`ApiCodec`](crate::pd::ApiCodec));
//!   other region errors invalidate; a send failure marks the store's address for
//!   re-resolution and the region for reload, and when the store led the region it bumps
//!   the store's failure epoch, so every other region cached with that store as leader
//!   reloads on its next lookup instead of failing against the store first (client-go
//!   `Store.epoch`, `markRegionNeedBeRefill`).
//! * **Batch loading**: [`RegionCache::load_ranges`] fills the cache for whole key ranges
//!   with one `BatchScanRegions` (client-go `BatchLoadRegionsWithKeyRanges`).

mod clock;
mod map;
mod single_flight;
mod store;

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use crossbeam_utils::sync::{ShardedLock, ShardedLockReadGuard, ShardedLockWriteGuard};
use rand::Rng;
use tikv_tower_layers::locate::{
    InvalidReason, LocateError, RegionLocator, RegionRoute, RegionVerId, StoreRoute,
};
use tikv_tower_proto::metapb;

pub use single_flight::SingleFlight;

use crate::pd::{PdClient, PdError, RegionInfo};
use crate::tasks::TaskRegistry;
use clock::TtlClock;
use map::{CachedRegion, RegionMap};
use store::{StoreEpochs, StoreMap};

/// Configuration of a [`RegionCache`].
#[derive(Debug, Clone)]
pub struct RegionCacheConfig {
    /// Idle time after which a region is reloaded (client-go `RegionCacheTTLSec`, 600 s).
    pub ttl: Duration,
    /// Random extra TTL so entries do not expire together (client-go
    /// `regionCacheTTLJitterSec`, 60 s).
    pub ttl_jitter: Duration,
}

impl Default for RegionCacheConfig {
    fn default() -> Self {
        RegionCacheConfig {
            ttl: Duration::from_secs(600),
            ttl_jitter: Duration::from_secs(60),
        }
    }
}

#[derive(Clone, Hash, PartialEq, Eq)]
enum LoadKey {
    Key(Vec<u8>),
    EndKey(Vec<u8>),
    Id(u64),
    Store(u64),
}

type LoadResult = Result<RegionRoute, LocateError>;

struct Inner {
    /// For standalone calls: the PD client's bounded retry.
    pd: PdClient,
    /// For lookups on behalf of an operation: one attempt (the operation retries).
    op_pd: PdClient,
    ttl_ms: u64,
    jitter_ms: u64,
    clock: Arc<TtlClock>,
    regions: ShardedLock<RegionMap>,
    stores: StoreMap,
    epochs: StoreEpochs,
    loads: SingleFlight<LoadKey, LoadResult>,
    store_loads: SingleFlight<LoadKey, Result<StoreRoute, LocateError>>,
}

/// The region and store cache (client-go `RegionCache`). Cheap to clone.
#[derive(Clone)]
pub struct RegionCache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RegionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegionCache")
            .field("regions", &self.inner.read_map().len())
            .finish_non_exhaustive()
    }
}

impl RegionCache {
    /// A cache loading from `pd` (whose codec decodes region bounds); its loads run in
    /// `pd`'s task registry.
    pub fn new(pd: PdClient, config: RegionCacheConfig) -> Self {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let tasks = pd.tasks().clone();
        RegionCache {
            inner: Arc::new(Inner {
                op_pd: pd.single_attempt(),
                pd,
                ttl_ms: ms(config.ttl),
                jitter_ms: ms(config.ttl_jitter),
                clock: TtlClock::start(),
                regions: ShardedLock::new(RegionMap::default()),
                stores: StoreMap::default(),
                epochs: StoreEpochs::default(),
                loads: SingleFlight::new(tasks.clone()),
                store_loads: SingleFlight::new(tasks),
            }),
        }
    }

    /// The PD client (standalone calls: its own bounded retry).
    pub fn pd(&self) -> &PdClient {
        &self.inner.pd
    }

    /// The latest known buckets of cached region `region_id` (client-go
    /// `Region.GetBuckets`): from PD with the region, raised by `BucketVersionNotMatch`
    /// replies. `None` when the region is not cached or has no buckets.
    pub fn buckets(&self, region_id: u64) -> Option<Arc<metapb::Buckets>> {
        self.inner.read_map().by_id(region_id)?.buckets()
    }

    /// The registry region and store loads are spawned in.
    pub fn tasks(&self) -> &TaskRegistry {
        self.inner.loads.tasks()
    }

    /// Number of region loads in flight.
    pub fn loads_in_flight(&self) -> usize {
        self.inner.loads.len()
    }

    /// Number of cached regions.
    pub fn region_count(&self) -> usize {
        self.inner.read_map().len()
    }

    /// The cached, valid region containing `key`, without loading.
    pub fn cached_region(&self, key: &[u8]) -> Option<RegionRoute> {
        self.inner.lookup(key, false)
    }

    /// Loads every region overlapping the request-space ranges (end empty = unbounded)
    /// with one `BatchScanRegions` and caches them; returns them in key order (client-go
    /// `BatchLoadRegionsWithKeyRanges`). `limit` 0 = no limit.
    pub async fn load_ranges(
        &self,
        ranges: &[(Vec<u8>, Vec<u8>)],
        limit: usize,
    ) -> Result<Vec<RegionRoute>, LocateError> {
        let infos = self.inner.pd.batch_scan_regions(ranges, limit).await?;
        Ok(infos
            .into_iter()
            .filter_map(|info| self.inner.insert_info(info).ok())
            .collect())
    }

    /// The regions covering `[start, end)` in key order, from the cache where it is
    /// valid and loaded from PD in one batch otherwise (client-go
    /// `LoadRegionsInKeyRange`). `end` empty = unbounded.
    pub async fn locate_range(
        &self,
        start: &[u8],
        end: &[u8],
    ) -> Result<Vec<RegionRoute>, LocateError> {
        let mut out = Vec::new();
        let mut key = start.to_vec();
        loop {
            let route = match self.inner.lookup(&key, false) {
                Some(r) => r,
                None => {
                    // Batch-load the rest of the range, then continue from the cache.
                    let loaded = self
                        .load_ranges(&[(key.clone(), end.to_vec())], 128)
                        .await?;
                    match loaded.into_iter().find(|r| r.contains(&key)) {
                        Some(r) => r,
                        None => self.inner.load_key(&self.inner.pd, &key).await?,
                    }
                }
            };
            let region_end = route.end_key().to_vec();
            out.push(route);
            if region_end.is_empty() || (!end.is_empty() && region_end.as_slice() >= end) {
                return Ok(out);
            }
            key = region_end;
        }
    }

    /// Drops every cached region (stores stay cached). The map is swapped for an empty
    /// one under the write lock and freed after the lock is released (off-thread when it
    /// is large), so lookups never wait for the free.
    pub fn clear(&self) {
        let old = std::mem::take(&mut *self.inner.write_map());
        free_outside_lock(old);
    }
}

/// Maps at least this large are freed on a blocking thread rather than by the caller.
const FREE_OFF_THREAD: usize = 1 << 16;

/// Frees a map taken out of the cache: by the caller when small, else on a blocking thread
/// of the current runtime (a million regions take a second to free).
fn free_outside_lock(old: RegionMap) {
    if old.len() >= FREE_OFF_THREAD {
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn_blocking(move || drop(old));
            return;
        }
    }
    drop(old);
}

impl Inner {
    /// The map for reading. The lock is sharded per thread: concurrent readers write only
    /// their own shard's counter.
    fn read_map(&self) -> ShardedLockReadGuard<'_, RegionMap> {
        self.regions.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The map for writing (every shard locked). Hold it for O(log n) work per region
    /// only; free what was removed after releasing it.
    fn write_map(&self) -> ShardedLockWriteGuard<'_, RegionMap> {
        self.regions.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// client-go `nextTTL`: now + ttl + jitter.
    fn next_ttl(&self, now_ms: u64) -> u64 {
        let j = if self.jitter_ms == 0 {
            0
        } else {
            rand::rng().random_range(0..self.jitter_ms)
        };
        now_ms.saturating_add(self.ttl_ms).saturating_add(j)
    }

    fn lookup(&self, key: &[u8], by_end: bool) -> Option<RegionRoute> {
        let map = self.read_map();
        let r = if by_end {
            map.find_by_end(key)
        } else {
            map.find(key)
        }?;
        self.fresh_route(r)
    }

    /// The route of a cached entry that is still valid; an entry whose leader's store
    /// failed since is invalidated instead (client-go `getRPCContext`: "invalidate current
    /// region, because others failed on same store"). A hit on a fresh entry reads only
    /// the entry's atomics and the coarse clock (see [`clock`]).
    fn fresh_route(&self, r: &CachedRegion) -> Option<RegionRoute> {
        let seen = r.expires_at_ms();
        let verdict = self
            .clock
            .check(seen, self.ttl_ms, |now| self.next_ttl(now));
        if !r.apply(seen, verdict) {
            return None;
        }
        let route = r.route();
        if route.is_none() {
            r.invalidate();
        }
        route
    }

    fn lookup_id(&self, id: u64) -> Option<RegionRoute> {
        let map = self.read_map();
        let r = map.by_id(id)?;
        self.fresh_route(r)
    }

    /// Inserts `r` unless it is stale. Staleness is checked under the read lock first, so
    /// refusing stale information never takes the write lock; the entries it replaces are
    /// freed after the write lock is released.
    fn insert(&self, r: CachedRegion) -> bool {
        if self.read_map().is_stale(&r) {
            return false;
        }
        let result = self.write_map().insert(r);
        match result {
            Ok(removed) => {
                drop(removed);
                true
            }
            Err(_refused) => false,
        }
    }

    fn insert_info(&self, info: RegionInfo) -> Result<RegionRoute, LocateError> {
        if info.region.peers.is_empty() {
            return Err(LocateError::Invalid(format!(
                "region {} has no peer",
                info.region.id
            )));
        }
        let cached = CachedRegion::new(
            info.region,
            info.leader,
            self.next_ttl(self.clock.now_ms()),
            &self.epochs,
        );
        if let Some(b) = info.buckets {
            cached.update_buckets(b);
        }
        // What PD just said, whatever failures were reported meanwhile.
        let route = RegionRoute {
            region: cached.region.clone(),
            leader: cached.leader(),
        };
        if !self.insert(cached) {
            tracing::debug!(region = route.region.id, "stale region from PD not cached");
        }
        Ok(route)
    }

    /// Why a load returned nothing: the registry was closed, or the task failed.
    fn flight_failed(&self, what: &str) -> LocateError {
        if self.loads.tasks().is_closed() {
            LocateError::Closed
        } else {
            LocateError::Pd(format!("{what} load task failed"))
        }
    }

    async fn load_key(self: &Arc<Self>, pd: &PdClient, key: &[u8]) -> LoadResult {
        let pd = pd.clone();
        let k = key.to_vec();
        let this = self.clone();
        self.loads
            .run(
                "region-load",
                LoadKey::Key(key.to_vec()),
                move || async move {
                    let info = pd
                        .get_region(&k)
                        .await?
                        .ok_or_else(|| LocateError::RegionNotFound(format!("key {k:?}")))?;
                    if !info.region_contains(&k) {
                        return Err(LocateError::RegionNotFound(format!(
                            "PD region {} does not contain key {k:?}",
                            info.region.id
                        )));
                    }
                    this.insert_info(info)
                },
            )
            .await
            .unwrap_or_else(|| Err(self.flight_failed("region")))
    }

    /// client-go `loadRegion(isEndKey = true)`: GetRegion, then GetPrevRegion when the key
    /// is the region's start.
    async fn load_end_key(self: &Arc<Self>, key: &[u8]) -> LoadResult {
        let pd = self.op_pd.clone();
        let k = key.to_vec();
        let this = self.clone();
        self.loads
            .run(
                "region-load",
                LoadKey::EndKey(key.to_vec()),
                move || async move {
                    let info = if k.is_empty() {
                        last_region(&pd).await?
                    } else {
                        let found = match pd.get_region(&k).await {
                            Ok(r) => r,
                            Err(PdError::Codec(crate::pd::CodecError::OutOfKeyspace {
                                ..
                            })) => None,
                            Err(e) => return Err(e.into()),
                        };
                        match found {
                            Some(r) if r.region.start_key.as_ref() < k.as_slice() => Some(r),
                            _ => pd.get_prev_region(&k).await?,
                        }
                    };
                    let info =
                        info.ok_or_else(|| LocateError::RegionNotFound(format!("end key {k:?}")))?;
                    this.insert_info(info)
                },
            )
            .await
            .unwrap_or_else(|| Err(self.flight_failed("region")))
    }

    async fn load_id(self: &Arc<Self>, id: u64) -> LoadResult {
        let pd = self.op_pd.clone();
        let this = self.clone();
        self.loads
            .run("region-load", LoadKey::Id(id), move || async move {
                let info = pd
                    .get_region_by_id(id)
                    .await?
                    .ok_or_else(|| LocateError::RegionNotFound(format!("region id {id}")))?;
                this.insert_info(info)
            })
            .await
            .unwrap_or_else(|| Err(self.flight_failed("region")))
    }

    async fn load_store(self: &Arc<Self>, id: u64) -> Result<StoreRoute, LocateError> {
        let pd = self.op_pd.clone();
        let this = self.clone();
        self.store_loads
            .run("store-load", LoadKey::Store(id), move || async move {
                match pd.get_store(id).await? {
                    Some(s) => Ok(this.stores.put(&s)),
                    None => {
                        this.stores.remove(id);
                        Err(LocateError::StoreNotFound(id))
                    }
                }
            })
            .await
            .unwrap_or_else(|| Err(self.flight_failed("store")))
    }
}

impl RegionInfo {
    fn region_contains(&self, key: &[u8]) -> bool {
        key >= self.region.start_key.as_ref()
            && (self.region.end_key.is_empty() || key < self.region.end_key.as_ref())
    }
}

/// The region with an unbounded end (or the keyspace's last region under API V2).
async fn last_region(pd: &PdClient) -> Result<Option<RegionInfo>, LocateError> {
    if let Some((_, ks_end)) = pd.codec().keyspace_range() {
        return Ok(pd.get_prev_region(ks_end).await?);
    }
    // Start beyond any realistic key, then walk forward to the unbounded region.
    let mut key = Bytes::from(vec![0xFF; 64]);
    for _ in 0..64 {
        let Some(r) = pd.get_region(&key).await? else {
            return Ok(None);
        };
        if r.region.end_key.is_empty() {
            return Ok(Some(r));
        }
        key = r.region.end_key.clone();
    }
    Err(LocateError::RegionNotFound(
        "could not reach the last region".into(),
    ))
}

impl RegionLocator for RegionCache {
    async fn locate_key(&self, key: &[u8]) -> Result<RegionRoute, LocateError> {
        if let Some(r) = self.inner.lookup(key, false) {
            return Ok(r);
        }
        self.inner.load_key(&self.inner.op_pd, key).await
    }

    async fn locate_end_key(&self, key: &[u8]) -> Result<RegionRoute, LocateError> {
        // Under API V2 "unbounded" is the keyspace end, which regions' ends are clamped to.
        let key: Vec<u8> = match (key.is_empty(), self.inner.pd.codec().keyspace_range()) {
            (true, Some((_, ks_end))) => ks_end.to_vec(),
            _ => key.to_vec(),
        };
        if let Some(r) = self.inner.lookup(&key, true) {
            return Ok(r);
        }
        self.inner.load_end_key(&key).await
    }

    async fn locate_region_id(&self, id: u64) -> Result<RegionRoute, LocateError> {
        if let Some(r) = self.inner.lookup_id(id) {
            return Ok(r);
        }
        self.inner.load_id(id).await
    }

    async fn store(&self, store_id: u64) -> Result<StoreRoute, LocateError> {
        if let Some(s) = self.inner.stores.get(store_id) {
            return Ok(s);
        }
        match self.inner.load_store(store_id).await {
            Ok(s) => Ok(s),
            // PD unreachable: keep using the last known address.
            Err(LocateError::Pd(e)) => self
                .inner
                .stores
                .get_stale(store_id)
                .ok_or(LocateError::Pd(e)),
            Err(e) => Err(e),
        }
    }

    /// client-go `UpdateLeader`: a leader outside the region's peers means the cached
    /// peers are stale, so the region is dropped.
    fn update_leader(&self, region: RegionVerId, leader: Option<metapb::Peer>) {
        let map = self.inner.read_map();
        let Some(r) = map.by_id(region.id).filter(|r| r.ver() == region) else {
            return;
        };
        if !r.set_leader(leader) {
            r.invalidate();
        }
    }

    /// client-go `OnRegionEpochNotMatch`. The regions are decoded with the PD client's
    /// codec here (TiKV reports them with encoded bounds, and only the cache knows the
    /// codec); each keeps the leader on the store that led the stale region.
    fn on_epoch_not_match(&self, region: RegionVerId, current_regions: &[metapb::Region]) -> bool {
        // A reply older than our request tells nothing (client-go: "region epoch is ahead
        // of tikv").
        let behind = current_regions.iter().any(|m| {
            let v = RegionVerId::of(m);
            m.id == region.id && (v.conf_ver < region.conf_ver || v.ver < region.ver)
        });
        let leader_store = {
            let map = self.inner.read_map();
            map.by_id(region.id)
                .filter(|r| r.ver() == region)
                .and_then(|r| r.leader())
                .map(|p| p.store_id)
        };
        let removed = self.inner.write_map().remove(&region);
        drop(removed);
        if behind || current_regions.is_empty() {
            return false;
        }
        let codec = self.inner.pd.codec();
        let expires = self.inner.next_ttl(self.inner.clock.now_ms());
        for meta in current_regions {
            let decoded = match codec.decode_region(meta.clone()) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(region = meta.id, error = %e, "undecodable region in EpochNotMatch");
                    continue;
                }
            };
            if decoded.peers.is_empty() {
                continue;
            }
            let leader =
                leader_store.and_then(|s| decoded.peers.iter().find(|p| p.store_id == s).cloned());
            self.inner.insert(CachedRegion::new(
                decoded,
                leader,
                expires,
                &self.inner.epochs,
            ));
        }
        true
    }

    /// client-go `OnBucketVersionNotMatch`: the cached region (at that epoch) records the
    /// newer buckets; the keys TiKV sent are decoded with the PD client's codec.
    fn on_bucket_version_not_match(&self, region: RegionVerId, version: u64, keys: &[Bytes]) {
        let keys = match self.inner.pd.codec().decode_bucket_keys(keys) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(region = region.id, error = %e, "undecodable bucket keys");
                return;
            }
        };
        let map = self.inner.read_map();
        if let Some(r) = map.by_id(region.id).filter(|r| r.ver() == region) {
            r.update_buckets(metapb::Buckets {
                region_id: region.id,
                version,
                keys,
                ..Default::default()
            });
        }
    }

    /// client-go `InvalidateCachedRegionWithReason`; on `StoreNotMatch` the leader's
    /// store address is also re-resolved (client-go `onStoreNotMatch` + `markNeedCheck`).
    fn invalidate_region(&self, region: RegionVerId, reason: InvalidReason) {
        tracing::debug!(region = region.id, ?reason, "invalidate cached region");
        let removed = self.inner.write_map().remove(&region);
        if reason == InvalidReason::StoreNotMatch {
            if let Some(leader) = removed.and_then(|r| r.leader()) {
                self.inner.stores.mark_needs_resolve(leader.store_id);
            }
        }
    }

    /// client-go `OnSendFail`: the store's address is re-resolved on next use and the
    /// region reloaded.
    fn on_send_fail(&self, region: RegionVerId, store_id: u64) {
        self.inner.stores.mark_needs_resolve(store_id);
        let map = self.inner.read_map();
        if let Some(r) = map.by_id(region.id).filter(|r| r.ver() == region) {
            r.store_failed(store_id);
            r.invalidate();
        }
    }
}

#[cfg(test)]
mod tests;
