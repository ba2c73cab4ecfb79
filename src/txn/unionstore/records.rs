//! The key-record arena: one record per buffered key, holding its flags, a pointer to its
//! current value version, the key, and (usually) the key's first value inline.
//!
//! client-go's ART keeps a leaf per key in its node arena and every value in the value log, so
//! reading an entry touches two scattered places. Here a key that is first written with a
//! value of at most [`INLINE_MAX`] bytes gets that value stored right after the key, in the
//! same record: a point read or a scan step then touches one place, and the common entry (a
//! key written once) costs no value-log header at all. Later versions go to the value log as
//! before; the inline value is the oldest link of the key's version chain.
//!
//! A record is `[word: u64][key len: varint][inline len: varint][key][inline value]`, where
//! `word` packs the key's flags (low 16 bits, bit 15 = absent) and its current version (high
//! 48 bits): [`NONE`], [`INLINE`], or a value-log address. Lengths are LEB128 varints (one byte
//! each below 128). Records are byte-packed, never move and are never freed before
//! [`KeyArena::reset`].
//!
//! **Addresses** are `u32`: `block << 20 | offset`, with blocks doubling from 4 KiB to 1 MiB (a
//! record is at most [`MAX_RECORD`] bytes, so it always fits a block). That caps the arena at
//! 4096 blocks, about 4 GiB of keys and inline values, far above any transaction TiKV accepts
//! (client-go's total size limit defaults to 100 MiB); past it a write fails with
//! [`MemBufferError::ArenaFull`](super::MemBufferError::ArenaFull).
//!
//! **Time.** Records are only appended, so a record's address orders its creation against a
//! [`tail`](KeyArena::tail) taken earlier: the inline version of record `r` was written after
//! position `p` iff `r >= p`. Staging uses that instead of a value-log position for inline
//! versions, and [`for_each_from`](KeyArena::for_each_from) walks the records created since a
//! position to undo their inline versions.

use super::arena::{self, Arena};
use super::tree::prefetch_ptr;

/// Address of a key record.
pub(crate) type RecAddr = u32;

/// A version pointer: [`NONE`], [`INLINE`] or a value-log address (48 bits).
pub(crate) type Ver = u64;

/// No value (flags-only entry, or absent).
pub(crate) const NONE: Ver = 0;

/// The current value is the record's inline value. Value-log addresses are `>= 1 << 32`.
pub(crate) const INLINE: Ver = 1;

/// Longest value stored inline with its key.
pub(crate) const INLINE_MAX: usize = 256;

/// Largest record: header, longest key, longest inline value.
pub(crate) const MAX_RECORD: usize = 8 + 3 + 2 + u16::MAX as usize + INLINE_MAX;

const OFF_BITS: u32 = 20;
const OFF_MASK: u32 = (1 << OFF_BITS) - 1;
const MAX_BLOCKS: usize = 1 << (32 - OFF_BITS);

// Every offset in a block fits the address's offset bits: blocks are at most MAX_BLOCK bytes
// unless made for one larger allocation, and a record is far smaller.
const _: () = assert!(arena::MAX_BLOCK <= 1 << OFF_BITS && MAX_RECORD < arena::MAX_BLOCK);

const FLAGS_MASK: u64 = 0xffff;

/// The flags half of a record word.
#[inline]
pub(crate) fn word_flags(word: u64) -> u16 {
    (word & FLAGS_MASK) as u16
}

/// The version half of a record word.
#[inline]
pub(crate) fn word_ver(word: u64) -> Ver {
    word >> 16
}

/// A record word from its halves.
#[inline]
pub(crate) fn make_word(flags: u16, ver: Ver) -> u64 {
    (ver << 16) | flags as u64
}

/// The arena is at its 4 GiB address limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

/// A parsed record.
#[derive(Clone, Copy)]
pub(crate) struct Record<'a> {
    /// Flags and current version.
    pub(crate) word: u64,
    /// The key.
    pub(crate) key: &'a [u8],
    /// The inline value (empty when none was stored inline, or for an inline tombstone).
    pub(crate) inline: &'a [u8],
}

/// Reads a varint at `*at`, advancing it.
#[inline]
fn varint(b: &[u8], at: &mut usize) -> usize {
    let first = b[*at];
    *at += 1;
    if first < 0x80 {
        return first as usize;
    }
    let mut v = (first & 0x7f) as usize;
    let mut shift = 7;
    loop {
        let x = b[*at];
        *at += 1;
        v |= ((x & 0x7f) as usize) << shift;
        if x < 0x80 {
            return v;
        }
        shift += 7;
    }
}

fn varint_len(mut v: usize) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(b: &mut [u8], at: &mut usize, mut v: usize) {
    while v >= 0x80 {
        b[*at] = (v as u8) | 0x80;
        v >>= 7;
        *at += 1;
    }
    b[*at] = v as u8;
    *at += 1;
}

/// Parses the record starting at `off` of `b`; returns it and its size in bytes.
#[inline]
fn parse(b: &[u8], off: usize) -> (Record<'_>, usize) {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[off..off + 8]);
    let mut at = off + 8;
    let klen = varint(b, &mut at);
    let ilen = varint(b, &mut at);
    let key = &b[at..at + klen];
    let inline = &b[at + klen..at + klen + ilen];
    (
        Record {
            word: u64::from_le_bytes(w),
            key,
            inline,
        },
        at + klen + ilen - off,
    )
}

/// The arena of key records: a byte [`Arena`] addressed with `u32`s.
pub(crate) struct KeyArena {
    arena: Arena,
    max_blocks: usize,
}

impl KeyArena {
    pub(crate) fn new() -> KeyArena {
        KeyArena {
            arena: Arena::new(),
            max_blocks: MAX_BLOCKS,
        }
    }

    /// An arena limited to `n` blocks, to test running out of addresses.
    #[cfg(test)]
    pub(crate) fn with_max_blocks(n: usize) -> KeyArena {
        KeyArena {
            arena: Arena::new(),
            max_blocks: n.min(MAX_BLOCKS),
        }
    }

    /// Bytes reserved by all blocks.
    pub(crate) fn capacity(&self) -> u64 {
        self.arena.capacity()
    }

    /// The position after the last record: records created later have addresses `>=` it.
    pub(crate) fn tail(&self) -> u64 {
        match self.arena.block_count() {
            0 => 0,
            n => (((n - 1) as u64) << OFF_BITS) + self.arena.used(n - 1) as u64,
        }
    }

    #[inline]
    fn block(&self, rec: RecAddr) -> (&[u8], usize) {
        (
            self.arena.block((rec >> OFF_BITS) as usize),
            (rec & OFF_MASK) as usize,
        )
    }

    /// Appends a record for `key` with flags/version `word` and `inline` stored after the key.
    /// `key.len() <= u16::MAX` and `inline.len() <= INLINE_MAX` are the caller's to check.
    pub(crate) fn push(&mut self, word: u64, key: &[u8], inline: &[u8]) -> Result<RecAddr, Full> {
        let size = 8 + varint_len(key.len()) + varint_len(inline.len()) + key.len() + inline.len();
        debug_assert!(size <= MAX_RECORD);
        if self.arena.room() < size && self.arena.block_count() >= self.max_blocks {
            return Err(Full);
        }
        let (addr, _) = self.arena.alloc(size);
        let (idx, off) = ((addr >> 32) as usize, (addr & 0xffff_ffff) as usize);
        let b = &mut self.arena.block_mut(idx)[off..off + size];
        b[..8].copy_from_slice(&word.to_le_bytes());
        let mut at = 8;
        put_varint(b, &mut at, key.len());
        put_varint(b, &mut at, inline.len());
        b[at..at + key.len()].copy_from_slice(key);
        b[at + key.len()..].copy_from_slice(inline);
        Ok(((idx as u32) << OFF_BITS) | off as u32)
    }

    /// The record at `rec`.
    #[inline]
    pub(crate) fn get(&self, rec: RecAddr) -> Record<'_> {
        let (b, off) = self.block(rec);
        parse(b, off).0
    }

    /// The key of the record at `rec`.
    #[inline]
    pub(crate) fn key(&self, rec: RecAddr) -> &[u8] {
        self.get(rec).key
    }

    /// The word (flags and version) of the record at `rec`.
    #[inline]
    pub(crate) fn word(&self, rec: RecAddr) -> u64 {
        let (b, off) = self.block(rec);
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[off..off + 8]);
        u64::from_le_bytes(w)
    }

    /// Replaces the word of the record at `rec`.
    #[inline]
    pub(crate) fn set_word(&mut self, rec: RecAddr, word: u64) {
        let off = (rec & OFF_MASK) as usize;
        self.arena.block_mut((rec >> OFF_BITS) as usize)[off..off + 8]
            .copy_from_slice(&word.to_le_bytes());
    }

    /// The inline value of the record at `rec`, writable in place.
    pub(crate) fn inline_mut(&mut self, rec: RecAddr) -> &mut [u8] {
        let off = (rec & OFF_MASK) as usize;
        let b = self.arena.block_mut((rec >> OFF_BITS) as usize);
        let mut at = off + 8;
        let klen = varint(b, &mut at);
        let ilen = varint(b, &mut at);
        &mut b[at + klen..at + klen + ilen]
    }

    /// Calls `f(rec, record)` for every record created at or after position `pos`, oldest
    /// first.
    pub(crate) fn for_each_from(&self, pos: u64, mut f: impl FnMut(RecAddr, Record<'_>)) {
        let first = (pos >> OFF_BITS) as usize;
        let mut off = (pos & OFF_MASK as u64) as usize;
        for idx in first..self.arena.block_count() {
            let (block, used) = (self.arena.block(idx), self.arena.used(idx));
            while off < used {
                let (r, size) = parse(block, off);
                f(((idx as u32) << OFF_BITS) | off as u32, r);
                off += size;
            }
            off = 0;
        }
    }

    /// Hints the CPU to load the first two cache lines of the record at `rec` (its header,
    /// key and the start of its inline value).
    #[inline]
    pub(crate) fn prefetch(&self, rec: RecAddr) {
        let idx = (rec >> OFF_BITS) as usize;
        if idx < self.arena.block_count() {
            let p = self
                .arena
                .block(idx)
                .as_ptr()
                .wrapping_add((rec & OFF_MASK) as usize);
            prefetch_ptr(p);
            prefetch_ptr(p.wrapping_add(64));
        }
    }

    /// Hints the CPU to load the rest of a record longer than two cache lines; reads its
    /// lengths, so call it once [`prefetch`](Self::prefetch) has had time to bring them in.
    #[inline]
    pub(crate) fn prefetch_tail(&self, rec: RecAddr) {
        let (b, off) = self.block(rec);
        let mut at = off + 8;
        let len = varint(b, &mut at) + varint(b, &mut at) + at - off;
        let p = b.as_ptr().wrapping_add(off);
        let mut line = 128;
        while line < len {
            prefetch_ptr(p.wrapping_add(line));
            line += 64;
        }
    }

    /// Drops every record.
    pub(crate) fn reset(&mut self) {
        self.arena.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_roundtrip_walk_and_order_like_time() {
        let mut a = KeyArena::new();
        let mut recs = Vec::new();
        let mut mid = 0;
        for i in 0..20_000usize {
            if i == 10_000 {
                mid = a.tail();
            }
            let key = vec![(i % 251) as u8; i % 300];
            let inline = vec![(i % 13) as u8; (i * 7) % (INLINE_MAX + 1)];
            let word = make_word((i % 0x8000) as u16, if i % 3 == 0 { INLINE } else { NONE });
            let rec = a.push(word, &key, &inline).expect("room");
            assert!(rec as u64 >= mid, "addresses grow");
            recs.push((rec, word, key, inline));
        }
        for (rec, word, key, inline) in &recs {
            let r = a.get(*rec);
            assert_eq!((r.word, r.key, r.inline), (*word, &key[..], &inline[..]));
            assert_eq!(a.key(*rec), &key[..]);
            assert_eq!(word_flags(*word) as u64 | (word_ver(*word) << 16), *word);
        }
        let mut walked = Vec::new();
        a.for_each_from(mid, |rec, r| walked.push((rec, r.key.to_vec())));
        let want: Vec<_> = recs[10_000..].iter().map(|r| (r.0, r.2.clone())).collect();
        assert_eq!(walked, want);
        let mut none = 0;
        a.for_each_from(a.tail(), |_, _| none += 1);
        assert_eq!(none, 0);
        let (rec, ..) = recs[5];
        a.set_word(rec, make_word(7, 1 << 40));
        assert_eq!(word_ver(a.word(rec)), 1 << 40);
        assert_eq!(word_flags(a.word(rec)), 7);
        a.inline_mut(rec).fill(0xee);
        assert!(a.get(rec).inline.iter().all(|&b| b == 0xee));
    }

    #[test]
    fn long_keys_use_multi_byte_lengths() {
        let mut a = KeyArena::new();
        let key = vec![7u8; u16::MAX as usize];
        let inline = vec![9u8; INLINE_MAX];
        let r1 = a.push(make_word(1, INLINE), &key, &inline).expect("room");
        let r2 = a.push(make_word(2, NONE), b"k", b"").expect("room");
        assert_eq!(a.get(r1).key, &key[..]);
        assert_eq!(a.get(r1).inline, &inline[..]);
        assert_eq!(a.get(r2).key, b"k");
        let mut n = 0;
        a.for_each_from(0, |_, _| n += 1);
        assert_eq!(n, 2);
    }
}
