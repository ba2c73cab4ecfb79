//! `KvCheckTxnStatus` and `KvCheckSecondaryLocks` (TiKV
//! `src/storage/txn/actions/check_txn_status.rs`,
//! `src/storage/txn/commands/{check_txn_status,check_secondary_locks}.rs`).
//!
//! CheckTxnStatus decides a transaction's fate from its primary: committed
//! / rolled back (from the records), alive (TTL not expired at
//! `current_ts`; `min_commit_ts` may be pushed past a reader's
//! `caller_start_ts`), or expired (rolled back now). An async-commit primary
//! is never rolled back or pushed unless `force_sync_commit`. When the lock
//! is missing, `rollback_if_not_exist` writes a protected rollback.
//!
//! CheckSecondaryLocks reports the locks of an async-commit transaction on
//! the given keys, or its commit_ts, or that it rolled back, writing
//! protected rollbacks on keys that are not locked so a late prewrite fails.

use tikv_tower_proto::kvrpcpb::{self, Action};

use super::errors::{TxnError, TxnResult};
use super::txn::{
    check_txn_status_missing_lock, collapse_prev_rollback, rollback_lock, MissingLockAction,
    MvccTxn, TxnStatus,
};
use super::types::{Lock, Ts, TxnCommitRecord, Write, WriteType};
use super::{ConcurrencyManager, RegionRange, TxnEngine};

/// The decided status of a committed/rolled-back transaction, if any (TiKV
/// `check_determined_txn_status`).
fn determined_status(txn: &MvccTxn<'_>, key: &[u8]) -> Option<TxnStatus> {
    match txn.commit_record(key) {
        TxnCommitRecord::SingleRecord { commit_ts, write } => {
            if write.write_type == WriteType::Rollback {
                Some(TxnStatus::RolledBack)
            } else {
                Some(TxnStatus::Committed(commit_ts))
            }
        }
        TxnCommitRecord::OverlappedRollback { .. } => Some(TxnStatus::RolledBack),
        TxnCommitRecord::None { .. } => None,
    }
}

/// Parameters of CheckTxnStatus.
struct CheckParams {
    current_ts: Ts,
    caller_start_ts: Ts,
    force_sync_commit: bool,
    resolving_pessimistic_lock: bool,
    verify_is_primary: bool,
    rollback_if_not_exist: bool,
}

/// TiKV `check_txn_status_lock_exists`.
fn check_lock_exists(
    txn: &mut MvccTxn<'_>,
    key: &[u8],
    mut lock: Lock,
    p: &CheckParams,
) -> TxnResult<TxnStatus> {
    if p.verify_is_primary && key != lock.primary.as_slice() {
        if !p.resolving_pessimistic_lock && lock.is_pessimistic_lock() {
            // A stale pessimistic lock on a key that is not the primary.
            let status = check_txn_status_missing_lock(
                txn,
                key,
                None,
                if p.rollback_if_not_exist {
                    MissingLockAction::ProtectedRollback
                } else {
                    MissingLockAction::ReturnError
                },
                false,
            )?;
            txn.unlock_key(key, 0);
            return Ok(status);
        }
        return Err(TxnError::PrimaryMismatch(Box::new(lock.lock_info(key))));
    }
    if lock.use_async_commit && !p.force_sync_commit {
        return Ok(TxnStatus::Uncommitted {
            lock,
            min_commit_ts_pushed: false,
        });
    }
    if lock.is_pessimistic_lock() {
        if lock.is_locked_with_conflict {
            if let Some(status) = determined_status(txn, key) {
                txn.unlock_key(key, 0);
                return Ok(status);
            }
        }
        if lock.is_expired(p.current_ts) {
            if p.resolving_pessimistic_lock {
                txn.unlock_key(key, 0);
                return Ok(TxnStatus::PessimisticRollBack);
            }
            rollback_lock(txn, key, &lock, true)?;
            return Ok(TxnStatus::TtlExpire);
        }
    } else if lock.is_expired(p.current_ts) {
        rollback_lock(txn, key, &lock, true)?;
        return Ok(TxnStatus::TtlExpire);
    }
    if lock.min_commit_ts != 0
        && p.caller_start_ts != u64::MAX
        && p.caller_start_ts >= lock.min_commit_ts
    {
        lock.min_commit_ts = (p.caller_start_ts + 1).max(p.current_ts);
        txn.put_lock(key, lock.clone());
    }
    let pushed = (p.caller_start_ts != 0 && lock.min_commit_ts > p.caller_start_ts)
        || p.caller_start_ts == u64::MAX;
    Ok(TxnStatus::Uncommitted {
        lock,
        min_commit_ts_pushed: pushed,
    })
}

impl TxnEngine {
    /// `KvCheckTxnStatus` (TiKV `commands::CheckTxnStatus`).
    pub fn check_txn_status(
        &self,
        cm: &ConcurrencyManager,
        req: &kvrpcpb::CheckTxnStatusRequest,
        _region: RegionRange<'_>,
    ) -> kvrpcpb::CheckTxnStatusResponse {
        let mut new_max = req.lock_ts;
        if req.current_ts != u64::MAX {
            new_max = new_max.max(req.current_ts);
        }
        if req.caller_start_ts != u64::MAX {
            new_max = new_max.max(req.caller_start_ts);
        }
        cm.update_max_ts(new_max);
        let p = CheckParams {
            current_ts: req.current_ts,
            caller_start_ts: req.caller_start_ts,
            force_sync_commit: req.force_sync_commit,
            resolving_pessimistic_lock: req.resolving_pessimistic_lock,
            verify_is_primary: req.verify_is_primary,
            rollback_if_not_exist: req.rollback_if_not_exist,
        };
        let key = req.primary_key.as_ref();
        let res = self.run_write(cm, &[key], req.lock_ts, |txn| match txn.load_lock(key) {
            Some(lock) if lock.ts == req.lock_ts => check_lock_exists(txn, key, lock, &p),
            other => check_txn_status_missing_lock(
                txn,
                key,
                other,
                if p.rollback_if_not_exist {
                    MissingLockAction::ProtectedRollback
                } else {
                    MissingLockAction::ReturnError
                },
                p.resolving_pessimistic_lock,
            ),
        });
        let mut resp = kvrpcpb::CheckTxnStatusResponse::default();
        match res {
            Ok(status) => match status {
                TxnStatus::Committed(ts) => resp.commit_version = ts,
                TxnStatus::RolledBack => resp.action = Action::NoAction as i32,
                TxnStatus::TtlExpire => resp.action = Action::TtlExpireRollback as i32,
                TxnStatus::PessimisticRollBack => {
                    resp.action = Action::TtlExpirePessimisticRollback as i32
                }
                TxnStatus::LockNotExist => resp.action = Action::LockNotExistRollback as i32,
                TxnStatus::LockNotExistDoNothing => {
                    resp.action = Action::LockNotExistDoNothing as i32
                }
                TxnStatus::Uncommitted {
                    lock,
                    min_commit_ts_pushed,
                } => {
                    resp.lock_ttl = lock.ttl;
                    if min_commit_ts_pushed {
                        resp.action = Action::MinCommitTsPushed as i32;
                    }
                    resp.lock_info = Some(lock.lock_info(key));
                }
            },
            Err(e) => resp.error = Some(e.to_key_error()),
        }
        resp
    }

    /// `KvCheckSecondaryLocks` (TiKV `commands::CheckSecondaryLocks`).
    pub fn check_secondary_locks(
        &self,
        cm: &ConcurrencyManager,
        req: &kvrpcpb::CheckSecondaryLocksRequest,
        _region: RegionRange<'_>,
    ) -> kvrpcpb::CheckSecondaryLocksResponse {
        cm.update_max_ts(req.start_version);
        let start_ts = req.start_version;
        let res = self.run_write(cm, &req.keys, start_ts, |txn| {
            let mut locks = Vec::new();
            for key in &req.keys {
                let mut mismatch = None;
                // (status, need_rollback, overlapped write)
                let (status, need_rollback, overlapped) = match txn.load_lock(key) {
                    Some(lock) if lock.ts == start_ts => {
                        secondary_status_from_lock(txn, key, lock)?
                    }
                    other => {
                        mismatch = other;
                        secondary_determined(txn, key)
                    }
                };
                if need_rollback {
                    if let Some(l) = mismatch {
                        if start_ts >= l.min_commit_ts && l.use_async_commit {
                            let mut l = l;
                            l.rollback_ts.push(start_ts);
                            txn.put_lock(key, l);
                        }
                    }
                    let w = match overlapped {
                        Some((_, mut w)) => {
                            w.has_overlapped_rollback = true;
                            w
                        }
                        None => Write::new_rollback(start_ts, true),
                    };
                    txn.put_write(key, start_ts, w);
                    collapse_prev_rollback(txn, key);
                }
                match status {
                    SecondaryStatus::Locked(lock) => locks.push(lock.lock_info(key)),
                    SecondaryStatus::Committed(ts) => return Ok((Vec::new(), ts)),
                    SecondaryStatus::RolledBack => return Ok((Vec::new(), 0)),
                }
            }
            Ok((locks, 0))
        });
        let mut resp = kvrpcpb::CheckSecondaryLocksResponse::default();
        match res {
            Ok((locks, commit_ts)) => {
                resp.locks = locks;
                resp.commit_ts = commit_ts;
            }
            Err(e) => resp.error = Some(e.to_key_error()),
        }
        resp
    }
}

enum SecondaryStatus {
    Locked(Lock),
    Committed(Ts),
    RolledBack,
}

type SecondaryCheck = (SecondaryStatus, bool, Option<(Ts, Write)>);

/// TiKV `check_determined_txn_status` of check_secondary_locks.rs.
fn secondary_determined(txn: &MvccTxn<'_>, key: &[u8]) -> SecondaryCheck {
    match txn.commit_record(key) {
        TxnCommitRecord::SingleRecord { commit_ts, write } => {
            let s = if write.write_type != WriteType::Rollback {
                SecondaryStatus::Committed(commit_ts)
            } else {
                SecondaryStatus::RolledBack
            };
            (s, false, None)
        }
        TxnCommitRecord::OverlappedRollback { .. } => (SecondaryStatus::RolledBack, false, None),
        TxnCommitRecord::None { overlapped_write } => {
            (SecondaryStatus::RolledBack, true, overlapped_write)
        }
    }
}

/// TiKV `check_status_from_lock`.
fn secondary_status_from_lock(
    txn: &mut MvccTxn<'_>,
    key: &[u8],
    lock: Lock,
) -> TxnResult<SecondaryCheck> {
    if !lock.is_pessimistic_lock() {
        return Ok((SecondaryStatus::Locked(lock), false, None));
    }
    let det = secondary_determined(txn, key);
    txn.unlock_key(key, 0);
    if lock.is_locked_with_conflict && !det.1 {
        return Ok(det);
    }
    Ok((SecondaryStatus::RolledBack, true, det.2))
}
