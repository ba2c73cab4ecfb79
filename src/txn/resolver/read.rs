//! The resolve loop (client-go `LockResolver.resolveLocks`, used by `ResolveLocks`,
//! `ResolveLocksForRead` and `ResolveLocksWithOpts`).
//!
//! For every lock met: find its transaction's status ([`status`](super::status)), then
//!
//! - alive (TTL left, not an expired async-commit lock) → wait: the result's `ttl_ms` is
//!   the shortest time until one of the live locks expires (client-go `txnExpireTime`);
//! - an expired **async-commit** lock → [`async_commit`](super::async_commit) recovery
//!   (once per transaction and round);
//! - a **pessimistic** lock → [`pessimistic`](super::pessimistic) rollback;
//! - a small transaction (or `lite`) → collected, then batch-lite resolved per
//!   transaction after the status pass;
//! - otherwise → region-wide `ResolveLock` ([`resolve`](super::resolve)).
//!
//! **For reads** (`for_read`) a lock need not be cleaned up before reading on: a
//! transaction that rolled back, whose `min_commit_ts` was pushed past the read ts, or that
//! committed after the read ts is *ignorable* (its version goes to `resolved_locks`); one
//! committed at or before the read ts is *accessible* (`committed_locks`: the server reads
//! the lock's value as committed). The cleanup then runs in the background pool. Writes
//! wait for every lock with TTL left.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use tikv_tower_layers::{Error as LError, OpState, RegionVerId};
use tikv_tower_proto::kvrpcpb::Action;

use super::async_commit::Recovery;
use super::lock::Lock;
use super::status::{StatusError, TxnStatus};
use super::Inner;

/// How to resolve (client-go `ResolveLocksOptions`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolveLocksOptions {
    /// The start ts of the transaction (or read) that met the locks.
    pub caller_start_ts: u64,
    /// Resolve only the keys met, whatever the transaction's size.
    pub lite: bool,
    /// A read: ignorable / accessible locks are reported instead of waited for, and the
    /// cleanup runs in the background.
    pub for_read: bool,
    /// Roll back every pessimistic lock of the transaction in the lock's region, not just
    /// the one met.
    pub pessimistic_region_resolve: bool,
}

/// What a round achieved (client-go `ResolveLockResult`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolveLockResult {
    /// Milliseconds until the earliest live lock expires (0: none left alive).
    pub ttl_ms: i64,
    /// Lock versions a read may ignore (`Context.resolved_locks`).
    pub ignore_locks: Vec<u64>,
    /// Lock versions a read may read through as committed (`Context.committed_locks`).
    pub access_locks: Vec<u64>,
}

/// The minimum time to expiry over the live locks (client-go `txnExpireTime`).
#[derive(Debug, Default, Clone, Copy)]
struct TxnExpire(Option<i64>);

impl TxnExpire {
    fn update(&mut self, ms: i64) {
        let ms = ms.max(0);
        self.0 = Some(self.0.map_or(ms, |cur| cur.min(ms)));
    }
    fn value(self) -> i64 {
        self.0.unwrap_or(0)
    }
}

/// One lock's verdict.
struct Verdict {
    status: TxnStatus,
    /// Collect for batch-lite resolve.
    lite: bool,
    /// A stale pessimistic lock, rolled back: neither ignorable nor to wait for.
    stale: bool,
}

impl Verdict {
    fn of(status: TxnStatus) -> Self {
        Verdict {
            status,
            lite: false,
            stale: false,
        }
    }
}

/// Per-round memory of what was already resolved.
#[derive(Default)]
struct Round {
    clean: HashMap<u64, HashSet<RegionVerId>>,
    pessimistic_clean: HashMap<u64, HashSet<RegionVerId>>,
}

/// The locks of one transaction waiting for a batch-lite resolve.
struct LiteBatch {
    first: Lock,
    status: TxnStatus,
    keys: Vec<Bytes>,
}

impl Inner {
    /// client-go `resolveLocks` (see the [module docs](self)).
    pub(crate) async fn resolve_locks(
        self: &Arc<Self>,
        op: &Arc<OpState>,
        locks: Vec<Lock>,
        opts: ResolveLocksOptions,
    ) -> Result<ResolveLockResult, LError> {
        let mut expire = TxnExpire::default();
        let mut round = Round::default();
        let mut lite: Vec<LiteBatch> = Vec::new();
        let mut ignore = Vec::new();
        let mut access = Vec::new();
        for l in locks {
            if l.is_shared() {
                // Only holders are resolved (callers expand wrappers); never the wrapper.
                tracing::warn!(key = ?l.key, "shared-lock wrapper passed to the resolver; skipped");
                continue;
            }
            let v = self.resolve_one(op, &l, &opts, &mut round).await?;
            if v.lite {
                match lite.iter_mut().find(|b| b.first.txn_id == l.txn_id) {
                    Some(b) => b.keys.push(l.key.clone()),
                    None => lite.push(LiteBatch {
                        keys: vec![l.key.clone()],
                        first: l.clone(),
                        status: v.status.clone(),
                    }),
                }
            }
            if v.stale {
                continue;
            }
            let s = &v.status;
            if !opts.for_read && s.ttl() != 0 {
                expire.update(self.clock.until_expired(l.txn_id, s.ttl()));
                continue;
            }
            if s.action() == Action::MinCommitTsPushed
                || s.is_rolled_back()
                || (s.is_committed() && s.commit_ts() > opts.caller_start_ts)
            {
                push_unique(&mut ignore, l.txn_id);
            } else if s.is_committed() {
                push_unique(&mut access, l.txn_id);
            } else {
                expire.update(self.clock.until_expired(l.txn_id, s.ttl()));
            }
        }
        for b in lite {
            self.batch_lite_resolve(op, b.first, b.keys, b.status, opts.for_read)
                .await?;
        }
        Ok(ResolveLockResult {
            ttl_ms: expire.value(),
            ignore_locks: ignore,
            access_locks: access,
        })
    }

    /// The `resolve` closure of client-go `resolveLocks`, as a loop (the async-commit
    /// fallback re-checks with `force_sync_commit` instead of recursing).
    async fn resolve_one(
        self: &Arc<Self>,
        op: &Arc<OpState>,
        l: &Lock,
        opts: &ResolveLocksOptions,
        round: &mut Round,
    ) -> Result<Verdict, LError> {
        let mut force_sync_commit = false;
        loop {
            let status = match self
                .status_from_lock(op, l, opts.caller_start_ts, force_sync_commit)
                .await
            {
                Ok(s) => s,
                Err(StatusError::PrimaryMismatch(k)) if l.is_pessimistic() => {
                    // A stale pessimistic lock: its primary belongs to another primary.
                    tracing::info!(txn = l.txn_id, ?k, "stale pessimistic lock rolled back");
                    let clean = opts
                        .pessimistic_region_resolve
                        .then(|| round.pessimistic_clean.entry(l.txn_id).or_default());
                    self.resolve_pessimistic_lock(op, l, clean, false).await?;
                    return Ok(Verdict {
                        status: TxnStatus::rolled_back(),
                        lite: false,
                        stale: true,
                    });
                }
                Err(e) => return Err(e.into()),
            };
            let async_primary = status.primary_lock().is_some_and(|p| p.use_async_commit);
            let expired = l.ttl == 0 || self.clock.is_expired(l.txn_id, status.ttl());
            let expired_async = async_primary && !force_sync_commit && expired;
            if status.ttl() != 0 && !expired_async {
                return Ok(Verdict::of(status));
            }
            let seen = round.clean.contains_key(&l.txn_id);
            if expired_async {
                if seen {
                    // Recovered earlier in this round: its outcome is cached.
                    return Ok(Verdict::of(self.statuses.get(l.txn_id).unwrap_or(status)));
                }
                round.clean.entry(l.txn_id).or_default();
                match self
                    .resolve_async_commit_lock(op, l, status, opts.for_read)
                    .await?
                {
                    Recovery::Done(s) => return Ok(Verdict::of(s)),
                    Recovery::FellBack => {
                        force_sync_commit = true;
                        continue;
                    }
                }
            }
            if l.is_pessimistic() {
                let clean = opts
                    .pessimistic_region_resolve
                    .then(|| round.pessimistic_clean.entry(l.txn_id).or_default());
                self.resolve_pessimistic_lock(op, l, clean, true).await?;
                return Ok(Verdict::of(status));
            }
            if opts.lite || l.txn_size < self.config.lite_threshold {
                return Ok(Verdict {
                    status,
                    lite: true,
                    stale: false,
                });
            }
            if opts.for_read {
                let this = self.clone();
                let bg_op = self.background_op(op);
                let (lock, s) = (l.clone(), status.clone());
                let spawned = self.pool.try_spawn(async move {
                    // Its own region set: the collapsing dedups concurrent cleanups.
                    let mut regions = HashSet::new();
                    if let Err(e) = this
                        .resolve_lock(&bg_op, &lock, &s, false, &mut regions)
                        .await
                    {
                        tracing::info!(txn = lock.txn_id, error = %e, "background resolve failed");
                    }
                });
                if spawned {
                    return Ok(Verdict::of(status));
                }
            }
            let regions = round.clean.entry(l.txn_id).or_default();
            self.resolve_lock(op, l, &status, false, regions).await?;
            return Ok(Verdict::of(status));
        }
    }
}

fn push_unique(v: &mut Vec<u64>, ts: u64) {
    if !v.contains(&ts) {
        v.push(ts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_is_the_earliest_expiry_never_negative() {
        let mut e = TxnExpire::default();
        assert_eq!(e.value(), 0);
        e.update(300);
        e.update(120);
        e.update(500);
        assert_eq!(e.value(), 120);
        e.update(-40);
        assert_eq!(e.value(), 0);
    }
}
