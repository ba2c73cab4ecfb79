//! Deduplication of concurrent loads of the same key (Go's `singleflight.Group`, which
//! client-go's region cache uses for concurrent misses).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use futures::future::{BoxFuture, FutureExt, Shared};
use parking_lot::Mutex;

use crate::tasks::TaskRegistry;

type Flight<V> = Shared<BoxFuture<'static, Option<V>>>;

/// Runs at most one load per key at a time; concurrent callers share its result. The load
/// runs on a task spawned in the owner's [`TaskRegistry`], so it completes even if the
/// caller that started it goes away, and closing the registry stops it.
pub struct SingleFlight<K, V: Clone> {
    inflight: Arc<Mutex<HashMap<K, Flight<V>>>>,
    tasks: TaskRegistry,
}

impl<K, V: Clone> SingleFlight<K, V> {
    /// Loads spawned in `tasks` (under `name`).
    pub fn new(tasks: TaskRegistry) -> Self {
        SingleFlight {
            inflight: Arc::new(Mutex::new(HashMap::new())),
            tasks,
        }
    }

    /// The registry loads are spawned in.
    pub fn tasks(&self) -> &TaskRegistry {
        &self.tasks
    }
}

impl<K, V> SingleFlight<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The result of `load` for `key`, shared with every concurrent caller for the same
    /// key; `None` if the load task panicked, was stopped by closing the registry, or
    /// could not start because the registry is closed.
    pub async fn run<F>(&self, name: &'static str, key: K, load: impl FnOnce() -> F) -> Option<V>
    where
        F: Future<Output = V> + Send + 'static,
    {
        let flight = {
            let mut map = self.inflight.lock();
            match map.get(&key) {
                Some(f) => f.clone(),
                None => {
                    let inflight = self.inflight.clone();
                    let k = key.clone();
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    let load = load();
                    // Not spawned (closed registry) or aborted: `tx` is dropped, so the
                    // receiver ends with an error.
                    self.tasks.spawn(name, async move {
                        let _ = tx.send(load.await);
                    });
                    let fut: BoxFuture<'static, Option<V>> = async move {
                        let r = rx.await.ok();
                        inflight.lock().remove(&k);
                        r
                    }
                    .boxed();
                    let shared = fut.shared();
                    map.insert(key, shared.clone());
                    shared
                }
            }
        };
        flight.await
    }

    /// Number of loads in flight.
    pub fn len(&self) -> usize {
        self.inflight.lock().len()
    }

    /// Whether no load is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
