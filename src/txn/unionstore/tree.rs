//! The ordered index: an insert-only B+ tree over key records that live in the key arena.
//!
//! This takes the place of client-go's adaptive radix tree (`internal/unionstore/art`) and its
//! older red-black tree (`internal/unionstore/rbt`). Why a B+ tree:
//!
//! - A transaction buffer never removes a key while it lives (client-go marks a discarded key
//!   deleted in place and keeps the node), so the tree only needs search, insert and ordered
//!   walks: no rebalancing on delete, which makes a B+ tree small and simple.
//! - Each slot is 8 bytes: the record's `u32` address and the first 4 key bytes as a big-endian
//!   integer (the "head"). Binary search compares heads, which sit in the node's own cache
//!   lines, and reads the key bytes in the arena only when heads tie. A red-black tree pays a
//!   pointer chase per comparison and ~40 bytes per key; an ART is fast but complex and its
//!   iteration (both directions, bounds) is a large amount of code to get right.
//! - A full leaf first lends slots to a sibling under the same parent that has room, and splits
//!   only when neither has: leaves stay about 80% full under random inserts instead of the
//!   ~69% of plain splitting, which is most of the index's memory.
//! - Leaves are chained both ways, so forward and reverse range scans are a slot walk.
//! - Nodes live in fixed-size pages of a `Vec`, addressed by `u32`: growth never copies a
//!   node and there is no allocation per key.
//!
//! Key records live in the key arena (`records.rs`).

use std::cmp::Ordering;

use super::records::{KeyArena, RecAddr};

const LEAF_CAP: usize = 32;
const INNER_CAP: usize = 32;
const PAGE: usize = 256;
const MAX_HEIGHT: usize = 24;
pub(crate) const NIL: u32 = u32::MAX;

/// Hints the CPU to load the cache line holding `p`. Any address is fine: a prefetch never
/// faults and reads nothing the program can observe.
#[inline]
pub(crate) fn prefetch_ptr(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: `sse` is part of the x86_64 baseline, and a prefetch is only a hint: it does
        // not dereference the pointer, so it cannot fault whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The first 4 bytes of `key` as a big-endian integer, zero padded. Different heads order like
/// the keys; equal heads need a full comparison.
#[inline]
pub(crate) fn head(key: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    let n = key.len().min(4);
    b[..n].copy_from_slice(&key[..n]);
    u32::from_be_bytes(b)
}

#[derive(Clone)]
struct Leaf {
    len: u32,
    prev: u32,
    next: u32,
    heads: [u32; LEAF_CAP],
    recs: [RecAddr; LEAF_CAP],
}

#[derive(Clone)]
struct Inner {
    len: u32,
    heads: [u32; INNER_CAP],
    recs: [RecAddr; INNER_CAP],
    children: [u32; INNER_CAP + 1],
}

struct Pages<T> {
    pages: Vec<Vec<T>>,
    len: usize,
}

impl<T> Pages<T> {
    fn new() -> Self {
        Pages {
            pages: Vec::new(),
            len: 0,
        }
    }
    fn push(&mut self, t: T) -> u32 {
        if self.len & (PAGE - 1) == 0 {
            self.pages.push(Vec::with_capacity(PAGE));
        }
        let id = self.len as u32;
        if let Some(p) = self.pages.last_mut() {
            p.push(t);
        }
        self.len += 1;
        id
    }
    #[inline]
    fn get(&self, id: u32) -> &T {
        &self.pages[id as usize / PAGE][id as usize % PAGE]
    }
    #[inline]
    fn get_mut(&mut self, id: u32) -> &mut T {
        &mut self.pages[id as usize / PAGE][id as usize % PAGE]
    }
    fn bytes(&self) -> u64 {
        (self.pages.len() * PAGE * std::mem::size_of::<T>()) as u64
    }
}

/// A position in the leaf chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pos {
    pub(crate) leaf: u32,
    pub(crate) idx: u32,
}

/// The B+ tree of key-record addresses ordered by key.
pub(crate) struct Tree {
    leaves: Pages<Leaf>,
    inners: Pages<Inner>,
    root: u32,
    height: u32,
    first: u32,
    last: u32,
}

#[inline]
fn cmp_slot(keys: &KeyArena, sh: u32, srec: RecAddr, key: &[u8], kh: u32) -> Ordering {
    match sh.cmp(&kh) {
        Ordering::Equal => keys.key(srec).cmp(key),
        o => o,
    }
}

/// First slot whose key is `>= key`, and whether it is equal.
#[inline]
fn lower_bound(
    keys: &KeyArena,
    heads: &[u32],
    recs: &[RecAddr],
    key: &[u8],
    kh: u32,
) -> (usize, bool) {
    let (mut lo, mut hi) = (0usize, heads.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        match cmp_slot(keys, heads[mid], recs[mid], key, kh) {
            Ordering::Less => lo = mid + 1,
            Ordering::Equal => return (mid, true),
            Ordering::Greater => hi = mid,
        }
    }
    (lo, false)
}

impl Tree {
    pub(crate) fn new() -> Tree {
        Tree {
            leaves: Pages::new(),
            inners: Pages::new(),
            root: NIL,
            height: 0,
            first: NIL,
            last: NIL,
        }
    }

    /// Bytes reserved by the node pages.
    pub(crate) fn capacity(&self) -> u64 {
        self.leaves.bytes()
            + self.inners.bytes()
            + (self.leaves.pages.capacity() + self.inners.pages.capacity()) as u64 * 24
    }

    #[inline]
    fn child_for(&self, inner: &Inner, keys: &KeyArena, key: &[u8], kh: u32) -> u32 {
        let n = inner.len as usize;
        let (i, eq) = lower_bound(keys, &inner.heads[..n], &inner.recs[..n], key, kh);
        inner.children[i + eq as usize]
    }

    /// The record of `key`, if present.
    pub(crate) fn find(&self, keys: &KeyArena, key: &[u8]) -> Option<RecAddr> {
        if self.root == NIL {
            return None;
        }
        let kh = head(key);
        let mut node = self.root;
        for _ in 0..self.height {
            node = self.child_for(self.inners.get(node), keys, key, kh);
        }
        let leaf = self.leaves.get(node);
        let n = leaf.len as usize;
        match lower_bound(keys, &leaf.heads[..n], &leaf.recs[..n], key, kh) {
            (i, true) => Some(leaf.recs[i]),
            _ => None,
        }
    }

    /// The record of `key`; if absent, `make` writes a record into `keys` and it is inserted.
    /// Returns the record and whether it was inserted.
    pub(crate) fn find_or_insert<E>(
        &mut self,
        keys: &mut KeyArena,
        key: &[u8],
        make: impl FnOnce(&mut KeyArena) -> Result<RecAddr, E>,
    ) -> Result<(RecAddr, bool), E> {
        let kh = head(key);
        if self.root == NIL {
            let rec = make(keys)?;
            let mut leaf = Leaf {
                len: 1,
                prev: NIL,
                next: NIL,
                heads: [0; LEAF_CAP],
                recs: [0; LEAF_CAP],
            };
            leaf.heads[0] = kh;
            leaf.recs[0] = rec;
            let id = self.leaves.push(leaf);
            self.root = id;
            self.first = id;
            self.last = id;
            return Ok((rec, true));
        }
        let mut path = [(0u32, 0usize); MAX_HEIGHT];
        let mut node = self.root;
        for p in path.iter_mut().take(self.height as usize) {
            let inner = self.inners.get(node);
            let n = inner.len as usize;
            let (i, eq) = lower_bound(keys, &inner.heads[..n], &inner.recs[..n], key, kh);
            let ci = i + eq as usize;
            *p = (node, ci);
            node = inner.children[ci];
        }
        let leaf = self.leaves.get(node);
        let n = leaf.len as usize;
        let (pos, found) = lower_bound(keys, &leaf.heads[..n], &leaf.recs[..n], key, kh);
        if found {
            return Ok((leaf.recs[pos], false));
        }
        let rec = make(keys)?;
        self.insert_in_leaf(node, pos, kh, rec, &path[..self.height as usize]);
        Ok((rec, true))
    }

    fn insert_in_leaf(
        &mut self,
        id: u32,
        pos: usize,
        kh: u32,
        rec: RecAddr,
        path: &[(u32, usize)],
    ) {
        let leaf = self.leaves.get_mut(id);
        let n = leaf.len as usize;
        if n < LEAF_CAP {
            leaf.heads.copy_within(pos..n, pos + 1);
            leaf.recs.copy_within(pos..n, pos + 1);
            leaf.heads[pos] = kh;
            leaf.recs[pos] = rec;
            leaf.len += 1;
            return;
        }
        let append = pos == LEAF_CAP && leaf.next == NIL;
        if !append {
            if let Some(&parent) = path.last() {
                if self.lend(id, pos, kh, rec, parent) {
                    return;
                }
            }
        }
        let leaf = self.leaves.get_mut(id);
        let mut right = Leaf {
            len: 0,
            prev: id,
            next: leaf.next,
            heads: [0; LEAF_CAP],
            recs: [0; LEAF_CAP],
        };
        if append {
            // Appending past the rightmost leaf: keep the full leaf full (ascending loads).
            right.heads[0] = kh;
            right.recs[0] = rec;
            right.len = 1;
        } else {
            let mid = LEAF_CAP / 2;
            let moved = LEAF_CAP - mid;
            right.heads[..moved].copy_from_slice(&leaf.heads[mid..]);
            right.recs[..moved].copy_from_slice(&leaf.recs[mid..]);
            right.len = moved as u32;
            leaf.len = mid as u32;
            let (target, at) = if pos <= mid {
                (&mut *leaf, pos)
            } else {
                (&mut right, pos - mid)
            };
            let tn = target.len as usize;
            target.heads.copy_within(at..tn, at + 1);
            target.recs.copy_within(at..tn, at + 1);
            target.heads[at] = kh;
            target.recs[at] = rec;
            target.len += 1;
        }
        let (sep_h, sep_rec, old_next) = (right.heads[0], right.recs[0], right.next);
        let rid = self.leaves.push(right);
        self.leaves.get_mut(id).next = rid;
        if old_next == NIL {
            self.last = rid;
        } else {
            self.leaves.get_mut(old_next).prev = rid;
        }
        self.insert_separator(path, sep_h, sep_rec, id, rid);
    }

    /// Inserts slot `(kh, rec)` at `pos` of the full leaf `id` by moving slots to a sibling
    /// under the same parent `(parent, child index)`: the right one if it has two free slots,
    /// else the left one. Half the sibling's free room is filled and the parent's separator
    /// between the two is updated. Returns false, changing nothing, when neither has room.
    fn lend(&mut self, id: u32, pos: usize, kh: u32, rec: RecAddr, parent: (u32, usize)) -> bool {
        let (pid, ci) = parent;
        let p = self.inners.get(pid);
        let pn = p.len as usize;
        let right = (ci < pn).then(|| p.children[ci + 1]);
        let left = (ci > 0).then(|| p.children[ci - 1]);
        let room =
            |sib: Option<u32>| sib.filter(|&s| self.leaves.get(s).len as usize + 2 <= LEAF_CAP);
        let (right, left) = (room(right), room(left));
        if right.is_none() && left.is_none() {
            return false;
        }
        // The leaf's slots with the new one in place: LEAF_CAP + 1 of them.
        let leaf = self.leaves.get(id);
        let mut hs = [0u32; LEAF_CAP + 1];
        let mut rs = [0u32; LEAF_CAP + 1];
        hs[..pos].copy_from_slice(&leaf.heads[..pos]);
        rs[..pos].copy_from_slice(&leaf.recs[..pos]);
        hs[pos] = kh;
        rs[pos] = rec;
        hs[pos + 1..].copy_from_slice(&leaf.heads[pos..]);
        rs[pos + 1..].copy_from_slice(&leaf.recs[pos..]);
        if let Some(rid) = right {
            let r = self.leaves.get_mut(rid);
            let rn = r.len as usize;
            let k = (LEAF_CAP + 1 - rn) / 2;
            let keep = LEAF_CAP + 1 - k;
            r.heads.copy_within(0..rn, k);
            r.recs.copy_within(0..rn, k);
            r.heads[..k].copy_from_slice(&hs[keep..]);
            r.recs[..k].copy_from_slice(&rs[keep..]);
            r.len = (rn + k) as u32;
            let l = self.leaves.get_mut(id);
            l.heads[..keep].copy_from_slice(&hs[..keep]);
            l.recs[..keep].copy_from_slice(&rs[..keep]);
            l.len = keep as u32;
            let p = self.inners.get_mut(pid);
            p.heads[ci] = hs[keep];
            p.recs[ci] = rs[keep];
        } else if let Some(lid) = left {
            let l = self.leaves.get_mut(lid);
            let ln = l.len as usize;
            let k = (LEAF_CAP + 1 - ln) / 2;
            l.heads[ln..ln + k].copy_from_slice(&hs[..k]);
            l.recs[ln..ln + k].copy_from_slice(&rs[..k]);
            l.len = (ln + k) as u32;
            let keep = LEAF_CAP + 1 - k;
            let me = self.leaves.get_mut(id);
            me.heads[..keep].copy_from_slice(&hs[k..]);
            me.recs[..keep].copy_from_slice(&rs[k..]);
            me.len = keep as u32;
            let p = self.inners.get_mut(pid);
            p.heads[ci - 1] = hs[k];
            p.recs[ci - 1] = rs[k];
        }
        true
    }

    /// Inserts separator `(h, rec)` with right child `right` after `left` into the parent on
    /// `path`, splitting upwards as needed.
    fn insert_separator(
        &mut self,
        path: &[(u32, usize)],
        h: u32,
        rec: RecAddr,
        left: u32,
        right: u32,
    ) {
        let Some((&(pid, ci), rest)) = path.split_last() else {
            let mut root = Inner {
                len: 1,
                heads: [0; INNER_CAP],
                recs: [0; INNER_CAP],
                children: [NIL; INNER_CAP + 1],
            };
            root.heads[0] = h;
            root.recs[0] = rec;
            root.children[0] = left;
            root.children[1] = right;
            self.root = self.inners.push(root);
            self.height += 1;
            return;
        };
        let p = self.inners.get_mut(pid);
        let n = p.len as usize;
        if n < INNER_CAP {
            p.heads.copy_within(ci..n, ci + 1);
            p.recs.copy_within(ci..n, ci + 1);
            p.children.copy_within(ci + 1..n + 1, ci + 2);
            p.heads[ci] = h;
            p.recs[ci] = rec;
            p.children[ci + 1] = right;
            p.len += 1;
            return;
        }
        // Split a full inner node: INNER_CAP + 1 separators, INNER_CAP + 2 children.
        let mut hs = [0u32; INNER_CAP + 1];
        let mut rs = [0u32; INNER_CAP + 1];
        let mut cs = [NIL; INNER_CAP + 2];
        hs[..ci].copy_from_slice(&p.heads[..ci]);
        rs[..ci].copy_from_slice(&p.recs[..ci]);
        hs[ci] = h;
        rs[ci] = rec;
        hs[ci + 1..].copy_from_slice(&p.heads[ci..]);
        rs[ci + 1..].copy_from_slice(&p.recs[ci..]);
        cs[..ci + 1].copy_from_slice(&p.children[..ci + 1]);
        cs[ci + 1] = right;
        cs[ci + 2..].copy_from_slice(&p.children[ci + 1..]);
        let m = INNER_CAP.div_ceil(2);
        p.len = m as u32;
        p.heads[..m].copy_from_slice(&hs[..m]);
        p.recs[..m].copy_from_slice(&rs[..m]);
        p.children[..m + 1].copy_from_slice(&cs[..m + 1]);
        let mut r = Inner {
            len: (INNER_CAP - m) as u32,
            heads: [0; INNER_CAP],
            recs: [0; INNER_CAP],
            children: [NIL; INNER_CAP + 1],
        };
        let rn = INNER_CAP - m;
        r.heads[..rn].copy_from_slice(&hs[m + 1..]);
        r.recs[..rn].copy_from_slice(&rs[m + 1..]);
        r.children[..rn + 1].copy_from_slice(&cs[m + 1..]);
        let rid = self.inners.push(r);
        self.insert_separator(rest, hs[m], rs[m], pid, rid);
    }

    /// The record at `pos`.
    #[cfg(test)]
    pub(crate) fn rec_at(&self, pos: Pos) -> RecAddr {
        self.leaves.get(pos.leaf).recs[pos.idx as usize]
    }

    /// The record slots of `leaf` and its neighbours `(slots, prev, next)`.
    #[inline]
    pub(crate) fn leaf(&self, leaf: u32) -> (&[RecAddr], u32, u32) {
        let l = self.leaves.get(leaf);
        (&l.recs[..l.len as usize], l.prev, l.next)
    }

    /// Hints the CPU to load the header and record slots of `leaf` (a scan is about to reach
    /// it; leaves of a randomly filled tree are scattered over the node pages).
    #[inline]
    pub(crate) fn prefetch_leaf(&self, leaf: u32) {
        let l = self.leaves.get(leaf);
        prefetch_ptr(std::ptr::from_ref(&l.len).cast());
        for chunk in l.recs.chunks(16) {
            prefetch_ptr(chunk.as_ptr().cast());
        }
    }

    /// The first position, if any.
    pub(crate) fn first(&self) -> Option<Pos> {
        (self.first != NIL).then_some(Pos {
            leaf: self.first,
            idx: 0,
        })
    }

    /// The last position, if any.
    pub(crate) fn last(&self) -> Option<Pos> {
        (self.last != NIL).then(|| Pos {
            leaf: self.last,
            idx: self.leaves.get(self.last).len - 1,
        })
    }

    /// The position after `pos`.
    #[cfg(test)]
    pub(crate) fn next(&self, pos: Pos) -> Option<Pos> {
        let leaf = self.leaves.get(pos.leaf);
        if pos.idx + 1 < leaf.len {
            Some(Pos {
                leaf: pos.leaf,
                idx: pos.idx + 1,
            })
        } else if leaf.next != NIL {
            Some(Pos {
                leaf: leaf.next,
                idx: 0,
            })
        } else {
            None
        }
    }

    /// The position before `pos`.
    #[inline]
    pub(crate) fn prev(&self, pos: Pos) -> Option<Pos> {
        if pos.idx > 0 {
            return Some(Pos {
                leaf: pos.leaf,
                idx: pos.idx - 1,
            });
        }
        let p = self.leaves.get(pos.leaf).prev;
        (p != NIL).then(|| Pos {
            leaf: p,
            idx: self.leaves.get(p).len - 1,
        })
    }

    /// The first position whose key is `>= key`.
    pub(crate) fn seek_ge(&self, keys: &KeyArena, key: &[u8]) -> Option<Pos> {
        if self.root == NIL {
            return None;
        }
        let kh = head(key);
        let mut node = self.root;
        for _ in 0..self.height {
            node = self.child_for(self.inners.get(node), keys, key, kh);
        }
        let leaf = self.leaves.get(node);
        let n = leaf.len as usize;
        let (i, _) = lower_bound(keys, &leaf.heads[..n], &leaf.recs[..n], key, kh);
        if i < n {
            Some(Pos {
                leaf: node,
                idx: i as u32,
            })
        } else if leaf.next != NIL {
            Some(Pos {
                leaf: leaf.next,
                idx: 0,
            })
        } else {
            None
        }
    }

    /// The last position whose key is `< key`.
    pub(crate) fn seek_lt(&self, keys: &KeyArena, key: &[u8]) -> Option<Pos> {
        match self.seek_ge(keys, key) {
            Some(p) => self.prev(p),
            None => self.last(),
        }
    }

    /// Drops every node.
    pub(crate) fn reset(&mut self) {
        *self = Tree::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::unionstore::records::Full;

    fn make(keys: &mut KeyArena, key: &[u8]) -> Result<RecAddr, Full> {
        keys.push(0, key, b"")
    }

    fn check(order: impl Iterator<Item = u32>) {
        let mut t = Tree::new();
        let mut keys = KeyArena::new();
        let mut model = std::collections::BTreeSet::new();
        for i in order {
            let k = format!("k{:07}", i).into_bytes();
            let (_, ins) = t
                .find_or_insert(&mut keys, &k, |a| make(a, &k))
                .expect("room");
            assert_eq!(ins, model.insert(k.clone()));
        }
        for k in &model {
            let rec = t.find(&keys, k).expect("present");
            assert_eq!(keys.key(rec), &k[..]);
        }
        assert!(t.find(&keys, b"j").is_none());
        let mut fwd = Vec::new();
        let mut p = t.first();
        while let Some(x) = p {
            fwd.push(keys.key(t.rec_at(x)).to_vec());
            p = t.next(x);
        }
        assert_eq!(fwd, model.iter().cloned().collect::<Vec<_>>());
        let mut rev = Vec::new();
        let mut p = t.last();
        while let Some(x) = p {
            rev.push(keys.key(t.rec_at(x)).to_vec());
            p = t.prev(x);
        }
        rev.reverse();
        assert_eq!(rev, fwd);
        let probe = b"k00005005".to_vec();
        let ge = t
            .seek_ge(&keys, &probe)
            .map(|p| keys.key(t.rec_at(p)).to_vec());
        assert_eq!(ge, model.range(probe.clone()..).next().cloned());
        let lt = t
            .seek_lt(&keys, &probe)
            .map(|p| keys.key(t.rec_at(p)).to_vec());
        assert_eq!(lt, model.range(..probe).next_back().cloned());
    }

    #[test]
    fn random_inserts_keep_leaves_mostly_full() {
        let mut t = Tree::new();
        let mut keys = KeyArena::new();
        let mut model = std::collections::BTreeSet::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..100_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mixed lengths, some shorter than a head, many sharing a head.
            let k = x.to_be_bytes()[..(i % 9) as usize].to_vec();
            let (_, ins) = t
                .find_or_insert(&mut keys, &k, |a| make(a, &k))
                .expect("room");
            assert_eq!(ins, model.insert(k));
        }
        let fill = model.len() as f64 / (t.leaves.len * LEAF_CAP) as f64;
        assert!(fill > 0.75, "leaf fill {fill:.3}");
        let mut fwd = Vec::new();
        let mut p = t.first();
        while let Some(x) = p {
            fwd.push(keys.key(t.rec_at(x)).to_vec());
            p = t.next(x);
        }
        assert_eq!(fwd, model.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn ascending_descending_and_shuffled() {
        check(0..20_000);
        check((0..20_000).rev());
        check((0..40_000u32).map(|i| i.wrapping_mul(2_654_435_761) % 15_000));
    }
}
