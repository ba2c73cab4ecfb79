//! Rolling back pessimistic locks (client-go `LockResolver.resolvePessimisticLock`).
//!
//! A pessimistic lock is never committed by a resolver: once its transaction is known
//! rolled back, expired, or the lock is stale (its primary answered `PrimaryMismatch`), it
//! is removed with `PessimisticRollback` — for the lock's key, or (with
//! `pessimistic_region_resolve`) for every pessimistic lock of the transaction in the
//! lock's region, once per region. A lock on the primary itself needs no RPC:
//! `CheckTxnStatus` with `resolving_pessimistic_lock` already removed it.

use std::collections::HashSet;
use std::sync::Arc;

use tikv_tower_layers::locate::RegionLocator;
use tikv_tower_layers::typed::{send, SendOptions};
use tikv_tower_layers::{Error as LError, OpState, RegionVerId, Target};
use tikv_tower_proto::kvrpcpb;

use super::lock::Lock;
use super::Inner;

impl Inner {
    /// client-go `resolvePessimisticLock`. `clean_regions` is `Some` for a region-wide
    /// rollback (and remembers the regions done).
    pub(crate) async fn resolve_pessimistic_lock(
        self: &Arc<Self>,
        op: &Arc<OpState>,
        lock: &Lock,
        clean_regions: Option<&mut HashSet<RegionVerId>>,
        skip_primary: bool,
    ) -> Result<(), LError> {
        if skip_primary && lock.key == lock.primary {
            return Ok(());
        }
        let for_update_ts = match lock.lock_for_update_ts {
            0 => u64::MAX,
            ts => ts,
        };
        let mut req = kvrpcpb::PessimisticRollbackRequest {
            start_version: lock.txn_id,
            for_update_ts,
            ..Default::default()
        };
        let opts = SendOptions::op(op.clone());
        self.counters.pessimistic_rollback();
        let resp = match clean_regions {
            Some(done) => {
                let region = self.regions.locate_key(&lock.key).await?.ver_id();
                if done.contains(&region) {
                    return Ok(());
                }
                let opts = opts.with_target(Target::Key(lock.key.clone()));
                let resp = send(self.stack.clone(), req, opts).await?;
                if resp.errors.is_empty() {
                    done.insert(region);
                }
                resp
            }
            None => {
                req.keys = vec![lock.key.clone()];
                send(self.stack.clone(), req, opts).await?
            }
        };
        match resp.errors.into_iter().next() {
            None => Ok(()),
            Some(e) => {
                tracing::warn!(txn = lock.txn_id, ?e, "PessimisticRollback failed");
                Err(LError::Key(Box::new(e)))
            }
        }
    }
}
