//! The bounded LRU cache of final transaction statuses (client-go `LockResolver.mu.resolved`
//! / `recentResolved`, `saveResolved`, `getResolved`, `ResolvedCacheSize`).
//!
//! Only *determined* statuses (committed or rolled back) are cached: they never change,
//! so a cached answer is as good as a `CheckTxnStatus`. client-go evicts in insertion
//! order; this cache evicts the least recently *used* entry, so a transaction whose locks
//! keep being met stays cached. A second, different determined status for the same
//! transaction would be a protocol violation: it is logged and the first one kept (client-go
//! panics).

use std::collections::{HashMap, VecDeque};

use parking_lot::Mutex;

use super::status::TxnStatus;

/// client-go `ResolvedCacheSize`.
pub const RESOLVED_CACHE_SIZE: usize = 2048;

/// The cache (see the [module docs](self)).
#[derive(Debug)]
pub struct StatusCache {
    capacity: usize,
    inner: Mutex<Lru>,
}

#[derive(Debug, Default)]
struct Lru {
    /// txn id → (status, generation of its latest use).
    map: HashMap<u64, (TxnStatus, u64)>,
    /// Uses in order; entries whose generation is not the map's are stale.
    order: VecDeque<(u64, u64)>,
    next_gen: u64,
}

impl Lru {
    fn touch(&mut self, txn: u64) {
        self.next_gen += 1;
        let gen = self.next_gen;
        if let Some(e) = self.map.get_mut(&txn) {
            e.1 = gen;
            self.order.push_back((txn, gen));
        }
    }

    /// Drops stale entries of `order` once it is much longer than the map.
    fn compact(&mut self) {
        if self.order.len() > 4 * self.map.len().max(16) {
            let map = &self.map;
            self.order
                .retain(|(t, g)| map.get(t).is_some_and(|e| e.1 == *g));
        }
    }
}

impl StatusCache {
    /// A cache of at most `capacity` statuses (at least one).
    pub fn new(capacity: usize) -> Self {
        StatusCache {
            capacity: capacity.max(1),
            inner: Mutex::new(Lru::default()),
        }
    }

    /// The cached status of `txn`, marking it used.
    pub fn get(&self, txn: u64) -> Option<TxnStatus> {
        let mut lru = self.inner.lock();
        let status = lru.map.get(&txn)?.0.clone();
        lru.touch(txn);
        lru.compact();
        Some(status)
    }

    /// Caches a determined status (undetermined ones are ignored).
    pub fn put(&self, txn: u64, status: TxnStatus) {
        if !status.is_determined() {
            tracing::error!(txn, ?status, "undetermined status not cached");
            return;
        }
        let mut lru = self.inner.lock();
        if let Some((old, _)) = lru.map.get(&txn) {
            if !old.same_determined_status(&status) {
                tracing::error!(txn, ?old, new = ?status, "conflicting final statuses of one txn");
            }
            lru.touch(txn);
            return;
        }
        lru.map.insert(txn, (status, 0));
        lru.touch(txn);
        while lru.map.len() > self.capacity {
            let Some((t, g)) = lru.order.pop_front() else {
                break;
            };
            if lru.map.get(&t).is_some_and(|e| e.1 == g) {
                lru.map.remove(&t);
            }
        }
        lru.compact();
    }

    /// Number of cached statuses.
    pub fn len(&self) -> usize {
        self.inner.lock().map.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for StatusCache {
    fn default() -> Self {
        StatusCache::new(RESOLVED_CACHE_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(ts: u64) -> TxnStatus {
        TxnStatus::committed(ts)
    }

    #[test]
    fn keeps_at_most_capacity_and_evicts_the_least_recently_used() {
        let cache = StatusCache::new(3);
        for t in 1..=3 {
            cache.put(t, committed(t + 100));
        }
        assert!(cache.get(1).is_some()); // 1 is now the most recent
        cache.put(4, committed(104));
        assert_eq!(cache.len(), 3);
        assert!(cache.get(2).is_none(), "2 was least recently used");
        assert_eq!(cache.get(1).map(|s| s.commit_ts()), Some(101));
        assert!(cache.get(3).is_some() && cache.get(4).is_some());
    }

    #[test]
    fn default_capacity_is_client_go_s() {
        let cache = StatusCache::default();
        for t in 0..(RESOLVED_CACHE_SIZE as u64 + 500) {
            cache.put(t, TxnStatus::rolled_back());
            // Repeated reads of one hot entry must not let the queue grow without bound.
            let _ = cache.get(0);
        }
        assert_eq!(cache.len(), RESOLVED_CACHE_SIZE);
        assert!(cache.get(0).is_some(), "the hot entry survives");
        assert!(cache.inner.lock().order.len() <= 4 * RESOLVED_CACHE_SIZE + 2);
    }

    #[test]
    fn undetermined_statuses_are_not_cached_and_conflicts_keep_the_first() {
        let cache = StatusCache::new(8);
        cache.put(1, TxnStatus::alive(3000, kvrpcpb_action_none()));
        assert!(cache.is_empty());
        cache.put(2, committed(20));
        cache.put(2, TxnStatus::rolled_back());
        assert_eq!(cache.get(2).map(|s| s.commit_ts()), Some(20));
    }

    fn kvrpcpb_action_none() -> tikv_tower_proto::kvrpcpb::Action {
        tikv_tower_proto::kvrpcpb::Action::NoAction
    }
}
