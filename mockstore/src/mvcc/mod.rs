//! The transactional (percolator) engine of the mock TiKV.
//!
//! # Model
//! Like TiKV, every key has at most one **lock** (CF_LOCK) and a list of
//! **records** keyed by commit_ts (CF_WRITE): Put/Delete/Lock commit records
//! and Rollback records (at `commit_ts == start_ts`). A transaction
//! *prewrites* locks on all its keys, then *commits* the primary (which
//! decides the transaction) and the secondaries; readers at `ts` see the
//! newest Put/Delete record with `commit_ts <= ts` and are blocked by data
//! locks with `start_ts <= ts` (see [`reads`]). Async commit and 1PC decide
//! the commit_ts on the server from the per-store `max_ts` of the
//! [`ConcurrencyManager`].
//!
//! # Structure
//! [`TxnEngine`] holds one logical copy of the data ([`store::MvccStore`])
//! shared by every store of the cluster, per-key [`latches`], the
//! pessimistic-lock wait queues ([`lock_wait`]) and the deadlock detector
//! ([`deadlock`]). Each store passes its own [`ConcurrencyManager`]. The
//! commands are methods of [`TxnEngine`], one file per command group:
//! [`reads`], [`prewrite`], [`commit`], [`pessimistic`],
//! [`check_txn_status`], [`resolve`], [`gc`]. They take the kvrpcpb request
//! and the region's raw key range and return the full response with
//! `region_error` left unset (region checks are the caller's job).
//!
//! # Concurrency
//! A write command takes the latches of its keys, reads the store through
//! short read-locked look-ups, buffers its changes in a [`txn::MvccTxn`] and
//! applies them atomically; then it wakes lock waiters. No lock is held
//! across a whole request, and lock waiting holds no latch.
//!
//! The rules are TiKV's (`src/storage/txn/{actions,commands}`); each function
//! names the TiKV function it mirrors.
//!
//! # Known departures from TiKV
//! - Values live in the lock / record (no CF_DEFAULT); invisible to clients.
//! - Shared locks (`Op::SharedLock`, `Op::SharedPessimisticLock`) are
//!   rejected with `abort`.
//! - No `MaxTimestampNotSynced`, no `InvalidMaxTsUpdate` jump check, no
//!   `last_change_ts`, no old values for CDC.
//! - TiKV's automatic `skip_constraint_check` for large prewrites on empty
//!   ranges is not modelled (it never changes an outcome).
//! - `KvBufferBatchGet` does not raise `max_ts` (its signature takes no
//!   concurrency manager).
//! - Deadlock detection is local to the engine (one detector for the whole
//!   cluster, as if every store were the detector leader).

pub mod check_txn_status;
pub mod commit;
pub mod concurrency;
pub mod deadlock;
pub mod errors;
pub mod farmhash;
pub mod gc;
pub mod latches;
pub mod lock_wait;
pub mod pessimistic;
pub mod prewrite;
pub mod reads;
pub mod resolve;
pub mod store;
pub mod txn;
pub mod types;

use std::sync::Arc;
use std::time::Duration;

pub use concurrency::ConcurrencyManager;
pub use errors::{TxnError, TxnResult};
pub use types::{Lock, LockType, Ts, Write, WriteType};

use deadlock::DeadlockDetector;
use latches::Latches;
use lock_wait::LockWaits;
use store::MvccStore;
use txn::MvccTxn;

/// A region's key range in raw key space: `(start, end)`, empty `end` =
/// unbounded.
pub type RegionRange<'a> = (&'a [u8], &'a [u8]);

/// Tunables of the engine (TiKV defaults).
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The ceiling (and the default) of a pessimistic lock wait
    /// (`wait-for-lock-timeout`, 1 s); also the deadlock edge TTL.
    pub wait_for_lock_timeout: Duration,
    /// Delay before the remaining waiters of a released key are woken
    /// (`wake-up-delay-duration`, 20 ms).
    pub wake_up_delay: Duration,
    /// Number of latch slots.
    pub latch_slots: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            wait_for_lock_timeout: Duration::from_millis(1000),
            wake_up_delay: Duration::from_millis(20),
            latch_slots: 4096,
        }
    }
}

pub(crate) struct EngineInner {
    pub(crate) store: MvccStore,
    pub(crate) latches: Latches,
    pub(crate) waits: LockWaits,
    pub(crate) detector: DeadlockDetector,
    pub(crate) config: EngineConfig,
}

/// The transactional engine: the data of the whole cluster plus the lock
/// managers. Cheap to clone (shared).
#[derive(Clone)]
pub struct TxnEngine {
    pub(crate) inner: Arc<EngineInner>,
}

impl Default for TxnEngine {
    fn default() -> Self {
        TxnEngine::new(EngineConfig::default())
    }
}

impl std::fmt::Debug for TxnEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnEngine")
            .field("keys", &self.inner.store.len())
            .field("config", &self.inner.config)
            .finish()
    }
}

impl TxnEngine {
    /// An empty engine.
    pub fn new(config: EngineConfig) -> TxnEngine {
        TxnEngine {
            inner: Arc::new(EngineInner {
                store: MvccStore::new(),
                latches: Latches::new(config.latch_slots),
                waits: LockWaits::new(),
                detector: DeadlockDetector::new(config.wait_for_lock_timeout),
                config,
            }),
        }
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The raw storage (for inspection in tests and debugging).
    pub fn store(&self) -> &MvccStore {
        &self.inner.store
    }

    /// Runs a write command for transaction `start_ts` over `keys`: takes
    /// their latches, runs `f` on a fresh [`MvccTxn`], and on success applies
    /// the buffered changes, removes published memory locks and wakes the
    /// waiters of released locks. On error nothing is written.
    pub(crate) fn run_write<K, R>(
        &self,
        cm: &ConcurrencyManager,
        keys: &[K],
        start_ts: Ts,
        f: impl FnOnce(&mut MvccTxn<'_>) -> TxnResult<R>,
    ) -> TxnResult<R>
    where
        K: AsRef<[u8]>,
    {
        let inner = &*self.inner;
        let _latch = inner.latches.acquire(keys.iter().map(|k| k.as_ref()));
        let mut txn = MvccTxn::new(&inner.store, start_ts);
        let res = f(&mut txn);
        match res {
            Ok(r) => {
                self.finish(cm, txn);
                Ok(r)
            }
            Err(e) => {
                cm.remove_mem_locks(&txn.mem_lock_keys);
                Err(e)
            }
        }
    }

    /// Applies a command's buffer and wakes waiters (latches still held).
    pub(crate) fn finish(&self, cm: &ConcurrencyManager, txn: MvccTxn<'_>) {
        let inner = &*self.inner;
        let MvccTxn {
            modifies,
            released,
            mem_lock_keys,
            ..
        } = txn;
        inner.store.apply(modifies);
        cm.remove_mem_locks(&mem_lock_keys);
        let mut ended = Vec::new();
        for r in released {
            inner
                .waits
                .wake(&r.key, r.start_ts, r.commit_ts, inner.config.wake_up_delay);
            ended.push(r.start_ts);
        }
        ended.dedup();
        for ts in ended {
            inner.detector.clean_up(ts);
        }
    }
}

/// Clamps a request range `[start, end)` (empty `end` = unbounded) to a
/// region's range.
pub(crate) fn clamp_range(start: &[u8], end: &[u8], region: RegionRange<'_>) -> (Vec<u8>, Vec<u8>) {
    let lo = std::cmp::max(start, region.0).to_vec();
    let hi = match (end.is_empty(), region.1.is_empty()) {
        (true, _) => region.1.to_vec(),
        (false, true) => end.to_vec(),
        (false, false) => std::cmp::min(end, region.1).to_vec(),
    };
    (lo, hi)
}
