//! Range iterators over a [`MemBuffer`](super::MemBuffer), forward and reverse (client-go
//! `art.Iterator`, `art.SnapIter`).

use super::flags::KeyFlags;
use super::membuffer::{Mark, MemBuffer};
use super::records::RecAddr;
use super::tree::{Pos, Tree, NIL};

/// One buffered entry as seen by an iterator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferEntry<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value: `None` for a flags-only entry, `Some(&[])` for a tombstone.
    pub value: Option<&'a [u8]>,
    /// The key's current flags.
    pub flags: KeyFlags,
}

impl BufferEntry<'_> {
    /// Whether the entry is a delete (client-go `IsTombstone`).
    pub fn is_tombstone(&self) -> bool {
        matches!(self.value, Some(v) if v.is_empty())
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum IterMode {
    /// Present entries with a value (client-go `Iter`).
    Values,
    /// All present entries (client-go `IterWithFlags`).
    WithFlags,
    /// Entries with a version at or before the position (client-go `SnapIter`).
    Snapshot(Mark),
}

/// An iterator over `[lower, upper)` of a buffer, ascending or descending. Created by
/// [`MemBuffer::iter`] and friends; it borrows the buffer, so the buffer cannot change under it
/// (client-go checks `WriteSeqNo` at run time instead).
///
/// Both ends are located once, when the iterator is created; stepping is then a walk over one
/// leaf's slots at a time, up to an end index computed when the leaf is entered, with no key
/// comparison and no per-entry position check.
///
/// A scan chases a dependent load per entry (slot -> key record, which holds a first value
/// inline), two for an entry whose current value is in the value log (record -> version), and
/// the per-entry path is too long for the CPU to overlap many of them on its own. So when the
/// walk enters a leaf it prefetches, in tight loops, the starts of long log values of the next
/// leaf, the log-value headers and long-record tails of the leaf two ahead (whose records were
/// prefetched one leaf earlier), the records of the leaf three ahead and the node of the one
/// after that: a pipeline two to four leaves deep (creating the iterator primes it). It never
/// runs past the leaf holding the stop position, so a short bounded scan prefetches little; an
/// unbounded one that is dropped early wastes a few leaves of prefetches.
pub struct Iter<'a> {
    buf: &'a MemBuffer,
    tree: &'a Tree,
    /// Slots of the current leaf.
    slots: &'a [RecAddr],
    /// Forward: the index of the next slot to yield. Reverse: one past it.
    idx: usize,
    /// Forward: the index to stop at in this leaf. Reverse: the lowest `idx` to go down to.
    end: usize,
    /// The leaf to enter after this one (`NIL`: none, the walk ends with this leaf).
    follow: u32,
    /// The first position not to yield (`None`: the end of the tree).
    stop: Option<Pos>,
    reverse: bool,
    mode: IterMode,
}

impl<'a> Iter<'a> {
    pub(crate) fn new(
        buf: &'a MemBuffer,
        lower: &'a [u8],
        upper: &'a [u8],
        reverse: bool,
        mode: IterMode,
    ) -> Iter<'a> {
        let (tree, keys) = (buf.tree(), buf.keys());
        let seek_ge = |k: &[u8]| {
            if k.is_empty() {
                tree.first()
            } else {
                tree.seek_ge(keys, k)
            }
        };
        let seek_lt = |k: &[u8]| {
            if k.is_empty() {
                None
            } else {
                tree.seek_lt(keys, k)
            }
        };
        let empty = !upper.is_empty() && lower >= upper;
        let (start, stop) = if reverse {
            let start = if upper.is_empty() {
                tree.last()
            } else {
                tree.seek_lt(keys, upper)
            };
            (start, seek_lt(lower))
        } else {
            let stop = if upper.is_empty() {
                None
            } else {
                tree.seek_ge(keys, upper)
            };
            (seek_ge(lower), stop)
        };
        let mut it = Iter {
            buf,
            tree,
            slots: &[],
            idx: 0,
            end: 0,
            follow: NIL,
            stop,
            reverse,
            mode,
        };
        if let (false, Some(p)) = (empty, start) {
            if Some(p) != stop {
                // Prime the pipeline: records of this leaf and the next two, the nodes after.
                it.prefetch_records(p.leaf);
                let f = it.after(p.leaf);
                it.prefetch_records(f);
                it.prefetch_values(p.leaf);
                let g = it.after(f);
                it.prefetch_records(g);
                it.prefetch_values(f);
                let h = it.after(g);
                if h != NIL {
                    tree.prefetch_leaf(h);
                }
                it.enter(p.leaf, Some(p.idx as usize));
            }
        }
        it
    }

    /// The leaf the walk moves to after `leaf`: `NIL` past the stop position's leaf or the
    /// chain's end.
    #[inline]
    fn after(&self, leaf: u32) -> u32 {
        if leaf == NIL || matches!(self.stop, Some(p) if p.leaf == leaf) {
            return NIL;
        }
        let (_, prev, next) = self.tree.leaf(leaf);
        if self.reverse {
            prev
        } else {
            next
        }
    }

    fn prefetch_records(&self, leaf: u32) {
        if leaf != NIL {
            for &rec in self.tree.leaf(leaf).0 {
                self.buf.prefetch_record(rec);
            }
        }
    }

    fn prefetch_values(&self, leaf: u32) {
        if leaf != NIL {
            for &rec in self.tree.leaf(leaf).0 {
                self.buf.prefetch_value(rec);
            }
        }
    }

    /// Makes `leaf` the current leaf, starting at slot `start` (`None`: its first slot in the
    /// scan direction), and advances the prefetch pipeline.
    fn enter(&mut self, leaf: u32, start: Option<usize>) {
        let slots = self.tree.leaf(leaf).0;
        let n = slots.len();
        let stop_idx = match self.stop {
            Some(p) if p.leaf == leaf => Some(p.idx as usize),
            _ => None,
        };
        self.slots = slots;
        if self.reverse {
            self.idx = start.map_or(n, |i| i.saturating_add(1)).min(n);
            self.end = stop_idx.map_or(0, |i| i + 1);
        } else {
            self.idx = start.unwrap_or(0);
            self.end = stop_idx.map_or(n, |i| i.min(n));
        }
        self.follow = self.after(leaf);
        // The value starts of the next leaf (headers prefetched a leaf ago); `f`: two leaves
        // ahead, `g`: three, `h`: four.
        if self.follow != NIL {
            for &rec in self.tree.leaf(self.follow).0 {
                self.buf.prefetch_value_start(rec);
            }
        }
        let f = self.after(self.follow);
        if f != NIL {
            self.prefetch_values(f);
            let g = self.after(f);
            self.prefetch_records(g);
            let h = self.after(g);
            if h != NIL {
                self.tree.prefetch_leaf(h);
            }
        }
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = BufferEntry<'a>;

    #[inline]
    fn next(&mut self) -> Option<BufferEntry<'a>> {
        loop {
            let rec = if self.reverse {
                if self.idx > self.end {
                    self.idx -= 1;
                    self.slots.get(self.idx).copied()
                } else {
                    None
                }
            } else if self.idx < self.end {
                self.idx += 1;
                self.slots.get(self.idx - 1).copied()
            } else {
                None
            };
            match rec {
                Some(rec) => {
                    if let Some(e) = self.buf.rec_entry_for(rec, self.mode) {
                        return Some(e);
                    }
                }
                None => {
                    if self.follow == NIL {
                        return None;
                    }
                    self.enter(self.follow, None);
                }
            }
        }
    }
}

impl std::iter::FusedIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::membuffer::MemBuffer;

    /// Bounded scans over many leaves, both directions, with bounds on, between and around
    /// keys, against a `BTreeMap`; every fifth key is flags-only (skipped by `iter`).
    #[test]
    fn bounded_scans_across_leaves_match_a_btreemap() {
        let mut buf = MemBuffer::default();
        let mut model = BTreeMap::new();
        for i in 0..3000u32 {
            let j = i.wrapping_mul(2_654_435_761) % 5000;
            let k = format!("k{j:05}").into_bytes();
            if j % 5 == 0 {
                buf.update_flags(&k, &[]).expect("flags");
            } else {
                let v = format!("v{j}").into_bytes();
                buf.set(&k, &v).expect("set");
                model.insert(k, v);
            }
        }
        let bounds: Vec<Vec<u8>> = [0u32, 1, 7, 31, 32, 33, 64, 999, 2500, 4998, 4999, 5000]
            .iter()
            .flat_map(|&b| {
                [
                    format!("k{b:05}").into_bytes(),
                    format!("k{b:05}x").into_bytes(),
                ]
            })
            .chain([Vec::new(), b"a".to_vec(), b"z".to_vec()])
            .collect();
        for lo in &bounds {
            for hi in &bounds {
                let want: Vec<_> = model
                    .iter()
                    .filter(|(k, _)| k.as_slice() >= lo.as_slice() && (hi.is_empty() || k < &hi))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let fwd: Vec<_> = buf
                    .iter(lo, hi)
                    .map(|e| (e.key.to_vec(), e.value.unwrap_or_default().to_vec()))
                    .collect();
                assert_eq!(fwd, want, "forward [{lo:?}, {hi:?})");
                let mut rev: Vec<_> = buf
                    .iter_reverse(lo, hi)
                    .map(|e| (e.key.to_vec(), e.value.unwrap_or_default().to_vec()))
                    .collect();
                rev.reverse();
                assert_eq!(rev, want, "reverse [{lo:?}, {hi:?})");
            }
        }
    }
}
