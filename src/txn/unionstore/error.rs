//! Typed errors of the write buffer.

use thiserror::Error;

/// What a buffer operation can fail with (client-go `ErrCannotSetNilValue`,
/// `ErrKeyTooLarge`, `ErrEntryTooLarge`, `ErrTxnTooLarge`, and the conditions client-go panics
/// on: staging handles used out of order, stale checkpoints).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MemBufferError {
    /// `set` with an empty value: an empty value means "deleted" in a transaction.
    #[error("cannot set an empty value (use delete)")]
    EmptyValue,
    /// The key is longer than [`MAX_KEY_LEN`](super::MAX_KEY_LEN).
    #[error("key too large: {size} bytes, max {max}")]
    KeyTooLarge {
        /// Key length.
        size: usize,
        /// The maximum.
        max: usize,
    },
    /// Key plus value exceed the entry size limit. Nothing was written.
    #[error("entry too large: {size} bytes, limit {limit}")]
    EntryTooLarge {
        /// Key plus value length.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The buffer's size exceeds the total size limit. As in client-go, the write that crossed
    /// the limit has been applied; the transaction is expected to fail.
    #[error("transaction too large: {size} bytes, limit {limit}")]
    TxnTooLarge {
        /// Buffer size after the write.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The buffer's arenas are at their address limit (about 4 GiB of keys and short values,
    /// or 64 Ki blocks of value log): far past any size TiKV accepts in one transaction.
    /// Nothing was written.
    #[error("write buffer arena full")]
    ArenaFull,
    /// `release` was given a handle that is not the innermost open stage, or `cleanup` one
    /// that has open stages above it.
    #[error("staging handle {handle} is not the innermost stage ({depth} open)")]
    NotInnermostStage {
        /// The handle passed.
        handle: usize,
        /// Open stages.
        depth: usize,
    },
    /// The checkpoint lies before the innermost stage, or its writes were already discarded.
    #[error("checkpoint is no longer valid")]
    InvalidCheckpoint,
}
