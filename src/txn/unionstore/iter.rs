//! Range iterators over a [`MemBuffer`](super::MemBuffer), forward and reverse (client-go
//! `art.Iterator`, `art.SnapIter`).

use std::cmp::Ordering;

use super::arena::Addr;
use super::flags::KeyFlags;
use super::membuffer::MemBuffer;
use super::tree::{cmp_at, head, Pos};

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
pub struct Iter<'a> {
    buf: &'a MemBuffer,
    pos: Option<Pos>,
    /// Forward: the exclusive upper bound; reverse: the inclusive lower bound. Empty: none.
    bound: &'a [u8],
    bound_head: u64,
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
        let pos = if reverse {
            if upper.is_empty() {
                tree.last()
            } else {
                tree.seek_lt(keys, upper)
            }
        } else if lower.is_empty() {
            tree.first()
        } else {
            tree.seek_ge(keys, lower)
        };
        let bound = if reverse { lower } else { upper };
        Iter {
            buf,
            pos,
            bound,
            bound_head: head(bound),
            reverse,
            mode,
        }
    }

    #[inline]
    fn in_bounds(&self, p: Pos) -> bool {
        if self.bound.is_empty() {
            return true;
        }
        let c = cmp_at(
            self.buf.tree(),
            self.buf.keys(),
            p,
            self.bound,
            self.bound_head,
        );
        if self.reverse {
            c != Ordering::Less
        } else {
            c == Ordering::Less
        }
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = BufferEntry<'a>;

    fn next(&mut self) -> Option<BufferEntry<'a>> {
        let buf = self.buf;
        let tree = buf.tree();
        while let Some(p) = self.pos {
            if !self.in_bounds(p) {
                self.pos = None;
                return None;
            }
            self.pos = if self.reverse {
                tree.prev(p)
            } else {
                tree.next(p)
            };
            if let Some(e) = buf.rec_entry_for(tree.rec_at(p), self.mode) {
                return Some(e);
            }
        }
        None
    }
}

impl std::iter::FusedIterator for Iter<'_> {}
