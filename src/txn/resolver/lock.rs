//! Locks as the resolver sees them (client-go `txnlock.Lock`, `NewLock`).
//!
//! A [`Lock`] is the part of a `kvrpcpb::LockInfo` lock resolution needs. A *shared-lock
//! wrapper* (`Op::SharedLock`) is not a lock of any one transaction: it carries the
//! holders in `shared_lock_infos`, and only those are ever resolved ([`expand`] replaces
//! a wrapper by its holders, as client-go's callers do before `ResolveLocks`).

use bytes::Bytes;
use tikv_tower_proto::kvrpcpb::{self, Op};

/// One lock left by a transaction (client-go `txnlock.Lock`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lock {
    /// The locked key.
    pub key: Bytes,
    /// The transaction's primary key.
    pub primary: Bytes,
    /// The transaction's start ts (`lock_version`).
    pub txn_id: u64,
    /// Time to live in milliseconds from the start ts (0 = resolve now).
    pub ttl: u64,
    /// Number of keys the transaction writes (decides lite vs region-wide resolve).
    pub txn_size: u64,
    /// The lock type.
    pub lock_type: Op,
    /// Whether the transaction uses async commit.
    pub use_async_commit: bool,
    /// The pessimistic lock's for-update ts.
    pub lock_for_update_ts: u64,
    /// The lock's min commit ts.
    pub min_commit_ts: u64,
    /// Whether the lock belongs to a txn-file (pipelined) transaction.
    pub is_txn_file: bool,
}

impl Lock {
    /// The lock described by `info` (client-go `NewLock`). Unknown lock types read as
    /// `Op::Put` (a prewrite lock), the conservative choice.
    pub fn from_info(info: &kvrpcpb::LockInfo) -> Lock {
        Lock {
            key: info.key.clone(),
            primary: info.primary_lock.clone(),
            txn_id: info.lock_version,
            ttl: info.lock_ttl,
            txn_size: info.txn_size,
            lock_type: Op::try_from(info.lock_type).unwrap_or(Op::Put),
            use_async_commit: info.use_async_commit,
            lock_for_update_ts: info.lock_for_update_ts,
            min_commit_ts: info.min_commit_ts,
            is_txn_file: info.is_txn_file,
        }
    }

    /// A pessimistic (exclusive or shared) lock (client-go `Lock.IsPessimistic`).
    pub fn is_pessimistic(&self) -> bool {
        matches!(
            self.lock_type,
            Op::PessimisticLock | Op::SharedPessimisticLock
        )
    }

    /// A shared-lock wrapper, never resolved itself (client-go `Lock.IsShared`).
    pub fn is_shared(&self) -> bool {
        self.lock_type == Op::SharedLock
    }
}

impl From<&kvrpcpb::LockInfo> for Lock {
    fn from(info: &kvrpcpb::LockInfo) -> Lock {
        Lock::from_info(info)
    }
}

/// The locks to resolve for `infos`: each shared-lock wrapper is replaced by its holders
/// (a holder without a key gets the wrapper's key), other locks are kept; the wrapper
/// itself is dropped (client-go's callers: `ScanLocks`, the prewrite and pessimistic-lock
/// handlers, which expand `SharedLockInfos`).
pub fn expand(infos: &[kvrpcpb::LockInfo]) -> Vec<Lock> {
    let mut out = Vec::with_capacity(infos.len());
    for info in infos {
        let wrapper = info.lock_type == Op::SharedLock as i32;
        if wrapper || !info.shared_lock_infos.is_empty() {
            for holder in &info.shared_lock_infos {
                let mut lock = Lock::from_info(holder);
                if lock.key.is_empty() {
                    lock.key = info.key.clone();
                }
                if !lock.is_shared() {
                    out.push(lock);
                }
            }
            continue;
        }
        out.push(Lock::from_info(info));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_from_an_empty_info_has_ttl_zero() {
        // client-go TestNewLockZeroTTL.
        let l = Lock::from_info(&kvrpcpb::LockInfo::default());
        assert_eq!(l.ttl, 0);
        assert!(!l.is_pessimistic() && !l.is_shared());
    }

    #[test]
    fn shared_wrappers_expand_to_their_holders() {
        let holder = |ts: u64, op: Op| kvrpcpb::LockInfo {
            lock_version: ts,
            primary_lock: Bytes::from(format!("p{ts}")),
            lock_type: op as i32,
            ..Default::default()
        };
        let wrapper = kvrpcpb::LockInfo {
            key: Bytes::from_static(b"k"),
            lock_type: Op::SharedLock as i32,
            lock_version: 1,
            shared_lock_infos: vec![holder(10, Op::SharedPessimisticLock), holder(11, Op::Lock)],
            ..Default::default()
        };
        let plain = kvrpcpb::LockInfo {
            key: Bytes::from_static(b"x"),
            lock_version: 5,
            ..Default::default()
        };
        let got = expand(&[wrapper, plain]);
        let ids: Vec<u64> = got.iter().map(|l| l.txn_id).collect();
        assert_eq!(ids, [10, 11, 5]);
        assert!(got.iter().all(|l| !l.is_shared()));
        assert_eq!(got[0].key, "k");
        assert!(got[0].is_pessimistic());
        assert_eq!(got[1].lock_type, Op::Lock);
        // An empty wrapper yields nothing to resolve.
        let empty = kvrpcpb::LockInfo {
            lock_type: Op::SharedLock as i32,
            ..Default::default()
        };
        assert!(expand(&[empty]).is_empty());
    }
}
