//! **Temporary** lock resolver for the read path, until the full one
//! (`crate::txn::resolver::LockResolver`, issue 10's lock-resolver half) is merged.
//!
//! It handles the simple cases only (the shape of client-go
//! `LockResolver.resolveLocks` without its caches, async-commit recovery or batching):
//! for each lock met, `CheckTxnStatus` on the primary (with the reader's start ts, so a
//! live optimistic lock gets its `min_commit_ts` pushed), then
//!
//! - committed at or before the read ts → the secondary is committed with a lite
//!   `ResolveLock` of the met key and the lock version is reported *committed* (the next
//!   attempt reads through other locks of that txn: `Context.committed_locks`);
//! - committed after the read ts, rolled back, or `min_commit_ts` pushed past the read ts
//!   → reported *resolved* (ignored by the next attempts: `Context.resolved_locks`);
//!   a rolled-back secondary is also cleaned with a lite `ResolveLock`;
//! - still alive → the time until its TTL expires is returned, the layer waits
//!   (`BoTxnLockFast`) and asks again;
//! - an expired async-commit lock needs `CheckSecondaryLocks` recovery, which this
//!   resolver does not do: it fails with a typed error instead of guessing.
//!
//! The switch to the full resolver is the one `type` alias [`ReadResolver`] in
//! `super::client`.

use std::sync::Arc;
use std::time::Duration;

use tikv_tower_layers::resolve_lock::{LockResolver, ResolveOutcome};
use tikv_tower_layers::typed::{self, SendOptions};
use tikv_tower_layers::{Error, OpState};
use tikv_tower_proto::kvrpcpb::{self, Action};

use crate::pd::Oracle;
use crate::store::{KvStore, StoreStack};

/// The interim resolver (see the [module docs](self)). Built from a [`KvStore`]: it
/// sends on the store's plain stack and reads time from the store's oracle.
#[derive(Clone)]
pub struct InterimResolver {
    stack: StoreStack,
    oracle: Oracle,
}

impl std::fmt::Debug for InterimResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterimResolver").finish_non_exhaustive()
    }
}

impl InterimResolver {
    /// A resolver on `store`'s plain stack (client-go `tikv.NewLockResolver`).
    pub fn new(store: &KvStore) -> Self {
        InterimResolver {
            stack: store.plain_stack(),
            oracle: store.oracle().clone(),
        }
    }

    async fn check_txn_status(
        &self,
        lock: &kvrpcpb::LockInfo,
        caller_start_ts: u64,
        op: &Arc<OpState>,
    ) -> Result<kvrpcpb::CheckTxnStatusResponse, Error> {
        let current_ts = self
            .oracle
            .get_timestamp()
            .await
            .map_err(|e| Error::ResolveLock(format!("no TSO for CheckTxnStatus: {e}")))?;
        let req = kvrpcpb::CheckTxnStatusRequest {
            primary_key: lock.primary_lock.clone(),
            lock_ts: lock.lock_version,
            caller_start_ts,
            current_ts,
            rollback_if_not_exist: true,
            ..Default::default()
        };
        let reply = typed::send(self.stack.clone(), req, SendOptions::op(op.clone())).await?;
        if let Some(e) = &reply.error {
            return Err(Error::Key(Box::new(e.clone())));
        }
        Ok(reply)
    }

    async fn resolve_key(
        &self,
        lock: &kvrpcpb::LockInfo,
        commit_ts: u64,
        op: &Arc<OpState>,
    ) -> Result<(), Error> {
        let req = kvrpcpb::ResolveLockRequest {
            start_version: lock.lock_version,
            commit_version: commit_ts,
            keys: vec![lock.key.clone()],
            ..Default::default()
        };
        let reply = typed::send(self.stack.clone(), req, SendOptions::op(op.clone())).await?;
        match reply.error {
            Some(e) => Err(Error::Key(Box::new(e))),
            None => Ok(()),
        }
    }
}

impl LockResolver for InterimResolver {
    async fn resolve(
        &self,
        locks: Vec<kvrpcpb::LockInfo>,
        caller_start_ts: u64,
        op: Arc<OpState>,
    ) -> Result<ResolveOutcome, Error> {
        let mut out = ResolveOutcome::default();
        let mut wait: Option<Duration> = None;
        for lock in &locks {
            let s = self.check_txn_status(lock, caller_start_ts, &op).await?;
            if s.commit_version > 0 {
                self.resolve_key(lock, s.commit_version, &op).await?;
                if s.commit_version <= caller_start_ts {
                    out.committed.push(lock.lock_version);
                } else {
                    out.resolved.push(lock.lock_version);
                }
            } else if s.lock_ttl == 0 {
                // Rolled back (or never written): clean the secondary we met.
                self.resolve_key(lock, 0, &op).await?;
                out.resolved.push(lock.lock_version);
            } else if s.action == Action::MinCommitTsPushed as i32
                || s.lock_info
                    .as_ref()
                    .is_some_and(|l| l.min_commit_ts > caller_start_ts)
            {
                out.resolved.push(lock.lock_version);
            } else {
                let left = self.oracle.until_expired(lock.lock_version, s.lock_ttl);
                if left <= 0 && s.lock_info.as_ref().is_some_and(|l| l.use_async_commit) {
                    return Err(Error::ResolveLock(format!(
                        "async-commit lock of txn {} expired: its recovery (CheckSecondaryLocks) \
                         needs the full lock resolver",
                        lock.lock_version
                    )));
                }
                let left = Duration::from_millis(left.max(1).unsigned_abs());
                wait = Some(wait.map_or(left, |w| w.min(left)));
            }
        }
        out.wait = wait.unwrap_or_default();
        Ok(out)
    }
}
