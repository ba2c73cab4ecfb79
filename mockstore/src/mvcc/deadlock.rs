//! The deadlock detector (TiKV `src/server/lock_manager/deadlock.rs`,
//! `DetectTable`).
//!
//! A wait-for graph `waiter_ts → {lock_ts → edge}`; an edge records the
//! keys waited for and expires after `ttl` (TiKV: `wait-for-lock-timeout`).
//! Before a transaction waits for `lock_ts`, [`DeadlockDetector::detect`]
//! searches a path `lock_ts → … → waiter_ts`; if one exists, waiting would
//! close a cycle and the request fails with `Deadlock` carrying the
//! `wait_chain` (the path, then the new edge), as in TiKV `do_detect` +
//! `generate_wait_chain`.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use tikv_tower_proto::deadlock::WaitForEntry;
use tokio::time::Instant;

use super::types::Ts;

/// The hash of a key reported in `Deadlock` and `WaitForEntry`: FarmHash
/// `Fingerprint64` of the raw key, as TiKV (`Key::gen_hash`) and client-go
/// (`farm.Fingerprint64`) compute it.
pub fn key_hash(key: &[u8]) -> u64 {
    super::farmhash::fingerprint64(key)
}

struct Edge {
    keys: Vec<(u64, Vec<u8>)>,
    resource_group_tag: Vec<u8>,
    since: Instant,
}

impl Edge {
    fn entry(&self, waiter: Ts, lock: Ts, now: Instant) -> WaitForEntry {
        let (hash, key) = self.keys.first().cloned().unwrap_or_default();
        WaitForEntry {
            txn: waiter,
            wait_for_txn: lock,
            key_hash: hash,
            key: key.into(),
            resource_group_tag: self.resource_group_tag.clone().into(),
            wait_time: now.saturating_duration_since(self.since).as_millis() as u64,
        }
    }
}

/// The wait-for graph.
pub struct DeadlockDetector {
    ttl: Duration,
    graph: Mutex<HashMap<Ts, HashMap<Ts, Edge>>>,
}

/// A detected deadlock: the hash of the closing edge's key and the chain.
pub type DeadlockInfo = (u64, Vec<WaitForEntry>);

impl DeadlockDetector {
    /// An empty graph whose edges live `ttl`.
    pub fn new(ttl: Duration) -> DeadlockDetector {
        DeadlockDetector {
            ttl,
            graph: Mutex::new(HashMap::new()),
        }
    }

    /// Registers `txn_ts` waiting for `lock_ts` on `key` unless that closes a
    /// cycle, in which case the cycle is returned and nothing is registered.
    pub fn detect(
        &self,
        txn_ts: Ts,
        lock_ts: Ts,
        key: &[u8],
        resource_group_tag: &[u8],
    ) -> Option<DeadlockInfo> {
        let now = Instant::now();
        let hash = key_hash(key);
        let mut g = self.graph.lock();
        let ttl = self.ttl;
        // Drop expired edges.
        g.retain(|_, m| {
            m.retain(|_, e| now.saturating_duration_since(e.since) < ttl);
            !m.is_empty()
        });
        if let Some(e) = g.get_mut(&txn_ts).and_then(|m| m.get_mut(&lock_ts)) {
            if !e.keys.iter().any(|(h, _)| *h == hash) {
                e.keys.push((hash, key.to_vec()));
            }
            return None;
        }
        // DFS from lock_ts looking for txn_ts, remembering predecessors.
        let mut stack = vec![lock_ts];
        let mut pred: HashMap<Ts, Ts> = HashMap::new();
        pred.insert(lock_ts, 0);
        while let Some(cur) = stack.pop() {
            let Some(edges) = g.get(&cur) else { continue };
            for (next, edge) in edges {
                if *next == txn_ts {
                    let closing_hash = edge.keys.first().map_or(0, |k| k.0);
                    let mut chain = vec![edge.entry(cur, *next, now)];
                    let mut v = cur;
                    while let Some(&p) = pred.get(&v) {
                        if p == 0 {
                            break;
                        }
                        if let Some(e) = g.get(&p).and_then(|m| m.get(&v)) {
                            chain.push(e.entry(p, v, now));
                        }
                        v = p;
                    }
                    chain.reverse();
                    chain.push(WaitForEntry {
                        txn: txn_ts,
                        wait_for_txn: lock_ts,
                        key_hash: hash,
                        key: key.to_vec().into(),
                        resource_group_tag: resource_group_tag.to_vec().into(),
                        wait_time: 0,
                    });
                    return Some((closing_hash, chain));
                }
                if !pred.contains_key(next) {
                    pred.insert(*next, cur);
                    stack.push(*next);
                }
            }
        }
        g.entry(txn_ts).or_default().insert(
            lock_ts,
            Edge {
                keys: vec![(hash, key.to_vec())],
                resource_group_tag: resource_group_tag.to_vec(),
                since: now,
            },
        );
        None
    }

    /// Removes the edge `txn_ts → lock_ts` for `key` (the wait ended).
    pub fn clean_up_wait_for(&self, txn_ts: Ts, lock_ts: Ts, key: &[u8]) {
        let hash = key_hash(key);
        let mut g = self.graph.lock();
        if let Some(m) = g.get_mut(&txn_ts) {
            if let Some(e) = m.get_mut(&lock_ts) {
                e.keys.retain(|(h, _)| *h != hash);
                if e.keys.is_empty() {
                    m.remove(&lock_ts);
                }
            }
            if m.is_empty() {
                g.remove(&txn_ts);
            }
        }
    }

    /// Removes every edge out of `txn_ts` (the transaction ended).
    pub fn clean_up(&self, txn_ts: Ts) {
        self.graph.lock().remove(&txn_ts);
    }
}
