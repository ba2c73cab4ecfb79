//! Snapshot reads: `KvGet`, `KvBatchGet`, `KvScan`, `KvBufferBatchGet`,
//! `MvccGetByKey`, `MvccGetByStartTs`.
//!
//! A read at `version` first raises the store's `max_ts` (unless
//! `stale_read`), checks the in-memory lock table, then reads storage
//! (TiKV `storage::prepare_snap_ctx`). Under SI a lock blocks the read only
//! if it is a Put/Delete lock with `lock.ts <= version` and
//! `min_commit_ts <= version`, not bypassed by `ctx.resolved_locks`, and not
//! the `version == MAX` primary point-get exemption (TiKV
//! `txn_types::check_ts_conflict_si`). A lock listed in
//! `ctx.committed_locks` is read through as committed (TiKV `access_locks`).
//! The visible value is the newest Put/Delete record with
//! `commit_ts <= version` (TiKV `PointGetter`, `Scanner`).

use bytes::Bytes;
use tikv_tower_proto::kvrpcpb::{self, IsolationLevel};

use super::errors::{TxnError, TxnResult};
use super::store::KeyData;
use super::types::{Lock, LockType, Ts, WriteType};
use super::{clamp_range, ConcurrencyManager, RegionRange, TxnEngine};

/// The read options taken from a request context.
#[derive(Clone, Debug, Default)]
pub struct ReadOpts {
    /// The isolation level.
    pub isolation: IsolationLevel,
    /// `ctx.resolved_locks`: lock start_ts to ignore.
    pub bypass_locks: Vec<Ts>,
    /// `ctx.committed_locks`: lock start_ts to read through as committed.
    pub access_locks: Vec<Ts>,
    /// `ctx.stale_read`: do not raise max_ts.
    pub stale_read: bool,
    /// `ctx.replica_read`: a follower read; the `ts == MAX` primary
    /// exemption does not apply (TiKV `check_ts_conflict_for_replica_read`).
    pub replica_read: bool,
}

impl ReadOpts {
    /// Options of a request context.
    pub fn from_ctx(ctx: Option<&kvrpcpb::Context>) -> ReadOpts {
        match ctx {
            Some(c) => ReadOpts {
                isolation: IsolationLevel::try_from(c.isolation_level).unwrap_or_default(),
                bypass_locks: c.resolved_locks.clone(),
                access_locks: c.committed_locks.clone(),
                stale_read: c.stale_read,
                replica_read: c.replica_read,
            },
            None => ReadOpts::default(),
        }
    }
}

/// Checks whether `lock` blocks a read of `key` at `ts` (TiKV
/// `check_ts_conflict`).
pub fn check_ts_conflict(lock: &Lock, key: &[u8], ts: Ts, opts: &ReadOpts) -> TxnResult<()> {
    if lock.lock_type == LockType::Lock || lock.is_pessimistic_lock() {
        return Ok(());
    }
    match opts.isolation {
        IsolationLevel::Si => {
            if lock.ts > ts || lock.min_commit_ts > ts || opts.bypass_locks.contains(&lock.ts) {
                return Ok(());
            }
            if ts == u64::MAX
                && !opts.replica_read
                && key == lock.primary.as_slice()
                && !lock.use_async_commit
                && !lock.use_one_pc
            {
                return Ok(());
            }
            Err(TxnError::locked(lock.lock_info(key)))
        }
        IsolationLevel::RcCheckTs => {
            if opts.bypass_locks.contains(&lock.ts) {
                return Ok(());
            }
            Err(TxnError::WriteConflict {
                start_ts: ts,
                conflict_start_ts: lock.ts,
                conflict_commit_ts: 0,
                key: key.to_vec(),
                primary: lock.primary.clone(),
                reason: kvrpcpb::write_conflict::Reason::RcCheckTs,
            })
        }
        IsolationLevel::Rc => Ok(()),
    }
}

/// A value found by a read: `(value, commit_ts)`.
pub type Found = Option<(Vec<u8>, Ts)>;

/// Reads `key` at `ts` from its stored data (lock check included).
fn read_key_data(
    key: &[u8],
    d: Option<&KeyData>,
    ts: Ts,
    opts: &ReadOpts,
    load_commit_ts: bool,
) -> TxnResult<Found> {
    let Some(d) = d else { return Ok(None) };
    if let Some(lock) = &d.lock {
        if let Err(e) = check_ts_conflict(lock, key, ts, opts) {
            if !load_commit_ts && opts.access_locks.contains(&lock.ts) {
                return Ok(match lock.lock_type {
                    LockType::Put => Some((lock.value.clone().unwrap_or_default(), 0)),
                    _ => None,
                });
            }
            return Err(e);
        }
    }
    if opts.isolation == IsolationLevel::RcCheckTs {
        if let Some((&commit_ts, w)) = d.writes.iter().next_back() {
            if commit_ts > ts {
                return Err(TxnError::WriteConflict {
                    start_ts: ts,
                    conflict_start_ts: w.start_ts,
                    conflict_commit_ts: commit_ts,
                    key: key.to_vec(),
                    primary: Vec::new(),
                    reason: kvrpcpb::write_conflict::Reason::RcCheckTs,
                });
            }
        }
    }
    for (commit_ts, w) in d.writes_from(ts) {
        match w.write_type {
            WriteType::Put => return Ok(Some((w.value.clone().unwrap_or_default(), commit_ts))),
            WriteType::Delete => return Ok(None),
            WriteType::Lock | WriteType::Rollback => {}
        }
    }
    Ok(None)
}

fn need_check_locks(opts: &ReadOpts) -> bool {
    matches!(
        opts.isolation,
        IsolationLevel::Si | IsolationLevel::RcCheckTs
    )
}

impl TxnEngine {
    /// Reads one key at `ts` (raises max_ts, checks memory and stored locks).
    pub fn read_key(
        &self,
        cm: &ConcurrencyManager,
        key: &[u8],
        ts: Ts,
        opts: &ReadOpts,
        load_commit_ts: bool,
    ) -> TxnResult<Found> {
        if !opts.stale_read {
            cm.update_max_ts(ts);
        }
        if need_check_locks(opts) {
            cm.read_key_check(key, |l| check_ts_conflict(l, key, ts, opts))?;
        }
        self.inner
            .store
            .with_key(key, |d| read_key_data(key, d, ts, opts, load_commit_ts))
    }

    /// `KvGet` (TiKV `Storage::get`): `not_found` when absent, `commit_ts`
    /// only with `need_commit_ts`, a lock → `error`.
    pub fn get(
        &self,
        cm: &ConcurrencyManager,
        req: &kvrpcpb::GetRequest,
        _region: RegionRange<'_>,
    ) -> kvrpcpb::GetResponse {
        let opts = ReadOpts::from_ctx(req.context.as_ref());
        let mut resp = kvrpcpb::GetResponse::default();
        match self.read_key(cm, &req.key, req.version, &opts, req.need_commit_ts) {
            Ok(Some((v, commit_ts))) => {
                resp.value = v.into();
                if req.need_commit_ts {
                    resp.commit_ts = commit_ts;
                }
            }
            Ok(None) => resp.not_found = true,
            Err(e) => resp.error = Some(e.to_key_error()),
        }
        resp
    }

    /// `KvBatchGet`: pairs for existing keys in request order; a locked key
    /// gives a pair carrying only `error`.
    pub fn batch_get(
        &self,
        cm: &ConcurrencyManager,
        req: &kvrpcpb::BatchGetRequest,
        _region: RegionRange<'_>,
    ) -> kvrpcpb::BatchGetResponse {
        let opts = ReadOpts::from_ctx(req.context.as_ref());
        if !opts.stale_read {
            cm.update_max_ts(req.version);
        }
        let mut resp = kvrpcpb::BatchGetResponse::default();
        for key in &req.keys {
            let r = if need_check_locks(&opts) {
                cm.read_key_check(key, |l| check_ts_conflict(l, key, req.version, &opts))
            } else {
                Ok(())
            };
            let r = r.and_then(|_| {
                self.inner.store.with_key(key, |d| {
                    read_key_data(key, d, req.version, &opts, req.need_commit_ts)
                })
            });
            match r {
                Ok(Some((value, commit_ts))) => resp.pairs.push(kvrpcpb::KvPair {
                    key: key.clone(),
                    value: value.into(),
                    commit_ts: if req.need_commit_ts { commit_ts } else { 0 },
                    error: None,
                }),
                Ok(None) => {}
                Err(e) => resp.pairs.push(kvrpcpb::KvPair {
                    error: Some(e.to_key_error()),
                    ..Default::default()
                }),
            }
        }
        resp
    }

    /// `KvScan` (TiKV `Storage::scan` + `Scanner::scan`). Forward:
    /// `[start_key, end_key)`; reverse: `[end_key, start_key)` descending.
    /// Both are clamped to the region. Locked keys are error pairs and count
    /// toward `limit`; `sample_step` keeps every n-th row.
    pub fn scan(
        &self,
        cm: &ConcurrencyManager,
        req: &kvrpcpb::ScanRequest,
        region: RegionRange<'_>,
    ) -> kvrpcpb::ScanResponse {
        let opts = ReadOpts::from_ctx(req.context.as_ref());
        let ts = req.version;
        if !opts.stale_read {
            cm.update_max_ts(ts);
        }
        let (lo, hi) = if req.reverse {
            // TiKV encodes the upper bound as given: an empty start_key is
            // not "+inf", so the range is empty.
            if req.start_key.is_empty() {
                return kvrpcpb::ScanResponse::default();
            }
            clamp_range(&req.end_key, &req.start_key, region)
        } else {
            clamp_range(&req.start_key, &req.end_key, region)
        };
        let mut resp = kvrpcpb::ScanResponse::default();
        if need_check_locks(&opts) {
            if let Err(e) = cm.read_range_check(&lo, &hi, |k, l| check_ts_conflict(l, k, ts, &opts))
            {
                let ke = e.to_key_error();
                resp.pairs.push(kvrpcpb::KvPair {
                    error: Some(ke.clone()),
                    ..Default::default()
                });
                resp.error = Some(ke);
                return resp;
            }
        }
        let limit = req.limit as usize;
        let step = req.sample_step as usize;
        let mut row = 0usize;
        let mut fatal: Option<TxnError> = None;
        self.inner
            .store
            .for_each_in_range(&lo, &hi, req.reverse, |k, d| {
                if resp.pairs.len() >= limit {
                    return false;
                }
                match read_key_data(k, Some(d), ts, &opts, false) {
                    Ok(Some((v, _))) => {
                        if step > 0 {
                            row += 1;
                            if !(row - 1).is_multiple_of(step) {
                                return true;
                            }
                        }
                        resp.pairs.push(kvrpcpb::KvPair {
                            key: k.to_vec().into(),
                            value: if req.key_only { Bytes::new() } else { v.into() },
                            ..Default::default()
                        });
                    }
                    Ok(None) => {}
                    Err(e @ TxnError::KeyIsLocked(_)) => resp.pairs.push(kvrpcpb::KvPair {
                        error: Some(e.to_key_error()),
                        ..Default::default()
                    }),
                    Err(e) => {
                        fatal = Some(e);
                        return false;
                    }
                }
                true
            });
        if let Some(e) = fatal {
            let ke = e.to_key_error();
            resp.pairs = vec![kvrpcpb::KvPair {
                error: Some(ke.clone()),
                ..Default::default()
            }];
            resp.error = Some(ke);
        }
        resp
    }

    /// `KvBufferBatchGet` (pipelined DML): reads only this transaction's own
    /// locks: Put → value, Delete → empty value, anything else omitted.
    pub fn buffer_batch_get(
        &self,
        req: &kvrpcpb::BufferBatchGetRequest,
        _region: RegionRange<'_>,
    ) -> kvrpcpb::BufferBatchGetResponse {
        let mut resp = kvrpcpb::BufferBatchGetResponse::default();
        for key in &req.keys {
            if let Some(l) = self.inner.store.load_lock(key) {
                if l.ts != req.version {
                    continue;
                }
                let value = match l.lock_type {
                    LockType::Put => l.value.clone().unwrap_or_default(),
                    LockType::Delete => Vec::new(),
                    _ => continue,
                };
                resp.pairs.push(kvrpcpb::KvPair {
                    key: key.clone(),
                    value: value.into(),
                    ..Default::default()
                });
            }
        }
        resp
    }

    /// The debug view of one key.
    pub fn mvcc_info(&self, key: &[u8]) -> kvrpcpb::MvccInfo {
        self.inner.store.with_key(key, |d| {
            let mut info = kvrpcpb::MvccInfo::default();
            if let Some(d) = d {
                info.lock = d.lock.as_ref().map(Lock::to_mvcc);
                for (commit_ts, w) in d.writes.iter().rev() {
                    info.writes.push(w.to_mvcc(*commit_ts));
                    if let Some(v) = &w.value {
                        info.values.push(kvrpcpb::MvccValue {
                            start_ts: w.start_ts,
                            value: v.clone().into(),
                        });
                    }
                }
            }
            info
        })
    }

    /// `MvccGetByKey`.
    pub fn mvcc_get_by_key(
        &self,
        req: &kvrpcpb::MvccGetByKeyRequest,
        _region: RegionRange<'_>,
    ) -> kvrpcpb::MvccGetByKeyResponse {
        kvrpcpb::MvccGetByKeyResponse {
            info: Some(self.mvcc_info(&req.key)),
            ..Default::default()
        }
    }

    /// `MvccGetByStartTs`: the first key in the region with a lock or a
    /// record of that transaction.
    pub fn mvcc_get_by_start_ts(
        &self,
        req: &kvrpcpb::MvccGetByStartTsRequest,
        region: RegionRange<'_>,
    ) -> kvrpcpb::MvccGetByStartTsResponse {
        let mut found = None;
        self.inner
            .store
            .for_each_in_range(region.0, region.1, false, |k, d| {
                let hit = d.lock.as_ref().is_some_and(|l| l.ts == req.start_ts)
                    || d.writes.values().any(|w| w.start_ts == req.start_ts);
                if hit {
                    found = Some(k.to_vec());
                }
                !hit
            });
        let mut resp = kvrpcpb::MvccGetByStartTsResponse::default();
        if let Some(k) = found {
            resp.info = Some(self.mvcc_info(&k));
            resp.key = k.into();
        }
        resp
    }
}
