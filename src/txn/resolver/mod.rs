//! The lock resolver (client-go `txnkv/txnlock.LockResolver`).
//!
//! A read or write that meets a lock must learn whether the lock's transaction committed,
//! rolled back or is alive, clean up what is final, and wait for what is not. This module
//! does that for the store core:
//!
//! | module | what | client-go |
//! |---|---|---|
//! | [`lock`] | [`Lock`], shared-lock wrappers expanded to holders | `Lock`, `NewLock` |
//! | [`status`] | `CheckTxnStatus` with every field, `TxnNotFound` retry, `PrimaryMismatch` | `getTxnStatus`, `getTxnStatusFromLock` |
//! | [`cache`] | LRU of final statuses (2,048) | `saveResolved`, `getResolved` |
//! | [`read`] | the resolve loop, read (ignore / access) and write modes | `resolveLocks` |
//! | [`async_commit`] | recovery through `CheckSecondaryLocks` | `resolveAsyncCommitLock` |
//! | [`resolve`] | lite, batch-lite per region, region-wide `ResolveLock` | `resolveLock`, `batchLiteResolveLocks` |
//! | [`pessimistic`] | `PessimisticRollback` | `resolvePessimisticLock` |
//! | [`flight`] | collapsing identical concurrent checks and resolves | `reqCollapse` |
//! | [`pool`] | bounded background cleanup for reads | `asyncResolveTaskPool` |
//! | [`tools`] | `ScanLock`, `BatchResolveLocks`, range resolve for tools / GC | `BatchResolveLocks`, gc.go |
//! | [`expiry`] | expiry from the last TSO plus local elapsed time | `IsExpired`, `UntilExpired` |
//!
//! # Where it sits
//!
//! The resolver sends its own RPCs through the store's **plain stack**
//! ([`KvStore::plain_stack`]: no resolve-lock layer, so resolving never recurses); readers
//! get lock resolution from the **locking stack** built with it
//! ([`KvStore::stack_with_resolver`]), whose resolve-lock layer calls
//! [`LockResolver::resolve`](tikv_tower_layers::resolve_lock::LockResolver::resolve) and
//! waits (`BoTxnLockFast`, capped at the returned wait) or retries with the versions
//! learned in `Context.resolved_locks` / `committed_locks`. The resolver's RPCs share the
//! calling operation's [`OpState`] (backoff budget, deadline).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> tikv_tower::Result<()> {
//! use tikv_tower::store::{KvStore, StoreOptions};
//! use tikv_tower::txn::resolver::LockResolver;
//!
//! let cluster = tikv_tower_mockstore::MockCluster::builder().stores(1).build();
//! let store = KvStore::in_process(cluster, StoreOptions::txn()).await?;
//! let resolver = LockResolver::new(&store); // on store.plain_stack()
//! let _readers = store.stack_with_resolver(resolver.clone()); // reads resolve locks
//! store.close();
//! # Ok(()) }
//! ```

pub mod async_commit;
pub mod cache;
pub mod expiry;
pub mod flight;
pub mod lock;
pub mod pessimistic;
pub mod pool;
pub mod read;
pub mod resolve;
pub mod status;
pub mod tools;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tikv_tower_layers::resolve_lock::ResolveOutcome;
use tikv_tower_layers::{Error as LError, OpState, RegionVerId};
use tikv_tower_proto::kvrpcpb;

use crate::error::Result;
use crate::region_cache::RegionCache;
use crate::store::{KvStore, StoreStack};

pub use cache::RESOLVED_CACHE_SIZE;
pub use lock::{expand, Lock};
pub use read::{ResolveLockResult, ResolveLocksOptions};
pub use status::{CheckTxnStatus, TxnStatus};

/// Resolver settings.
#[derive(Debug, Clone)]
pub struct ResolverConfig {
    /// Transactions with fewer keys are resolved lite (only the keys met); client-go
    /// `ResolveLockLiteThreshold`.
    pub lite_threshold: u64,
    /// Final statuses cached (client-go `ResolvedCacheSize`).
    pub cache_capacity: usize,
    /// Background cleanups running at once (client-go `AsyncResolveLockSemaphoreLimit`).
    pub async_limit: usize,
    /// Backoff budget of a background cleanup (client-go `asyncResolveLockMaxBackoff`).
    pub async_max_backoff: Duration,
    /// Backoff budget of [`LockResolver::get_txn_status`] and the tool calls made without
    /// an operation (client-go `getTxnStatusMaxBackoff`).
    pub status_max_backoff: Duration,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        ResolverConfig {
            lite_threshold: 512,
            cache_capacity: RESOLVED_CACHE_SIZE,
            async_limit: pool::ASYNC_RESOLVE_LIMIT,
            async_max_backoff: Duration::from_millis(40_000),
            status_max_backoff: Duration::from_millis(20_000),
        }
    }
}

/// RPCs the resolver sent, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolverStats {
    /// `CheckTxnStatus` sent.
    pub check_txn_status: u64,
    /// `CheckSecondaryLocks` sent (once per recovery; split by region below).
    pub check_secondary_locks: u64,
    /// `ResolveLock` sent (before the split by region).
    pub resolve_lock: u64,
    /// `PessimisticRollback` sent.
    pub pessimistic_rollback: u64,
    /// Status checks and resolves that joined an identical one in flight.
    pub collapsed: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    check_txn_status: AtomicU64,
    check_secondary_locks: AtomicU64,
    resolve_lock: AtomicU64,
    pessimistic_rollback: AtomicU64,
}

impl Counters {
    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn check_txn_status(&self) {
        Self::bump(&self.check_txn_status)
    }
    pub(crate) fn check_secondary_locks(&self) {
        Self::bump(&self.check_secondary_locks)
    }
    pub(crate) fn resolve_lock(&self) {
        Self::bump(&self.resolve_lock)
    }
    pub(crate) fn pessimistic_rollback(&self) {
        Self::bump(&self.pessimistic_rollback)
    }
}

pub(crate) struct Inner {
    stack: StoreStack,
    regions: Arc<RegionCache>,
    clock: expiry::ExpiryClock,
    statuses: cache::StatusCache,
    status_flight: flight::Flight<CheckTxnStatus, TxnStatus, LError>,
    resolve_flight: flight::Flight<resolve::ResolveKey, (), LError>,
    pool: pool::ResolvePool,
    config: ResolverConfig,
    counters: Counters,
}

impl Inner {
    /// The operation state of a background cleanup started by `op` (its tags, its own
    /// budget: the caller does not wait for it).
    pub(crate) fn background_op(&self, op: &Arc<OpState>) -> Arc<OpState> {
        OpState::builder()
            .tags(op.tags().clone())
            .max_backoff(self.config.async_max_backoff)
            .build()
    }
}

/// The lock resolver (see the [module docs](self)).
pub struct LockResolver {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LockResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockResolver")
            .field("stats", &self.stats())
            .field("cached", &self.inner.statuses.len())
            .finish_non_exhaustive()
    }
}

impl LockResolver {
    /// A resolver over `store`'s plain stack, oracle, region cache and task registry
    /// (client-go `NewLockResolver`).
    pub fn new(store: &KvStore) -> Arc<LockResolver> {
        Self::with_config(store, ResolverConfig::default())
    }

    /// [`new`](Self::new) with explicit settings.
    pub fn with_config(store: &KvStore, config: ResolverConfig) -> Arc<LockResolver> {
        Arc::new(LockResolver {
            inner: Arc::new(Inner {
                stack: store.plain_stack(),
                regions: store.region_cache().clone(),
                clock: expiry::ExpiryClock::new(store.oracle().clone()),
                statuses: cache::StatusCache::new(config.cache_capacity),
                status_flight: flight::Flight::default(),
                resolve_flight: flight::Flight::default(),
                pool: pool::ResolvePool::new(config.async_limit, store.tasks().clone()),
                config,
                counters: Counters::default(),
            }),
        })
    }

    fn op(&self) -> Arc<OpState> {
        OpState::builder()
            .max_backoff(self.inner.config.status_max_backoff)
            .build()
    }

    /// client-go `ResolveLocksWithOpts`: one round over `locks` (shared-lock wrappers are
    /// expanded into their holders).
    pub async fn resolve_locks_with_opts(
        &self,
        op: &Arc<OpState>,
        locks: &[kvrpcpb::LockInfo],
        opts: ResolveLocksOptions,
    ) -> Result<ResolveLockResult> {
        Ok(self.inner.resolve_locks(op, expand(locks), opts).await?)
    }

    /// client-go `ResolveLocks` (writers): resolves what is final; `ttl_ms` > 0 means some
    /// lock is alive and the caller should wait.
    pub async fn resolve_locks(
        &self,
        op: &Arc<OpState>,
        caller_start_ts: u64,
        locks: &[kvrpcpb::LockInfo],
    ) -> Result<ResolveLockResult> {
        let opts = ResolveLocksOptions {
            caller_start_ts,
            ..Default::default()
        };
        self.resolve_locks_with_opts(op, locks, opts).await
    }

    /// client-go `ResolveLocksForRead`: ignorable / accessible lock versions are returned
    /// for `Context.resolved_locks` / `committed_locks`; cleanup runs in the background.
    pub async fn resolve_locks_for_read(
        &self,
        op: &Arc<OpState>,
        caller_start_ts: u64,
        locks: &[kvrpcpb::LockInfo],
        lite: bool,
    ) -> Result<ResolveLockResult> {
        let opts = ResolveLocksOptions {
            caller_start_ts,
            lite,
            for_read: true,
            ..Default::default()
        };
        self.resolve_locks_with_opts(op, locks, opts).await
    }

    /// client-go `GetTxnStatus`: the status of transaction `txn_id` with primary
    /// `primary`, rolling it back if its lock expired or is missing.
    pub async fn get_txn_status(
        &self,
        txn_id: u64,
        caller_start_ts: u64,
        primary: Bytes,
    ) -> Result<TxnStatus> {
        let current_ts = self
            .inner
            .clock
            .current_ts()
            .await
            .map_err(status::tso_error)?;
        let check = CheckTxnStatus {
            txn_id,
            primary,
            caller_start_ts,
            current_ts,
            rollback_if_not_exist: true,
            ..Default::default()
        };
        self.check_txn_status(&self.op(), check).await
    }

    /// One `CheckTxnStatus` exactly as given (cached final statuses answer first).
    pub async fn check_txn_status(
        &self,
        op: &Arc<OpState>,
        check: CheckTxnStatus,
    ) -> Result<TxnStatus> {
        self.inner
            .txn_status(op, check)
            .await
            .map_err(|e| LError::from(e).into())
    }

    /// The cached final status of `txn_id`, if any.
    pub fn cached_status(&self, txn_id: u64) -> Option<TxnStatus> {
        self.inner.statuses.get(txn_id)
    }

    /// client-go `BatchResolveLocks` (GC): resolves `locks`, all in `region`, treating
    /// them as expired. `Ok(false)`: the region changed, re-locate and retry.
    pub async fn batch_resolve_locks(
        &self,
        op: &Arc<OpState>,
        locks: &[Lock],
        region: RegionVerId,
    ) -> Result<bool> {
        Ok(self.inner.batch_resolve_locks(op, locks, region).await?)
    }

    /// `ScanLock` over `[start, end)` (empty end: to the end), locks with ts ≤
    /// `max_version`, at most `limit` (0: all), wrappers expanded.
    pub async fn scan_locks(
        &self,
        start: impl Into<Bytes>,
        end: impl Into<Bytes>,
        max_version: u64,
        limit: u32,
    ) -> Result<Vec<Lock>> {
        let op = self.op();
        Ok(self
            .inner
            .scan_locks(&op, start.into(), end.into(), max_version, limit)
            .await?)
    }

    /// Resolves every lock with ts ≤ `max_version` in `[start, end)` (the GC's
    /// resolve-locks phase); returns the number of locks resolved.
    pub async fn resolve_range(
        &self,
        op: &Arc<OpState>,
        start: impl Into<Bytes>,
        end: impl Into<Bytes>,
        max_version: u64,
    ) -> Result<usize> {
        Ok(self
            .inner
            .resolve_range(op, start.into(), end.into(), max_version)
            .await?)
    }

    /// RPCs sent so far.
    pub fn stats(&self) -> ResolverStats {
        let c = &self.inner.counters;
        ResolverStats {
            check_txn_status: c.check_txn_status.load(Ordering::Relaxed),
            check_secondary_locks: c.check_secondary_locks.load(Ordering::Relaxed),
            resolve_lock: c.resolve_lock.load(Ordering::Relaxed),
            pessimistic_rollback: c.pessimistic_rollback.load(Ordering::Relaxed),
            collapsed: self.inner.status_flight.joined() + self.inner.resolve_flight.joined(),
        }
    }

    /// Background cleanups running now.
    pub fn background_running(&self) -> usize {
        self.inner.pool.running()
    }

    /// Waits until no background cleanup runs.
    pub async fn wait_idle(&self) {
        self.inner.pool.idle().await
    }

    /// Refuses new background cleanups (client-go `LockResolver.Close`); running ones end
    /// with the store.
    pub fn close(&self) {
        self.inner.pool.close()
    }
}

impl tikv_tower_layers::resolve_lock::LockResolver for LockResolver {
    /// The resolve-lock layer's seam: client-go `ResolveLocksForRead` (not lite).
    async fn resolve(
        &self,
        locks: Vec<kvrpcpb::LockInfo>,
        caller_start_ts: u64,
        op: Arc<OpState>,
    ) -> std::result::Result<ResolveOutcome, LError> {
        let opts = ResolveLocksOptions {
            caller_start_ts,
            for_read: true,
            ..Default::default()
        };
        let r = self.inner.resolve_locks(&op, expand(&locks), opts).await?;
        Ok(ResolveOutcome {
            wait: Duration::from_millis(u64::try_from(r.ttl_ms).unwrap_or(0)),
            resolved: r.ignore_locks,
            committed: r.access_locks,
        })
    }
}
