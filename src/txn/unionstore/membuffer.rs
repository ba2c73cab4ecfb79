//! [`MemBuffer`]: the transaction's ordered write buffer with staging and snapshot reads.

use std::fmt;
use std::num::NonZeroUsize;

use super::arena::{Addr, Arena, NULL};
use super::error::MemBufferError;
use super::flags::{FlagsOp, KeyFlags, VISIBLE_MASK};
use super::iter::{BufferEntry, Iter, IterMode};
use super::tree::{Tree, REC_FLAGS, REC_KEY, REC_KLEN, REC_VALUE};

/// Longest key the buffer accepts (client-go `art.MaxKeyLen`).
pub const MAX_KEY_LEN: usize = u16::MAX as usize;

/// Largest entry the value log can hold whatever the configured limit (its lengths are
/// `u32`; arena offsets are 32-bit too).
const MAX_VALUE_LEN: u64 = (u32::MAX as u64) >> 1;

/// client-go's default entry size limit (TiDB `TxnEntrySizeLimit`): 6 MiB.
pub const DEFAULT_ENTRY_SIZE_LIMIT: u64 = 6 << 20;

/// client-go's default total size limit (TiDB `TxnTotalSizeLimit`): 100 MiB.
pub const DEFAULT_TOTAL_SIZE_LIMIT: u64 = 100 << 20;

/// Bit 15 of the packed flags: the entry is in the tree but not in the buffer (client-go
/// `deleteFlag`, set by `markDelete`).
const ABSENT: u16 = 1 << 15;

/// Per-entry and total size limits (client-go `SetEntrySizeLimit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeLimits {
    /// Largest `key.len() + value.len()` of one write.
    pub entry: u64,
    /// Largest [`MemBuffer::size`].
    pub total: u64,
}

impl SizeLimits {
    /// No limit at all.
    pub const UNLIMITED: SizeLimits = SizeLimits {
        entry: u64::MAX,
        total: u64::MAX,
    };

    /// Limits where `0` means unlimited, as client-go's `KVUnionStore.SetEntrySizeLimit`.
    pub fn new(entry: u64, total: u64) -> SizeLimits {
        let f = |x: u64| if x == 0 { u64::MAX } else { x };
        SizeLimits {
            entry: f(entry),
            total: f(total),
        }
    }
}

impl Default for SizeLimits {
    fn default() -> Self {
        SizeLimits {
            entry: DEFAULT_ENTRY_SIZE_LIMIT,
            total: DEFAULT_TOTAL_SIZE_LIMIT,
        }
    }
}

/// A handle to an open stage, returned by [`MemBuffer::staging`] (client-go's `int` handle;
/// client-go's `0`, "no stage", is `Option::None` here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StagingHandle(NonZeroUsize);

impl StagingHandle {
    /// The stage's depth: 1 for the outermost.
    pub fn depth(self) -> usize {
        self.0.get()
    }
}

/// A position in the buffer's history to revert to (client-go `MemDBCheckpoint`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pos: Addr,
    epoch: usize,
}

/// Called with the buffer's memory footprint in bytes whenever it changes.
pub type FootprintHook = Box<dyn Fn(u64) + Send + Sync>;

/// The transaction write buffer (client-go `unionstore.MemDB`, the ART implementation
/// `art.ART` wrapped by `artDBWithContext`).
///
/// Keys are ordered bytewise. A value is non-empty; an empty value is a tombstone written by
/// [`delete`](Self::delete) (client-go `IsTombstone`). An entry may also carry only flags and no
/// value (written by [`update_flags`](Self::update_flags)): such an entry is counted by
/// [`len`](Self::len) and seen by [`get_flags`](Self::get_flags) but not by [`get`](Self::get).
///
/// Writes go to the innermost open stage. [`cleanup`](Self::cleanup) undoes every *value* change
/// of the stage; flags are not versioned (client-go: "the flags map is not rollbackable"),
/// except that an entry whose value is undone to "never written" keeps only its persistent
/// flags (pessimistic-lock state, see [`KeyFlags::and_persistent`]) and disappears if it has
/// none.
pub struct MemBuffer {
    tree: Tree,
    keys: Arena,
    vlog: Arena,
    stages: Vec<Addr>,
    /// Versions at or before this position may not be overwritten in place (a stage or a
    /// checkpoint needs them).
    pinned: Addr,
    /// Positions the value log was truncated to, in order; checkpoints taken before a
    /// truncation below them are stale.
    truncations: Vec<Addr>,
    len: usize,
    size: u64,
    dirty: bool,
    limits: SizeLimits,
    hook: Option<FootprintHook>,
    last_mem: u64,
}

impl Default for MemBuffer {
    fn default() -> Self {
        MemBuffer::new()
    }
}

impl fmt::Debug for MemBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemBuffer")
            .field("len", &self.len)
            .field("size", &self.size)
            .field("stages", &self.stages.len())
            .field("dirty", &self.dirty)
            .field("mem", &self.mem())
            .finish()
    }
}

impl MemBuffer {
    /// An empty buffer with client-go's default limits.
    pub fn new() -> MemBuffer {
        MemBuffer::with_limits(SizeLimits::default())
    }

    /// An empty buffer with the given limits.
    pub fn with_limits(limits: SizeLimits) -> MemBuffer {
        MemBuffer {
            tree: Tree::new(),
            keys: Arena::new(),
            vlog: Arena::new(),
            stages: Vec::new(),
            pinned: NULL,
            truncations: Vec::new(),
            len: 0,
            size: 0,
            dirty: false,
            limits,
            hook: None,
            last_mem: 0,
        }
    }

    /// The size limits (client-go `GetEntrySizeLimit`).
    pub fn limits(&self) -> SizeLimits {
        self.limits
    }

    /// Changes the size limits (client-go `SetEntrySizeLimit`); later writes are checked.
    pub fn set_limits(&mut self, limits: SizeLimits) {
        self.limits = limits;
    }

    /// Installs the memory-footprint hook (client-go `SetMemoryFootprintChangeHook`); it is
    /// called with [`mem`](Self::mem) at the end of any operation that changed it.
    pub fn set_memory_footprint_hook(&mut self, hook: impl Fn(u64) + Send + Sync + 'static) {
        self.hook = Some(Box::new(hook));
        self.last_mem = self.mem();
    }

    /// Whether a footprint hook is installed (client-go `MemHookSet`).
    pub fn memory_hook_set(&self) -> bool {
        self.hook.is_some()
    }

    /// Bytes reserved by the buffer: arenas and tree nodes (client-go `Mem`).
    pub fn mem(&self) -> u64 {
        self.keys.capacity() + self.vlog.capacity() + self.tree.capacity()
    }

    /// Entries in the buffer, counting tombstones and flags-only entries (client-go `Len`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether [`len`](Self::len) is zero.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sum of key and current value lengths of all entries (client-go `Size`).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the buffer holds something to commit: a write outside any stage, a released
    /// outermost stage that wrote, or a persistent flag (client-go `Dirty`).
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    // ---- key records ----

    #[inline]
    fn rec_value(&self, rec: Addr) -> Addr {
        self.keys.u64_at(rec + REC_VALUE)
    }

    #[inline]
    fn rec_raw_flags(&self, rec: Addr) -> u16 {
        self.keys.u16_at(rec + REC_FLAGS)
    }

    #[inline]
    fn rec_klen(&self, rec: Addr) -> u64 {
        self.keys.u32_at(rec + REC_KLEN) as u64
    }

    #[inline]
    pub(crate) fn rec_present(&self, rec: Addr) -> bool {
        self.rec_raw_flags(rec) & ABSENT == 0
    }

    /// The record at `rec`: `(value address, raw flags, key)`, with one arena lookup.
    #[inline]
    fn rec_parts(&self, rec: Addr) -> (Addr, u16, &[u8]) {
        let b = self.keys.bytes_from(rec);
        let (h, rest) = b.split_at(REC_KEY as usize);
        let mut v = [0u8; 8];
        v.copy_from_slice(&h[..8]);
        let klen = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
        let flags = u16::from_le_bytes([h[12], h[13]]);
        (u64::from_le_bytes(v), flags, &rest[..klen])
    }

    /// The entry at `rec` as an iterator yields it, or `None` if `mode` skips it.
    #[inline]
    pub(crate) fn rec_entry_for(&self, rec: Addr, mode: IterMode) -> Option<BufferEntry<'_>> {
        let (v, raw, key) = self.rec_parts(rec);
        let v = match mode {
            IterMode::Values if raw & ABSENT != 0 || v == NULL => return None,
            IterMode::WithFlags if raw & ABSENT != 0 => return None,
            IterMode::Snapshot(at) => match self.vlog.version_at(v, at) {
                NULL => return None,
                old => old,
            },
            _ => v,
        };
        Some(BufferEntry {
            key,
            value: (v != NULL).then(|| self.vlog.value(v)),
            flags: KeyFlags::from_bits(raw),
        })
    }

    /// Hints the CPU to load the record at `rec`.
    #[inline]
    pub(crate) fn prefetch_record(&self, rec: Addr) {
        self.keys.prefetch(rec);
    }

    /// Hints the CPU to load the current value of the record at `rec`.
    #[inline]
    pub(crate) fn prefetch_value(&self, rec: Addr) {
        let v = self.keys.u64_at(rec + REC_VALUE);
        if v != NULL {
            self.vlog.prefetch_value(v);
        }
    }

    /// Hints the CPU to load the start of a long current value of the record at `rec` (the
    /// record and the value's header should be cached by now).
    #[inline]
    pub(crate) fn prefetch_value_start(&self, rec: Addr) {
        let v = self.keys.u64_at(rec + REC_VALUE);
        if v != NULL {
            self.vlog.prefetch_value_start(v);
        }
    }

    /// The entry at `rec`: key, current value (`None` when flags-only), flags.
    #[inline]
    pub(crate) fn rec_entry(&self, rec: Addr) -> BufferEntry<'_> {
        let (v, raw, key) = self.rec_parts(rec);
        BufferEntry {
            key,
            value: (v != NULL).then(|| self.vlog.value(v)),
            flags: KeyFlags::from_bits(raw),
        }
    }

    pub(crate) fn tree(&self) -> &Tree {
        &self.tree
    }

    pub(crate) fn keys(&self) -> &Arena {
        &self.keys
    }

    // ---- reads ----

    /// The current value of `key`: `Some(&[])` is a tombstone (client-go `Get`, which returns
    /// the tombstone too and leaves hiding it to the union store).
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let rec = self.tree.find(&self.keys, key)?;
        let v = self.rec_value(rec);
        (v != NULL).then(|| self.vlog.value(v))
    }

    /// The flags of `key`, if the key is in the buffer (client-go `GetFlags`).
    pub fn get_flags(&self, key: &[u8]) -> Option<KeyFlags> {
        let rec = self.tree.find(&self.keys, key)?;
        self.rec_present(rec)
            .then(|| KeyFlags::from_bits(self.rec_raw_flags(rec)))
    }

    /// Entries with a value (tombstones included) in `[lower, upper)`, ascending (client-go
    /// `Iter`). An empty `upper` means no upper bound.
    pub fn iter<'a>(&'a self, lower: &'a [u8], upper: &'a [u8]) -> Iter<'a> {
        Iter::new(self, lower, upper, false, IterMode::Values)
    }

    /// Entries with a value in `[lower, upper)`, descending (client-go `IterReverse`).
    pub fn iter_reverse<'a>(&'a self, lower: &'a [u8], upper: &'a [u8]) -> Iter<'a> {
        Iter::new(self, lower, upper, true, IterMode::Values)
    }

    /// Every entry in `[lower, upper)`, flags-only ones included, ascending (client-go
    /// `IterWithFlags`).
    pub fn iter_with_flags<'a>(&'a self, lower: &'a [u8], upper: &'a [u8]) -> Iter<'a> {
        Iter::new(self, lower, upper, false, IterMode::WithFlags)
    }

    /// Every entry in `[lower, upper)`, flags-only ones included, descending (client-go
    /// `IterReverseWithFlags`).
    pub fn iter_reverse_with_flags<'a>(&'a self, lower: &'a [u8], upper: &'a [u8]) -> Iter<'a> {
        Iter::new(self, lower, upper, true, IterMode::WithFlags)
    }

    // ---- writes ----

    /// Sets `key` to a non-empty `value` (client-go `Set`).
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), MemBufferError> {
        self.set_with_flags(key, value, &[])
    }

    /// Sets `key` to a non-empty `value` and applies `ops` to its flags (client-go
    /// `SetWithFlags`). A value write first drops need-constraint-check-in-prewrite.
    pub fn set_with_flags(
        &mut self,
        key: &[u8],
        value: &[u8],
        ops: &[FlagsOp],
    ) -> Result<(), MemBufferError> {
        if value.is_empty() {
            return Err(MemBufferError::EmptyValue);
        }
        self.write(key, Some(value), ops)
    }

    /// Writes a tombstone for `key` (client-go `Delete`).
    pub fn delete(&mut self, key: &[u8]) -> Result<(), MemBufferError> {
        self.write(key, Some(&[]), &[])
    }

    /// Writes a tombstone for `key` and applies `ops` (client-go `DeleteWithFlags`).
    pub fn delete_with_flags(&mut self, key: &[u8], ops: &[FlagsOp]) -> Result<(), MemBufferError> {
        self.write(key, Some(&[]), ops)
    }

    /// Applies `ops` to the flags of `key`, adding a flags-only entry if the key is not in the
    /// buffer (client-go `UpdateFlags`). Only a key over [`MAX_KEY_LEN`] fails.
    pub fn update_flags(&mut self, key: &[u8], ops: &[FlagsOp]) -> Result<(), MemBufferError> {
        self.write(key, None, ops)
    }

    /// Removes `key` and its value history from the buffer (client-go `RemoveFromBuffer`, a
    /// test helper there). The removal is not staged: a later cleanup or checkpoint revert does
    /// not bring back versions written before it, and snapshot reads no longer see the key.
    pub fn remove_from_buffer(&mut self, key: &[u8]) {
        let Some(rec) = self.tree.find(&self.keys, key) else {
            return;
        };
        if !self.rec_present(rec) {
            return;
        }
        let v = self.rec_value(rec);
        if v != NULL {
            self.size -= self.vlog.value(v).len() as u64;
        }
        self.size -= self.rec_klen(rec);
        self.len -= 1;
        self.keys.put_u64(rec + REC_VALUE, NULL);
        self.keys.put_u16(rec + REC_FLAGS, ABSENT);
    }

    fn new_record(keys: &mut Arena, key: &[u8]) -> Addr {
        let (rec, _) = keys.alloc(REC_KEY as usize + key.len());
        keys.put_u64(rec + REC_VALUE, NULL);
        keys.put_u32(rec + REC_KLEN, key.len() as u32);
        keys.put_u16(rec + REC_FLAGS, ABSENT);
        keys.bytes_mut(rec + REC_KEY, key.len())
            .copy_from_slice(key);
        rec
    }

    /// client-go `ART.Set` + `setValue` + `trySwapValue`.
    fn write(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        ops: &[FlagsOp],
    ) -> Result<(), MemBufferError> {
        if key.len() > MAX_KEY_LEN {
            return Err(MemBufferError::KeyTooLarge {
                size: key.len(),
                max: MAX_KEY_LEN,
            });
        }
        if let Some(v) = value {
            let size = (key.len() + v.len()) as u64;
            // Whatever the configured limit, a value's length must fit the value log's u32.
            let limit = self.limits.entry.min(MAX_VALUE_LEN);
            if size > limit {
                return Err(MemBufferError::EntryTooLarge { size, limit });
            }
        }
        if self.stages.is_empty() {
            self.dirty = true;
        }
        let (rec, _) = self
            .tree
            .find_or_insert(&mut self.keys, key, |a| Self::new_record(a, key));
        let mut raw = self.rec_raw_flags(rec);
        if raw & ABSENT != 0 {
            self.len += 1;
            self.size += key.len() as u64;
            raw = 0;
        }
        let mut flags = KeyFlags::from_bits(raw);
        if value.is_some() {
            flags = flags.apply_one(FlagsOp::DelNeedConstraintCheckInPrewrite);
        }
        flags = flags.apply(ops);
        if !flags.and_persistent().is_empty() {
            self.dirty = true;
        }
        self.keys
            .put_u16(rec + REC_FLAGS, flags.bits() & VISIBLE_MASK);
        if let Some(v) = value {
            let cur = self.rec_value(rec);
            let old_len = if cur == NULL {
                0
            } else {
                self.vlog.value(cur).len()
            };
            if cur > self.pinned && old_len == v.len() && old_len > 0 {
                self.vlog.value_mut(cur).copy_from_slice(v);
            } else {
                self.size = self.size + v.len() as u64 - old_len as u64;
                let (addr, _) = self.vlog.append_value(rec, cur, v);
                self.keys.put_u64(rec + REC_VALUE, addr);
            }
        }
        self.notify_mem();
        if self.size > self.limits.total {
            return Err(MemBufferError::TxnTooLarge {
                size: self.size,
                limit: self.limits.total,
            });
        }
        Ok(())
    }

    fn notify_mem(&mut self) {
        if let Some(hook) = &self.hook {
            let mem = self.keys.capacity() + self.vlog.capacity() + self.tree.capacity();
            if mem != self.last_mem {
                self.last_mem = mem;
                hook(mem);
            }
        }
    }

    // ---- staging ----

    /// Opens a stage nested in the current one (client-go `Staging`).
    pub fn staging(&mut self) -> StagingHandle {
        let tail = self.vlog.tail();
        self.stages.push(tail);
        self.pinned = tail;
        StagingHandle(NonZeroUsize::MIN.saturating_add(self.stages.len() - 1))
    }

    /// Whether a stage is open (client-go `IsStaging`).
    pub fn is_staging(&self) -> bool {
        !self.stages.is_empty()
    }

    /// Open stages.
    pub fn stage_depth(&self) -> usize {
        self.stages.len()
    }

    /// Merges the innermost stage `h` into its parent (client-go `Release`).
    pub fn release(&mut self, h: StagingHandle) -> Result<(), MemBufferError> {
        if h.depth() != self.stages.len() {
            return Err(MemBufferError::NotInnermostStage {
                handle: h.depth(),
                depth: self.stages.len(),
            });
        }
        if h.depth() == 1 && self.stages[0] != self.vlog.tail() {
            self.dirty = true;
        }
        self.stages.pop();
        Ok(())
    }

    /// Discards the innermost stage `h` and every value change made in it (client-go
    /// `Cleanup`). A handle deeper than the open stages was already discarded with its parent
    /// and is ignored.
    pub fn cleanup(&mut self, h: StagingHandle) -> Result<(), MemBufferError> {
        if h.depth() > self.stages.len() {
            return Ok(());
        }
        if h.depth() < self.stages.len() {
            return Err(MemBufferError::NotInnermostStage {
                handle: h.depth(),
                depth: self.stages.len(),
            });
        }
        let cp = self.stages[h.depth() - 1];
        self.revert_to(cp);
        self.stages.pop();
        self.notify_mem();
        Ok(())
    }

    /// A position to return to with [`revert_to_checkpoint`](Self::revert_to_checkpoint)
    /// (client-go `Checkpoint`).
    pub fn checkpoint(&mut self) -> Checkpoint {
        let pos = self.vlog.tail();
        self.pinned = pos;
        Checkpoint {
            pos,
            epoch: self.truncations.len(),
        }
    }

    /// Undoes every value change made since `cp` (client-go `RevertToCheckpoint`). The
    /// checkpoint must lie inside the innermost stage and its writes must not have been
    /// discarded meanwhile.
    pub fn revert_to_checkpoint(&mut self, cp: &Checkpoint) -> Result<(), MemBufferError> {
        let floor = self.stages.last().copied().unwrap_or(NULL);
        let stale = self
            .truncations
            .get(cp.epoch..)
            .is_none_or(|t| t.iter().any(|&p| p < cp.pos));
        if cp.pos > self.vlog.tail() || cp.pos < floor || stale {
            return Err(MemBufferError::InvalidCheckpoint);
        }
        self.revert_to(cp.pos);
        self.notify_mem();
        Ok(())
    }

    /// Walks the value log back to `pos`, restoring each entry's previous version (client-go
    /// `MemdbVlog.RevertToCheckpoint` + `ART.RevertVAddr`), then truncates it.
    fn revert_to(&mut self, pos: Addr) {
        let mut cur = self.vlog.tail();
        if cur <= pos {
            return;
        }
        while cur > pos {
            let (vlen, rec, prev) = self.vlog.vlog_header(cur);
            if self.rec_value(rec) == cur {
                self.keys.put_u64(rec + REC_VALUE, prev);
                self.size -= vlen as u64;
                if prev == NULL {
                    let kept = KeyFlags::from_bits(self.rec_raw_flags(rec)).and_persistent();
                    if kept.is_empty() {
                        self.keys.put_u16(rec + REC_FLAGS, ABSENT);
                        self.len -= 1;
                        self.size -= self.rec_klen(rec);
                    } else {
                        self.keys.put_u16(rec + REC_FLAGS, kept.bits());
                    }
                } else {
                    self.size += self.vlog.value(prev).len() as u64;
                }
            }
            cur = self.vlog.previous_record(cur);
        }
        self.vlog.truncate(pos);
        self.truncations.push(pos);
        self.pinned = self.pinned.min(pos);
    }

    /// Calls `f(key, flags, value)` for each key whose latest version was written in stage `h`
    /// or later, newest write first (client-go `InspectStage`).
    pub fn inspect_stage(&self, h: StagingHandle, mut f: impl FnMut(&[u8], KeyFlags, &[u8])) {
        let Some(&head) = self.stages.get(h.depth() - 1) else {
            return;
        };
        let mut cur = self.vlog.tail();
        while cur > head {
            let (_, rec, _) = self.vlog.vlog_header(cur);
            if self.rec_value(rec) == cur {
                let e = self.rec_entry(rec);
                f(e.key, e.flags, self.vlog.value(cur));
            }
            cur = self.vlog.previous_record(cur);
        }
    }

    /// The newest version of `key`'s value that satisfies `predicate` (client-go
    /// `SelectValueHistory`): `Ok(None)` if no version matches, `Err(())` if the key has no
    /// value in the buffer.
    #[allow(clippy::result_unit_err)]
    pub fn select_value_history(
        &self,
        key: &[u8],
        mut predicate: impl FnMut(&[u8]) -> bool,
    ) -> Result<Option<&[u8]>, ()> {
        let rec = self.tree.find(&self.keys, key).ok_or(())?;
        let mut v = self.rec_value(rec);
        if v == NULL {
            return Err(());
        }
        while v != NULL {
            let val = self.vlog.value(v);
            if predicate(val) {
                return Ok(Some(val));
            }
            v = self.vlog.vlog_header(v).2;
        }
        Ok(None)
    }

    /// Drops everything, stages included (client-go `Reset`).
    pub fn reset(&mut self) {
        self.tree.reset();
        self.keys.reset();
        self.vlog.reset();
        self.stages.clear();
        self.truncations.clear();
        self.pinned = NULL;
        self.len = 0;
        self.size = 0;
        self.dirty = false;
        self.notify_mem();
    }

    // ---- snapshot reads ----

    /// The buffer as of the start of the outermost open stage, or as it is now when no stage
    /// is open (client-go `SnapshotGetter` / `GetSnapshot`, which reads `stages[0]`).
    pub fn snapshot(&self) -> SnapshotView<'_> {
        SnapshotView {
            buf: self,
            pos: self
                .stages
                .first()
                .copied()
                .unwrap_or_else(|| self.vlog.tail()),
        }
    }

    /// The buffer as of the start of stage `h`; `None` if `h` is not open.
    pub fn snapshot_at(&self, h: StagingHandle) -> Option<SnapshotView<'_>> {
        let pos = *self.stages.get(h.depth() - 1)?;
        Some(SnapshotView { buf: self, pos })
    }

    /// [`snapshot`](Self::snapshot)`.get(key)`.
    pub fn snapshot_get(&self, key: &[u8]) -> Option<&[u8]> {
        self.snapshot().get(key)
    }

    /// [`snapshot`](Self::snapshot)`.iter(lower, upper)` (client-go `SnapshotIter`).
    pub fn snapshot_iter<'a>(&'a self, lower: &'a [u8], upper: &'a [u8]) -> Iter<'a> {
        self.snapshot().iter(lower, upper)
    }

    /// [`snapshot`](Self::snapshot)`.iter_reverse(lower, upper)` (client-go
    /// `SnapshotIterReverse`).
    pub fn snapshot_iter_reverse<'a>(&'a self, lower: &'a [u8], upper: &'a [u8]) -> Iter<'a> {
        self.snapshot().iter_reverse(lower, upper)
    }
}

/// A read view of a [`MemBuffer`] as of a stage boundary (client-go `art.Snapshot`): values
/// written after the boundary are invisible; flags are the current ones (flags are not
/// versioned). While the view lives the buffer cannot be written, which is what client-go's
/// `SnapshotSeqNo` checks at run time.
#[derive(Clone, Copy)]
pub struct SnapshotView<'a> {
    buf: &'a MemBuffer,
    pos: Addr,
}

impl<'a> SnapshotView<'a> {
    /// The value of `key` as of the boundary; `Some(&[])` is a tombstone.
    pub fn get(&self, key: &[u8]) -> Option<&'a [u8]> {
        let rec = self.buf.tree.find(&self.buf.keys, key)?;
        let v = self.buf.vlog.version_at(self.buf.rec_value(rec), self.pos);
        (v != NULL).then(|| self.buf.vlog.value(v))
    }

    /// Entries with a value as of the boundary in `[lower, upper)`, ascending.
    pub fn iter(&self, lower: &'a [u8], upper: &'a [u8]) -> Iter<'a> {
        Iter::new(self.buf, lower, upper, false, IterMode::Snapshot(self.pos))
    }

    /// Entries with a value as of the boundary in `[lower, upper)`, descending.
    pub fn iter_reverse(&self, lower: &'a [u8], upper: &'a [u8]) -> Iter<'a> {
        Iter::new(self.buf, lower, upper, true, IterMode::Snapshot(self.pos))
    }
}
