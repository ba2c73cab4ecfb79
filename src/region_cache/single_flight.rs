//! Deduplication of concurrent loads of the same key (Go's `singleflight.Group`, which
//! client-go's region cache uses for concurrent misses).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use futures::future::{BoxFuture, FutureExt, Shared};
use parking_lot::Mutex;

type Flight<V> = Shared<BoxFuture<'static, Option<V>>>;

/// Runs at most one load per key at a time; concurrent callers share its result. The load
/// runs on a spawned task, so it completes even if the caller that started it goes away.
pub struct SingleFlight<K, V: Clone> {
    inflight: Arc<Mutex<HashMap<K, Flight<V>>>>,
}

impl<K, V: Clone> Default for SingleFlight<K, V> {
    fn default() -> Self {
        SingleFlight {
            inflight: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

impl<K, V> SingleFlight<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The result of `load` for `key`, shared with every concurrent caller for the same
    /// key; `None` if the load task panicked.
    pub async fn run<F>(&self, key: K, load: impl FnOnce() -> F) -> Option<V>
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
                    let task = tokio::spawn(load());
                    let fut: BoxFuture<'static, Option<V>> = async move {
                        let r = task.await.ok();
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
