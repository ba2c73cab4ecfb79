//! Lock resolution for tools and the GC driver (client-go `LockResolver.BatchResolveLocks`,
//! `tikv.KVStore`'s `ScanLocks` / `resolveLocksForRange` of `gc.go`).
//!
//! - [`scan_locks`](super::LockResolver::scan_locks): `ScanLock` over a key range, region
//!   by region (the shard layer), shared-lock wrappers expanded into their holders;
//! - [`batch_resolve_locks`](super::LockResolver::batch_resolve_locks): every lock is
//!   treated as expired (`current_ts = u64::MAX`): each transaction's status is decided
//!   (async-commit ones through their secondaries, pessimistic locks rolled back), then
//!   one `ResolveLock` with `txn_infos` resolves them all in their region;
//! - [`resolve_range`](super::LockResolver::resolve_range): scan + batch resolve over a
//!   whole range, batch after batch (the GC's resolve-locks phase).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tikv_tower_layers::locate::RegionLocator;
use tikv_tower_layers::typed::{send, SendOptions};
use tikv_tower_layers::{Error as LError, KeyRange, OpState, RegionVerId, Target};
use tikv_tower_proto::kvrpcpb;

use super::async_commit::Recovery;
use super::lock::{expand, Lock};
use super::resolve::key_error;
use super::status::{CheckTxnStatus, StatusError};
use super::Inner;

/// Locks scanned per batch by [`LockResolver::resolve_range`](super::LockResolver::resolve_range) (client-go `gcScanLockLimit`).
pub const SCAN_LOCK_BATCH: u32 = 1024;

impl Inner {
    /// `ScanLock` of `[start, end)` (empty end = unbounded), locks with ts ≤
    /// `max_version`, at most `limit` (0 = all).
    pub(crate) async fn scan_locks(
        &self,
        op: &Arc<OpState>,
        start: Bytes,
        end: Bytes,
        max_version: u64,
        limit: u32,
    ) -> Result<Vec<Lock>, LError> {
        let req = kvrpcpb::ScanLockRequest {
            max_version,
            start_key: start.clone(),
            end_key: end.clone(),
            limit,
            ..Default::default()
        };
        let range = KeyRange {
            start,
            end,
            reverse: false,
            limit: (limit != 0).then_some(limit),
        };
        let opts = SendOptions::op(op.clone()).with_target(Target::Range(range));
        let resp = send(self.stack.clone(), req, opts).await?;
        key_error(resp.error, "ScanLock")?;
        Ok(expand(&resp.locks))
    }

    /// client-go `BatchResolveLocks`: `Ok(false)` when the region changed (the caller
    /// re-locates and retries).
    pub(crate) async fn batch_resolve_locks(
        self: &Arc<Self>,
        op: &Arc<OpState>,
        locks: &[Lock],
        region: RegionVerId,
    ) -> Result<bool, LError> {
        let mut infos: Vec<kvrpcpb::TxnInfo> = Vec::new();
        let mut seen: HashMap<u64, ()> = HashMap::new();
        for l in locks {
            if l.is_shared() {
                return Err(LError::ResolveLock(
                    "a shared-lock wrapper cannot be resolved; expand its holders".into(),
                ));
            }
            if seen.insert(l.txn_id, ()).is_some() {
                continue;
            }
            let check = |force_sync_commit| CheckTxnStatus {
                txn_id: l.txn_id,
                primary: l.primary.clone(),
                caller_start_ts: 0,
                current_ts: u64::MAX,
                rollback_if_not_exist: true,
                force_sync_commit,
                resolving_pessimistic_lock: l.is_pessimistic(),
                is_txn_file: l.is_txn_file,
            };
            let status = match self.txn_status(op, check(false)).await {
                Ok(s) => Some(s),
                Err(StatusError::PrimaryMismatch(_)) if l.is_pessimistic() => None,
                Err(e) => return Err(e.into()),
            };
            if l.is_pessimistic() {
                // Never committed by a resolver: roll it back (after the status check,
                // client-go tidb#45134).
                self.resolve_pessimistic_lock(op, l, None, status.is_some())
                    .await?;
                continue;
            }
            let Some(mut status) = status else { continue };
            if status.primary_lock().is_some_and(|p| p.use_async_commit) && !status.is_determined()
            {
                match self
                    .resolve_async_commit_lock(op, l, status.clone(), false)
                    .await?
                {
                    Recovery::Done(s) => {
                        infos.push(txn_info(l, s.commit_ts()));
                        continue;
                    }
                    Recovery::FellBack => {
                        status = self.txn_status(op, check(true)).await?;
                    }
                }
            }
            if status.ttl() != 0 {
                return Err(LError::ResolveLock(format!(
                    "txn {} still alive after a forced rollback: protocol violation",
                    l.txn_id
                )));
            }
            infos.push(txn_info(l, status.commit_ts()));
        }
        if infos.is_empty() {
            return Ok(true);
        }
        let req = kvrpcpb::ResolveLockRequest {
            txn_infos: infos,
            ..Default::default()
        };
        self.counters.resolve_lock();
        let opts = SendOptions::op(op.clone()).with_target(Target::Region(region));
        match send(self.stack.clone(), req, opts).await {
            Ok(resp) => key_error(resp.error, "ResolveLock").map(|()| true),
            Err(e) if e.is_stale_route() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Scans and batch-resolves every lock with ts ≤ `max_version` in `[start, end)`;
    /// returns how many locks were resolved.
    pub(crate) async fn resolve_range(
        self: &Arc<Self>,
        op: &Arc<OpState>,
        mut start: Bytes,
        end: Bytes,
        max_version: u64,
    ) -> Result<usize, LError> {
        let mut total = 0;
        loop {
            let locks = self
                .scan_locks(op, start.clone(), end.clone(), max_version, SCAN_LOCK_BATCH)
                .await?;
            let Some(last) = locks.last().map(|l| l.key.clone()) else {
                return Ok(total);
            };
            let mut by_region: Vec<(RegionVerId, Vec<Lock>)> = Vec::new();
            for l in &locks {
                let region = self.regions.locate_key(&l.key).await?.ver_id();
                match by_region.iter_mut().find(|(r, _)| *r == region) {
                    Some((_, v)) => v.push(l.clone()),
                    None => by_region.push((region, vec![l.clone()])),
                }
            }
            for (mut region, group) in by_region {
                while !self.batch_resolve_locks(op, &group, region).await? {
                    op.backoff(
                        tikv_tower_layers::BackoffKind::RegionMiss,
                        &"region changed",
                    )
                    .await?;
                    region = self.regions.locate_key(&group[0].key).await?.ver_id();
                }
                total += group.len();
            }
            if locks.len() < SCAN_LOCK_BATCH as usize {
                return Ok(total);
            }
            let mut next = last.to_vec();
            next.push(0);
            start = Bytes::from(next);
        }
    }
}

fn txn_info(l: &Lock, commit_ts: u64) -> kvrpcpb::TxnInfo {
    kvrpcpb::TxnInfo {
        txn: l.txn_id,
        status: commit_ts,
        is_txn_file: l.is_txn_file,
    }
}
