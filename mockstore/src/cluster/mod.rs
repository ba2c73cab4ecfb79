//! The mock cluster: PD-side metadata (regions, stores, keyspaces, ids) and
//! the handles to every store.
//!
//! [`MockCluster`] is a cheap `Clone` handle (an `Arc` inside). It owns:
//!
//! * the id allocator (one counter for store, peer and region ids, as PD and
//!   mocktikv have);
//! * the region table: boundaries in boundary form (see [`BoundaryEncoding`]),
//!   epochs, peers (voters and learners), the leader and its term;
//! * the store table: address, state, labels, stopped flag;
//! * the keyspaces (API V2), the clock and the fault injector.
//!
//! Topology changes follow TiKV (see [`state`](self) docs on splits and
//! merges) and take effect at once for both PD and the stores.

pub mod buckets;
mod builder;
mod config;
mod error;
mod meta;
mod pb;
mod state;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

pub use builder::MockClusterBuilder;
pub use config::{
    ApiVersion, BoundaryEncoding, ClusterConfig, SplitThresholds, DEFAULT_CLUSTER_ID,
    DEFAULT_RAFT_ENTRY_MAX_SIZE,
};
pub use error::ClusterError;
pub use meta::{inproc_address, Keyspace, Peer, PeerRole, Region, RegionEpoch, Store, StoreState};
pub(crate) use state::ClusterState;

use crate::clock::Clock;
use crate::fault::FaultInjector;
use crate::mvcc::TxnEngine;
use crate::raw::RawStore;
use crate::recorder::Recorder;
use crate::store::{MockStore, StoreRuntime};

/// An in-memory TiKV + PD cluster (cheap to clone; clones share state).
#[derive(Clone)]
pub struct MockCluster {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for MockCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockCluster")
            .field("cluster_id", &self.inner.config.cluster_id)
            .field("api_version", &self.inner.config.api_version)
            .finish_non_exhaustive()
    }
}

/// Shared state behind a [`MockCluster`].
pub(crate) struct Inner {
    pub(crate) config: ClusterConfig,
    ids: AtomicU64,
    pub(crate) state: RwLock<ClusterState>,
    keyspaces: RwLock<Vec<Keyspace>>,
    pub(crate) clock: Clock,
    faults: FaultInjector,
    raw: RawStore,
    engine: TxnEngine,
    recorder: Recorder,
    runtimes: RwLock<HashMap<u64, Arc<StoreRuntime>>>,
    /// PD's lagging copy of the region table, when lag is on (spec §4.5).
    pd_view: RwLock<Option<ClusterState>>,
    /// Safe ts pinned by tests (see [`MockCluster::set_safe_ts`]).
    pub(crate) safe_ts: Mutex<HashMap<u64, u64>>,
    pub(crate) split_check: Mutex<crate::store::split_check::SplitCheckState>,
    /// PD-side state (TSO, GC, served URL): see [`crate::pd`].
    pub(crate) pd: crate::pd::PdState,
    /// Bucket reports per region since its last range change (buckets mode).
    pub(crate) bucket_refreshes: Mutex<HashMap<u64, u64>>,
}

impl MockCluster {
    /// A builder with the defaults (one store, API V1, one region).
    pub fn builder() -> MockClusterBuilder {
        MockClusterBuilder::default()
    }

    fn from_parts(
        config: ClusterConfig,
        state: ClusterState,
        keyspaces: Vec<Keyspace>,
        last_id: u64,
        clock: Clock,
    ) -> Self {
        let seed = config.seed;
        let start_ms = clock.now_millis();
        MockCluster {
            inner: Arc::new(Inner {
                config,
                ids: AtomicU64::new(last_id),
                state: RwLock::new(state),
                keyspaces: RwLock::new(keyspaces),
                clock,
                faults: FaultInjector::new(seed),
                raw: RawStore::new(),
                recorder: Recorder::default(),
                engine: TxnEngine::default(),
                runtimes: RwLock::new(HashMap::new()),
                pd_view: RwLock::new(None),
                split_check: Mutex::new(Default::default()),
                safe_ts: Mutex::new(HashMap::new()),
                pd: crate::pd::PdState::default(),
                bucket_refreshes: Mutex::new(HashMap::new()),
            }),
        }
        .started_at(start_ms)
    }

    fn started_at(self, start_ms: u64) -> Self {
        self.inner.pd.merge.lock().start_ms = start_ms;
        self
    }

    // ---- configuration ----------------------------------------------------

    /// The cluster id (PD response headers, `Context.cluster_id` check).
    pub fn cluster_id(&self) -> u64 {
        self.inner.config.cluster_id
    }

    /// The configuration the cluster was built with.
    pub fn config(&self) -> &ClusterConfig {
        &self.inner.config
    }

    /// The storage API version.
    pub fn api_version(&self) -> ApiVersion {
        self.inner.config.api_version
    }

    /// The form plain split keys and the key helpers convert to (see
    /// [`BoundaryEncoding`]; requests use [`ApiVersion::key_form`]).
    pub fn boundary_encoding(&self) -> BoundaryEncoding {
        self.inner.config.boundary_encoding
    }

    /// The cluster clock (TSO physical time, raw TTL).
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    // ---- ids --------------------------------------------------------------

    /// Allocates a fresh id (PD `AllocID`).
    pub fn alloc_id(&self) -> u64 {
        self.inner
            .ids
            .fetch_add(1, Ordering::SeqCst)
            .saturating_add(1)
    }

    /// Allocates `n` fresh ids.
    pub fn alloc_ids(&self, n: usize) -> Vec<u64> {
        (0..n).map(|_| self.alloc_id()).collect()
    }

    // ---- regions ----------------------------------------------------------
    //
    // The lookups below answer what PD knows: the live table, or PD's
    // lagging copy while `set_pd_lag(true)` is on. Stores always check
    // requests against the live table.

    fn with_pd_view<R>(&self, f: impl FnOnce(&ClusterState) -> R) -> R {
        if let Some(view) = &*self.inner.pd_view.read() {
            return f(view);
        }
        f(&self.inner.state.read())
    }

    /// Turns PD lag on or off (spec §4.5). While on, PD (and the region
    /// lookups of this handle) keep answering with the region table as it
    /// was when lag was turned on or last [`sync_pd`](Self::sync_pd)ed, as
    /// real PD does until heartbeats report splits, merges and leader
    /// changes; the stores answer `EpochNotMatch` / `NotLeader` meanwhile.
    pub fn set_pd_lag(&self, on: bool) {
        let mut view = self.inner.pd_view.write();
        *view = on.then(|| self.inner.state.read().clone());
    }

    /// Brings PD's lagging view up to date (a heartbeat round).
    pub fn sync_pd(&self) {
        let mut view = self.inner.pd_view.write();
        if view.is_some() {
            *view = Some(self.inner.state.read().clone());
        }
    }

    /// The live region `id`, as the stores see it (ignores PD lag).
    pub fn live_region(&self, id: u64) -> Option<Region> {
        self.inner.state.read().region(id).cloned()
    }

    /// Marks the peer of `region_id` on `store_id` down (or up again); PD
    /// reports it in `down_peers`.
    pub fn set_peer_down(
        &self,
        region_id: u64,
        store_id: u64,
        down: bool,
    ) -> Result<Region, ClusterError> {
        self.inner
            .state
            .write()
            .set_peer_down(region_id, store_id, down)
    }

    /// Region by id.
    pub fn region(&self, id: u64) -> Option<Region> {
        self.with_pd_view(|s| s.region(id).cloned())
    }

    /// The region containing `key`, given in boundary form (what PD's
    /// `GetRegion` receives).
    pub fn region_by_key(&self, key: &[u8]) -> Option<Region> {
        self.with_pd_view(|s| s.region_by_key(key).cloned())
    }

    /// The region containing a request key (raw; converted with the
    /// cluster's configured form, see [`BoundaryEncoding`]).
    pub fn region_for_user_key(&self, key: &[u8]) -> Option<Region> {
        self.region_by_key(&self.boundary_encoding().to_boundary(key))
    }

    /// The region a raw (`is_raw`) or transactional request for `key` goes
    /// to: the key in the request's form ([`ApiVersion::key_form`]), as a
    /// client looks it up in PD.
    pub fn region_for_request_key(&self, key: &[u8], is_raw: bool) -> Option<Region> {
        self.region_by_key(&self.api_version().key_form(is_raw).to_boundary(key))
    }

    /// The region before the one containing `key` (boundary form; PD
    /// `GetPrevRegion`).
    pub fn prev_region(&self, key: &[u8]) -> Option<Region> {
        self.with_pd_view(|s| s.prev_region(key).cloned())
    }

    /// Regions overlapping `[start, end)` (boundary form, empty `end` = +∞),
    /// in key order, at most `limit` (0 = all) (PD `ScanRegions`).
    pub fn scan_regions(&self, start: &[u8], end: &[u8], limit: usize) -> Vec<Region> {
        self.with_pd_view(|s| s.scan(start, end, limit))
    }

    /// Every region in key order.
    pub fn regions(&self) -> Vec<Region> {
        self.with_pd_view(|s| s.all_regions())
    }

    /// Number of regions.
    pub fn region_count(&self) -> usize {
        self.with_pd_view(|s| s.region_count())
    }

    /// Splits region `region_id` at `keys` given in boundary form
    /// (right-derived; see the module docs). Returns the resulting regions
    /// left to right.
    pub fn split_region(
        &self,
        region_id: u64,
        keys: Vec<Vec<u8>>,
    ) -> Result<Vec<Region>, ClusterError> {
        let regions = {
            let mut state = self.inner.state.write();
            state.split(region_id, keys, &mut || self.alloc_id())?
        };
        self.note_split(&regions);
        Ok(regions)
    }

    /// Splits the cluster at request keys (raw form, converted to boundary
    /// form), each in whichever region holds it; keys that already are a
    /// boundary are skipped. Returns the regions produced, in key order.
    pub fn split_keys<I, K>(&self, keys: I) -> Result<Vec<Region>, ClusterError>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<[u8]>,
    {
        let enc = self.boundary_encoding();
        let keys: Vec<Vec<u8>> = keys
            .into_iter()
            .filter(|k| !k.as_ref().is_empty())
            .map(|k| enc.to_boundary(k.as_ref()))
            .collect();
        let mut state = self.inner.state.write();
        let groups = group_split_keys(keys, |k| state.region_by_key(k));
        let mut out = Vec::new();
        for (region_id, ks) in groups {
            out.extend(state.split(region_id, ks, &mut || self.alloc_id())?);
        }
        drop(state);
        self.note_split(&out);
        Ok(out)
    }

    /// Merges `source` into the adjacent `target` (TiKV: PrepareMerge bumps
    /// the source's version, the target widens with `version = max(source,
    /// target) + 1`, the source disappears).
    pub fn merge(&self, source: u64, target: u64) -> Result<Region, ClusterError> {
        self.inner.state.write().merge(source, target)
    }

    /// Moves the leader of `region_id` to its voter on `store_id` (epoch
    /// unchanged; the old leader answers `NotLeader` with the new one).
    /// The new leader must sync its `max_ts` before it serves async-commit
    /// or 1PC prewrites (one `MaxTimestampNotSynced`, then served).
    pub fn transfer_leader(&self, region_id: u64, store_id: u64) -> Result<Region, ClusterError> {
        let before = self
            .inner
            .state
            .read()
            .region(region_id)
            .and_then(|r| r.leader);
        let region = self
            .inner
            .state
            .write()
            .transfer_leader(region_id, store_id)?;
        if region.leader != before {
            self.store_runtime(store_id)
                .max_ts_sync
                .mark_region(region_id);
        }
        Ok(region)
    }

    /// Leaves `region_id` without a leader (`NotLeader` with no leader).
    pub fn give_up_leader(&self, region_id: u64) -> Result<Region, ClusterError> {
        self.inner.state.write().give_up_leader(region_id)
    }

    /// Adds a voter on `store_id` (`conf_ver + 1`); returns the region.
    pub fn add_peer(&self, region_id: u64, store_id: u64) -> Result<Region, ClusterError> {
        let peer_id = self.alloc_id();
        self.inner
            .state
            .write()
            .add_peer(region_id, store_id, peer_id, PeerRole::Voter)
    }

    /// Adds a learner on `store_id` (`conf_ver + 1`); returns the region.
    pub fn add_learner(&self, region_id: u64, store_id: u64) -> Result<Region, ClusterError> {
        let peer_id = self.alloc_id();
        self.inner
            .state
            .write()
            .add_peer(region_id, store_id, peer_id, PeerRole::Learner)
    }

    /// Removes the peer on `store_id` (`conf_ver + 1`; removing the leader
    /// leaves the region leaderless).
    pub fn remove_peer(&self, region_id: u64, store_id: u64) -> Result<Region, ClusterError> {
        self.inner.state.write().remove_peer(region_id, store_id)
    }

    // ---- stores -----------------------------------------------------------

    /// Every store (including tombstones), by id.
    pub fn stores(&self) -> Vec<Store> {
        self.inner.state.read().stores.values().cloned().collect()
    }

    /// Store metadata by id.
    pub fn store_meta(&self, id: u64) -> Option<Store> {
        self.inner.state.read().store(id).cloned()
    }

    /// Adds a new store with `labels` and returns its id (it holds no peers).
    pub fn add_store(&self, labels: Vec<(String, String)>) -> u64 {
        let id = self.alloc_id();
        let now = i64::try_from(self.inner.clock.now_secs()).unwrap_or(i64::MAX);
        self.inner.state.write().stores.insert(
            id,
            Store {
                id,
                address: inproc_address(id),
                state: StoreState::Up,
                labels,
                version: "9.0.0".into(),
                status_address: String::new(),
                stopped: false,
                start_timestamp: now,
            },
        );
        id
    }

    /// Stops a store: its RPCs fail with `UNAVAILABLE`; PD still reports it
    /// `Up` (as real PD does until it notices). Data is kept.
    pub fn stop_store(&self, id: u64) -> Result<(), ClusterError> {
        self.inner.state.write().store_mut(id)?.stopped = true;
        Ok(())
    }

    /// Restarts a stopped store (its data is kept).
    pub fn start_store(&self, id: u64) -> Result<(), ClusterError> {
        let now = i64::try_from(self.inner.clock.now_secs()).unwrap_or(i64::MAX);
        {
            let mut state = self.inner.state.write();
            let store = state.store_mut(id)?;
            store.stopped = false;
            store.start_timestamp = now;
        }
        self.on_store_restart(id);
        Ok(())
    }

    /// Sets a store's PD-visible state (`Tombstone` hides it from PD).
    pub fn set_store_state(&self, id: u64, s: StoreState) -> Result<(), ClusterError> {
        self.inner.state.write().store_mut(id)?.state = s;
        Ok(())
    }

    /// Replaces a store's labels.
    pub fn set_store_labels(
        &self,
        id: u64,
        labels: Vec<(String, String)>,
    ) -> Result<(), ClusterError> {
        self.inner.state.write().store_mut(id)?.labels = labels;
        Ok(())
    }

    /// Sets the address a store is reached at (`serve_grpc` registers
    /// `127.0.0.1:<port>`; tests use it as mocktikv `UpdateStoreAddr`). The
    /// in-process address `inproc://store-<id>` keeps working.
    pub fn set_store_address(
        &self,
        id: u64,
        address: impl Into<String>,
    ) -> Result<(), ClusterError> {
        self.inner.state.write().store_mut(id)?.address = address.into();
        Ok(())
    }

    /// Sets a store's status (HTTP) address.
    pub fn set_store_status_address(
        &self,
        id: u64,
        address: impl Into<String>,
    ) -> Result<(), ClusterError> {
        self.inner.state.write().store_mut(id)?.status_address = address.into();
        Ok(())
    }

    /// The id of the store reached at `addr` (its current address or its
    /// in-process address), if any.
    pub fn store_id_by_addr(&self, addr: &str) -> Option<u64> {
        let state = self.inner.state.read();
        state
            .stores
            .values()
            .find(|s| s.address == addr || inproc_address(s.id) == addr)
            .map(|s| s.id)
    }

    /// A restarted store forgets its `max_ts` and memory locks (TiKV: the
    /// concurrency manager starts over and `max_ts` is re-synced from PD).
    fn on_store_restart(&self, id: u64) {
        self.inner
            .runtimes
            .write()
            .insert(id, Arc::new(StoreRuntime::restarted()));
    }

    /// The handle of store `id` (whether running or stopped), if it exists
    /// and is not a tombstone.
    pub fn store(&self, id: u64) -> Option<MockStore> {
        let meta = self.store_meta(id)?;
        (meta.state != StoreState::Tombstone).then(|| MockStore::new(self.clone(), id))
    }

    /// The store reached at `addr` (`inproc://store-<id>` or the address it
    /// was registered at), if any.
    pub fn store_by_addr(&self, addr: &str) -> Option<MockStore> {
        self.store(self.store_id_by_addr(addr)?)
    }

    /// The runtime state of store `id` (created on first use).
    pub(crate) fn store_runtime(&self, id: u64) -> Arc<StoreRuntime> {
        if let Some(rt) = self.inner.runtimes.read().get(&id) {
            return rt.clone();
        }
        self.inner
            .runtimes
            .write()
            .entry(id)
            .or_insert_with(|| Arc::new(StoreRuntime::default()))
            .clone()
    }

    // ---- engines and faults -----------------------------------------------

    /// The fault injector (see [`crate::fault`]).
    pub fn faults(&self) -> &FaultInjector {
        &self.inner.faults
    }

    /// The request recorder (see [`crate::recorder`]).
    pub fn recorder(&self) -> &Recorder {
        &self.inner.recorder
    }

    /// The raw-KV data of the cluster.
    pub fn raw(&self) -> &RawStore {
        &self.inner.raw
    }

    /// The transactional engine (one logical copy of the data shared by
    /// every store).
    pub fn engine(&self) -> &TxnEngine {
        &self.inner.engine
    }

    /// Drops every pessimistic lock in region `region_id`, as TiKV loses its
    /// in-memory pessimistic locks on a leader change or restart (spec
    /// §4.6 `lose_pessimistic_locks`); the owners find them gone at prewrite
    /// (`PessimisticLockNotFound`, or amended). Waiters are not woken: they
    /// time out as after a crash. Returns how many were dropped.
    pub fn lose_pessimistic_locks(&self, region_id: u64) -> usize {
        let Some(region) = self.live_region(region_id) else {
            return 0;
        };
        let bounds = crate::store::bounds::RawBounds::of(&region, BoundaryEncoding::Memcomparable);
        let mut dropped = 0;
        self.inner.engine.store().retain_mut(|key, data| {
            if data.lock.as_ref().is_some_and(|l| l.is_pessimistic_lock()) && bounds.contains(key) {
                data.lock = None;
                dropped += 1;
            }
        });
        dropped
    }

    /// Runs MVCC GC over all data at `safe_point` (TiKV `actions/gc.rs`);
    /// returns the number of records removed.
    pub fn gc(&self, safe_point: u64) -> usize {
        self.inner.engine.gc(safe_point)
    }

    /// [`gc`](Self::gc) restricted to the keys `pick` selects (per-keyspace GC).
    pub fn gc_keys(&self, safe_point: u64, pick: impl Fn(&[u8]) -> bool) -> usize {
        self.inner.engine.gc_keys(safe_point, pick)
    }

    // ---- keyspaces --------------------------------------------------------

    /// Every keyspace (API V2; `DEFAULT` is id 0).
    pub fn keyspaces(&self) -> Vec<Keyspace> {
        self.inner.keyspaces.read().clone()
    }

    /// Keyspace by name.
    pub fn keyspace_by_name(&self, name: &str) -> Option<Keyspace> {
        self.inner
            .keyspaces
            .read()
            .iter()
            .find(|k| k.name == name)
            .cloned()
    }

    /// Keyspace by id.
    pub fn keyspace_by_id(&self, id: u32) -> Option<Keyspace> {
        self.inner
            .keyspaces
            .read()
            .iter()
            .find(|k| k.id == id)
            .cloned()
    }
}

/// Sorts and deduplicates split keys (boundary form) and groups them, in key order,
/// by the id of the region `region_by_key` says holds each; keys that already are a
/// region's start, or that no region holds, are dropped. Shared by
/// [`MockCluster::split_keys`] and PD's `SplitRegions` (which looks regions up in
/// PD's possibly lagging view).
pub(crate) fn group_split_keys<R: std::borrow::Borrow<Region>>(
    mut keys: Vec<Vec<u8>>,
    mut region_by_key: impl FnMut(&[u8]) -> Option<R>,
) -> Vec<(u64, Vec<Vec<u8>>)> {
    keys.sort();
    keys.dedup();
    let mut groups: Vec<(u64, Vec<Vec<u8>>)> = Vec::new();
    for key in keys {
        let Some(region) = region_by_key(&key) else {
            continue;
        };
        let region = region.borrow();
        if region.start_key == key {
            continue;
        }
        match groups.last_mut() {
            Some((id, ks)) if *id == region.id => ks.push(key),
            _ => groups.push((region.id, vec![key])),
        }
    }
    groups
}
