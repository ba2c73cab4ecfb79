//! Single-flight: identical concurrent requests share one execution (client-go
//! `reqCollapse` for `ResolveLock`, generalised; here it also collapses `CheckTxnStatus`).
//!
//! Callers name their request by a key and a *rank*. A caller joins an execution already
//! in flight under the same key whose rank is at least its own, and takes its result;
//! otherwise it starts one. The rank expresses "an answer for a larger rank also answers
//! mine": for `CheckTxnStatus` it is the caller's start ts — a status checked for a reader
//! at ts 20 (which pushed the lock's `min_commit_ts` past 20) also tells a reader at 10
//! that the lock does not block it, but not the other way round.
//!
//! The shared execution is a [`Shared`] future polled by whoever waits for it: a caller
//! that is cancelled does not cancel the others. A joiner that receives an error runs the
//! request itself (the error may be the first caller's own budget or deadline).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::future::{BoxFuture, FutureExt, Shared};
use parking_lot::Mutex;

type Work<V, E> = Shared<BoxFuture<'static, Result<V, E>>>;

struct Slot<V, E> {
    id: u64,
    rank: u64,
    work: Work<V, E>,
}

type Slots<K, V, E> = Arc<Mutex<HashMap<K, Vec<Slot<V, E>>>>>;

/// A single-flight group (see the [module docs](self)).
pub struct Flight<K, V, E> {
    slots: Slots<K, V, E>,
    next_id: AtomicU64,
    started: AtomicU64,
    joined: AtomicU64,
}

impl<K, V, E> std::fmt::Debug for Flight<K, V, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flight")
            .field("started", &self.started.load(Ordering::Relaxed))
            .field("joined", &self.joined.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<K, V, E> Default for Flight<K, V, E> {
    fn default() -> Self {
        Flight {
            slots: Arc::default(),
            next_id: AtomicU64::new(0),
            started: AtomicU64::new(0),
            joined: AtomicU64::new(0),
        }
    }
}

impl<K, V, E> Flight<K, V, E>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    /// Runs `make()`'s future, or joins an execution of `key` in flight with a rank of at
    /// least `rank`.
    pub async fn run<F, M>(&self, key: K, rank: u64, make: M) -> Result<V, E>
    where
        M: Fn() -> F,
        F: Future<Output = Result<V, E>> + Send + 'static,
    {
        enum Step<W> {
            Lead(W),
            Join(W),
        }
        let step = {
            let mut slots = self.slots.lock();
            let list = slots.entry(key.clone()).or_default();
            match list.iter().find(|s| s.rank >= rank) {
                Some(s) => Step::Join(s.work.clone()),
                None => {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let work = Self::wrap(self.slots.clone(), key, id, make());
                    list.push(Slot {
                        id,
                        rank,
                        work: work.clone(),
                    });
                    Step::Lead(work)
                }
            }
        };
        let work = match step {
            Step::Lead(work) => {
                self.started.fetch_add(1, Ordering::Relaxed);
                return work.await;
            }
            Step::Join(work) => work,
        };
        self.joined.fetch_add(1, Ordering::Relaxed);
        match work.await {
            Ok(v) => Ok(v),
            // Someone else's failure (their budget, deadline): try on our own.
            Err(_) => make().await,
        }
    }

    fn wrap<F>(slots: Slots<K, V, E>, key: K, id: u64, fut: F) -> Work<V, E>
    where
        F: Future<Output = Result<V, E>> + Send + 'static,
    {
        async move {
            let out = fut.await;
            let mut slots = slots.lock();
            if let Some(list) = slots.get_mut(&key) {
                list.retain(|s| s.id != id);
                if list.is_empty() {
                    slots.remove(&key);
                }
            }
            out
        }
        .boxed()
        .shared()
    }

    /// Executions started.
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Callers that joined an execution in flight.
    pub fn joined(&self) -> u64 {
        self.joined.load(Ordering::Relaxed)
    }

    /// Executions in flight.
    pub fn in_flight(&self) -> usize {
        self.slots.lock().values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn identical_concurrent_requests_run_once() {
        let flight = Arc::new(Flight::<&'static str, u32, String>::default());
        let runs = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let (flight, runs) = (flight.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                flight
                    .run("k", 5, || {
                        let runs = runs.clone();
                        async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            Ok::<_, String>(7)
                        }
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(7));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(flight.started(), 1);
        assert_eq!(flight.joined(), 99);
        assert_eq!(flight.in_flight(), 0, "finished executions leave the map");
    }

    #[tokio::test(start_paused = true)]
    async fn a_larger_rank_does_not_join_a_smaller_one_and_errors_are_retried_alone() {
        let flight = Arc::new(Flight::<u8, u64, String>::default());
        let slow = |v: u64| async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok::<_, String>(v)
        };
        let f1 = flight.clone();
        let low = tokio::spawn(async move { f1.run(1, 10, || slow(10)).await });
        tokio::task::yield_now().await;
        // Rank 20 cannot use a rank-10 answer: runs its own.
        assert_eq!(flight.run(1, 20, || slow(20)).await, Ok(20));
        assert_eq!(low.await.unwrap(), Ok(10));
        assert_eq!(flight.started(), 2);

        // A joiner of a failed execution runs the request itself.
        let f2 = flight.clone();
        let failing = tokio::spawn(async move {
            f2.run(2, 50, || async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Err::<u64, _>("budget".to_string())
            })
            .await
        });
        tokio::task::yield_now().await;
        let mine = flight.run(2, 1, || async { Ok::<_, String>(99) }).await;
        assert_eq!(mine, Ok(99));
        assert!(failing.await.unwrap().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_first_caller_does_not_cancel_the_joiners() {
        let flight = Arc::new(Flight::<u8, u64, String>::default());
        let f1 = flight.clone();
        let first = tokio::spawn(async move {
            f1.run(1, 1, || async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok::<_, String>(3)
            })
            .await
        });
        tokio::task::yield_now().await;
        let f2 = flight.clone();
        let second =
            tokio::spawn(async move { f2.run(1, 1, || async { Ok::<_, String>(4) }).await });
        tokio::task::yield_now().await;
        first.abort();
        assert_eq!(second.await.unwrap(), Ok(3), "joined the shared execution");
    }
}
