//! Cleaning up a transaction's locks once its status is known: `ResolveLock` (client-go
//! `LockResolver.resolveLock`, `batchLiteResolveLocks`, `resolveRegionLocks`).
//!
//! - **Lite** (the transaction is small: `txn_size` below the lite threshold, or the
//!   caller asks for it): only the keys met are resolved. The keys of one transaction met
//!   in one round are batched: one `ResolveLock` per region listing that region's keys
//!   (the shard layer groups them), not one RPC per key. A lock on the primary itself
//!   needs no RPC: `CheckTxnStatus` already committed or rolled it back.
//! - **Region-wide** (large transactions): one `ResolveLock` without keys to the lock's
//!   region resolves every lock of the transaction there. A region is resolved once per
//!   transaction and round (`clean_regions`, client-go `cleanRegions`).
//!
//! Identical concurrent resolves (same transaction, commit ts and keys or region) are
//! collapsed (client-go `reqCollapse`). A read does not wait for the cleanup: it runs in
//! the [`ResolvePool`](super::pool::ResolvePool), and in place when the pool is full.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use tikv_tower_layers::locate::RegionLocator;
use tikv_tower_layers::typed::{send, SendOptions};
use tikv_tower_layers::{Error as LError, OpState, RegionVerId, Target};
use tikv_tower_proto::kvrpcpb;

use super::lock::Lock;
use super::status::TxnStatus;
use super::Inner;

/// What a collapsed resolve is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ResolveKey {
    /// Lite: these keys of `txn`, committed at `commit` (0 = rollback).
    Keys {
        txn: u64,
        commit: u64,
        keys: Vec<Bytes>,
    },
    /// Region-wide: every lock of `txn` in the region.
    Region {
        txn: u64,
        commit: u64,
        region: RegionVerId,
    },
}

/// The commit ts a `ResolveLock` carries for `status` (0 = roll back).
fn commit_version(status: &TxnStatus) -> u64 {
    if status.is_committed() {
        status.commit_ts()
    } else {
        0
    }
}

/// The `ResolveLock` of `lock`'s transaction to `status` for `keys` (none: region-wide).
fn resolve_request(
    lock: &Lock,
    status: &TxnStatus,
    keys: Vec<Bytes>,
) -> kvrpcpb::ResolveLockRequest {
    kvrpcpb::ResolveLockRequest {
        start_version: lock.txn_id,
        commit_version: commit_version(status),
        keys,
        is_txn_file: lock.is_txn_file,
        ..Default::default()
    }
}

impl Inner {
    /// client-go `resolveRegionLocks` for an explicit key list: one `ResolveLock` per
    /// region (grouped by the shard layer), collapsed with identical concurrent ones.
    pub(crate) async fn resolve_keys(
        self: &Arc<Self>,
        op: &Arc<OpState>,
        lock: &Lock,
        mut keys: Vec<Bytes>,
        status: &TxnStatus,
    ) -> Result<(), LError> {
        keys.sort_unstable();
        keys.dedup();
        if keys.is_empty() {
            return Ok(());
        }
        let req = resolve_request(lock, status, keys.clone());
        let key = ResolveKey::Keys {
            txn: lock.txn_id,
            commit: req.commit_version,
            keys,
        };
        self.collapsed_resolve(op, key, req, None).await
    }

    /// client-go `resolveLock`: lite (the lock's key only) or region-wide.
    pub(crate) async fn resolve_lock(
        self: &Arc<Self>,
        op: &Arc<OpState>,
        lock: &Lock,
        status: &TxnStatus,
        lite: bool,
        clean_regions: &mut HashSet<RegionVerId>,
    ) -> Result<(), LError> {
        let lite = lite || lock.txn_size < self.config.lite_threshold;
        if lite {
            if lock.key == lock.primary {
                // Already committed / rolled back by CheckTxnStatus.
                return Ok(());
            }
            return self
                .resolve_keys(op, lock, vec![lock.key.clone()], status)
                .await;
        }
        let region = self.regions.locate_key(&lock.key).await?.ver_id();
        if clean_regions.contains(&region) {
            return Ok(());
        }
        let req = resolve_request(lock, status, Vec::new());
        let key = ResolveKey::Region {
            txn: lock.txn_id,
            commit: req.commit_version,
            region,
        };
        self.collapsed_resolve(op, key, req, Some(Target::Key(lock.key.clone())))
            .await?;
        clean_regions.insert(region);
        Ok(())
    }

    /// Sends one `ResolveLock` (to `target`, or split by its keys), collapsed with an
    /// identical one in flight (client-go `reqCollapse`).
    async fn collapsed_resolve(
        self: &Arc<Self>,
        op: &Arc<OpState>,
        key: ResolveKey,
        req: kvrpcpb::ResolveLockRequest,
        target: Option<Target>,
    ) -> Result<(), LError> {
        let this = self.clone();
        self.resolve_flight
            .run(key, 0, || {
                let (this, req) = (this.clone(), req.clone());
                let mut opts = SendOptions::op(op.clone());
                opts.target = target.clone();
                async move {
                    this.counters.resolve_lock();
                    let resp = send(this.stack.clone(), req, opts).await?;
                    key_error(resp.error, "ResolveLock")
                }
            })
            .await
    }

    /// client-go `batchLiteResolveLocks`: the small-transaction locks of one transaction
    /// met in this round, resolved with one request per region. For reads it runs in the
    /// background and its errors are only logged.
    pub(crate) async fn batch_lite_resolve(
        self: &Arc<Self>,
        op: &Arc<OpState>,
        lock: Lock,
        keys: Vec<Bytes>,
        status: TxnStatus,
        for_read: bool,
    ) -> Result<(), LError> {
        let keys: Vec<Bytes> = keys.into_iter().filter(|k| *k != lock.primary).collect();
        if keys.is_empty() {
            return Ok(());
        }
        if for_read {
            let this = self.clone();
            let bg_op = self.background_op(op);
            let (l, k, s) = (lock.clone(), keys.clone(), status.clone());
            let spawned = self.pool.try_spawn(async move {
                if let Err(e) = this.resolve_keys(&bg_op, &l, k, &s).await {
                    tracing::info!(txn = l.txn_id, error = %e, "background lite resolve failed");
                }
            });
            if spawned {
                return Ok(());
            }
            // Full pool: in place, errors ignored as the background path would.
            if let Err(e) = self.resolve_keys(op, &lock, keys, &status).await {
                tracing::info!(txn = lock.txn_id, error = %e, "lite resolve failed");
            }
            return Ok(());
        }
        self.resolve_keys(op, &lock, keys, &status).await
    }
}

/// `Err` for a reply's key error.
pub(crate) fn key_error(err: Option<kvrpcpb::KeyError>, what: &str) -> Result<(), LError> {
    match err {
        None => Ok(()),
        Some(e) => {
            tracing::warn!(?e, "{what} failed");
            Err(LError::Key(Box::new(e)))
        }
    }
}
