//! Range iterators over a [`MemBuffer`](super::MemBuffer), forward and reverse (client-go
//! `art.Iterator`, `art.SnapIter`).

use super::arena::Addr;
use super::flags::KeyFlags;
use super::membuffer::MemBuffer;
use super::tree::{Pos, NIL};

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
    Snapshot(Addr),
}

/// An iterator over `[lower, upper)` of a buffer, ascending or descending. Created by
/// [`MemBuffer::iter`] and friends; it borrows the buffer, so the buffer cannot change under it
/// (client-go checks `WriteSeqNo` at run time instead).
///
/// Both ends are located once, when the iterator is created; stepping is then a walk over the
/// current leaf's slots with no key comparison.
pub struct Iter<'a> {
    buf: &'a MemBuffer,
    /// Slots of the current leaf.
    slots: &'a [Addr],
    prev: u32,
    next: u32,
    leaf: u32,
    /// Index in `slots` of the next slot to yield.
    idx: usize,
    /// The first position not to yield (`None`: the end of the tree).
    stop: Option<Pos>,
    done: bool,
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
            slots: &[],
            prev: NIL,
            next: NIL,
            leaf: NIL,
            idx: 0,
            stop,
            done: empty || start.is_none(),
            reverse,
            mode,
        };
        if let (false, Some(p)) = (it.done, start) {
            it.enter(p.leaf);
            it.idx = p.idx as usize;
        }
        it
    }

    #[inline]
    fn enter(&mut self, leaf: u32) {
        let (slots, prev, next) = self.buf.tree().leaf(leaf);
        self.slots = slots;
        self.prev = prev;
        self.next = next;
        self.leaf = leaf;
    }

    /// The next slot's record, advancing; `None` at the stop position or the end.
    #[inline]
    fn step(&mut self) -> Option<Addr> {
        if self.done {
            return None;
        }
        let here = Pos {
            leaf: self.leaf,
            idx: self.idx as u32,
        };
        if self.stop == Some(here) {
            self.done = true;
            return None;
        }
        let rec = *self.slots.get(self.idx)?;
        self.prefetch_ahead();
        if self.reverse {
            if self.idx > 0 {
                self.idx -= 1;
            } else if self.prev != NIL {
                self.enter(self.prev);
                self.idx = self.slots.len().saturating_sub(1);
            } else {
                self.done = true;
            }
        } else if self.idx + 1 < self.slots.len() {
            self.idx += 1;
        } else if self.next != NIL {
            self.enter(self.next);
            self.idx = 0;
        } else {
            self.done = true;
        }
        Some(rec)
    }
}

impl Iter<'_> {
    /// Scans chase two dependent loads per entry (slot -> key record -> value version): ask
    /// for the record a few slots ahead and for the value of a nearer one, whose record was
    /// asked for earlier, so the misses overlap instead of queueing.
    #[inline]
    fn prefetch_ahead(&self) {
        const REC_AHEAD: usize = 8;
        const VAL_AHEAD: usize = 4;
        let (r, v) = if self.reverse {
            (
                self.idx.checked_sub(REC_AHEAD),
                self.idx.checked_sub(VAL_AHEAD),
            )
        } else {
            (Some(self.idx + REC_AHEAD), Some(self.idx + VAL_AHEAD))
        };
        if let Some(&rec) = r.and_then(|i| self.slots.get(i)) {
            self.buf.prefetch_record(rec);
        }
        if let Some(&rec) = v.and_then(|i| self.slots.get(i)) {
            self.buf.prefetch_value(rec);
        }
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = BufferEntry<'a>;

    #[inline]
    fn next(&mut self) -> Option<BufferEntry<'a>> {
        while let Some(rec) = self.step() {
            if let Some(e) = self.buf.rec_entry_for(rec, self.mode) {
                return Some(e);
            }
        }
        None
    }
}

impl std::iter::FusedIterator for Iter<'_> {}
