//! Transaction errors and their wire form.
//!
//! [`TxnError`] mirrors the variants of TiKV's `mvcc::ErrorInner` that a
//! client can observe; [`TxnError::to_key_error`] mirrors TiKV
//! `storage::errors::extract_key_error` (typed fields where kvproto has them,
//! the `abort` text otherwise, plus the `retryable` text for write conflicts
//! and missing commit locks).

use tikv_tower_proto::{deadlock, kvrpcpb};

use super::types::Ts;

/// A transactional error raised by a command.
#[derive(Clone, Debug, thiserror::Error)]
pub enum TxnError {
    /// Another transaction's lock blocks the operation.
    #[error("key is locked: {0:?}")]
    KeyIsLocked(Box<kvrpcpb::LockInfo>),
    /// A write conflict.
    #[error("write conflict: start_ts={start_ts} conflict_start_ts={conflict_start_ts} conflict_commit_ts={conflict_commit_ts} reason={reason:?}")]
    WriteConflict {
        /// The failing transaction.
        start_ts: Ts,
        /// The conflicting transaction's start_ts.
        conflict_start_ts: Ts,
        /// The conflicting record's commit_ts.
        conflict_commit_ts: Ts,
        /// The key.
        key: Vec<u8>,
        /// The failing transaction's primary.
        primary: Vec<u8>,
        /// Why.
        reason: kvrpcpb::write_conflict::Reason,
    },
    /// The key already exists (Insert / should-not-exist).
    #[error("key already exists")]
    AlreadyExist {
        /// The key.
        key: Vec<u8>,
    },
    /// Commit found neither the lock nor a commit record.
    #[error("txn lock not found: start_ts={start_ts} commit_ts={commit_ts}")]
    TxnLockNotFound {
        /// The transaction.
        start_ts: Ts,
        /// The attempted commit_ts.
        commit_ts: Ts,
        /// The key.
        key: Vec<u8>,
    },
    /// Heartbeat / check-txn-status found no transaction.
    #[error("txn not found: start_ts={start_ts}")]
    TxnNotFound {
        /// The transaction.
        start_ts: Ts,
        /// The primary key.
        key: Vec<u8>,
    },
    /// The commit_ts is below the lock's min_commit_ts.
    #[error("commit ts expired: start_ts={start_ts} commit_ts={commit_ts} min_commit_ts={min_commit_ts}")]
    CommitTsExpired {
        /// The transaction.
        start_ts: Ts,
        /// The attempted commit_ts.
        commit_ts: Ts,
        /// The key.
        key: Vec<u8>,
        /// The lock's min_commit_ts.
        min_commit_ts: Ts,
    },
    /// A deadlock was detected while waiting for a lock.
    #[error("deadlock: lock_ts={lock_ts}")]
    Deadlock {
        /// The ts of the lock waited for.
        lock_ts: Ts,
        /// The key waited for.
        lock_key: Vec<u8>,
        /// Hash of the key of the edge that closes the cycle.
        deadlock_key_hash: u64,
        /// The cycle.
        wait_chain: Vec<deadlock::WaitForEntry>,
    },
    /// An assertion of a mutation failed.
    #[error("assertion failed: start_ts={start_ts}")]
    AssertionFailed {
        /// The transaction.
        start_ts: Ts,
        /// The key.
        key: Vec<u8>,
        /// The failed assertion.
        assertion: kvrpcpb::Assertion,
        /// start_ts of the existing record (0 if none).
        existing_start_ts: Ts,
        /// commit_ts of the existing record (0 if none).
        existing_commit_ts: Ts,
    },
    /// `CheckTxnStatus` with `verify_is_primary` found a secondary's lock.
    #[error("primary mismatch")]
    PrimaryMismatch(Box<kvrpcpb::LockInfo>),
    /// A computed async-commit/1PC commit_ts exceeds `max_commit_ts`
    /// (internal: it makes prewrite fall back to 2PC).
    #[error("commit ts too large: {min_commit_ts}")]
    CommitTsTooLarge {
        /// The computed min_commit_ts.
        min_commit_ts: Ts,
    },
    /// A pessimistic lock expected by prewrite is missing.
    #[error("PessimisticLockNotFound {{ start_ts: {start_ts}, key: {key:?}, reason: {reason} }}")]
    PessimisticLockNotFound {
        /// The transaction.
        start_ts: Ts,
        /// The key.
        key: Vec<u8>,
        /// Why (TiKV `PessimisticLockNotFoundReason`).
        reason: &'static str,
    },
    /// `KvPessimisticLock` found its own rollback.
    #[error("PessimisticLockRolledBack {{ start_ts: {start_ts}, key: {key:?} }}")]
    PessimisticLockRolledBack {
        /// The transaction.
        start_ts: Ts,
        /// The key.
        key: Vec<u8>,
    },
    /// The transaction's own lock has the wrong type.
    #[error(
        "LockTypeNotMatch {{ start_ts: {start_ts}, key: {key:?}, pessimistic: {pessimistic} }}"
    )]
    LockTypeNotMatch {
        /// The transaction.
        start_ts: Ts,
        /// The key.
        key: Vec<u8>,
        /// Whether the found lock is pessimistic.
        pessimistic: bool,
    },
    /// Rollback of a committed transaction.
    #[error("Committed {{ start_ts: {start_ts}, commit_ts: {commit_ts}, key: {key:?} }} txn already committed")]
    Committed {
        /// The transaction.
        start_ts: Ts,
        /// Its commit_ts.
        commit_ts: Ts,
        /// The key.
        key: Vec<u8>,
    },
    /// `commit_ts <= start_ts` (or a resolve with such a pair).
    #[error("InvalidTxnTso {{ start_ts: {start_ts}, commit_ts: {commit_ts} }}")]
    InvalidTxnTso {
        /// The transaction.
        start_ts: Ts,
        /// The bad commit_ts.
        commit_ts: Ts,
    },
    /// A pipelined flush older than the lock present.
    #[error("GenerationOutOfOrder {{ generation: {generation}, key: {key:?}, lock_generation: {lock_generation} }}")]
    GenerationOutOfOrder {
        /// The flush's generation.
        generation: u64,
        /// The key.
        key: Vec<u8>,
        /// The present lock's generation.
        lock_generation: u64,
    },
    /// Any other failure (reported as `abort` text).
    #[error("{0}")]
    Other(String),
}

impl TxnError {
    /// The wire `KeyError` (TiKV `extract_key_error`).
    pub fn to_key_error(&self) -> kvrpcpb::KeyError {
        let mut ke = kvrpcpb::KeyError::default();
        match self {
            TxnError::KeyIsLocked(info) => ke.locked = Some((**info).clone()),
            TxnError::WriteConflict {
                start_ts,
                conflict_start_ts,
                conflict_commit_ts,
                key,
                primary,
                reason,
            } => {
                ke.conflict = Some(kvrpcpb::WriteConflict {
                    start_ts: *start_ts,
                    conflict_ts: *conflict_start_ts,
                    key: key.clone().into(),
                    primary: primary.clone().into(),
                    conflict_commit_ts: *conflict_commit_ts,
                    reason: *reason as i32,
                });
                ke.retryable = self.to_string();
            }
            TxnError::AlreadyExist { key } => {
                ke.already_exist = Some(kvrpcpb::AlreadyExist {
                    key: key.clone().into(),
                })
            }
            TxnError::TxnLockNotFound { key, .. } => {
                ke.retryable = self.to_string();
                ke.txn_lock_not_found = Some(kvrpcpb::TxnLockNotFound {
                    key: key.clone().into(),
                });
            }
            TxnError::TxnNotFound { start_ts, key } => {
                ke.txn_not_found = Some(kvrpcpb::TxnNotFound {
                    start_ts: *start_ts,
                    primary_key: key.clone().into(),
                })
            }
            TxnError::CommitTsExpired {
                start_ts,
                commit_ts,
                key,
                min_commit_ts,
            } => {
                ke.commit_ts_expired = Some(kvrpcpb::CommitTsExpired {
                    start_ts: *start_ts,
                    attempted_commit_ts: *commit_ts,
                    key: key.clone().into(),
                    min_commit_ts: *min_commit_ts,
                })
            }
            TxnError::Deadlock {
                lock_ts,
                lock_key,
                deadlock_key_hash,
                wait_chain,
            } => {
                ke.deadlock = Some(kvrpcpb::Deadlock {
                    lock_ts: *lock_ts,
                    lock_key: lock_key.clone().into(),
                    deadlock_key_hash: *deadlock_key_hash,
                    wait_chain: wait_chain.clone(),
                    ..Default::default()
                })
            }
            TxnError::AssertionFailed {
                start_ts,
                key,
                assertion,
                existing_start_ts,
                existing_commit_ts,
            } => {
                ke.assertion_failed = Some(kvrpcpb::AssertionFailed {
                    start_ts: *start_ts,
                    key: key.clone().into(),
                    assertion: *assertion as i32,
                    existing_start_ts: *existing_start_ts,
                    existing_commit_ts: *existing_commit_ts,
                })
            }
            TxnError::PrimaryMismatch(info) => {
                ke.primary_mismatch = Some(kvrpcpb::PrimaryMismatch {
                    lock_info: Some((**info).clone()),
                })
            }
            TxnError::CommitTsTooLarge { min_commit_ts } => {
                ke.commit_ts_too_large = Some(kvrpcpb::CommitTsTooLarge {
                    commit_ts: *min_commit_ts,
                })
            }
            _ => ke.abort = self.to_string(),
        }
        ke
    }
}

impl TxnError {
    /// A `KeyIsLocked` error.
    pub fn locked(info: kvrpcpb::LockInfo) -> TxnError {
        TxnError::KeyIsLocked(Box::new(info))
    }
}

/// Result alias of the engine's actions.
pub type TxnResult<T> = Result<T, TxnError>;
