//! [`MemBuffer`]: the transaction's ordered write buffer with staging and snapshot reads.

use std::fmt;
use std::num::NonZeroUsize;

use super::arena::{Addr, Arena, NULL, VLOG_HDR};
use super::error::MemBufferError;
use super::flags::{FlagsOp, KeyFlags, VISIBLE_MASK};
use super::iter::{BufferEntry, Iter, IterMode};
use super::records::{
    make_word, word_flags, word_ver, KeyArena, RecAddr, Record, Ver, INLINE, INLINE_MAX, NONE,
};
use super::tree::Tree;

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

/// Value-log blocks a version pointer can address (48-bit pointers, block index in the high
/// 16 bits).
const MAX_VLOG_BLOCKS: usize = (1 << 16) - 2;

/// A point in the buffer's history: the value-log tail and the key-arena tail (log versions
/// after `vlog` and inline versions of records created at or after `keys` were written later),
/// and the clock: how many value versions existed then (value-log versions plus inline ones,
/// client-go's value-log position). Reverting to a mark sets the clock back to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mark {
    vlog: Addr,
    keys: u64,
    clock: u64,
}

impl Mark {
    const ZERO: Mark = Mark {
        vlog: NULL,
        keys: 0,
        clock: 0,
    };

    fn min(self, o: Mark) -> Mark {
        Mark {
            vlog: self.vlog.min(o.vlog),
            keys: self.keys.min(o.keys),
            clock: self.clock.min(o.clock),
        }
    }
}

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
    pos: Mark,
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
    keys: KeyArena,
    vlog: Arena,
    stages: Vec<Mark>,
    /// Versions written before this point may not be overwritten in place (a stage or a
    /// checkpoint needs them).
    pinned: Mark,
    /// Clocks the buffer was reverted to, in order; checkpoints taken before a revert below
    /// them are stale.
    truncations: Vec<u64>,
    /// Value versions written and not reverted (see [`Mark`]).
    clock: u64,
    /// Value-log blocks a version pointer can address ([`MAX_VLOG_BLOCKS`]; lower in tests).
    vlog_max_blocks: usize,
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
            keys: KeyArena::new(),
            vlog: Arena::new(),
            stages: Vec::new(),
            pinned: Mark::ZERO,
            truncations: Vec::new(),
            clock: 0,
            vlog_max_blocks: MAX_VLOG_BLOCKS,
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

    /// The current history point.
    fn mark(&self) -> Mark {
        Mark {
            vlog: self.vlog.tail(),
            keys: self.keys.tail(),
            clock: self.clock,
        }
    }

    /// The bytes of version `ver` of the record `r` (`ver` is not [`NONE`]).
    #[inline]
    fn version_value<'a>(&'a self, r: &Record<'a>, ver: Ver) -> &'a [u8] {
        if ver == INLINE {
            r.inline
        } else {
            self.vlog.value(ver)
        }
    }

    /// The newest version of record `rec` (current version `ver`) written before `m`.
    #[inline]
    fn version_at(&self, rec: RecAddr, ver: Ver, m: Mark) -> Ver {
        match self.vlog.version_at(ver, m.vlog) {
            INLINE if rec as u64 >= m.keys => NONE,
            v => v,
        }
    }

    /// The entry at `rec` as an iterator yields it, or `None` if `mode` skips it.
    #[inline]
    pub(crate) fn rec_entry_for(&self, rec: RecAddr, mode: IterMode) -> Option<BufferEntry<'_>> {
        let r = self.keys.get(rec);
        let raw = word_flags(r.word);
        let ver = word_ver(r.word);
        let ver = match mode {
            IterMode::Values if raw & ABSENT != 0 || ver == NONE => return None,
            IterMode::WithFlags if raw & ABSENT != 0 => return None,
            IterMode::Snapshot(at) => match self.version_at(rec, ver, at) {
                NONE => return None,
                old => old,
            },
            _ => ver,
        };
        Some(BufferEntry {
            key: r.key,
            value: (ver != NONE).then(|| self.version_value(&r, ver)),
            flags: KeyFlags::from_bits(raw),
        })
    }

    /// Hints the CPU to load the record at `rec`.
    #[inline]
    pub(crate) fn prefetch_record(&self, rec: RecAddr) {
        self.keys.prefetch(rec);
    }

    /// Hints the CPU to load the rest of the entry at `rec` once its record is cached: the
    /// tail of a long record, or the header of a value-log version.
    #[inline]
    pub(crate) fn prefetch_value(&self, rec: RecAddr) {
        match word_ver(self.keys.word(rec)) {
            NONE => {}
            INLINE => self.keys.prefetch_tail(rec),
            v => self.vlog.prefetch_value(v),
        }
    }

    /// Hints the CPU to load the start of a long value-log value of the record at `rec` (the
    /// record and the value's header should be cached by now).
    #[inline]
    pub(crate) fn prefetch_value_start(&self, rec: RecAddr) {
        let v = word_ver(self.keys.word(rec));
        if v > INLINE {
            self.vlog.prefetch_value_start(v);
        }
    }

    pub(crate) fn tree(&self) -> &Tree {
        &self.tree
    }

    pub(crate) fn keys(&self) -> &KeyArena {
        &self.keys
    }

    // ---- reads ----

    /// The current value of `key`: `Some(&[])` is a tombstone (client-go `Get`, which returns
    /// the tombstone too and leaves hiding it to the union store).
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let rec = self.tree.find(&self.keys, key)?;
        let r = self.keys.get(rec);
        let ver = word_ver(r.word);
        (ver != NONE).then(|| self.version_value(&r, ver))
    }

    /// The flags of `key`, if the key is in the buffer (client-go `GetFlags`).
    pub fn get_flags(&self, key: &[u8]) -> Option<KeyFlags> {
        let rec = self.tree.find(&self.keys, key)?;
        let raw = word_flags(self.keys.word(rec));
        (raw & ABSENT == 0).then(|| KeyFlags::from_bits(raw))
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
        let r = self.keys.get(rec);
        if word_flags(r.word) & ABSENT != 0 {
            return;
        }
        let ver = word_ver(r.word);
        if ver != NONE {
            self.size -= self.version_value(&r, ver).len() as u64;
        }
        self.size -= r.key.len() as u64;
        self.len -= 1;
        self.keys.set_word(rec, make_word(ABSENT, NONE));
    }

    /// client-go `ART.Set` + `setValue` + `trySwapValue`. A key first written with a short
    /// value gets it inline in its new record; other versions go to the value log.
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
            // A value that may need a new value-log block when none is left is refused up
            // front, before anything changes (it might have gone inline or in place).
            if self.vlog.room() < v.len() + VLOG_HDR
                && self.vlog.block_count() >= self.vlog_max_blocks
            {
                return Err(MemBufferError::ArenaFull);
            }
        }
        let inline = value.filter(|v| v.len() <= INLINE_MAX);
        let (rec, inserted) = self
            .tree
            .find_or_insert(&mut self.keys, key, |keys| {
                let ver = if inline.is_some() { INLINE } else { NONE };
                keys.push(make_word(ABSENT, ver), key, inline.unwrap_or_default())
            })
            .map_err(|_| MemBufferError::ArenaFull)?;
        if self.stages.is_empty() {
            self.dirty = true;
        }
        let r = self.keys.get(rec);
        let mut raw = word_flags(r.word);
        let mut ver = word_ver(r.word);
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
        if let Some(v) = value {
            if inserted && inline.is_some() {
                // The first version went inline with the new record.
                self.clock += 1;
                self.size += v.len() as u64;
            } else {
                let (old_len, swappable) = match ver {
                    NONE => (0, false),
                    INLINE => (r.inline.len(), rec as u64 >= self.pinned.keys),
                    log => (self.vlog.value(log).len(), log > self.pinned.vlog),
                };
                if swappable && old_len == v.len() && old_len > 0 {
                    if ver == INLINE {
                        self.keys.inline_mut(rec).copy_from_slice(v);
                    } else {
                        self.vlog.value_mut(ver).copy_from_slice(v);
                    }
                } else {
                    self.clock += 1;
                    self.size = self.size + v.len() as u64 - old_len as u64;
                    ver = self.vlog.append_value(rec, ver, v).0;
                }
            }
        }
        self.keys
            .set_word(rec, make_word(flags.bits() & VISIBLE_MASK, ver));
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
            let mem = self.mem();
            if mem != self.last_mem {
                self.last_mem = mem;
                hook(mem);
            }
        }
    }

    // ---- staging ----

    /// Opens a stage nested in the current one (client-go `Staging`).
    pub fn staging(&mut self) -> StagingHandle {
        let mark = self.mark();
        self.stages.push(mark);
        self.pinned = mark;
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
        if h.depth() == 1 && self.stages[0].clock != self.clock {
            self.dirty = true;
        }
        self.stages.pop();
        Ok(())
    }

    /// Discards the innermost stage `h` and every value change made in it (client-go
    /// `Cleanup`). A handle deeper than the open stages was already discarded with its parent
    /// and is ignored.
    ///
    /// The value-log versions written in the stage are freed. Keys first written in the stage
    /// keep their records, as client-go keeps their ART leaves, and with them their inline
    /// first values (up to 256 bytes each) until [`reset`](Self::reset).
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
        let mark = self.stages[h.depth() - 1];
        self.revert_to(mark);
        self.stages.pop();
        self.notify_mem();
        Ok(())
    }

    /// A position to return to with [`revert_to_checkpoint`](Self::revert_to_checkpoint)
    /// (client-go `Checkpoint`).
    pub fn checkpoint(&mut self) -> Checkpoint {
        let pos = self.mark();
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
        let floor = self.stages.last().map_or(0, |s| s.clock);
        let stale = self
            .truncations
            .get(cp.epoch..)
            .is_none_or(|t| t.iter().any(|&c| c < cp.pos.clock));
        if cp.pos.clock > self.clock || cp.pos.clock < floor || stale {
            return Err(MemBufferError::InvalidCheckpoint);
        }
        self.revert_to(cp.pos);
        self.notify_mem();
        Ok(())
    }

    /// Sets record `rec` (word `word`, value `size` bytes) back to version `prev`, keeping only
    /// its persistent flags (or dropping the entry) when `prev` is "never written".
    fn restore(&mut self, rec: RecAddr, word: u64, prev: Ver) {
        let flags = word_flags(word);
        if prev == NONE {
            let kept = KeyFlags::from_bits(flags).and_persistent();
            if kept.is_empty() {
                self.keys.set_word(rec, make_word(ABSENT, NONE));
                self.len -= 1;
                self.size -= self.keys.key(rec).len() as u64;
            } else {
                self.keys.set_word(rec, make_word(kept.bits(), NONE));
            }
        } else {
            let r = self.keys.get(rec);
            self.size += self.version_value(&r, prev).len() as u64;
            self.keys.set_word(rec, make_word(flags, prev));
        }
    }

    /// Undoes every value written after `m` (client-go `MemdbVlog.RevertToCheckpoint` +
    /// `ART.RevertVAddr`): walks the value log back to `m.vlog` restoring each entry's previous
    /// version and truncates it, then drops the inline versions of records created since
    /// `m.keys` (the records stay: the index never loses a key).
    fn revert_to(&mut self, m: Mark) {
        let mut changed = false;
        let mut cur = self.vlog.tail();
        while cur > m.vlog {
            changed = true;
            let (vlen, rec, prev) = self.vlog.vlog_header(cur);
            let word = self.keys.word(rec);
            if word_ver(word) == cur {
                self.size -= vlen as u64;
                self.restore(rec, word, prev);
            }
            cur = self.vlog.previous_record(cur);
        }
        let mut undo = Vec::new();
        self.keys.for_each_from(m.keys, |rec, r| {
            if word_ver(r.word) == INLINE {
                undo.push((rec, r.word, r.inline.len()));
            }
        });
        for (rec, word, ilen) in undo {
            changed = true;
            self.size -= ilen as u64;
            self.restore(rec, word, NONE);
        }
        if changed {
            self.vlog.truncate(m.vlog);
            self.truncations.push(m.clock);
        }
        self.clock = m.clock;
        self.pinned = self.pinned.min(m);
    }

    /// Calls `f(key, flags, value)` for each key whose latest version was written in stage `h`
    /// or later (client-go `InspectStage`): first those whose latest version is in the value
    /// log, newest write first, then keys first written in the stage whose latest version is
    /// that first one, in the order they were first written.
    pub fn inspect_stage(&self, h: StagingHandle, mut f: impl FnMut(&[u8], KeyFlags, &[u8])) {
        let Some(stage) = self.stages.get(h.depth() - 1) else {
            return;
        };
        let mut cur = self.vlog.tail();
        while cur > stage.vlog {
            let (_, rec, _) = self.vlog.vlog_header(cur);
            let r = self.keys.get(rec);
            if word_ver(r.word) == cur {
                f(
                    r.key,
                    KeyFlags::from_bits(word_flags(r.word)),
                    self.vlog.value(cur),
                );
            }
            cur = self.vlog.previous_record(cur);
        }
        self.keys.for_each_from(stage.keys, |_, r| {
            if word_ver(r.word) == INLINE {
                f(r.key, KeyFlags::from_bits(word_flags(r.word)), r.inline);
            }
        });
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
        let r = self.keys.get(rec);
        let mut v = word_ver(r.word);
        if v == NONE {
            return Err(());
        }
        while v != NONE {
            let val = self.version_value(&r, v);
            if predicate(val) {
                return Ok(Some(val));
            }
            v = if v == INLINE {
                NONE
            } else {
                self.vlog.vlog_header(v).2
            };
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
        self.pinned = Mark::ZERO;
        self.clock = 0;
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
            pos: self.stages.first().copied().unwrap_or_else(|| self.mark()),
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
    pos: Mark,
}

impl<'a> SnapshotView<'a> {
    /// The value of `key` as of the boundary; `Some(&[])` is a tombstone.
    pub fn get(&self, key: &[u8]) -> Option<&'a [u8]> {
        let rec = self.buf.tree.find(&self.buf.keys, key)?;
        let r = self.buf.keys.get(rec);
        let v = self.buf.version_at(rec, word_ver(r.word), self.pos);
        (v != NONE).then(|| self.buf.version_value(&r, v))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Running out of key-arena or value-log addresses fails the write with `ArenaFull` and
    /// changes nothing; everything else keeps working.
    #[test]
    fn arena_full_is_a_typed_error_and_changes_nothing() {
        let mut b = MemBuffer::with_limits(SizeLimits::UNLIMITED);
        b.keys = KeyArena::with_max_blocks(1);
        let mut n = 0u32;
        let err = loop {
            match b.set(&n.to_be_bytes(), &[7u8; 100]) {
                Ok(()) => n += 1,
                Err(e) => break e,
            }
            assert!(n < 1000, "a 4 KiB block holds fewer than 1000 such records");
        };
        assert_eq!(err, MemBufferError::ArenaFull);
        assert!(n > 10);
        let (len, size, dirty) = (b.len(), b.size(), b.dirty());
        assert_eq!(len, n as usize);
        assert_eq!(b.get(&n.to_be_bytes()), None);
        assert_eq!(b.get_flags(&n.to_be_bytes()), None);
        assert_eq!(b.iter(b"", b"").count(), len);
        assert_eq!((b.len(), b.size(), b.dirty()), (len, size, dirty));
        // Existing keys still take new values: in place, or in the value log.
        b.set(&0u32.to_be_bytes(), &[8u8; 100]).unwrap();
        b.set(&1u32.to_be_bytes(), &[8u8; 300]).unwrap();
        assert_eq!(b.get(&1u32.to_be_bytes()), Some(&[8u8; 300][..]));

        // The value log at its last block: a value that needs a new block is refused.
        b.vlog_max_blocks = b.vlog.block_count();
        let room = b.vlog.room();
        let err = b.set(&2u32.to_be_bytes(), &vec![9u8; room + 1]);
        assert_eq!(err, Err(MemBufferError::ArenaFull));
        assert_eq!(b.get(&2u32.to_be_bytes()), Some(&[7u8; 100][..]));
        // One that fits the block still goes in.
        b.set(&3u32.to_be_bytes(), &vec![9u8; room - VLOG_HDR])
            .unwrap();
        assert_eq!(
            b.get(&3u32.to_be_bytes()).map(<[u8]>::len),
            Some(room - VLOG_HDR)
        );
    }
}
