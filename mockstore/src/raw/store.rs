//! The raw key space: one concurrent ordered map per column family, plus
//! striped latches that serialize compare-and-swap with plain writes on the
//! same key (TiKV's `for_cas` latches).
//!
//! Reads and single-key writes take no lock; a scan walks the skip list
//! while writers go on. Values carry an optional expiry (`expire_ts`, Unix
//! seconds); an entry with `expire_ts <= now` is invisible (TiKV
//! `RawValue::is_valid`) and is removed lazily when a later write or scan
//! finds it.

use std::ops::Bound;

use bytes::Bytes;
use crossbeam_skiplist::SkipMap;
use parking_lot::{Mutex, MutexGuard};

/// A raw column family (API V1 accepts the three names; V2 only default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RawCf {
    /// `default` (also the empty name).
    Default,
    /// `lock`.
    Lock,
    /// `write`.
    Write,
}

impl RawCf {
    fn index(self) -> usize {
        match self {
            RawCf::Default => 0,
            RawCf::Lock => 1,
            RawCf::Write => 2,
        }
    }
}

/// A stored raw value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEntry {
    /// The value (shared with the request that wrote it and the replies that read it).
    pub value: Bytes,
    /// Unix seconds after which the value is gone; 0 = never.
    pub expire_ts: u64,
}

impl RawEntry {
    /// Whether the entry is visible at `now` (Unix seconds).
    pub fn is_live(&self, now: u64) -> bool {
        self.expire_ts == 0 || self.expire_ts > now
    }
}

const LATCH_SLOTS: usize = 256;

/// The raw data of the whole cluster (shared by every store, as the mock
/// keeps one logical copy of the data).
pub struct RawStore {
    cfs: [SkipMap<Bytes, RawEntry>; 3],
    latches: Vec<Mutex<()>>,
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            cfs: [SkipMap::new(), SkipMap::new(), SkipMap::new()],
            latches: (0..LATCH_SLOTS).map(|_| Mutex::new(())).collect(),
        }
    }
}

impl std::fmt::Debug for RawStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawStore")
            .field("default_keys", &self.cfs[0].len())
            .finish_non_exhaustive()
    }
}

impl RawStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn cf(&self, cf: RawCf) -> &SkipMap<Bytes, RawEntry> {
        &self.cfs[cf.index()]
    }

    /// The latch serializing writes to `key` (held across a CAS).
    pub(crate) fn latch(&self, key: &[u8]) -> MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        let slot = usize::try_from(h.finish() % LATCH_SLOTS as u64).unwrap_or(0);
        self.latches[slot].lock()
    }

    /// The live entry of `key` at `now`.
    pub fn get(&self, cf: RawCf, key: &[u8], now: u64) -> Option<RawEntry> {
        let entry = self.cf(cf).get(key)?;
        let value = entry.value();
        value.is_live(now).then(|| value.clone())
    }

    /// Stores `value` under `key` with expiry `expire_ts` (0 = never).
    pub fn put(&self, cf: RawCf, key: Bytes, value: Bytes, expire_ts: u64) {
        self.cf(cf).insert(key, RawEntry { value, expire_ts });
    }

    /// Removes `key`.
    pub fn delete(&self, cf: RawCf, key: &[u8]) {
        self.cf(cf).remove(key);
    }

    /// Live pairs in the `(lower, upper)` bounds at `now`, ascending or descending, at
    /// most `limit` (0 = none), keeping only keys for which `keep` holds.
    pub fn scan(
        &self,
        cf: RawCf,
        (lower, upper): (Bound<&[u8]>, Bound<&[u8]>),
        reverse: bool,
        limit: usize,
        now: u64,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Vec<(Bytes, RawEntry)> {
        let mut out = Vec::new();
        if limit == 0 || bounds_empty(lower, upper) {
            return out;
        }
        let map = self.cf(cf);
        let range = map.range::<[u8], _>((lower, upper));
        let mut push = |k: &Bytes, v: &RawEntry| {
            if v.is_live(now) && keep(k) {
                out.push((k.clone(), v.clone()));
            }
            out.len() >= limit
        };
        if reverse {
            for e in range.rev() {
                if push(e.key(), e.value()) {
                    break;
                }
            }
        } else {
            for e in range {
                if push(e.key(), e.value()) {
                    break;
                }
            }
        }
        out
    }

    /// Removes every key in `(lower, upper)` for which `keep` holds.
    pub fn delete_range(
        &self,
        cf: RawCf,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        keep: impl Fn(&[u8]) -> bool,
    ) {
        if bounds_empty(lower, upper) {
            return;
        }
        let map = self.cf(cf);
        for e in map.range::<[u8], _>((lower, upper)) {
            if keep(e.key()) {
                e.remove();
            }
        }
    }

    /// Live keys and their total `key + value` size in `(lower, upper)` at
    /// `now` (the split checker's statistics).
    pub fn stats(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        now: u64,
        keep: impl Fn(&[u8]) -> bool,
    ) -> (u64, u64) {
        if bounds_empty(lower, upper) {
            return (0, 0);
        }
        let mut keys = 0u64;
        let mut bytes = 0u64;
        for cf in &self.cfs {
            for e in cf.range::<[u8], _>((lower, upper)) {
                if e.value().is_live(now) && keep(e.key()) {
                    keys += 1;
                    bytes += (e.key().len() + e.value().value.len()) as u64;
                }
            }
        }
        (keys, bytes)
    }

    /// Live keys of the default cf in `(lower, upper)` at `now`, ascending.
    pub(crate) fn keys(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        now: u64,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Vec<(Bytes, u64)> {
        if bounds_empty(lower, upper) {
            return Vec::new();
        }
        self.cf(RawCf::Default)
            .range::<[u8], _>((lower, upper))
            .filter(|e| e.value().is_live(now) && keep(e.key()))
            .map(|e| {
                (
                    e.key().clone(),
                    (e.key().len() + e.value().value.len()) as u64,
                )
            })
            .collect()
    }
}

/// Whether `(lower, upper)` holds nothing (crossbeam panics on an inverted
/// range, so such ranges are answered empty before reaching it).
fn bounds_empty(lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> bool {
    use Bound::{Excluded, Included, Unbounded};
    match (lower, upper) {
        (Unbounded, _) | (_, Unbounded) => false,
        (Included(l), Included(u)) => l > u,
        (Included(l), Excluded(u)) | (Excluded(l), Included(u)) | (Excluded(l), Excluded(u)) => {
            l >= u
        }
    }
}
