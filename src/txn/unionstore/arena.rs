//! The value log: an append-only byte arena of value versions.
//!
//! Mirrors client-go's `internal/unionstore/arena` (`MemdbArena`, `MemdbVlog`): memory comes
//! in blocks that start small (4 KiB) and double up to a cap, so a small transaction stays
//! small and a large one does not copy on growth (a block never moves; addresses stay valid).
//! A position is `(blocks in use) << 32 | (bytes used in the last block)`; because it only
//! grows while writing, positions compare like time, which is what staging checkpoints and
//! snapshot reads are made of.
//!
//! The value log stores each value version as `[value][len: u32][entry: u32][prev: u64]` (the
//! entry is a key-record address, `prev` a [`Ver`]: the previous version, possibly the record's
//! inline value); its
//! address is the position just after the record, so "was this version written after
//! checkpoint `cp`" is `addr > cp`, the version chain is followed through `prev`, and the log is
//! walked backwards from the tail to undo a stage (client-go `RevertToCheckpoint`).

use super::records::{RecAddr, Ver};
use super::tree::prefetch_ptr;

/// An address in an arena. For the value log it is the end position of a record; `0` is null.
pub(crate) type Addr = u64;

/// Null value-log address (no value).
pub(crate) const NULL: Addr = 0;

const INIT_BLOCK: usize = 4 << 10;
/// Largest block, except one made for a single larger allocation.
pub(crate) const MAX_BLOCK: usize = 1 << 20;

/// Bytes of a value-log record header.
pub(crate) const VLOG_HDR: usize = 4 + 4 + 8;

struct Block {
    buf: Box<[u8]>,
    len: usize,
}

/// A chunked bump allocator of bytes.
pub(crate) struct Arena {
    blocks: Vec<Block>,
    next_block: usize,
    capacity: u64,
}

#[inline]
fn split(addr: Addr) -> (usize, usize) {
    ((addr >> 32) as usize, (addr & 0xffff_ffff) as usize)
}

#[inline]
fn read_u64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

#[inline]
fn read_u32(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

impl Arena {
    pub(crate) fn new() -> Arena {
        Arena {
            blocks: Vec::new(),
            next_block: INIT_BLOCK,
            capacity: 0,
        }
    }

    /// Bytes reserved by all blocks (client-go `Capacity`).
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Reserves `size` contiguous bytes; returns the start address as `block << 32 | offset`
    /// and whether a new block was allocated.
    pub(crate) fn alloc(&mut self, size: usize) -> (Addr, bool) {
        if let Some(last) = self.blocks.last_mut() {
            if last.buf.len() - last.len >= size {
                let off = last.len;
                last.len += size;
                return ((((self.blocks.len() - 1) as u64) << 32) | off as u64, false);
            }
        }
        let mut bs = self.next_block;
        while bs < size {
            bs <<= 1;
        }
        self.next_block = (self.next_block << 1).min(MAX_BLOCK);
        self.capacity += bs as u64;
        self.blocks.push(Block {
            buf: vec![0u8; bs].into_boxed_slice(),
            len: size,
        });
        ((((self.blocks.len() - 1) as u64) << 32), true)
    }

    #[inline]
    pub(crate) fn bytes_mut(&mut self, start: Addr, len: usize) -> &mut [u8] {
        let (b, o) = split(start);
        &mut self.blocks[b].buf[o..o + len]
    }

    /// Blocks allocated.
    pub(crate) fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// Free bytes at the end of the last block: an allocation up to this size takes no new
    /// block.
    pub(crate) fn room(&self) -> usize {
        self.blocks.last().map_or(0, |b| b.buf.len() - b.len)
    }

    /// Block `idx`, all of it (allocated addresses lie below [`used`](Self::used)).
    #[inline]
    pub(crate) fn block(&self, idx: usize) -> &[u8] {
        &self.blocks[idx].buf
    }

    /// Block `idx`, writable.
    #[inline]
    pub(crate) fn block_mut(&mut self, idx: usize) -> &mut [u8] {
        &mut self.blocks[idx].buf
    }

    /// Bytes allocated in block `idx`.
    pub(crate) fn used(&self, idx: usize) -> usize {
        self.blocks[idx].len
    }

    /// The current end position (client-go `Checkpoint`).
    pub(crate) fn tail(&self) -> Addr {
        match self.blocks.last() {
            None => NULL,
            Some(b) => ((self.blocks.len() as u64) << 32) | b.len as u64,
        }
    }

    /// Drops everything written after `pos` (client-go `Truncate`). Returns whether the
    /// capacity changed.
    pub(crate) fn truncate(&mut self, pos: Addr) -> bool {
        let (nblocks, off) = split(pos);
        let n = self.blocks.len();
        if nblocks >= n {
            if let Some(last) = self.blocks.last_mut() {
                if nblocks == n {
                    last.len = last.len.min(off);
                }
            }
            return false;
        }
        self.blocks.truncate(nblocks);
        if let Some(last) = self.blocks.last_mut() {
            last.len = off;
        }
        self.capacity = self.blocks.iter().map(|b| b.buf.len() as u64).sum();
        self.next_block = self.blocks.last().map_or(INIT_BLOCK, |b| {
            (b.buf.len() << 1).clamp(INIT_BLOCK, MAX_BLOCK)
        });
        true
    }

    /// Drops every block.
    pub(crate) fn reset(&mut self) {
        self.blocks = Vec::new();
        self.next_block = INIT_BLOCK;
        self.capacity = 0;
    }

    // ---- value log ----

    /// Appends a value version for entry `node` whose previous version is `prev` (client-go
    /// `AppendValue`); returns its address and whether a block was allocated.
    pub(crate) fn append_value(&mut self, node: RecAddr, prev: Ver, value: &[u8]) -> (Addr, bool) {
        let size = value.len() + VLOG_HDR;
        let (start, grew) = self.alloc(size);
        let buf = self.bytes_mut(start, size);
        let n = value.len();
        buf[..n].copy_from_slice(value);
        buf[n..n + 4].copy_from_slice(&(n as u32).to_le_bytes());
        buf[n + 4..n + 8].copy_from_slice(&node.to_le_bytes());
        buf[n + 8..n + 16].copy_from_slice(&prev.to_le_bytes());
        // end position: (block index + 1) << 32 | end offset
        let (b, o) = split(start);
        ((((b + 1) as u64) << 32) | (o + size) as u64, grew)
    }

    #[inline]
    fn hdr_start(addr: Addr) -> (usize, usize) {
        let (b1, end) = split(addr);
        (b1 - 1, end - VLOG_HDR)
    }

    /// The record header at `addr`: `(value length, entry, previous version)`.
    #[inline]
    pub(crate) fn vlog_header(&self, addr: Addr) -> (usize, RecAddr, Ver) {
        let (b, h) = Self::hdr_start(addr);
        let buf = &self.blocks[b].buf;
        (
            read_u32(buf, h) as usize,
            read_u32(buf, h + 4),
            read_u64(buf, h + 8),
        )
    }

    /// The value stored at `addr` (client-go `GetValue`).
    #[inline]
    pub(crate) fn value(&self, addr: Addr) -> &[u8] {
        let (b, h) = Self::hdr_start(addr);
        let buf = &self.blocks[b].buf;
        let len = read_u32(buf, h) as usize;
        &buf[h - len..h]
    }

    /// Hints the CPU to load the header of the record at `addr` and the line before it,
    /// which holds the start of a value of up to 64 bytes (the length is not known yet).
    #[inline]
    pub(crate) fn prefetch_value(&self, addr: Addr) {
        let (b, h) = Self::hdr_start(addr);
        let Some(block) = self.blocks.get(b) else {
            return;
        };
        let base = block.buf.as_ptr();
        prefetch_ptr(base.wrapping_add(h));
        prefetch_ptr(base.wrapping_add(h.saturating_sub(64)));
    }

    /// Hints the CPU to load the first bytes of the value at `addr`; reads its header, so
    /// call it once [`prefetch_value`](Self::prefetch_value) has had time to bring that in.
    #[inline]
    pub(crate) fn prefetch_value_start(&self, addr: Addr) {
        let (b, h) = Self::hdr_start(addr);
        if let Some(block) = self.blocks.get(b) {
            if let Some(len) = block.buf.get(h..h + 4) {
                let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
                if len > 64 {
                    prefetch_ptr(block.buf.as_ptr().wrapping_add(h.wrapping_sub(len)));
                }
            }
        }
    }

    /// The value stored at `addr`, writable in place.
    #[inline]
    pub(crate) fn value_mut(&mut self, addr: Addr) -> &mut [u8] {
        let (b, h) = Self::hdr_start(addr);
        let buf = &mut self.blocks[b].buf;
        let len = read_u32(buf, h) as usize;
        &mut buf[h - len..h]
    }

    /// The address of the record written just before the one at `addr` (client-go
    /// `moveBackCursor`), or [`NULL`] at the start of the log.
    pub(crate) fn previous_record(&self, addr: Addr) -> Addr {
        let (b, h) = Self::hdr_start(addr);
        let len = read_u32(&self.blocks[b].buf, h) as usize;
        let start = h - len;
        if start > 0 {
            (((b + 1) as u64) << 32) | start as u64
        } else if b == 0 {
            NULL
        } else {
            ((b as u64) << 32) | self.blocks[b - 1].len as u64
        }
    }

    /// Follows the version chain from `ver` back past every log version written after `pos`
    /// (client-go `GetSnapshotValue` / `SelectValueHistory`). Stops at the first log version
    /// at or before `pos`, or at a version that is not in the log ([`NONE`](super::records::NONE)
    /// or [`INLINE`](super::records::INLINE)), which the caller judges.
    pub(crate) fn version_at(&self, mut ver: Ver, pos: Addr) -> Ver {
        while ver > super::records::INLINE && ver > pos {
            ver = self.vlog_header(ver).2;
        }
        ver
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlog_roundtrip_and_walk_back_across_blocks() {
        let mut a = Arena::new();
        let mut addrs = Vec::new();
        let mut prev = NULL;
        for i in 0..2000u32 {
            let v = vec![(i % 251) as u8; (i % 37) as usize];
            let (addr, _) = a.append_value(7, prev, &v);
            assert!(addr > prev, "positions grow");
            assert_eq!(a.tail(), addr);
            prev = addr;
            addrs.push((addr, v));
        }
        assert!(a.blocks.len() > 3);
        for (addr, v) in &addrs {
            assert_eq!(a.value(*addr), &v[..]);
        }
        let mut cur = a.tail();
        for (addr, _) in addrs.iter().rev() {
            assert_eq!(cur, *addr);
            cur = a.previous_record(cur);
        }
        assert_eq!(cur, NULL);
        let mid = addrs[1000].0;
        assert_eq!(a.version_at(a.tail(), mid), mid);
        a.truncate(mid);
        assert_eq!(a.tail(), mid);
        assert_eq!(a.value(mid), &addrs[1000].1[..]);
    }

    #[test]
    fn oversized_alloc_gets_own_block() {
        let mut a = Arena::new();
        let (_, grew) = a.alloc(10);
        assert!(grew);
        let (addr, grew) = a.alloc(3 * MAX_BLOCK);
        assert!(grew);
        assert_eq!(addr >> 32, 1);
        assert!(a.capacity() >= 3 * MAX_BLOCK as u64);
    }
}
