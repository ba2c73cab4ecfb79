//! `KvResolveLock` and `KvScanLock` (TiKV
//! `src/storage/txn/commands/{resolve_lock,resolve_lock_lite,resolve_lock_readphase}.rs`,
//! `Storage::scan_lock`).
//!
//! ResolveLock has three forms: one transaction (`start_version`, no keys),
//! a batch (`txn_infos`, `start_version == 0`), both resolving every lock of
//! those transactions in the *region*; and the lite form (`keys`), which
//! resolves only the given keys. A status of 0 rolls back; a commit_ts
//! above the lock's ts commits; anything else is `InvalidTxnTso`.

use std::collections::HashMap;

use tikv_tower_proto::kvrpcpb;

use super::errors::{TxnError, TxnResult};
use super::txn::{cleanup_key, commit_key, MvccTxn};
use super::types::{Lock, Ts};
use super::{clamp_range, ConcurrencyManager, RegionRange, TxnEngine};

/// Resolves one lock of transaction `txn.start_ts` to `commit_ts` (0 =
/// rollback), as TiKV's `ResolveLock::process_write` does per key.
fn resolve_one(txn: &mut MvccTxn<'_>, key: &[u8], lock: &Lock, commit_ts: Ts) -> TxnResult<()> {
    if commit_ts == 0 {
        cleanup_key(txn, key, 0, false)
    } else if commit_ts > lock.ts {
        match commit_key(txn, key, commit_ts) {
            Err(TxnError::TxnLockNotFound { .. }) if lock.is_pessimistic_lock() => Ok(()),
            r => r,
        }
    } else {
        Err(TxnError::InvalidTxnTso {
            start_ts: lock.ts,
            commit_ts,
        })
    }
}

impl TxnEngine {
    /// The locks in `[start, end)` (empty `end` = unbounded) accepted by
    /// `filter`, at most `limit` (0 = unlimited), in key order.
    pub fn scan_locks(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        mut filter: impl FnMut(&Lock) -> bool,
    ) -> Vec<(Vec<u8>, Lock)> {
        let mut out = Vec::new();
        self.inner
            .store
            .for_each_in_range(start, end, false, |k, d| {
                if let Some(l) = &d.lock {
                    if filter(l) {
                        out.push((k.to_vec(), l.clone()));
                    }
                }
                limit == 0 || out.len() < limit
            });
        out
    }

    /// `KvResolveLock` (TiKV `ResolveLock` / `ResolveLockLite`).
    pub fn resolve_lock(
        &self,
        cm: &ConcurrencyManager,
        req: &kvrpcpb::ResolveLockRequest,
        region: RegionRange<'_>,
    ) -> kvrpcpb::ResolveLockResponse {
        let mut resp = kvrpcpb::ResolveLockResponse::default();
        let res = if !req.keys.is_empty() {
            self.resolve_lock_lite(cm, req)
        } else {
            let mut status: HashMap<Ts, Ts> = HashMap::new();
            if req.start_version > 0 {
                status.insert(req.start_version, req.commit_version);
            } else {
                for t in &req.txn_infos {
                    status.insert(t.txn, t.status);
                }
            }
            self.resolve_locks_in_range(cm, region.0, region.1, &status)
        };
        if let Err(e) = res {
            resp.error = Some(e.to_key_error());
        }
        resp
    }

    fn resolve_lock_lite(
        &self,
        cm: &ConcurrencyManager,
        req: &kvrpcpb::ResolveLockRequest,
    ) -> TxnResult<()> {
        if req.commit_version != 0 && req.commit_version <= req.start_version {
            return Err(TxnError::InvalidTxnTso {
                start_ts: req.start_version,
                commit_ts: req.commit_version,
            });
        }
        self.run_write(cm, &req.keys, req.start_version, |txn| {
            for k in &req.keys {
                if req.commit_version == 0 {
                    cleanup_key(txn, k, 0, false)?;
                } else {
                    commit_key(txn, k, req.commit_version)?;
                }
            }
            Ok(())
        })
    }

    /// Resolves every lock in `[start, end)` whose transaction is in
    /// `status` (start_ts → commit_ts, 0 = rollback).
    pub fn resolve_locks_in_range(
        &self,
        cm: &ConcurrencyManager,
        start: &[u8],
        end: &[u8],
        status: &HashMap<Ts, Ts>,
    ) -> TxnResult<()> {
        let found = self.scan_locks(start, end, 0, |l| status.contains_key(&l.ts));
        if found.is_empty() {
            return Ok(());
        }
        let keys: Vec<&[u8]> = found.iter().map(|(k, _)| k.as_slice()).collect();
        self.run_write(cm, &keys, 0, |txn| {
            for (key, _) in &found {
                // Re-read under the latch: the lock may have changed.
                let Some(lock) = txn.load_lock(key) else {
                    continue;
                };
                let Some(&commit_ts) = status.get(&lock.ts) else {
                    continue;
                };
                txn.start_ts = lock.ts;
                resolve_one(txn, key, &lock, commit_ts)?;
            }
            Ok(())
        })
    }

    /// `KvScanLock` (TiKV `Storage::scan_lock`): locks with
    /// `ts <= max_version` in `[start_key, end_key)` ∩ region, at most
    /// `limit` (0 = unlimited). Raises max_ts to `max_version`.
    pub fn scan_lock(
        &self,
        cm: &ConcurrencyManager,
        req: &kvrpcpb::ScanLockRequest,
        region: RegionRange<'_>,
    ) -> kvrpcpb::ScanLockResponse {
        cm.update_max_ts(req.max_version);
        let (lo, hi) = clamp_range(&req.start_key, &req.end_key, region);
        let mut resp = kvrpcpb::ScanLockResponse::default();
        let mem = cm.read_range_check(&lo, &hi, |k, l| {
            if l.ts <= req.max_version {
                Err(TxnError::locked(l.lock_info(k)))
            } else {
                Ok(())
            }
        });
        if let Err(e) = mem {
            resp.error = Some(e.to_key_error());
            return resp;
        }
        resp.locks = self
            .scan_locks(&lo, &hi, req.limit as usize, |l| l.ts <= req.max_version)
            .into_iter()
            .map(|(k, l)| l.lock_info(&k))
            .collect();
        resp
    }
}
