//! [`MvccTxn`]: the write buffer of one command, and the actions shared by
//! several commands (commit-record lookup, commit of one key, rollback of a
//! lock, the missing-lock decision).
//!
//! Mirrors TiKV `src/storage/mvcc/txn.rs`, `src/storage/mvcc/reader/reader.rs`
//! (`get_txn_commit_record`), `src/storage/txn/actions/{commit,cleanup,
//! check_txn_status}.rs` (`commit`, `cleanup`, `rollback_lock`,
//! `check_txn_status_missing_lock`, `make_rollback`, `collapse_prev_rollback`).

use std::collections::HashMap;

use super::errors::{TxnError, TxnResult};
use super::store::{Modify, MvccStore};
use super::types::{Lock, LockType, Ts, TxnCommitRecord, Write, WriteType};

/// A lock released by a command (used to wake lock waiters).
#[derive(Clone, Debug)]
pub struct ReleasedLock {
    /// The key.
    pub key: Vec<u8>,
    /// The releasing transaction.
    pub start_ts: Ts,
    /// Its commit_ts (0 for a rollback).
    pub commit_ts: Ts,
}

/// The write buffer of a command for transaction `start_ts`. Reads see the
/// store plus the locks this command already changed (TiKV
/// `get_pending_lock_bytes`).
pub struct MvccTxn<'a> {
    /// The transaction the command acts for.
    pub start_ts: Ts,
    store: &'a MvccStore,
    pub(crate) modifies: Vec<Modify>,
    pending_locks: HashMap<Vec<u8>, Option<Lock>>,
    pub(crate) released: Vec<ReleasedLock>,
    pub(crate) mem_lock_keys: Vec<Vec<u8>>,
}

impl<'a> MvccTxn<'a> {
    /// A new empty buffer.
    pub fn new(store: &'a MvccStore, start_ts: Ts) -> MvccTxn<'a> {
        MvccTxn {
            start_ts,
            store,
            modifies: Vec::new(),
            pending_locks: HashMap::new(),
            released: Vec::new(),
            mem_lock_keys: Vec::new(),
        }
    }

    /// The underlying store.
    pub fn store(&self) -> &'a MvccStore {
        self.store
    }

    /// The key's lock, as this command left it so far.
    pub fn load_lock(&self, key: &[u8]) -> Option<Lock> {
        match self.pending_locks.get(key) {
            Some(l) => l.clone(),
            None => self.store.load_lock(key),
        }
    }

    /// Puts a lock.
    pub fn put_lock(&mut self, key: &[u8], lock: Lock) {
        self.pending_locks.insert(key.to_vec(), Some(lock.clone()));
        self.modifies.push(Modify::PutLock(key.to_vec(), lock));
    }

    /// Removes the key's lock (of this transaction) and records the release.
    pub fn unlock_key(&mut self, key: &[u8], commit_ts: Ts) {
        self.pending_locks.insert(key.to_vec(), None);
        self.modifies.push(Modify::DelLock(key.to_vec()));
        self.released.push(ReleasedLock {
            key: key.to_vec(),
            start_ts: self.start_ts,
            commit_ts,
        });
    }

    /// Puts a record at `commit_ts`.
    pub fn put_write(&mut self, key: &[u8], commit_ts: Ts, write: Write) {
        self.modifies
            .push(Modify::PutWrite(key.to_vec(), commit_ts, write));
    }

    /// Deletes the record at `commit_ts`.
    pub fn delete_write(&mut self, key: &[u8], commit_ts: Ts) {
        self.modifies
            .push(Modify::DelWrite(key.to_vec(), commit_ts));
    }

    /// Drops every buffered change (the command writes nothing).
    pub fn clear(&mut self) {
        self.modifies.clear();
        self.pending_locks.clear();
        self.released.clear();
    }

    /// The newest record with `commit_ts <= ts`.
    pub fn seek_write(&self, key: &[u8], ts: Ts) -> Option<(Ts, Write)> {
        self.store.seek_write(key, ts)
    }

    /// The commit record of this transaction on `key` (TiKV
    /// `get_txn_commit_record`).
    pub fn commit_record(&self, key: &[u8]) -> TxnCommitRecord {
        txn_commit_record(self.store, key, self.start_ts)
    }
}

/// Looks up the commit or rollback record of transaction `start_ts` on `key`
/// (TiKV `MvccReader::get_txn_commit_record`).
pub fn txn_commit_record(store: &MvccStore, key: &[u8], start_ts: Ts) -> TxnCommitRecord {
    store.with_key(key, |d| {
        let Some(d) = d else {
            return TxnCommitRecord::None {
                overlapped_write: None,
            };
        };
        let mut overlapped = None;
        let mut newer: Option<Ts> = None;
        for (commit_ts, w) in d.writes.range(start_ts..).rev().map(|(c, w)| (*c, w)) {
            if w.start_ts == start_ts {
                return TxnCommitRecord::SingleRecord {
                    commit_ts,
                    write: w.clone(),
                };
            }
            if commit_ts == start_ts {
                if w.has_overlapped_rollback {
                    return TxnCommitRecord::OverlappedRollback { commit_ts };
                }
                let mut w = w.clone();
                // TiKV's gc_fence of an overlapped write: the next newer version's commit_ts.
                w.gc_fence = Some(newer.unwrap_or(0));
                overlapped = Some((commit_ts, w));
            }
            newer = Some(commit_ts);
        }
        TxnCommitRecord::None {
            overlapped_write: overlapped,
        }
    })
}

/// Commits one key (TiKV `actions::commit::commit`).
pub fn commit_key(txn: &mut MvccTxn<'_>, key: &[u8], commit_ts: Ts) -> TxnResult<()> {
    match txn.load_lock(key) {
        Some(lock) if lock.ts == txn.start_ts => {
            if commit_ts < lock.min_commit_ts {
                return Err(TxnError::CommitTsExpired {
                    start_ts: txn.start_ts,
                    commit_ts,
                    key: key.to_vec(),
                    min_commit_ts: lock.min_commit_ts,
                });
            }
            let Some(wt) = WriteType::from_lock_type(lock.lock_type) else {
                // A stale pessimistic lock: just unlock it.
                txn.unlock_key(key, 0);
                return Ok(());
            };
            let mut write = Write::new(wt, txn.start_ts, lock.value.clone());
            if lock.rollback_ts.contains(&commit_ts) {
                write.has_overlapped_rollback = true;
            }
            txn.put_write(key, commit_ts, write);
            txn.unlock_key(key, commit_ts);
            Ok(())
        }
        _ => match txn.commit_record(key).committed_ts() {
            Some(_) => Ok(()),
            None => Err(TxnError::TxnLockNotFound {
                start_ts: txn.start_ts,
                commit_ts,
                key: key.to_vec(),
            }),
        },
    }
}

/// A rollback record, or the flag on an overlapped record (TiKV
/// `make_rollback`).
fn make_rollback(start_ts: Ts, protected: bool, overlapped: Option<(Ts, Write)>) -> Option<Write> {
    match overlapped {
        Some((_, mut w)) => {
            if protected {
                w.has_overlapped_rollback = true;
                Some(w)
            } else {
                None
            }
        }
        None => Some(Write::new_rollback(start_ts, protected)),
    }
}

/// Deletes the newest unprotected rollback at or below start_ts (TiKV
/// `collapse_prev_rollback`).
pub fn collapse_prev_rollback(txn: &mut MvccTxn<'_>, key: &[u8]) {
    if let Some((commit_ts, w)) = txn.seek_write(key, txn.start_ts) {
        if w.write_type == WriteType::Rollback && !w.protected {
            txn.delete_write(key, commit_ts);
        }
    }
}

/// Rolls back this transaction's `lock` on `key` (TiKV `rollback_lock`):
/// protected iff the key is the primary or the lock is pipelined.
pub fn rollback_lock(
    txn: &mut MvccTxn<'_>,
    key: &[u8],
    lock: &Lock,
    collapse: bool,
) -> TxnResult<()> {
    let overlapped = match txn.commit_record(key) {
        TxnCommitRecord::None { overlapped_write } => overlapped_write,
        TxnCommitRecord::SingleRecord { write, commit_ts }
            if write.write_type != WriteType::Rollback =>
        {
            return Err(TxnError::Other(format!(
                "txn record found but not expected: start_ts={} commit_ts={commit_ts}",
                txn.start_ts
            )));
        }
        _ => {
            txn.unlock_key(key, 0);
            return Ok(());
        }
    };
    let protected = key == lock.primary.as_slice() || lock.generation > 0;
    let ts = txn.start_ts;
    if let Some((commit_ts, w)) = overlapped.clone() {
        if let Some(w) = make_rollback(ts, protected, Some((commit_ts, w))) {
            txn.put_write(key, commit_ts, w);
        }
    } else if let Some(w) = make_rollback(ts, protected, None) {
        txn.put_write(key, ts, w);
    }
    if collapse {
        collapse_prev_rollback(txn, key);
    }
    txn.unlock_key(key, 0);
    Ok(())
}

/// What to do when the transaction's lock is missing (TiKV `MissingLockAction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingLockAction {
    /// Write an unprotected rollback (collapsing the previous one).
    Rollback,
    /// Write a protected rollback.
    ProtectedRollback,
    /// Return `TxnNotFound`.
    ReturnError,
}

/// The status decided for a transaction (TiKV `TxnStatus`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnStatus {
    /// Committed at the ts.
    Committed(Ts),
    /// A rollback record exists.
    RolledBack,
    /// The lock's TTL expired and it was rolled back now.
    TtlExpire,
    /// A pessimistic primary expired and was removed without a record.
    PessimisticRollBack,
    /// No lock and no record; a rollback was written.
    LockNotExist,
    /// No lock and no record; nothing done (`resolving_pessimistic_lock`).
    LockNotExistDoNothing,
    /// The lock is alive.
    Uncommitted {
        /// The primary lock.
        lock: Lock,
        /// Whether `min_commit_ts` was pushed (or the caller asked with MAX).
        min_commit_ts_pushed: bool,
    },
}

/// Decides the status when this transaction's lock is missing on `key`
/// (TiKV `check_txn_status_missing_lock`). `mismatch_lock` is another
/// transaction's lock found on the key.
pub fn check_txn_status_missing_lock(
    txn: &mut MvccTxn<'_>,
    key: &[u8],
    mismatch_lock: Option<Lock>,
    action: MissingLockAction,
    resolving_pessimistic_lock: bool,
) -> TxnResult<TxnStatus> {
    match txn.commit_record(key) {
        TxnCommitRecord::SingleRecord { commit_ts, write } => {
            if write.write_type == WriteType::Rollback {
                Ok(TxnStatus::RolledBack)
            } else {
                Ok(TxnStatus::Committed(commit_ts))
            }
        }
        TxnCommitRecord::OverlappedRollback { .. } => Ok(TxnStatus::RolledBack),
        TxnCommitRecord::None { overlapped_write } => {
            if action == MissingLockAction::ReturnError {
                return Err(TxnError::TxnNotFound {
                    start_ts: txn.start_ts,
                    key: key.to_vec(),
                });
            }
            if resolving_pessimistic_lock {
                return Ok(TxnStatus::LockNotExistDoNothing);
            }
            let protected = action == MissingLockAction::ProtectedRollback;
            if !protected {
                collapse_prev_rollback(txn, key);
            }
            if let (Some(l), None) = (mismatch_lock, overlapped_write.as_ref()) {
                mark_rollback_on_mismatching_lock(txn, key, l, protected);
            }
            let ts = txn.start_ts;
            match overlapped_write {
                Some((commit_ts, w)) => {
                    if let Some(w) = make_rollback(ts, protected, Some((commit_ts, w))) {
                        txn.put_write(key, commit_ts, w);
                    }
                }
                None => {
                    if let Some(w) = make_rollback(ts, protected, None) {
                        txn.put_write(key, ts, w);
                    }
                }
            }
            Ok(TxnStatus::LockNotExist)
        }
    }
}

/// Records our rollback on another async-commit transaction's lock, so that
/// if it commits at our start_ts its record is flagged (TiKV
/// `mark_rollback_on_mismatching_lock`).
fn mark_rollback_on_mismatching_lock(
    txn: &mut MvccTxn<'_>,
    key: &[u8],
    mut lock: Lock,
    protected: bool,
) {
    if !protected || txn.start_ts < lock.min_commit_ts || !lock.use_async_commit {
        return;
    }
    lock.rollback_ts.push(txn.start_ts);
    txn.put_lock(key, lock);
}

/// Rolls back this transaction on one key (TiKV `actions::cleanup::cleanup`).
/// `current_ts != 0` refuses to roll back a live lock; `protect_rollback`
/// selects the flavour for a missing lock.
pub fn cleanup_key(
    txn: &mut MvccTxn<'_>,
    key: &[u8],
    current_ts: Ts,
    protect_rollback: bool,
) -> TxnResult<()> {
    match txn.load_lock(key) {
        Some(lock) if lock.ts == txn.start_ts => {
            if current_ts != 0 && !lock.is_expired(current_ts) {
                return Err(TxnError::locked(lock.lock_info(key)));
            }
            rollback_lock(txn, key, &lock, !protect_rollback)
        }
        other => {
            let action = if protect_rollback {
                MissingLockAction::ProtectedRollback
            } else {
                MissingLockAction::Rollback
            };
            match check_txn_status_missing_lock(txn, key, other, action, false)? {
                TxnStatus::Committed(commit_ts) => Err(TxnError::Committed {
                    start_ts: txn.start_ts,
                    commit_ts,
                    key: key.to_vec(),
                }),
                _ => Ok(()),
            }
        }
    }
}

/// Whether `lt` is a data lock that blocks SI readers.
pub fn is_data_lock(lt: LockType) -> bool {
    matches!(lt, LockType::Put | LockType::Delete)
}
