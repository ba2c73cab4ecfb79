//! The ordered index: an insert-only B+ tree over key records that live in the key arena.
//!
//! This takes the place of client-go's adaptive radix tree (`internal/unionstore/art`) and its
//! older red-black tree (`internal/unionstore/rbt`). Why a B+ tree:
//!
//! - A transaction buffer never removes a key while it lives (client-go marks a discarded key
//!   deleted in place and keeps the node), so the tree only needs search, insert and ordered
//!   walks: no rebalancing on delete, which makes a B+ tree small and simple.
//! - Each slot is 8 bytes: the record's `u32` address and 4 key bytes taken after the prefix
//!   the node's keys share (`slots.rs`). Binary search compares those, in the node's own cache
//!   lines, and reads the key bytes in the arena only when they tie. A red-black tree pays a
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

use super::records::{KeyArena, RecAddr};
use super::slots::{Slots, CAP};

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

#[derive(Clone)]
struct Leaf {
    s: Slots,
    prev: u32,
    next: u32,
}

#[derive(Clone)]
struct Inner {
    s: Slots,
    children: [u32; CAP + 1],
}

/// Nodes addressed by `u32`: pages of [`PAGE`] nodes. The first page grows like a `Vec` (a
/// small transaction's tree costs about a kilobyte, not a full page); later pages are
/// allocated whole, so a large tree never copies its nodes.
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
        if self.len == 0 {
            self.pages.push(Vec::new());
        } else if self.len % PAGE == 0 {
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
        let nodes: usize = self.pages.iter().map(Vec::capacity).sum();
        (nodes * std::mem::size_of::<T>()) as u64
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

    /// The leaf where `key` is or belongs.
    #[inline]
    fn leaf_for(&self, keys: &KeyArena, key: &[u8]) -> u32 {
        let mut node = self.root;
        for _ in 0..self.height {
            let inner = self.inners.get(node);
            let (i, eq) = inner.s.search(keys, key);
            node = inner.children[i + eq as usize];
        }
        node
    }

    /// The record of `key`, if present.
    pub(crate) fn find(&self, keys: &KeyArena, key: &[u8]) -> Option<RecAddr> {
        if self.root == NIL {
            return None;
        }
        let leaf = self.leaves.get(self.leaf_for(keys, key));
        match leaf.s.search(keys, key) {
            (i, true) => Some(leaf.s.rec(i)),
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
        if self.root == NIL {
            let rec = make(keys)?;
            let id = self.leaves.push(Leaf {
                s: Slots::first(key, rec),
                prev: NIL,
                next: NIL,
            });
            self.root = id;
            self.first = id;
            self.last = id;
            return Ok((rec, true));
        }
        let mut path = [(0u32, 0usize); MAX_HEIGHT];
        let mut node = self.root;
        for p in path.iter_mut().take(self.height as usize) {
            let inner = self.inners.get(node);
            let (i, eq) = inner.s.search(keys, key);
            let ci = i + eq as usize;
            *p = (node, ci);
            node = inner.children[ci];
        }
        let leaf = self.leaves.get(node);
        let (pos, found) = leaf.s.search(keys, key);
        if found {
            return Ok((leaf.s.rec(pos), false));
        }
        let rec = make(keys)?;
        self.insert_in_leaf(keys, node, pos, key, rec, &path[..self.height as usize]);
        Ok((rec, true))
    }

    fn insert_in_leaf(
        &mut self,
        keys: &KeyArena,
        id: u32,
        pos: usize,
        key: &[u8],
        rec: RecAddr,
        path: &[(u32, usize)],
    ) {
        let leaf = self.leaves.get_mut(id);
        let kh = leaf.s.admit(key);
        if leaf.s.len() < CAP {
            leaf.s.insert(pos, kh, rec);
            return;
        }
        let append = pos == CAP && leaf.next == NIL;
        if !append {
            if let Some(&parent) = path.last() {
                if self.lend(keys, id, pos, kh, rec, parent) {
                    return;
                }
            }
        }
        let leaf = self.leaves.get_mut(id);
        let mut right = Leaf {
            s: leaf.s.sibling(),
            prev: id,
            next: leaf.next,
        };
        if append {
            // Appending past the rightmost leaf: keep the full leaf full (ascending loads).
            right.s.insert(0, kh, rec);
        } else {
            let mid = CAP / 2;
            let (hs, rs) = leaf.s.parts();
            right.s.assign(&hs[mid..], &rs[mid..]);
            leaf.s.truncate(mid);
            if pos <= mid {
                leaf.s.insert(pos, kh, rec);
            } else {
                right.s.insert(pos - mid, kh, rec);
            }
        }
        let (sep, old_next) = (right.s.rec(0), right.next);
        let rid = self.leaves.push(right);
        self.leaves.get_mut(id).next = rid;
        if old_next == NIL {
            self.last = rid;
        } else {
            self.leaves.get_mut(old_next).prev = rid;
        }
        self.insert_separator(keys, path, sep, id, rid);
    }

    /// Inserts slot `(kh, rec)` at `pos` of the full leaf `id` by moving slots to a sibling
    /// under the same parent `(parent, child index)`: the right one if it has two free slots,
    /// else the left one. Half the sibling's free room is filled and the parent's separator
    /// between the two is updated. Returns false, changing nothing, when neither has room.
    fn lend(
        &mut self,
        keys: &KeyArena,
        id: u32,
        pos: usize,
        kh: u32,
        rec: RecAddr,
        parent: (u32, usize),
    ) -> bool {
        let (pid, ci) = parent;
        let p = self.inners.get(pid);
        let pn = p.s.len();
        let room = |sib: u32| self.leaves.get(sib).s.len() + 2 <= CAP;
        let right = (ci < pn).then(|| p.children[ci + 1]).filter(|&s| room(s));
        let left = (ci > 0).then(|| p.children[ci - 1]).filter(|&s| room(s));
        if right.is_none() && left.is_none() {
            return false;
        }
        // The leaf's slots with the new one in place: CAP + 1 of them.
        let leaf = &self.leaves.get(id).s;
        let src = leaf.prefix();
        let (lh, lr) = leaf.parts();
        let mut hs = [0u32; CAP + 1];
        let mut rs = [0u32; CAP + 1];
        hs[..pos].copy_from_slice(&lh[..pos]);
        rs[..pos].copy_from_slice(&lr[..pos]);
        hs[pos] = kh;
        rs[pos] = rec;
        hs[pos + 1..].copy_from_slice(&lh[pos..]);
        rs[pos + 1..].copy_from_slice(&lr[pos..]);
        let mut moved = [0u32; CAP];
        let (sep_idx, sep) = if let Some(rid) = right {
            let r = &mut self.leaves.get_mut(rid).s;
            let k = (CAP + 1 - r.len()) / 2;
            let keep = CAP + 1 - k;
            let np = r.meet(&src);
            for (m, &h) in moved.iter_mut().zip(&hs[keep..]) {
                *m = src.rebase(np, h);
            }
            r.prepend(&moved[..k], &rs[keep..]);
            self.leaves.get_mut(id).s.assign(&hs[..keep], &rs[..keep]);
            (ci, rs[keep])
        } else if let Some(lid) = left {
            let l = &mut self.leaves.get_mut(lid).s;
            let k = (CAP + 1 - l.len()) / 2;
            let np = l.meet(&src);
            for (m, &h) in moved.iter_mut().zip(&hs[..k]) {
                *m = src.rebase(np, h);
            }
            l.append(&moved[..k], &rs[..k]);
            self.leaves.get_mut(id).s.assign(&hs[k..], &rs[k..]);
            (ci - 1, rs[k])
        } else {
            return false;
        };
        let p = &mut self.inners.get_mut(pid).s;
        let h = p.admit(keys.key(sep));
        p.set(sep_idx, h, sep);
        true
    }

    /// Inserts the separator `sep` (a record: the first key of `right`) with right child
    /// `right` after `left` into the parent on `path`, splitting upwards as needed.
    fn insert_separator(
        &mut self,
        keys: &KeyArena,
        path: &[(u32, usize)],
        sep: RecAddr,
        left: u32,
        right: u32,
    ) {
        let key = keys.key(sep);
        let Some((&(pid, ci), rest)) = path.split_last() else {
            let mut children = [NIL; CAP + 1];
            children[0] = left;
            children[1] = right;
            self.root = self.inners.push(Inner {
                s: Slots::first(key, sep),
                children,
            });
            self.height += 1;
            return;
        };
        let p = self.inners.get_mut(pid);
        let h = p.s.admit(key);
        let n = p.s.len();
        if n < CAP {
            p.s.insert(ci, h, sep);
            p.children.copy_within(ci + 1..n + 1, ci + 2);
            p.children[ci + 1] = right;
            return;
        }
        // Split a full inner node: CAP + 1 separators, CAP + 2 children.
        let (ph, pr) = p.s.parts();
        let mut hs = [0u32; CAP + 1];
        let mut rs = [0u32; CAP + 1];
        let mut cs = [NIL; CAP + 2];
        hs[..ci].copy_from_slice(&ph[..ci]);
        rs[..ci].copy_from_slice(&pr[..ci]);
        hs[ci] = h;
        rs[ci] = sep;
        hs[ci + 1..].copy_from_slice(&ph[ci..]);
        rs[ci + 1..].copy_from_slice(&pr[ci..]);
        cs[..ci + 1].copy_from_slice(&p.children[..ci + 1]);
        cs[ci + 1] = right;
        cs[ci + 2..].copy_from_slice(&p.children[ci + 1..]);
        let m = CAP.div_ceil(2);
        p.s.assign(&hs[..m], &rs[..m]);
        p.children[..m + 1].copy_from_slice(&cs[..m + 1]);
        let mut r = Inner {
            s: p.s.sibling(),
            children: [NIL; CAP + 1],
        };
        r.s.assign(&hs[m + 1..], &rs[m + 1..]);
        r.children[..CAP - m + 1].copy_from_slice(&cs[m + 1..]);
        let rid = self.inners.push(r);
        self.insert_separator(keys, rest, rs[m], pid, rid);
    }

    /// The record at `pos`.
    #[cfg(test)]
    pub(crate) fn rec_at(&self, pos: Pos) -> RecAddr {
        self.leaves.get(pos.leaf).s.rec(pos.idx as usize)
    }

    /// The record slots of `leaf` and its neighbours `(slots, prev, next)`.
    #[inline]
    pub(crate) fn leaf(&self, leaf: u32) -> (&[RecAddr], u32, u32) {
        let l = self.leaves.get(leaf);
        (l.s.recs(), l.prev, l.next)
    }

    /// Hints the CPU to load `leaf` (a scan is about to reach it; leaves of a randomly filled
    /// tree are scattered over the node pages).
    #[inline]
    pub(crate) fn prefetch_leaf(&self, leaf: u32) {
        let p: *const u8 = std::ptr::from_ref(self.leaves.get(leaf)).cast();
        for off in (0..std::mem::size_of::<Leaf>()).step_by(64) {
            prefetch_ptr(p.wrapping_add(off));
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
            idx: self.leaves.get(self.last).s.len() as u32 - 1,
        })
    }

    /// The position after `pos`.
    #[cfg(test)]
    pub(crate) fn next(&self, pos: Pos) -> Option<Pos> {
        let leaf = self.leaves.get(pos.leaf);
        if (pos.idx as usize) + 1 < leaf.s.len() {
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
            idx: self.leaves.get(p).s.len() as u32 - 1,
        })
    }

    /// The first position whose key is `>= key`.
    pub(crate) fn seek_ge(&self, keys: &KeyArena, key: &[u8]) -> Option<Pos> {
        if self.root == NIL {
            return None;
        }
        let node = self.leaf_for(keys, key);
        let leaf = self.leaves.get(node);
        let (i, _) = leaf.s.search(keys, key);
        if i < leaf.s.len() {
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

    /// Every key, walking the leaf chain forward.
    fn walk(t: &Tree, keys: &KeyArena) -> Vec<Vec<u8>> {
        let mut fwd = Vec::new();
        let mut p = t.first();
        while let Some(x) = p {
            fwd.push(keys.key(t.rec_at(x)).to_vec());
            p = t.next(x);
        }
        fwd
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
        let fwd = walk(&t, &keys);
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
        let fill = model.len() as f64 / (t.leaves.len * CAP) as f64;
        assert!(fill > 0.75, "leaf fill {fill:.3}");
        let fwd = walk(&t, &keys);
        assert_eq!(fwd, model.into_iter().collect::<Vec<_>>());
    }

    /// Keys from several shared prefixes of different lengths (TiDB-like row and index keys,
    /// short ones, long ones past the stored prefix), with short suffixes from a tiny alphabet
    /// so that heads tie, prefixes shrink and nodes lend across prefixes.
    #[test]
    fn mixed_prefixes_match_a_btreeset() {
        let prefixes: [&[u8]; 6] = [
            b"",
            b"t",
            b"t\x80\0\0\0\0\0\0\x2a_r",
            b"t\x80\0\0\0\0\0\0\x2a_i\x80\0\0\0\0\0\0\x01",
            b"t\x80\0\0\0\0\0\0\x2a_i\x80\0\0\0\0\0\0\x01\x03\x80\0\0\0\0\0",
            b"u\xff",
        ];
        let mut t = Tree::new();
        let mut keys = KeyArena::new();
        let mut model = std::collections::BTreeSet::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..60_000 {
            let mut k = prefixes[(rnd() % 6) as usize].to_vec();
            for _ in 0..rnd() % 7 {
                k.push(b"\0\x01ab\xff"[(rnd() % 5) as usize]);
            }
            let (rec, ins) = t
                .find_or_insert(&mut keys, &k, |a| make(a, &k))
                .expect("room");
            assert_eq!(keys.key(rec), &k[..]);
            assert_eq!(ins, model.insert(k));
        }
        for k in &model {
            assert_eq!(t.find(&keys, k).map(|r| keys.key(r)), Some(&k[..]));
        }
        let fwd = walk(&t, &keys);
        assert_eq!(fwd, model.iter().cloned().collect::<Vec<_>>());
        for _ in 0..5_000 {
            let mut probe = prefixes[(rnd() % 6) as usize].to_vec();
            for _ in 0..rnd() % 8 {
                probe.push(b"\0\x01abc\xff"[(rnd() % 6) as usize]);
            }
            assert_eq!(t.find(&keys, &probe).is_some(), model.contains(&probe));
            let ge = t
                .seek_ge(&keys, &probe)
                .map(|p| keys.key(t.rec_at(p)).to_vec());
            assert_eq!(
                ge,
                model.range(probe.clone()..).next().cloned(),
                "{probe:?}"
            );
            let lt = t
                .seek_lt(&keys, &probe)
                .map(|p| keys.key(t.rec_at(p)).to_vec());
            assert_eq!(lt, model.range(..probe.clone()).next_back().cloned());
        }
    }

    #[test]
    fn ascending_descending_and_shuffled() {
        check(0..20_000);
        check((0..20_000).rev());
        check((0..40_000u32).map(|i| i.wrapping_mul(2_654_435_761) % 15_000));
    }
}
