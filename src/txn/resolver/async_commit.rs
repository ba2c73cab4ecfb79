//! Async-commit recovery (client-go `LockResolver.resolveAsyncCommitLock`,
//! `checkAllSecondaries`, `checkSecondaries`, `asyncResolveData.addKeys`,
//! `resolveAsyncResolveData`).
//!
//! An async-commit transaction is committed once *all* its keys are prewritten; its
//! primary lock lists the secondaries. When such a lock has expired, its fate is decided
//! from the secondaries: `CheckSecondaryLocks` is sent for all of them (split by region by
//! the shard layer; a secondary found unlocked gets a protected rollback so a late
//! prewrite fails), then
//!
//! - any secondary already **committed** → the transaction committed at that commit ts;
//! - a secondary **missing or rolled back** (fewer locks than keys) → roll back;
//! - every secondary still **locked** by the transaction → commit at the maximum of the
//!   primary's and the secondaries' `min_commit_ts`;
//! - a lock that is **not async-commit** (the transaction fell back to 2PC) → the caller
//!   checks the primary again with `force_sync_commit` (`Recovery::FellBack`).
//!
//! Then every key (secondaries and primary) is resolved to that outcome.

use std::sync::Arc;

use bytes::Bytes;
use tikv_tower_layers::typed::{send, SendOptions};
use tikv_tower_layers::{Error as LError, OpState};
use tikv_tower_proto::kvrpcpb;

use super::lock::Lock;
use super::resolve::key_error;
use super::status::TxnStatus;
use super::Inner;

/// The outcome of async-commit recovery.
#[derive(Debug, Clone)]
pub(crate) enum Recovery {
    /// Determined (committed or rolled back); the locks are resolved or being resolved.
    Done(TxnStatus),
    /// A secondary is not an async-commit lock: check the primary with
    /// `force_sync_commit` (client-go `nonAsyncCommitLock`).
    FellBack,
}

/// What `CheckSecondaryLocks` said about all the secondaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Secondaries {
    /// Committed at this ts (0 = rolled back); TiKV resolves the rest.
    Missing(u64),
    /// All locked: commit at this ts; these keys hold the locks.
    AllLocked(u64, Vec<Bytes>),
    /// A lock without async commit.
    FellBack,
}

/// client-go `asyncResolveData.addKeys` over the merged reply of all regions.
pub(crate) fn judge(
    txn_id: u64,
    primary_min_commit_ts: u64,
    expected: usize,
    resp: &kvrpcpb::CheckSecondaryLocksResponse,
) -> Result<Secondaries, LError> {
    if resp.commit_ts != 0 {
        if resp.commit_ts < primary_min_commit_ts {
            return Err(LError::ResolveLock(format!(
                "async commit recovery of txn {txn_id}: commit ts {} below min commit ts {}",
                resp.commit_ts, primary_min_commit_ts
            )));
        }
        return Ok(Secondaries::Missing(resp.commit_ts));
    }
    if resp.locks.len() < expected {
        return Ok(Secondaries::Missing(0));
    }
    let mut commit_ts = primary_min_commit_ts;
    let mut keys = Vec::with_capacity(resp.locks.len());
    for l in &resp.locks {
        if l.lock_version != txn_id {
            return Err(LError::ResolveLock(format!(
                "CheckSecondaryLocks of txn {txn_id} returned a lock of txn {}",
                l.lock_version
            )));
        }
        if !l.use_async_commit {
            return Ok(Secondaries::FellBack);
        }
        commit_ts = commit_ts.max(l.min_commit_ts);
        keys.push(l.key.clone());
    }
    Ok(Secondaries::AllLocked(commit_ts, keys))
}

impl Inner {
    /// client-go `checkAllSecondaries`.
    async fn check_all_secondaries(
        &self,
        op: &Arc<OpState>,
        lock: &Lock,
        primary: &kvrpcpb::LockInfo,
    ) -> Result<Secondaries, LError> {
        let mut keys = primary.secondaries.clone();
        keys.sort_unstable();
        keys.dedup();
        keys.retain(|k| *k != lock.primary);
        if keys.is_empty() {
            return Ok(Secondaries::AllLocked(primary.min_commit_ts, Vec::new()));
        }
        let expected = keys.len();
        let req = kvrpcpb::CheckSecondaryLocksRequest {
            keys,
            start_version: lock.txn_id,
            ..Default::default()
        };
        self.counters.check_secondary_locks();
        let resp = send(self.stack.clone(), req, SendOptions::op(op.clone())).await?;
        key_error(resp.error.clone(), "CheckSecondaryLocks")?;
        judge(lock.txn_id, primary.min_commit_ts, expected, &resp)
    }

    /// client-go `resolveAsyncCommitLock`. `in_background`: reads leave the cleanup to the
    /// resolve pool.
    pub(crate) async fn resolve_async_commit_lock(
        self: &Arc<Self>,
        op: &Arc<OpState>,
        lock: &Lock,
        mut status: TxnStatus,
        in_background: bool,
    ) -> Result<Recovery, LError> {
        let Some(primary) = status.primary_lock().cloned() else {
            return Err(LError::ResolveLock(format!(
                "async-commit txn {} without a primary lock",
                lock.txn_id
            )));
        };
        let mut keys: Vec<Bytes> = if status.is_determined() {
            primary.secondaries.clone()
        } else {
            match self.check_all_secondaries(op, lock, &primary).await? {
                Secondaries::FellBack => return Ok(Recovery::FellBack),
                Secondaries::Missing(commit_ts) => {
                    status.set_determined(commit_ts);
                    // TiKV resolved or protected the secondaries; resolve them all anyway
                    // (idempotent), as client-go does for determined statuses.
                    primary.secondaries.clone()
                }
                Secondaries::AllLocked(commit_ts, keys) => {
                    status.set_determined(commit_ts);
                    keys
                }
            }
        };
        if status.is_determined() {
            self.statuses.put(lock.txn_id, status.clone());
        }
        keys.push(lock.primary.clone());
        tracing::info!(
            txn = lock.txn_id,
            commit_ts = status.commit_ts(),
            "resolving async-commit locks"
        );
        if in_background {
            let this = self.clone();
            let bg_op = self.background_op(op);
            let (l, k, s) = (lock.clone(), keys.clone(), status.clone());
            if self.pool.try_spawn(async move {
                if let Err(e) = this.resolve_keys(&bg_op, &l, k, &s).await {
                    tracing::info!(txn = l.txn_id, error = %e, "async-commit cleanup failed");
                }
            }) {
                return Ok(Recovery::Done(status));
            }
        }
        self.resolve_keys(op, lock, keys, &status).await?;
        Ok(Recovery::Done(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(key: &str, ts: u64, min_commit: u64, async_commit: bool) -> kvrpcpb::LockInfo {
        kvrpcpb::LockInfo {
            key: Bytes::from(key.to_owned()),
            lock_version: ts,
            min_commit_ts: min_commit,
            use_async_commit: async_commit,
            ..Default::default()
        }
    }

    #[test]
    fn judging_the_secondaries() {
        let reply = |locks, commit_ts| kvrpcpb::CheckSecondaryLocksResponse {
            locks,
            commit_ts,
            ..Default::default()
        };
        // All locked: the max min-commit-ts wins.
        let all = reply(vec![lock("a", 5, 12, true), lock("b", 5, 17, true)], 0);
        assert_eq!(
            judge(5, 10, 2, &all).unwrap(),
            Secondaries::AllLocked(17, vec!["a".into(), "b".into()])
        );
        // One missing: rolled back.
        let missing = reply(vec![lock("a", 5, 12, true)], 0);
        assert_eq!(judge(5, 10, 2, &missing).unwrap(), Secondaries::Missing(0));
        // One committed: committed at its ts.
        assert_eq!(
            judge(5, 10, 2, &reply(vec![], 30)).unwrap(),
            Secondaries::Missing(30)
        );
        // A 2PC lock among them: fall back.
        let fell = reply(vec![lock("a", 5, 12, true), lock("b", 5, 0, false)], 0);
        assert_eq!(judge(5, 10, 2, &fell).unwrap(), Secondaries::FellBack);
        // Protocol violations are errors, not panics.
        assert!(judge(5, 10, 1, &reply(vec![lock("a", 6, 12, true)], 0)).is_err());
        assert!(judge(5, 40, 1, &reply(vec![], 30)).is_err());
    }
}
