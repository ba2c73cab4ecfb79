//! The per-store concurrency manager (TiKV `components/concurrency_manager`).
//!
//! It holds two things:
//! - `max_ts`: the largest timestamp any reader (or a command TiKV counts as
//!   a reader) has used on this store. Async-commit and 1PC prewrites compute
//!   their commit-ts floor from it, so a transaction that commits without a
//!   TSO round-trip can never commit below a snapshot that was already read.
//! - the in-memory lock table: async-commit / 1PC locks are published here
//!   *while* their `min_commit_ts` is computed and until they are written,
//!   so a reader that raised `max_ts` before the computation is guaranteed to
//!   either see the lock here or see it in storage.
//!
//! Protocol: a reader first calls [`ConcurrencyManager::update_max_ts`], then
//! checks the in-memory table ([`ConcurrencyManager::read_key_check`] /
//! [`ConcurrencyManager::read_range_check`]), then reads storage. A prewrite
//! computes `min_commit_ts` and publishes the lock under the table's mutex
//! (`lock_key_with`), writes storage, and then removes the entry.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::store::range_bounds;
use super::types::{Lock, Ts};

#[derive(Debug, Default)]
struct Inner {
    max_ts: AtomicU64,
    mem_locks: Mutex<BTreeMap<Vec<u8>, Lock>>,
}

/// A store's concurrency manager. Cheap to clone (shared state).
#[derive(Clone, Debug, Default)]
pub struct ConcurrencyManager {
    inner: Arc<Inner>,
}

impl ConcurrencyManager {
    /// A manager with `max_ts = 0`.
    pub fn new() -> ConcurrencyManager {
        ConcurrencyManager::default()
    }

    /// The current `max_ts`.
    pub fn max_ts(&self) -> Ts {
        self.inner.max_ts.load(Ordering::SeqCst)
    }

    /// Raises `max_ts` to `ts` (`u64::MAX` is ignored, as in TiKV).
    pub fn update_max_ts(&self, ts: Ts) {
        if ts != u64::MAX {
            self.inner.max_ts.fetch_max(ts, Ordering::SeqCst);
        }
    }

    /// Runs `check` on the in-memory lock of `key`, if any.
    pub fn read_key_check<E>(
        &self,
        key: &[u8],
        check: impl FnOnce(&Lock) -> Result<(), E>,
    ) -> Result<(), E> {
        let t = self.inner.mem_locks.lock();
        match t.get(key) {
            Some(l) => check(l),
            None => Ok(()),
        }
    }

    /// Runs `check` on every in-memory lock in `[start, end)` (empty `end` =
    /// unbounded), stopping at the first error.
    pub fn read_range_check<E>(
        &self,
        start: &[u8],
        end: &[u8],
        mut check: impl FnMut(&[u8], &Lock) -> Result<(), E>,
    ) -> Result<(), E> {
        if !end.is_empty() && start >= end {
            return Ok(());
        }
        let t = self.inner.mem_locks.lock();
        for (k, l) in t.range(range_bounds(start, end)) {
            check(k, l)?;
        }
        Ok(())
    }

    /// The in-memory locks in `[start, end)`.
    pub fn mem_locks_in_range(&self, start: &[u8], end: &[u8]) -> Vec<(Vec<u8>, Lock)> {
        let mut out = Vec::new();
        let _ = self.read_range_check::<()>(start, end, |k, l| {
            out.push((k.to_vec(), l.clone()));
            Ok(())
        });
        out
    }

    /// Under the table's mutex: calls `f(max_ts)`; if it returns a lock, the
    /// lock is published for `key` (TiKV `KeyHandleGuard::with_lock`).
    pub(crate) fn lock_key_with<R>(
        &self,
        key: &[u8],
        f: impl FnOnce(Ts) -> (Option<Lock>, R),
    ) -> R {
        let mut t = self.inner.mem_locks.lock();
        let (lock, r) = f(self.max_ts());
        if let Some(l) = lock {
            t.insert(key.to_vec(), l);
        }
        r
    }

    /// Removes the in-memory locks of `keys`.
    pub(crate) fn remove_mem_locks(&self, keys: &[Vec<u8>]) {
        if keys.is_empty() {
            return;
        }
        let mut t = self.inner.mem_locks.lock();
        for k in keys {
            t.remove(k);
        }
    }
}
