//! The bounded pool of background resolves (client-go `asyncResolveTaskPool`,
//! `tryAsyncResolve`, `AsyncResolveLockSemaphoreLimit`).
//!
//! A read that learned a lock's fate does not wait for the lock to be cleaned up: the
//! cleanup (`ResolveLock` of a committed or rolled-back transaction, async-commit
//! recovery's `ResolveLock`s) runs in the background while the read retries with the
//! lock's version in `resolved_locks` / `committed_locks`. At most `limit` such tasks run
//! at once; when the pool is full (or closed) [`ResolvePool::try_spawn`] refuses and the
//! caller resolves in place. Tasks run in the store's task registry, so closing the store
//! aborts them.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::tasks::TaskRegistry;

/// client-go `AsyncResolveLockSemaphoreLimit`.
pub const ASYNC_RESOLVE_LIMIT: usize = 10_000;

/// The pool (see the [module docs](self)).
#[derive(Debug)]
pub struct ResolvePool {
    permits: Arc<Semaphore>,
    limit: u32,
    tasks: TaskRegistry,
    closed: AtomicBool,
}

impl ResolvePool {
    /// A pool of at most `limit` concurrent tasks (at least one) spawned in `tasks`.
    pub fn new(limit: usize, tasks: TaskRegistry) -> Self {
        let limit = u32::try_from(limit.clamp(1, Semaphore::MAX_PERMITS)).unwrap_or(u32::MAX);
        ResolvePool {
            permits: Arc::new(Semaphore::new(limit as usize)),
            limit,
            tasks,
            closed: AtomicBool::new(false),
        }
    }

    /// Starts `task` in the background if a slot is free; `false` (nothing started) when
    /// the pool is full or closed.
    pub fn try_spawn<F>(&self, task: F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            tracing::warn!("async resolve pool full; resolving in place");
            return false;
        };
        self.tasks
            .spawn("lock-resolve", async move {
                task.await;
                drop(permit);
            })
            .is_some()
    }

    /// Tasks running now.
    pub fn running(&self) -> usize {
        (self.limit as usize).saturating_sub(self.permits.available_permits())
    }

    /// Waits until no task runs (tests, shutdown).
    pub async fn idle(&self) {
        if let Ok(all) = self.permits.acquire_many(self.limit).await {
            drop(all);
        }
    }

    /// Refuses new tasks (running ones continue until the store closes).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// client-go TestTryAsyncResolve: a bounded pool accepts up to its limit, frees a slot
    /// when a task ends, and refuses everything once closed.
    #[tokio::test(start_paused = true)]
    async fn bounded_and_closable() {
        let pool = ResolvePool::new(5, TaskRegistry::new());
        let (tx, rx) = tokio::sync::watch::channel(false);
        for _ in 0..5 {
            let mut rx = rx.clone();
            assert!(pool.try_spawn(async move {
                let _ = rx.wait_for(|go| *go).await;
            }));
        }
        tokio::task::yield_now().await;
        assert_eq!(pool.running(), 5);
        assert!(!pool.try_spawn(async {}), "full");
        tx.send(true).unwrap();
        pool.idle().await;
        assert_eq!(pool.running(), 0);
        assert!(pool.try_spawn(tokio::time::sleep(Duration::from_millis(1))));
        pool.idle().await;
        pool.close();
        assert!(!pool.try_spawn(async {}), "closed");
    }
}
