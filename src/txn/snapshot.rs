//! [`Snapshot`]: reads of the data committed at or before one timestamp (client-go
//! `txnsnapshot.KVSnapshot`).
//!
//! Every read first runs the safety checks: the read ts must not be in the future
//! (`Oracle::validate_read_ts`, client-go `RegionRequestSender.validateReadTS`) and must
//! not be below the txn safe point (client-go `KVStore.CheckVisibility`). It then goes
//! through the client's locking stack: locks met are resolved by the lock resolver and
//! the read retried, with the lock versions found resolved / committed remembered by the
//! snapshot for its later reads (client-go `KVSnapshot.resolvedLocks` /
//! `committedLocks`).
//!
//! - [`Snapshot::get`]: one key (client-go `KVSnapshot.Get`); the snapshot cache is
//!   consulted first;
//! - [`Snapshot::batch_get`]: many keys, sorted, cut into requests of at most
//!   [`BATCH_GET_SIZE`] keys which the shard layer splits by region, at most
//!   `batch_get_concurrency` in flight; results keyed by key and stored in the snapshot
//!   cache (client-go `BatchGet` / `batchGetKeysByRegions`);
//! - [`Snapshot::scanner`] / [`Snapshot::scanner_reverse`]: lazy iterators
//!   ([`Scanner`](super::scanner::Scanner)).
//!
//! `ts = u64::MAX` is the autocommit point-get mode: the latest committed value is read,
//! and only the first lock met blocks (later locks of other txns are skipped, client-go
//! `KVSnapshot.get` with `s.version == maxTimestamp`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use parking_lot::Mutex;
use tikv_tower_layers::resolve_lock::{LockResolver, ResolveOutcome};
use tikv_tower_layers::typed::{self, SendOptions};
use tikv_tower_layers::{ExecDetails, OpState};
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::KvRequest;

use super::client::{Core, READ_MAX_BACKOFF};
use super::options::{SnapshotOptions, BATCH_GET_SIZE};
use super::scanner::Scanner;
use crate::error::{Error, Result};
use crate::raw::{IntoBytes, KeyRange};
use crate::store::StoreStack;

/// A value and the ts it was committed at (client-go `kv.ValueEntry`); `commit_ts` is 0
/// unless [`SnapshotOptions::need_commit_ts`] is set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValueEntry {
    /// The value.
    pub value: Bytes,
    /// Its commit ts (0 when not asked for).
    pub commit_ts: u64,
}

/// What one read cost (client-go `util.ExecDetails` / `SnapshotRuntimeStats` of a read):
/// the stack's account (attempts, backoff, store, shards) and, when the store reported
/// them, TiKV's scan and time details.
#[derive(Debug, Clone, Default)]
pub struct ReadDetails {
    /// Attempts, backoff time, store and region of the (last) reply.
    pub exec: ExecDetails,
    /// TiKV's scan detail (versions processed, RocksDB counters).
    pub scan_detail: Option<kvrpcpb::ScanDetailV2>,
    /// TiKV's time detail (wait / process / read wall times).
    pub time_detail: Option<kvrpcpb::TimeDetailV2>,
}

impl ReadDetails {
    pub(crate) fn new(exec: ExecDetails, server: Option<&kvrpcpb::ExecDetailsV2>) -> Self {
        ReadDetails {
            exec,
            scan_detail: server.and_then(|d| d.scan_detail_v2),
            time_detail: server.and_then(|d| d.time_detail_v2),
        }
    }
}

/// State shared by the clones of one snapshot.
#[derive(Default)]
struct Shared {
    /// client-go `KVSnapshot.mu.cached`: `None` = known absent.
    cache: Mutex<HashMap<Bytes, Option<ValueEntry>>>,
    cache_hits: AtomicU64,
    /// Lock versions known not to block / known committed (client-go `resolvedLocks`,
    /// `committedLocks`).
    locks: Mutex<(Vec<u64>, Vec<u64>)>,
}

/// A consistent view of the data committed at or before [`ts`](Self::ts) (see the
/// [module docs](self)). Cheap to clone; clones share the cache and the lock sets.
#[derive(Clone)]
pub struct Snapshot {
    core: Arc<Core>,
    ts: u64,
    options: SnapshotOptions,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("ts", &self.ts)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    pub(crate) fn new(core: Arc<Core>, ts: u64, options: SnapshotOptions) -> Self {
        Snapshot {
            core,
            ts,
            options,
            shared: Arc::default(),
        }
    }

    /// The read ts (client-go `KVSnapshot.SnapshotTS`... `version`).
    pub fn ts(&self) -> u64 {
        self.ts
    }

    /// The read options.
    pub fn options(&self) -> &SnapshotOptions {
        &self.options
    }

    /// Changes the read options (client-go `KVSnapshot.Set*`), for the following reads.
    pub fn set_options(&mut self, options: SnapshotOptions) {
        self.options = options;
    }

    /// The read options, to change in place.
    pub fn options_mut(&mut self) -> &mut SnapshotOptions {
        &mut self.options
    }

    /// A clone with other options (sharing cache and lock sets).
    pub fn with_options(&self, options: SnapshotOptions) -> Self {
        Snapshot {
            options,
            ..self.clone()
        }
    }

    pub(crate) fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// The safety checks every read runs first (see the [module docs](self)).
    pub(crate) async fn check(&self) -> Result<()> {
        self.core.check_open()?;
        self.core
            .store
            .oracle()
            .validate_read_ts(self.ts, self.options.stale_read)
            .await?;
        self.core.gc.check_visibility(self.ts)
    }

    /// A fresh operation state: the read budget, the snapshot's tags, and the lock sets
    /// learned by earlier reads.
    pub(crate) fn op(&self) -> Arc<OpState> {
        let (resolved, committed) = self.shared.locks.lock().clone();
        let op = OpState::builder()
            .max_backoff(READ_MAX_BACKOFF)
            .tags(self.options.tags())
            .resolved_locks(resolved)
            .build();
        op.add_locks(&[], &committed);
        op
    }

    /// Remembers what `op` learned about locks for the snapshot's later reads.
    pub(crate) fn learn(&self, op: &OpState) {
        let (resolved, committed) = (op.resolved_locks(), op.committed_locks());
        if resolved.is_empty() && committed.is_empty() {
            return;
        }
        let mut locks = self.shared.locks.lock();
        for v in resolved {
            if !locks.0.contains(&v) {
                locks.0.push(v);
            }
        }
        for v in committed {
            if !locks.1.contains(&v) {
                locks.1.push(v);
            }
        }
    }

    /// The stack a read goes through: the client's, or for the autocommit point get
    /// (`ts = u64::MAX`) one whose resolver blocks only on the first lock met.
    fn stack(&self, point_get: bool) -> StoreStack {
        if point_get && self.ts == u64::MAX {
            let r = FirstLockOnly {
                inner: self.core.resolver.clone(),
                first: Mutex::new(None),
            };
            self.core.store.stack_with_resolver(Arc::new(r))
        } else {
            self.core.stack.clone()
        }
    }

    /// Sends one read with the snapshot's replica policy and read timeout.
    pub(crate) async fn send<R: KvRequest>(
        &self,
        stack: StoreStack,
        req: R,
        op: Arc<OpState>,
    ) -> Result<(R::Response, ExecDetails)> {
        let mut options =
            SendOptions::op(op).with_replica_read(self.options.effective_replica_read());
        if let Some(t) = self.options.read_timeout {
            options = options.with_timeout(t);
        }
        Ok(typed::send_with_details(stack, req, options).await?)
    }

    pub(crate) fn encode(&self, key: &[u8]) -> Bytes {
        self.core.codec.encode_key(key)
    }

    pub(crate) fn decode(&self, key: Bytes) -> Result<Bytes> {
        self.core
            .codec
            .decode_key(key)
            .map_err(|key| Error::KeyOutsideKeyspace {
                key: key.to_vec(),
                keyspace_id: self.core.store.keyspace_id().unwrap_or(0),
            })
    }

    /// The value of `key`, `None` when absent (client-go `KVSnapshot.Get`).
    pub async fn get(&self, key: impl IntoBytes) -> Result<Option<Bytes>> {
        Ok(self.get_entry(key).await?.map(|e| e.value))
    }

    /// The value of `key` with its commit ts when
    /// [`need_commit_ts`](SnapshotOptions::need_commit_ts) is set.
    pub async fn get_entry(&self, key: impl IntoBytes) -> Result<Option<ValueEntry>> {
        Ok(self.get_with_details(key).await?.0)
    }

    /// [`get_entry`](Self::get_entry) with what the read cost (default details on a
    /// snapshot-cache hit).
    pub async fn get_with_details(
        &self,
        key: impl IntoBytes,
    ) -> Result<(Option<ValueEntry>, ReadDetails)> {
        let key = key.into_bytes();
        if key.is_empty() {
            return Err(Error::EmptyKey);
        }
        if let Some(hit) = self.cached(&key) {
            return Ok((hit, ReadDetails::default()));
        }
        self.check().await?;
        let op = self.op();
        let req = kvrpcpb::GetRequest {
            context: Some(self.options.context()),
            key: self.encode(&key),
            version: self.ts,
            need_commit_ts: self.options.need_commit_ts,
        };
        let res = self.send(self.stack(true), req, op.clone()).await;
        self.learn(&op);
        let (reply, exec) = res?;
        if let Some(e) = reply.region_error {
            return Err(Error::from_region_error(e));
        }
        if let Some(e) = reply.error {
            return Err(Error::from_key_error(e));
        }
        let details = ReadDetails::new(exec, reply.exec_details_v2.as_deref());
        if reply.not_found {
            return Ok((None, details));
        }
        let entry = ValueEntry {
            value: reply.value,
            commit_ts: reply.commit_ts,
        };
        Ok((Some(entry), details))
    }

    /// The cached entry of `key`, if the cache can answer (an entry cached without its
    /// commit ts cannot answer a read that needs it).
    fn cached(&self, key: &Bytes) -> Option<Option<ValueEntry>> {
        let cache = self.shared.cache.lock();
        let hit = cache.get(key)?;
        if self.options.need_commit_ts && hit.as_ref().is_some_and(|e| e.commit_ts == 0) {
            return None;
        }
        self.shared.cache_hits.fetch_add(1, Ordering::Relaxed);
        Some(hit.clone())
    }

    /// The values of the present `keys`, keyed by key (client-go `KVSnapshot.BatchGet`).
    pub async fn batch_get<K: IntoBytes>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<HashMap<Bytes, Bytes>> {
        let entries = self.batch_get_entries(keys).await?;
        Ok(entries.into_iter().map(|(k, e)| (k, e.value)).collect())
    }

    /// [`batch_get`](Self::batch_get) with commit ts when asked for.
    pub async fn batch_get_entries<K: IntoBytes>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<HashMap<Bytes, ValueEntry>> {
        Ok(self.batch_get_with_details(keys).await?.0)
    }

    /// [`batch_get_entries`](Self::batch_get_entries) with the details of each request.
    pub async fn batch_get_with_details<K: IntoBytes>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<(HashMap<Bytes, ValueEntry>, Vec<ReadDetails>)> {
        let mut out = HashMap::new();
        let mut missing = Vec::new();
        for key in keys {
            let key = key.into_bytes();
            if key.is_empty() {
                return Err(Error::EmptyKey);
            }
            match self.cached(&key) {
                Some(Some(e)) => {
                    out.insert(key, e);
                }
                Some(None) => {}
                None => missing.push(key),
            }
        }
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Ok((out, Vec::new()));
        }
        self.check().await?;
        let op = self.op();
        let chunks: Vec<Vec<Bytes>> = missing
            .chunks(BATCH_GET_SIZE)
            .map(|c| c.iter().map(|k| self.encode(k)).collect())
            .collect();
        let results: Result<Vec<_>> = stream::iter(chunks.into_iter().map(|keys| {
            let req = kvrpcpb::BatchGetRequest {
                context: Some(self.options.context()),
                keys,
                version: self.ts,
                need_commit_ts: self.options.need_commit_ts,
            };
            self.send(self.core.stack.clone(), req, op.clone())
        }))
        .buffer_unordered(self.options.batch_get_concurrency.max(1))
        .try_collect()
        .await;
        self.learn(&op);
        let mut details = Vec::new();
        for (reply, exec) in results? {
            if let Some(e) = reply.region_error {
                return Err(Error::from_region_error(e));
            }
            if let Some(e) = reply.error {
                return Err(Error::from_key_error(e));
            }
            details.push(ReadDetails::new(exec, reply.exec_details_v2.as_deref()));
            for pair in reply.pairs {
                if let Some(e) = pair.error {
                    return Err(Error::from_key_error(*e));
                }
                let entry = ValueEntry {
                    value: pair.value,
                    commit_ts: pair.commit_ts,
                };
                out.insert(self.decode(pair.key)?, entry);
            }
        }
        let mut cache = self.shared.cache.lock();
        for key in missing {
            let entry = out.get(&key).cloned();
            cache.insert(key, entry);
        }
        Ok((out, details))
    }

    /// A forward iterator over `range` (client-go `KVSnapshot.Iter(k, upperBound)`).
    pub fn scanner(&self, range: impl Into<KeyRange>) -> Result<Scanner> {
        Scanner::new(self.clone(), range.into(), false)
    }

    /// A reverse iterator over `range`, from its end down to its start (client-go
    /// `KVSnapshot.IterReverse(k, lowerBound)`).
    pub fn scanner_reverse(&self, range: impl Into<KeyRange>) -> Result<Scanner> {
        Scanner::new(self.clone(), range.into(), true)
    }

    /// Up to `limit` entries of `range`, ascending (or descending when `reverse`).
    pub async fn scan(
        &self,
        range: impl Into<KeyRange>,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<super::scanner::KvEntry>> {
        let mut s = Scanner::new(self.clone(), range.into(), reverse)?;
        let mut out = Vec::new();
        while out.len() < limit {
            match s.next().await? {
                Some(e) => out.push(e),
                None => break,
            }
        }
        Ok(out)
    }

    /// Caches `keys`' entries from `entries` (absent = known absent) (client-go
    /// `KVSnapshot.UpdateSnapshotCache`).
    pub fn update_snapshot_cache<K: IntoBytes>(
        &self,
        keys: impl IntoIterator<Item = K>,
        entries: &HashMap<Bytes, ValueEntry>,
    ) {
        let mut cache = self.shared.cache.lock();
        for k in keys {
            let k = k.into_bytes();
            let e = entries.get(&k).cloned();
            cache.insert(k, e);
        }
    }

    /// Drops `keys` from the snapshot cache (client-go `KVSnapshot.CleanCache`).
    pub fn clean_cache<K: IntoBytes>(&self, keys: impl IntoIterator<Item = K>) {
        let mut cache = self.shared.cache.lock();
        for k in keys {
            cache.remove(&k.into_bytes());
        }
    }

    /// Keys in the snapshot cache (client-go `KVSnapshot.SnapCacheSize` counts bytes;
    /// this counts entries).
    pub fn snap_cache_len(&self) -> usize {
        self.shared.cache.lock().len()
    }

    /// Reads answered by the snapshot cache (client-go `SnapCacheHitCount`).
    pub fn snap_cache_hit_count(&self) -> u64 {
        self.shared.cache_hits.load(Ordering::Relaxed)
    }

    /// Lock versions the snapshot learned not to block it / to be committed.
    pub fn known_locks(&self) -> (Vec<u64>, Vec<u64>) {
        self.shared.locks.lock().clone()
    }
}

/// The resolver of an autocommit point get: only the first lock met blocks; locks of
/// other txns met on retries are skipped (client-go `KVSnapshot.get`, `firstLock`).
struct FirstLockOnly<R> {
    inner: Arc<R>,
    first: Mutex<Option<u64>>,
}

impl<R: LockResolver> LockResolver for FirstLockOnly<R> {
    async fn resolve(
        &self,
        locks: Vec<kvrpcpb::LockInfo>,
        caller_start_ts: u64,
        op: Arc<OpState>,
    ) -> std::result::Result<ResolveOutcome, tikv_tower_layers::Error> {
        let Some(head) = locks.first() else {
            return Ok(ResolveOutcome::default());
        };
        let first = *self.first.lock().get_or_insert(head.lock_version);
        let (mine, others): (Vec<_>, Vec<_>) =
            locks.into_iter().partition(|l| l.lock_version == first);
        let mut out = if mine.is_empty() {
            ResolveOutcome::default()
        } else {
            self.inner.resolve(mine, caller_start_ts, op).await?
        };
        out.resolved.extend(others.iter().map(|l| l.lock_version));
        Ok(out)
    }
}
