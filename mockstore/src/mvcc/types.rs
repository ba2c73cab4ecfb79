//! The records of the three column families: [`Lock`] (CF_LOCK) and
//! [`Write`] (CF_WRITE, with the value inlined: the mock has no separate
//! CF_DEFAULT because TiKV's short-value inlining is invisible to clients).
//!
//! Mirrors TiKV `components/txn_types/src/{lock,write,timestamp}.rs`.

use bytes::Bytes;
use tikv_tower_proto::kvrpcpb;

/// Timestamps are TSO values: `physical_ms << 18 | logical`.
pub type Ts = u64;

/// The physical (millisecond) part of a TSO timestamp.
pub fn physical(ts: Ts) -> u64 {
    ts >> 18
}

/// The kind of a lock (TiKV `LockType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockType {
    /// A prewritten Put (or Insert).
    Put,
    /// A prewritten Delete.
    Delete,
    /// A prewritten Lock (read lock, no data change).
    Lock,
    /// A pessimistic lock, acquired by `KvPessimisticLock`.
    Pessimistic,
}

impl LockType {
    /// The `Op` this lock type is reported as in `LockInfo.lock_type`.
    pub fn to_op(self) -> kvrpcpb::Op {
        match self {
            LockType::Put => kvrpcpb::Op::Put,
            LockType::Delete => kvrpcpb::Op::Del,
            LockType::Lock => kvrpcpb::Op::Lock,
            LockType::Pessimistic => kvrpcpb::Op::PessimisticLock,
        }
    }
}

/// A lock in CF_LOCK (TiKV `txn_types::Lock`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lock {
    /// The lock type.
    pub lock_type: LockType,
    /// The primary key of the owning transaction.
    pub primary: Vec<u8>,
    /// The owning transaction's start_ts.
    pub ts: Ts,
    /// Time to live, in milliseconds, counted from `physical(ts)`.
    pub ttl: u64,
    /// The prewritten value (Put only).
    pub value: Option<Vec<u8>>,
    /// Non-zero for locks of pessimistic transactions.
    pub for_update_ts: Ts,
    /// The transaction size hint.
    pub txn_size: u64,
    /// The smallest commit_ts this lock may be committed at.
    pub min_commit_ts: Ts,
    /// Whether the transaction uses async commit.
    pub use_async_commit: bool,
    /// Whether the lock is an in-memory 1PC lock (never persisted).
    pub use_one_pc: bool,
    /// The secondaries of an async-commit transaction (primary lock only).
    pub secondaries: Vec<Bytes>,
    /// Start timestamps of other transactions rolled back on this key while
    /// the lock was held (protected rollbacks of async-commit locks).
    pub rollback_ts: Vec<Ts>,
    /// The pipelined-DML generation (0 for normal transactions).
    pub generation: u64,
    /// A pessimistic lock acquired in force-lock mode despite a newer write.
    pub is_locked_with_conflict: bool,
}

impl Lock {
    /// A new lock with the given type, primary, start_ts and ttl; every other
    /// field zero.
    pub fn new(lock_type: LockType, primary: Vec<u8>, ts: Ts, ttl: u64) -> Lock {
        Lock {
            lock_type,
            primary,
            ts,
            ttl,
            value: None,
            for_update_ts: 0,
            txn_size: 0,
            min_commit_ts: 0,
            use_async_commit: false,
            use_one_pc: false,
            secondaries: Vec::new(),
            rollback_ts: Vec::new(),
            generation: 0,
            is_locked_with_conflict: false,
        }
    }

    /// Whether this is a pessimistic lock.
    pub fn is_pessimistic_lock(&self) -> bool {
        self.lock_type == LockType::Pessimistic
    }

    /// Whether the owning transaction is pessimistic.
    pub fn is_pessimistic_txn(&self) -> bool {
        self.for_update_ts != 0
    }

    /// Whether the TTL has expired relative to `current_ts`
    /// (`physical(ts) + ttl < physical(current_ts)`).
    pub fn is_expired(&self, current_ts: Ts) -> bool {
        physical(self.ts).saturating_add(self.ttl) < physical(current_ts)
    }

    /// The wire `LockInfo` of this lock on `key` (TiKV `Lock::into_lock_info`).
    pub fn lock_info(&self, key: &[u8]) -> kvrpcpb::LockInfo {
        kvrpcpb::LockInfo {
            primary_lock: self.primary.clone().into(),
            lock_version: self.ts,
            key: key.to_vec().into(),
            lock_ttl: self.ttl,
            txn_size: self.txn_size,
            lock_type: self.lock_type.to_op() as i32,
            lock_for_update_ts: self.for_update_ts,
            use_async_commit: self.use_async_commit,
            min_commit_ts: self.min_commit_ts,
            secondaries: self.secondaries.clone(),
            ..Default::default()
        }
    }

    /// The `MvccLock` debug view.
    pub fn to_mvcc(&self) -> kvrpcpb::MvccLock {
        kvrpcpb::MvccLock {
            r#type: self.lock_type.to_op() as i32,
            start_ts: self.ts,
            primary: self.primary.clone().into(),
            short_value: self.value.clone().unwrap_or_default().into(),
            ttl: self.ttl,
            for_update_ts: self.for_update_ts,
            txn_size: self.txn_size,
            use_async_commit: self.use_async_commit,
            secondaries: self.secondaries.clone(),
            rollback_ts: self.rollback_ts.clone(),
            ..Default::default()
        }
    }
}

/// The kind of a commit record (TiKV `WriteType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteType {
    /// A committed Put.
    Put,
    /// A committed Delete.
    Delete,
    /// A committed Lock (no data change).
    Lock,
    /// A rollback record, at `commit_ts == start_ts`.
    Rollback,
}

impl WriteType {
    /// The write type a committed lock of `lt` produces (`None` for a
    /// pessimistic lock, which is never committed into a record).
    pub fn from_lock_type(lt: LockType) -> Option<WriteType> {
        match lt {
            LockType::Put => Some(WriteType::Put),
            LockType::Delete => Some(WriteType::Delete),
            LockType::Lock => Some(WriteType::Lock),
            LockType::Pessimistic => None,
        }
    }

    fn to_op(self) -> kvrpcpb::Op {
        match self {
            WriteType::Put => kvrpcpb::Op::Put,
            WriteType::Delete => kvrpcpb::Op::Del,
            WriteType::Lock => kvrpcpb::Op::Lock,
            WriteType::Rollback => kvrpcpb::Op::Rollback,
        }
    }
}

/// A commit or rollback record in CF_WRITE (TiKV `txn_types::Write`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// The record type.
    pub write_type: WriteType,
    /// The start_ts of the transaction that wrote it.
    pub start_ts: Ts,
    /// The value (Put only).
    pub value: Option<Vec<u8>>,
    /// Set when a rollback of another transaction happened at this record's
    /// commit_ts (the rollback could not be written as its own record).
    pub has_overlapped_rollback: bool,
    /// For a Rollback: whether it is protected (never collapsed).
    pub protected: bool,
    /// TiKV's GC fence, set together with an overlapped rollback.
    pub gc_fence: Option<Ts>,
}

impl Write {
    /// A new record of `write_type` for `start_ts`.
    pub fn new(write_type: WriteType, start_ts: Ts, value: Option<Vec<u8>>) -> Write {
        Write {
            write_type,
            start_ts,
            value,
            has_overlapped_rollback: false,
            protected: false,
            gc_fence: None,
        }
    }

    /// A rollback record for `start_ts`.
    pub fn new_rollback(start_ts: Ts, protected: bool) -> Write {
        Write {
            protected,
            ..Write::new(WriteType::Rollback, start_ts, None)
        }
    }

    /// Whether this record is a data version (Put or Delete).
    pub fn is_data(&self) -> bool {
        matches!(self.write_type, WriteType::Put | WriteType::Delete)
    }

    /// The `MvccWrite` debug view at `commit_ts`.
    pub fn to_mvcc(&self, commit_ts: Ts) -> kvrpcpb::MvccWrite {
        kvrpcpb::MvccWrite {
            r#type: self.write_type.to_op() as i32,
            start_ts: self.start_ts,
            commit_ts,
            short_value: self.value.clone().unwrap_or_default().into(),
            has_overlapped_rollback: self.has_overlapped_rollback,
            has_gc_fence: self.gc_fence.is_some(),
            gc_fence: self.gc_fence.unwrap_or(0),
            ..Default::default()
        }
    }
}

/// The answer of a commit-record lookup (TiKV `TxnCommitRecord`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnCommitRecord {
    /// No record of the transaction. `overlapped_write` is another
    /// transaction's record at `commit_ts == start_ts`, if any.
    None {
        /// The other transaction's record sitting at our start_ts.
        overlapped_write: Option<(Ts, Write)>,
    },
    /// The transaction's own record (commit or rollback).
    SingleRecord {
        /// The commit_ts of the record.
        commit_ts: Ts,
        /// The record.
        write: Write,
    },
    /// Another transaction's record at our start_ts carries our rollback.
    OverlappedRollback {
        /// Its commit_ts (= our start_ts).
        commit_ts: Ts,
    },
}

impl TxnCommitRecord {
    /// `Some(commit_ts)` if the record says committed.
    pub fn committed_ts(&self) -> Option<Ts> {
        match self {
            TxnCommitRecord::SingleRecord { commit_ts, write }
                if write.write_type != WriteType::Rollback =>
            {
                Some(*commit_ts)
            }
            _ => None,
        }
    }

    /// Whether the record says rolled back.
    pub fn is_rolled_back(&self) -> bool {
        match self {
            TxnCommitRecord::SingleRecord { write, .. } => write.write_type == WriteType::Rollback,
            TxnCommitRecord::OverlappedRollback { .. } => true,
            TxnCommitRecord::None { .. } => false,
        }
    }
}
