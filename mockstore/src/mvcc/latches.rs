//! Per-key latches (TiKV `src/storage/txn/latch.rs`).
//!
//! A write command takes the latches of all its keys before it reads and
//! releases them after its write batch is applied, so commands touching a
//! common key run one after another while others run in parallel. Keys are
//! hashed onto a fixed set of slots; a command locks its slots in ascending
//! order, which makes acquisition deadlock-free. Latches are held only for
//! the synchronous part of a command (never across an `.await`).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use parking_lot::{Mutex, MutexGuard};

/// A fixed array of latch slots.
#[derive(Debug)]
pub struct Latches {
    slots: Vec<Mutex<()>>,
}

/// Holds the latches of one command; they are released on drop.
#[must_use = "latches are released when the guard is dropped"]
pub struct LatchGuard<'a> {
    _guards: Vec<MutexGuard<'a, ()>>,
}

impl Latches {
    /// `size` slots (rounded up to at least 1).
    pub fn new(size: usize) -> Latches {
        Latches {
            slots: (0..size.max(1)).map(|_| Mutex::new(())).collect(),
        }
    }

    fn slot(&self, key: &[u8]) -> usize {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        (h.finish() % self.slots.len() as u64) as usize
    }

    /// Takes the latches of `keys` (in ascending slot order), blocking until
    /// they are all free.
    pub fn acquire<'a, K: AsRef<[u8]>>(
        &'a self,
        keys: impl IntoIterator<Item = K>,
    ) -> LatchGuard<'a> {
        let mut idx: Vec<usize> = keys.into_iter().map(|k| self.slot(k.as_ref())).collect();
        idx.sort_unstable();
        idx.dedup();
        LatchGuard {
            _guards: idx.into_iter().map(|i| self.slots[i].lock()).collect(),
        }
    }
}
