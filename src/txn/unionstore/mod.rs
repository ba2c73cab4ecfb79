//! The transaction write buffer (client-go `internal/unionstore`).
//!
//! A transaction keeps every write in a local buffer until commit. This module provides:
//!
//! - [`MemBuffer`] (client-go `MemDB`): an ordered map from key to value plus per-key
//!   [`KeyFlags`], with nested **staging** ([`MemBuffer::staging`], [`MemBuffer::release`],
//!   [`MemBuffer::cleanup`]) and checkpoints, entry and total size limits, and a
//!   memory-footprint hook;
//! - **snapshot reads** ([`MemBuffer::snapshot`], [`SnapshotView`]): the buffer as it was at a
//!   stage boundary, which is how a statement reads the transaction's state from before its
//!   own writes (client-go `SnapshotGetter` / `SnapshotIter`);
//! - the **union view** ([`UnionStore`], [`UnionIter`]): reads that consult the buffer first and
//!   a backing [`SnapshotSource`] second, with buffered deletes hiding snapshot values
//!   (client-go `KVUnionStore` / `UnionIter`);
//! - **mutation lowering** ([`lower_mutations`]): the buffer turned into the prewrite mutations
//!   (op, value, assertion, pessimistic action) the two-phase committer sends (client-go
//!   `twoPhaseCommitter.initKeysAndMutations` and `buildPrewriteRequest`).
//!
//! # Layout and why
//!
//! client-go keeps keys in an adaptive radix tree whose nodes and leaves live in one arena,
//! and values in an append-only *value log* (vlog) arena where each version records its
//! predecessor. Staging is a position in the vlog: cleanup walks the log backwards restoring
//! predecessors, release just forgets the position, snapshot reads follow a key's version chain
//! back to the first version written before the position. This module keeps that value-log
//! design (it makes staging O(changes) and snapshot reads free) and changes two things:
//!
//! - **keys** live once each in a key arena as a record `[flags + current version][lengths]
//!   [key][first value]` (`records.rs`): flags cost no allocation and no side table, and a key
//!   first written with a value of up to 256 bytes keeps that value *inline*, right after the
//!   key. Reading or scanning such an entry touches one place instead of two, and it pays no
//!   value-log header. Later versions go to the value log; the inline value is the oldest link
//!   of the version chain. Record addresses are `u32`;
//! - the **index** is an insert-only B+ tree (32 slots per node, nodes in pages addressed by
//!   `u32`) whose 8-byte slots hold the record address plus 4 key bytes taken after the prefix
//!   the node's keys share (`slots.rs`, `tree.rs`). Binary search compares those in the node
//!   and touches the arena only on ties, so a lookup costs about one cache miss per level, also
//!   for TiDB keys that share 11–19 leading bytes. A full leaf lends slots to a sibling before
//!   it splits, which keeps leaves about 80% full. Leaves are chained both ways for range scans
//!   in either direction. Keys are never removed from the tree during a transaction (client-go
//!   marks them deleted in place too), so no delete rebalancing is needed;
//! - **values** after a key's first go to the vlog as `[value][len][entry][prev]`. A version
//!   newer than every stage and checkpoint is overwritten in place when the new value has the
//!   same length (client-go `trySwapValue`), inline or not.
//!
//! A history point is then the pair (vlog tail, key-arena tail): an inline version was written
//! after a point iff its record was created after it, because the key arena only grows.
//! Cleanup walks the vlog back as client-go does, then the records created since the stage
//! began, dropping their inline versions (the records stay, as client-go's leaves do).
//!
//! All memory comes in blocks that double from 4 KiB up to 1 MiB: no reallocation copies and no
//! allocation per key. A key written once costs its key and value plus about 22 bytes (a
//! 10-byte record header and ~12 bytes of tree).
//!
//! # Staging rules (client-go semantics)
//!
//! - Writes go to the innermost stage. `release(h)` merges stage `h` into its parent and must
//!   name the innermost stage; `cleanup(h)` discards it (a handle already discarded with its
//!   parent is a no-op).
//! - Cleanup and checkpoint reverts undo **values** only. Flags are not versioned: a flag set
//!   inside a discarded stage stays, unless the key's value is undone to "never written", in
//!   which case only the persistent flags (key locked, locked value exists, need constraint
//!   check in prewrite, locked in share mode) are kept, and the entry disappears if none is
//!   set. A pessimistic lock acquired by a failed statement is still held on the server, so
//!   forgetting it would leak it.
//! - `dirty` becomes true on any write outside a stage, on any persistent flag, and when an
//!   outermost stage that wrote something is released.
//!
//! # Example
//!
//! ```
//! use tikv_tower::txn::unionstore::{FlagsOp, MemBuffer};
//!
//! let mut buf = MemBuffer::new();
//! buf.set(b"a", b"1").unwrap();
//! let stmt = buf.staging();
//! buf.set_with_flags(b"b", b"2", &[FlagsOp::SetPresumeKeyNotExists]).unwrap();
//! buf.delete(b"a").unwrap();
//! // The statement's snapshot still sees the state before it began.
//! assert_eq!(buf.snapshot_get(b"a"), Some(&b"1"[..]));
//! assert_eq!(buf.get(b"a"), Some(&b""[..])); // tombstone
//! buf.cleanup(stmt).unwrap(); // the statement failed
//! assert_eq!(buf.get(b"a"), Some(&b"1"[..]));
//! assert_eq!(buf.get(b"b"), None);
//! ```

mod arena;
mod error;
mod flags;
mod iter;
mod membuffer;
mod mutations;
mod records;
mod slots;
mod tree;
mod union;

pub use error::MemBufferError;
pub use flags::{FlagsOp, KeyFlags};
pub use iter::{BufferEntry, Iter};
pub use membuffer::{
    Checkpoint, FootprintHook, MemBuffer, SizeLimits, SnapshotView, StagingHandle,
    DEFAULT_ENTRY_SIZE_LIMIT, DEFAULT_TOTAL_SIZE_LIMIT, MAX_KEY_LEN,
};
pub use mutations::{
    lower_mutations, AssertionConflict, KvFilter, LowerError, LoweringOptions, MutationCounts,
    MutationPlan, PrewriteMutation,
};
pub use union::{KvPair, SnapshotSource, UnionIter, UnionStore, DEFAULT_SCAN_BATCH};
