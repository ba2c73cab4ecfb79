//! The background tasks a store core starts, tracked so that closing the core stops them.
//!
//! A client keeps a few long-lived tasks: the PD membership refresh, the TSO dispatcher
//! and the low-resolution timestamp updater, one send and one receive loop per
//! BatchCommands stream. Each is spawned through a [`TaskRegistry`] instead of a bare
//! `tokio::spawn`; the registry keeps their handles, and [`TaskRegistry::close`] aborts
//! every one of them (and refuses later spawns), so no task outlives the
//! [`KvStore`](crate::store::KvStore) that owns the registry. Aborting drops each task's
//! future, which drops what it owns: gRPC request streams end, so the PD and the stores see
//! their streams closed.
//!
//! client-go counterpart: `KVStore.Close` cancelling the store's context and waiting on
//! its `sync.WaitGroup` of background goroutines.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use tikv_tower::tasks::TaskRegistry;
//!
//! let tasks = TaskRegistry::new();
//! tasks.spawn("forever", std::future::pending());
//! assert_eq!(tasks.running(), ["forever"]);
//! tasks.close();
//! tasks.join().await;
//! assert!(tasks.running().is_empty());
//! // A closed registry starts nothing.
//! assert!(tasks.spawn("late", async {}).is_none());
//! # }
//! ```

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::task::{AbortHandle, JoinHandle};

/// A set of spawned background tasks that can be stopped together (see the
/// [module docs](self)). Cheap to clone; clones share the set.
#[derive(Clone, Default)]
pub struct TaskRegistry {
    inner: Arc<Registry>,
}

#[derive(Default)]
struct Registry {
    closed: AtomicBool,
    tasks: Mutex<Vec<(&'static str, JoinHandle<()>)>>,
}

impl std::fmt::Debug for TaskRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskRegistry")
            .field("closed", &self.is_closed())
            .field("running", &self.running())
            .finish()
    }
}

impl TaskRegistry {
    /// An empty, open registry.
    pub fn new() -> Self {
        TaskRegistry::default()
    }

    /// Spawns `task` on the current tokio runtime and tracks it under `name`. Returns its
    /// abort handle, or `None` (nothing spawned) once the registry is closed.
    pub fn spawn<F>(&self, name: &'static str, task: F) -> Option<AbortHandle>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.is_closed() {
            return None;
        }
        let handle = tokio::spawn(task);
        let abort = handle.abort_handle();
        {
            let mut tasks = self.inner.tasks.lock();
            tasks.retain(|(_, h)| !h.is_finished());
            tasks.push((name, handle));
        }
        // A close between the check above and the push has not seen this task.
        if self.is_closed() {
            abort.abort();
        }
        Some(abort)
    }

    /// Stops every tracked task (aborts it: its future is dropped at its next await point)
    /// and refuses later spawns. Idempotent. Await [`join`](Self::join) to know they are
    /// gone.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        for (_, h) in self.inner.tasks.lock().iter() {
            h.abort();
        }
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Waits until every tracked task has finished (after [`close`](Self::close): until
    /// every abort has taken effect).
    pub async fn join(&self) {
        loop {
            let taken: Vec<_> = std::mem::take(&mut *self.inner.tasks.lock());
            if taken.is_empty() {
                return;
            }
            for (_, h) in taken {
                // Cancelled or panicked: either way the task is gone.
                let _ = h.await;
            }
        }
    }

    /// Names of the tracked tasks still running, in spawn order.
    pub fn running(&self) -> Vec<&'static str> {
        self.inner
            .tasks
            .lock()
            .iter()
            .filter(|(_, h)| !h.is_finished())
            .map(|(n, _)| *n)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn close_aborts_running_tasks_and_drops_their_state() {
        let tasks = TaskRegistry::new();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        tasks.spawn("holder", async move {
            let _tx = tx;
            std::future::pending::<()>().await;
        });
        tasks.spawn("done", async {});
        tokio::task::yield_now().await;
        assert_eq!(tasks.running(), ["holder"]);
        tasks.close();
        tasks.join().await;
        assert!(tasks.running().is_empty());
        // The aborted task's future was dropped, and with it the sender it owned.
        assert_eq!(rx.recv().await, None);
        assert!(tasks.spawn("late", async {}).is_none());
    }
}
