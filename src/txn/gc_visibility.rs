//! The GC visibility check: a read at a ts below the txn safe point may see data GC has
//! already removed, so it is refused (client-go `KVStore.CheckVisibility`, the cache kept
//! by `runTxnSafePointUpdater` / `UpdateTxnSafePointCache`).
//!
//! The txn safe point is read from PD's `GetGCState` (of the client's keyspace under API
//! V2, cluster-wide otherwise) when the client starts and then every
//! [`POLL_INTERVAL`] (10 s; 1 s after a failure, client-go
//! `pollTxnSafePointQuickRepeatInterval`) by a background task registered in the store's
//! [`TaskRegistry`](crate::tasks::TaskRegistry), so closing the store stops it. A check
//! against a cache older than [`MAX_CACHE_AGE`] (90 s: client-go's 100 s
//! `GcStateCacheInterval` less its 10 s `gcCPUTimeInaccuracyBound`) fails with
//! [`Error::PdServerTimeout`] rather than trust a safe point that may have moved.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::pd::{PdClient, NULL_KEYSPACE_ID};

/// How often the txn safe point is polled (client-go `pollTxnSafePointInterval`).
pub const POLL_INTERVAL: Duration = Duration::from_secs(10);
/// How soon a failed poll is repeated (client-go `pollTxnSafePointQuickRepeatInterval`).
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// The oldest cache a check trusts (client-go `GcStateCacheInterval -
/// gcCPUTimeInaccuracyBound`).
pub const MAX_CACHE_AGE: Duration = Duration::from_secs(90);

/// The cached txn safe point and when it was read (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct TxnSafePointCache {
    inner: Arc<Mutex<(u64, Instant)>>,
}

impl TxnSafePointCache {
    /// A cache holding `safe_point` read `at`.
    pub fn new(safe_point: u64, at: Instant) -> Self {
        TxnSafePointCache {
            inner: Arc::new(Mutex::new((safe_point, at))),
        }
    }

    /// Loads the txn safe point once, then keeps it fresh in a task of `pd`'s registry.
    pub async fn start(pd: PdClient, keyspace_id: Option<u32>) -> Result<Self> {
        let keyspace = keyspace_id.unwrap_or(NULL_KEYSPACE_ID);
        let first = load(&pd, keyspace).await?;
        let cache = TxnSafePointCache::new(first, Instant::now());
        let bg = cache.clone();
        let tasks = pd.tasks().clone();
        tasks.spawn("txn-safe-point-updater", async move {
            let mut wait = POLL_INTERVAL;
            loop {
                tokio::time::sleep(wait).await;
                match load(&pd, keyspace).await {
                    Ok(sp) => {
                        bg.update(sp, Instant::now());
                        wait = POLL_INTERVAL;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "loading the txn safe point failed");
                        wait = RETRY_INTERVAL;
                    }
                }
            }
        });
        Ok(cache)
    }

    /// Replaces the cached safe point (client-go `KVStore.UpdateTxnSafePointCache`).
    pub fn update(&self, safe_point: u64, now: Instant) {
        *self.inner.lock() = (safe_point, now);
    }

    /// The cached safe point and when it was read.
    pub fn get(&self) -> (u64, Instant) {
        *self.inner.lock()
    }

    /// Fails when `start_ts` may read GC-ed data (client-go `KVStore.CheckVisibility`):
    /// [`Error::PdServerTimeout`] when the cache is older than [`MAX_CACHE_AGE`],
    /// [`Error::TxnAbortedByGc`] when `start_ts` is below the safe point.
    pub fn check_visibility(&self, start_ts: u64) -> Result<()> {
        let (safe_point, at) = self.get();
        if at.elapsed() > MAX_CACHE_AGE {
            return Err(Error::PdServerTimeout(
                "start timestamp may fall behind safe point".into(),
            ));
        }
        if start_ts < safe_point {
            return Err(Error::TxnAbortedByGc {
                start_ts,
                safe_point,
            });
        }
        Ok(())
    }
}

async fn load(pd: &PdClient, keyspace_id: u32) -> Result<u64> {
    Ok(pd.get_gc_state(keyspace_id, true).await?.txn_safe_point)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn refuses_below_safe_point_and_stale_cache() {
        let cache = TxnSafePointCache::new(100, Instant::now());
        assert!(cache.check_visibility(100).is_ok());
        assert!(matches!(
            cache.check_visibility(99),
            Err(Error::TxnAbortedByGc {
                start_ts: 99,
                safe_point: 100
            })
        ));
        tokio::time::advance(MAX_CACHE_AGE + Duration::from_millis(1)).await;
        let err = cache.check_visibility(1_000).unwrap_err();
        assert!(err.is_pd_server_timeout(), "{err:?}");
        cache.update(100, Instant::now());
        assert!(cache.check_visibility(1_000).is_ok());
    }
}
