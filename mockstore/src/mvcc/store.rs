//! The storage of the engine: one logical copy of CF_LOCK and CF_WRITE for the
//! whole cluster, an ordered map from raw key to the key's lock and versions.
//!
//! Concurrency follows TiKV's split between reading a snapshot and applying a
//! write batch: a command reads through short read-locked look-ups
//! ([`MvccStore::with_key`], [`MvccStore::for_each_in_range`]), collects its
//! changes in a [`Modify`] list and applies them atomically with
//! [`MvccStore::apply`]. No lock of the map is held across a command;
//! commands on the same keys are serialised by the latches
//! ([`super::latches::Latches`]).

use std::collections::BTreeMap;
use std::ops::Bound;

use parking_lot::RwLock;

use super::types::{Lock, Ts, Write};

/// Everything stored for one key: its lock (CF_LOCK) and its commit/rollback
/// records keyed by commit_ts (CF_WRITE, values inlined).
#[derive(Clone, Debug, Default)]
pub struct KeyData {
    /// The key's lock, if any.
    pub lock: Option<Lock>,
    /// Records by commit_ts (ascending; iterate `.rev()` for newest first).
    pub writes: BTreeMap<Ts, Write>,
}

impl KeyData {
    /// The newest record with `commit_ts <= ts` (TiKV `seek_write`).
    pub fn seek_write(&self, ts: Ts) -> Option<(Ts, &Write)> {
        self.writes.range(..=ts).next_back().map(|(c, w)| (*c, w))
    }

    /// Records with `commit_ts <= ts`, newest first.
    pub fn writes_from(&self, ts: Ts) -> impl Iterator<Item = (Ts, &Write)> {
        self.writes.range(..=ts).rev().map(|(c, w)| (*c, w))
    }

    fn is_empty(&self) -> bool {
        self.lock.is_none() && self.writes.is_empty()
    }
}

/// One change of a write batch.
#[derive(Clone, Debug)]
pub enum Modify {
    /// Put (replace) the key's lock.
    PutLock(Vec<u8>, Lock),
    /// Delete the key's lock.
    DelLock(Vec<u8>),
    /// Put a record at commit_ts.
    PutWrite(Vec<u8>, Ts, Write),
    /// Delete the record at commit_ts.
    DelWrite(Vec<u8>, Ts),
}

/// Key bounds `[start, end)`; an empty `end` means unbounded.
pub fn range_bounds(start: &[u8], end: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let hi = if end.is_empty() {
        Bound::Unbounded
    } else {
        Bound::Excluded(end.to_vec())
    };
    (Bound::Included(start.to_vec()), hi)
}

/// The MVCC data: an ordered map behind a read/write lock with short
/// critical sections.
#[derive(Debug, Default)]
pub struct MvccStore {
    map: RwLock<BTreeMap<Vec<u8>, KeyData>>,
}

impl MvccStore {
    /// An empty store.
    pub fn new() -> MvccStore {
        MvccStore::default()
    }

    /// Runs `f` on the key's data (or `None`) under the read lock.
    pub fn with_key<R>(&self, key: &[u8], f: impl FnOnce(Option<&KeyData>) -> R) -> R {
        let map = self.map.read();
        f(map.get(key))
    }

    /// The key's lock.
    pub fn load_lock(&self, key: &[u8]) -> Option<Lock> {
        self.with_key(key, |d| d.and_then(|d| d.lock.clone()))
    }

    /// The newest record with `commit_ts <= ts`.
    pub fn seek_write(&self, key: &[u8], ts: Ts) -> Option<(Ts, Write)> {
        self.with_key(key, |d| {
            d.and_then(|d| d.seek_write(ts).map(|(c, w)| (c, w.clone())))
        })
    }

    /// Visits the keys of `[start, end)` (empty `end` = unbounded) in order
    /// (descending if `reverse`) under the read lock until `f` returns false.
    pub fn for_each_in_range(
        &self,
        start: &[u8],
        end: &[u8],
        reverse: bool,
        mut f: impl FnMut(&[u8], &KeyData) -> bool,
    ) {
        if !end.is_empty() && start >= end {
            return;
        }
        let map = self.map.read();
        let range = map.range(range_bounds(start, end));
        if reverse {
            for (k, d) in range.rev() {
                if !f(k, d) {
                    break;
                }
            }
        } else {
            for (k, d) in range {
                if !f(k, d) {
                    break;
                }
            }
        }
    }

    /// Applies a write batch atomically.
    pub fn apply(&self, modifies: Vec<Modify>) {
        if modifies.is_empty() {
            return;
        }
        let mut map = self.map.write();
        for m in modifies {
            match m {
                Modify::PutLock(k, l) => {
                    map.entry(k).or_default().lock = Some(l);
                }
                Modify::DelLock(k) => {
                    if let Some(d) = map.get_mut(&k) {
                        d.lock = None;
                        if d.is_empty() {
                            map.remove(&k);
                        }
                    }
                }
                Modify::PutWrite(k, ts, w) => {
                    map.entry(k).or_default().writes.insert(ts, w);
                }
                Modify::DelWrite(k, ts) => {
                    if let Some(d) = map.get_mut(&k) {
                        d.writes.remove(&ts);
                        if d.is_empty() {
                            map.remove(&k);
                        }
                    }
                }
            }
        }
    }

    /// Deletes every lock and record in `[start, end)` (empty `end` =
    /// unbounded). Returns the number of keys removed.
    pub fn delete_range(&self, start: &[u8], end: &[u8]) -> usize {
        if !end.is_empty() && start >= end {
            return 0;
        }
        let mut map = self.map.write();
        let keys: Vec<Vec<u8>> = map
            .range(range_bounds(start, end))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &keys {
            map.remove(k);
        }
        keys.len()
    }

    /// Runs `f` on every key's data mutably under the write lock, removing
    /// keys left empty (used by GC).
    pub fn retain_mut(&self, mut f: impl FnMut(&[u8], &mut KeyData)) {
        let mut map = self.map.write();
        map.retain(|k, d| {
            f(k, d);
            !d.is_empty()
        });
    }

    /// The number of keys stored (with a lock or at least one record).
    pub fn len(&self) -> usize {
        self.map.read().len()
    }

    /// Whether the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.map.read().is_empty()
    }
}
