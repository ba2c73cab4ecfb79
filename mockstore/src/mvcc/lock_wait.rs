//! Pessimistic-lock wait queues (TiKV `src/storage/lock_manager/lock_wait_context.rs`,
//! `lock_waiting_queue.rs`, `src/server/lock_manager/waiter_manager.rs`).
//!
//! A `KvPessimisticLock` that meets another transaction's lock registers a
//! waiter on the key (while still holding the key's latch, so the release
//! cannot be missed) and then waits without any latch. When the lock is
//! released (commit, rollback, pessimistic rollback, resolve), the waiter
//! with the smallest start_ts is woken at once and the remaining ones after
//! `wake_up_delay` (TiKV `wake-up-delay-duration`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::types::Ts;

/// What a woken waiter learns: who released the lock, and how long to wait
/// before acting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WakeUp {
    /// start_ts of the transaction that released the lock.
    pub conflict_start_ts: Ts,
    /// Its commit_ts (0 if it rolled back).
    pub conflict_commit_ts: Ts,
    /// Delay before the waiter proceeds (0 for the head of the queue).
    pub delay: Duration,
}

struct Waiter {
    id: u64,
    start_ts: Ts,
    tx: oneshot::Sender<WakeUp>,
}

/// The wait queues of all keys.
#[derive(Default)]
pub struct LockWaits {
    queues: Mutex<HashMap<Vec<u8>, Vec<Waiter>>>,
    next_id: AtomicU64,
}

impl LockWaits {
    /// No waiters.
    pub fn new() -> LockWaits {
        LockWaits::default()
    }

    /// Registers a waiter of transaction `start_ts` on `key`. Returns its id
    /// (for [`LockWaits::remove`]) and the receiver of its wake-up.
    pub fn register(&self, key: &[u8], start_ts: Ts) -> (u64, oneshot::Receiver<WakeUp>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.queues
            .lock()
            .entry(key.to_vec())
            .or_default()
            .push(Waiter { id, start_ts, tx });
        (id, rx)
    }

    /// Removes a waiter (after a timeout or a deadlock).
    pub fn remove(&self, key: &[u8], id: u64) {
        let mut q = self.queues.lock();
        if let Some(v) = q.get_mut(key) {
            v.retain(|w| w.id != id);
            if v.is_empty() {
                q.remove(key);
            }
        }
    }

    /// Wakes the waiters of `key` after a release by `start_ts`: the one with
    /// the smallest start_ts at once, the others after `delay`.
    pub fn wake(&self, key: &[u8], start_ts: Ts, commit_ts: Ts, delay: Duration) {
        let Some(mut waiters) = self.queues.lock().remove(key) else {
            return;
        };
        waiters.sort_by_key(|w| w.start_ts);
        for (i, w) in waiters.into_iter().enumerate() {
            let _ = w.tx.send(WakeUp {
                conflict_start_ts: start_ts,
                conflict_commit_ts: commit_ts,
                delay: if i == 0 { Duration::ZERO } else { delay },
            });
        }
    }

    /// The number of waiters on `key`.
    pub fn waiter_count(&self, key: &[u8]) -> usize {
        self.queues.lock().get(key).map_or(0, |v| v.len())
    }
}
