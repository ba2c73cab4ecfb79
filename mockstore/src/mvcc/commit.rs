//! `KvCommit`, `KvCleanup`, `KvBatchRollback`, `KvTxnHeartBeat` (TiKV
//! `src/storage/txn/commands/{commit,cleanup,rollback,txn_heart_beat}.rs`).
//!
//! - Commit writes a record per key at `commit_version` (a stale
//!   pessimistic lock is just removed), fails the whole request on
//!   `CommitTsExpired` or `TxnLockNotFound`, and is idempotent.
//! - Cleanup rolls back one key unless its lock is still alive at
//!   `current_ts`; a committed key answers `commit_version`.
//! - BatchRollback rolls back every key (unprotected unless primary or
//!   pipelined); a committed key is an `abort` error.
//! - TxnHeartBeat raises the primary lock's TTL.

use tikv_tower_proto::kvrpcpb;

use super::errors::TxnError;
use super::txn::{cleanup_key, commit_key};
use super::{ConcurrencyManager, RegionRange, TxnEngine};

impl TxnEngine {
    /// `KvCommit` (TiKV `commands::Commit` + `actions::commit`).
    pub fn commit(
        &self,
        cm: &ConcurrencyManager,
        req: &kvrpcpb::CommitRequest,
        _region: RegionRange<'_>,
    ) -> kvrpcpb::CommitResponse {
        let mut resp = kvrpcpb::CommitResponse::default();
        if req.commit_version <= req.start_version {
            resp.error = Some(
                TxnError::InvalidTxnTso {
                    start_ts: req.start_version,
                    commit_ts: req.commit_version,
                }
                .to_key_error(),
            );
            return resp;
        }
        let res = self.run_write(cm, &req.keys, req.start_version, |txn| {
            for k in &req.keys {
                commit_key(txn, k, req.commit_version)?;
            }
            Ok(())
        });
        match res {
            Ok(()) => resp.commit_version = req.commit_version,
            Err(e) => resp.error = Some(e.to_key_error()),
        }
        resp
    }

    /// `KvCleanup` (TiKV `commands::Cleanup`): `cleanup(current_ts,
    /// protect_rollback = true)`; a committed key is answered with
    /// `commit_version` and no error.
    pub fn cleanup(
        &self,
        cm: &ConcurrencyManager,
        req: &kvrpcpb::CleanupRequest,
        _region: RegionRange<'_>,
    ) -> kvrpcpb::CleanupResponse {
        let mut resp = kvrpcpb::CleanupResponse::default();
        let keys = [req.key.as_ref()];
        let res = self.run_write(cm, &keys, req.start_version, |txn| {
            cleanup_key(txn, &req.key, req.current_ts, true)
        });
        match res {
            Ok(()) => {}
            Err(TxnError::Committed { commit_ts, .. }) => resp.commit_version = commit_ts,
            Err(e) => resp.error = Some(e.to_key_error()),
        }
        resp
    }

    /// `KvBatchRollback` (TiKV `commands::Rollback`): `cleanup(0,
    /// protect_rollback = false)` on every key.
    pub fn batch_rollback(
        &self,
        cm: &ConcurrencyManager,
        req: &kvrpcpb::BatchRollbackRequest,
        _region: RegionRange<'_>,
    ) -> kvrpcpb::BatchRollbackResponse {
        let mut resp = kvrpcpb::BatchRollbackResponse::default();
        let res = self.run_write(cm, &req.keys, req.start_version, |txn| {
            for k in &req.keys {
                cleanup_key(txn, k, 0, false)?;
            }
            Ok(())
        });
        if let Err(e) = res {
            resp.error = Some(e.to_key_error());
        }
        resp
    }

    /// `KvTxnHeartBeat` (TiKV `commands::TxnHeartBeat`).
    pub fn txn_heart_beat(
        &self,
        cm: &ConcurrencyManager,
        req: &kvrpcpb::TxnHeartBeatRequest,
        _region: RegionRange<'_>,
    ) -> kvrpcpb::TxnHeartBeatResponse {
        let mut resp = kvrpcpb::TxnHeartBeatResponse::default();
        let keys = [req.primary_lock.as_ref()];
        let res = self.run_write(cm, &keys, req.start_version, |txn| {
            match txn.load_lock(&req.primary_lock) {
                Some(mut lock) if lock.ts == req.start_version => {
                    let mut updated = false;
                    if lock.ttl < req.advise_lock_ttl {
                        lock.ttl = req.advise_lock_ttl;
                        updated = true;
                    }
                    if !lock.use_async_commit
                        && lock.generation > 0
                        && req.min_commit_ts > 0
                        && lock.min_commit_ts < req.min_commit_ts
                    {
                        lock.min_commit_ts = req.min_commit_ts;
                        updated = true;
                    }
                    let ttl = lock.ttl;
                    if updated {
                        txn.put_lock(&req.primary_lock, lock);
                    }
                    Ok(ttl)
                }
                _ => Err(TxnError::TxnNotFound {
                    start_ts: req.start_version,
                    key: req.primary_lock.to_vec(),
                }),
            }
        });
        match res {
            Ok(ttl) => resp.lock_ttl = ttl,
            Err(e) => resp.error = Some(e.to_key_error()),
        }
        resp
    }
}
