//! A tree node's sorted slot array, with the key prefix its keys share.
//!
//! Every slot is a key-record address plus a 4-byte *head*: the key bytes right after the
//! node's shared prefix, big-endian, zero padded. A search first compares the searched key with
//! the prefix (stored in the node, up to [`PMAX`] bytes): a key outside it sorts before or after
//! every slot without any further work. Otherwise binary search compares heads, which live in
//! the node's own cache lines, and reads a key in the arena only when heads tie.
//!
//! Taking heads after the prefix is what makes heads useful for real keys: TiDB keys share
//! `t{table id}_r` or `t{table id}_i{index id}` (11 or 19 bytes), so heads taken from the first
//! bytes would all tie and every comparison would cost a cache miss.
//!
//! The prefix only shrinks: a key that does not share it shrinks it to the common part
//! ([`Slots::admit`]), and heads are re-derived from the dropped prefix bytes and the old heads,
//! without reading keys. A node split out of another keeps the same prefix, which is still
//! shared, if perhaps not the longest.

use std::cmp::Ordering;

use super::records::{KeyArena, RecAddr};

/// Slots per node.
pub(crate) const CAP: usize = 32;

/// Longest prefix kept in a node.
pub(crate) const PMAX: usize = 21;

/// `key[p..p + 4]` as a big-endian integer, zero padded. For keys sharing their first `p`
/// bytes, different heads order like the keys; equal heads need a full comparison.
#[inline]
pub(crate) fn head_at(key: &[u8], p: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(t) = key.get(p..) {
        let n = t.len().min(4);
        b[..n].copy_from_slice(&t[..n]);
    }
    u32::from_be_bytes(b)
}

/// The head, relative to a prefix shorter by `dropped`, of a key whose head was `head`:
/// the dropped prefix bytes followed by the old head, cut to 4 bytes.
#[inline]
fn derive(dropped: &[u8], head: u32) -> u32 {
    if dropped.is_empty() {
        return head;
    }
    let mut b = [0u8; 8];
    let t = dropped.len().min(4);
    b[..t].copy_from_slice(&dropped[..t]);
    b[t..t + 4].copy_from_slice(&head.to_be_bytes());
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn lcp(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// A node's prefix, copied out to re-base another node against it.
#[derive(Clone, Copy)]
pub(crate) struct Prefix {
    len: usize,
    bytes: [u8; PMAX],
}

impl Prefix {
    /// The head relative to prefix length `np` (`<= self.len`) of a key whose head relative to
    /// this prefix is `head`.
    #[inline]
    pub(crate) fn rebase(&self, np: usize, head: u32) -> u32 {
        derive(&self.bytes[np..self.len], head)
    }
}

/// A sorted array of up to [`CAP`] slots sharing a prefix.
#[derive(Clone)]
pub(crate) struct Slots {
    len: u16,
    plen: u8,
    prefix: [u8; PMAX],
    heads: [u32; CAP],
    recs: [RecAddr; CAP],
}

impl Slots {
    /// A node holding only `key`.
    pub(crate) fn first(key: &[u8], rec: RecAddr) -> Slots {
        let plen = key.len().min(PMAX);
        let mut prefix = [0u8; PMAX];
        prefix[..plen].copy_from_slice(&key[..plen]);
        let mut s = Slots {
            len: 1,
            plen: plen as u8,
            prefix,
            heads: [0; CAP],
            recs: [0; CAP],
        };
        s.heads[0] = head_at(key, plen);
        s.recs[0] = rec;
        s
    }

    /// Slots used.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// The record addresses, in key order.
    #[inline]
    pub(crate) fn recs(&self) -> &[RecAddr] {
        &self.recs[..self.len as usize]
    }

    /// The record of slot `i`.
    #[inline]
    pub(crate) fn rec(&self, i: usize) -> RecAddr {
        self.recs[i]
    }

    /// The slots as `(heads, recs)`.
    pub(crate) fn parts(&self) -> (&[u32], &[RecAddr]) {
        let n = self.len as usize;
        (&self.heads[..n], &self.recs[..n])
    }

    /// A copy of the prefix.
    pub(crate) fn prefix(&self) -> Prefix {
        Prefix {
            len: self.plen as usize,
            bytes: self.prefix,
        }
    }

    /// The first slot whose key is `>= key`, and whether it is equal.
    #[inline]
    pub(crate) fn search(&self, keys: &KeyArena, key: &[u8]) -> (usize, bool) {
        let p = self.plen as usize;
        let n = self.len as usize;
        let m = p.min(key.len());
        match key[..m].cmp(&self.prefix[..m]) {
            Ordering::Less => return (0, false),
            Ordering::Greater => return (n, false),
            Ordering::Equal if key.len() < p => return (0, false),
            Ordering::Equal => {}
        }
        let kh = head_at(key, p);
        let (mut lo, mut hi) = (0usize, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let ord = match self.heads[mid].cmp(&kh) {
                Ordering::Equal => keys.key(self.recs[mid]).cmp(key),
                o => o,
            };
            match ord {
                Ordering::Less => lo = mid + 1,
                Ordering::Equal => return (mid, true),
                Ordering::Greater => hi = mid,
            }
        }
        (lo, false)
    }

    /// Shrinks the prefix, if needed, so that `key` shares it; returns `key`'s head.
    pub(crate) fn admit(&mut self, key: &[u8]) -> u32 {
        let p = self.plen as usize;
        let l = lcp(&self.prefix[..p], key);
        if l < p {
            self.rebase(l);
        }
        head_at(key, self.plen as usize)
    }

    /// Shrinks the prefix, if needed, to what it shares with `other`; returns the new length.
    pub(crate) fn meet(&mut self, other: &Prefix) -> usize {
        let p = self.plen as usize;
        let l = lcp(&self.prefix[..p], &other.bytes[..other.len]);
        if l < p {
            self.rebase(l);
        }
        l
    }

    /// Re-expresses every head relative to the shorter prefix length `np`.
    fn rebase(&mut self, np: usize) {
        let old = self.prefix();
        for h in &mut self.heads[..self.len as usize] {
            *h = old.rebase(np, *h);
        }
        self.plen = np as u8;
    }

    /// Inserts slot `(head, rec)` at `pos`; the node must not be full.
    pub(crate) fn insert(&mut self, pos: usize, head: u32, rec: RecAddr) {
        let n = self.len as usize;
        self.heads.copy_within(pos..n, pos + 1);
        self.recs.copy_within(pos..n, pos + 1);
        self.heads[pos] = head;
        self.recs[pos] = rec;
        self.len += 1;
    }

    /// Replaces slot `i`.
    pub(crate) fn set(&mut self, i: usize, head: u32, rec: RecAddr) {
        self.heads[i] = head;
        self.recs[i] = rec;
    }

    /// Replaces all slots (heads relative to this node's prefix).
    pub(crate) fn assign(&mut self, heads: &[u32], recs: &[RecAddr]) {
        let n = heads.len();
        self.heads[..n].copy_from_slice(heads);
        self.recs[..n].copy_from_slice(recs);
        self.len = n as u16;
    }

    /// Puts slots before the existing ones (heads relative to this node's prefix).
    pub(crate) fn prepend(&mut self, heads: &[u32], recs: &[RecAddr]) {
        let (n, k) = (self.len as usize, heads.len());
        self.heads.copy_within(0..n, k);
        self.recs.copy_within(0..n, k);
        self.heads[..k].copy_from_slice(heads);
        self.recs[..k].copy_from_slice(recs);
        self.len += k as u16;
    }

    /// Puts slots after the existing ones (heads relative to this node's prefix).
    pub(crate) fn append(&mut self, heads: &[u32], recs: &[RecAddr]) {
        let (n, k) = (self.len as usize, heads.len());
        self.heads[n..n + k].copy_from_slice(heads);
        self.recs[n..n + k].copy_from_slice(recs);
        self.len += k as u16;
    }

    /// An empty node with the same prefix.
    pub(crate) fn sibling(&self) -> Slots {
        Slots {
            len: 0,
            plen: self.plen,
            prefix: self.prefix,
            heads: [0; CAP],
            recs: [0; CAP],
        }
    }

    /// Drops the slots from `at` on.
    pub(crate) fn truncate(&mut self, at: usize) {
        self.len = self.len.min(at as u16);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_derive_like_recomputing_them() {
        let keys: [&[u8]; 5] = [
            b"t123_r0001",
            b"t123_r",
            b"t123_r\0",
            b"t1",
            b"t123_r0001xyz",
        ];
        for key in keys {
            for p in 0..=key.len().min(8) {
                for np in 0..=p {
                    let got = derive(&key[np..p], head_at(key, p));
                    assert_eq!(got, head_at(key, np), "{key:?} {p} -> {np}");
                }
            }
        }
    }

    #[test]
    fn search_admit_and_rebase() {
        let mut keys = KeyArena::new();
        let mut recs = Vec::new();
        for k in [&b"t123_r0005"[..], b"t123_r0009", b"t123_r00"] {
            recs.push((k, keys.push(0, k, b"").expect("room")));
        }
        let mut s = Slots::first(recs[0].0, recs[0].1);
        assert_eq!(s.prefix().len, 10);
        let h = s.admit(recs[1].0);
        assert_eq!(s.prefix().len, 9);
        s.insert(1, h, recs[1].1);
        let h = s.admit(recs[2].0);
        assert_eq!(s.prefix().len, 8);
        s.insert(0, h, recs[2].1);
        assert_eq!(s.search(&keys, b"t123_r00"), (0, true));
        assert_eq!(s.search(&keys, b"t123_r0005"), (1, true));
        assert_eq!(s.search(&keys, b"t123_r0006"), (2, false));
        assert_eq!(s.search(&keys, b"t123_r1"), (3, false));
        assert_eq!(s.search(&keys, b"t123_q"), (0, false));
        assert_eq!(s.search(&keys, b"t123_r0"), (0, false));
        assert_eq!(s.search(&keys, b"t12"), (0, false));
        assert_eq!(s.search(&keys, b"u"), (3, false));
    }
}
