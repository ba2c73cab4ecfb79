//! The client's error type: one enum for every failure a user can see.
//!
//! client-go's error model (`error/error.go`) is a mix of sentinel values
//! (`ErrRegionUnavailable`, `ErrResultUndetermined`, `ErrTiKVServerBusy`, ...), wrapper
//! types around protobuf errors (`ErrWriteConflict`, `ErrKeyExist`, `ErrDeadlock`,
//! `ErrAssertionFailed`, `PDError`) and predicates (`IsErrNotFound`, `IsErrKeyExist`,
//! `IsErrWriteConflict`, `IsErrorUndetermined`). Here the same cases are variants of one
//! `thiserror` enum, [`Error`], with classification helpers of the same names
//! ([`Error::is_undetermined`], [`Error::is_write_conflict`], ...), so callers branch on
//! types, never on strings.
//!
//! Sources are unified: errors of the layers (backoff budget spent, region errors that were
//! not retried), of the transport ([`TransportError`]), of routing ([`LocateError`]) and of
//! PD ([`PdError`]) convert into [`Error`] with `?`.
//!
//! Bad user input is rejected before anything is sent, with a typed error
//! ([`Error::EmptyKey`], [`Error::InvalidRange`], [`Error::EntryTooLarge`],
//! [`Error::MaxScanLimitExceeded`], ...) — never a panic.
//!
//! # client-go parity (`error` package)
//!
//! | client-go | here |
//! |---|---|
//! | `ErrBodyMissing` | [`Error::UnexpectedResponse`] |
//! | `ErrTiKVServerBusy`, `ErrRegionUnavailable`, `ErrResultUndetermined` | [`Error::ServerBusy`], [`Error::RegionUnavailable`], [`Error::Undetermined`] (`is_server_busy`, `is_region_unavailable`, `is_undetermined` = `IsErrorUndetermined`) |
//! | `ErrTiKVServerTimeout`, `ErrPDServerTimeout` | [`Error::Timeout`], [`Error::PdServerTimeout`], [`Error::BackoffExhausted`] with that cause (`is_timeout`, `is_pd_server_timeout`) |
//! | `ErrTiKVStaleCommand`, `ErrTiKVMaxTimestampNotSynced`, `ErrTiKVDiskFull`, `ErrRegionDataNotReady`, `ErrRegionNotInitialized`, `ErrRegionRecoveryInProgress`, `ErrRegionFlashback*`, `ErrIsWitness` | retried by the layers with their backoff kind; when the budget runs out: [`Error::BackoffExhausted`] typed by the longest-sleeping kind's cause, with the history; otherwise [`Error::RegionError`] / [`Error::RegionUnavailable`] |
//! | `ErrWriteConflict` (+`IsErrWriteConflict`), `ErrKeyExist` (+`IsErrKeyExist`), `ErrDeadlock`, `ErrAssertionFailed`, `ErrRetryable`, `ExtractKeyErr` | [`Error::WriteConflict`], [`Error::KeyExists`], [`Error::Deadlock`], [`Error::AssertionFailed`], [`Error::Retryable`], [`Error::from_key_error`] |
//! | `ErrEntryTooLarge`, `ErrKeyTooLarge` | [`Error::EntryTooLarge`], [`Error::KeyTooLarge`] |
//! | `PDError`, `MismatchClusterID` | [`Error::Pd`] (`PdError::ClusterIdMismatch`) |
//! | `ErrTxnAbortedByGC`, `ErrGCTooEarly` (read side) | [`Error::TxnAbortedByGc`] (`is_txn_aborted_by_gc`) |
//! | `oracle.ErrFutureTSRead`, `ErrLatestStaleRead` | [`Error::FutureTsRead`] (`is_future_ts_read`), [`Error::InvalidReadTs`] |
//! | `ErrRegionDataNotReady` reaching the caller | [`Error::DataIsNotReady`] (stale reads normally fall back to the leader first) |
//! | `ErrTxnTooLarge`, `ErrLockWaitTimeout`, `ErrLockOnlyIfExists*`, `ErrWriteConflictInLatch`, `ErrCommitTSLag` | transaction errors: added with the transaction client |
//! | `ErrTiFlash*`, `ErrQueryInterrupted*`, `ErrTiDBShuttingDown`, `Log`, `ExtractDebugInfoStrFromKeyErr` | none: TiFlash / TiDB-only or Go logging plumbing |

use tikv_tower_layers::call::TransportError;
use tikv_tower_layers::locate::LocateError;
pub use tikv_tower_layers::retry::backoff::{BackoffCause, BackoffHistory};
use tikv_tower_proto::{errorpb, kvrpcpb};

use crate::pd::error::PdError;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error the client returns.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- invalid argument (rejected before sending) ----
    /// An empty key where TiKV forbids one (point reads and writes).
    #[error("empty key is not supported")]
    EmptyKey,
    /// A range whose start lies after its end.
    #[error("invalid range: start {start:?} > end {end:?}")]
    InvalidRange {
        /// Start key as given.
        start: Vec<u8>,
        /// End key as given.
        end: Vec<u8>,
    },
    /// A key/value entry larger than the server accepts (client-go `ErrEntryTooLarge`).
    #[error("entry size too large, size: {size}, limit: {limit}")]
    EntryTooLarge {
        /// The limit.
        limit: u64,
        /// The entry's size.
        size: u64,
    },
    /// A key longer than the server accepts (client-go `ErrKeyTooLarge`, TiKV
    /// `storage.max-key-size`).
    #[error("key size too large, size: {size}, limit: {limit}")]
    KeyTooLarge {
        /// The limit.
        limit: u64,
        /// The key's size.
        size: u64,
    },
    /// A scan limit above the maximum (client-go `ErrMaxScanLimitExceeded`).
    #[error("limit {limit} should be less than MaxRawKVScanLimit ({max})")]
    MaxScanLimitExceeded {
        /// The limit asked for.
        limit: u64,
        /// The maximum.
        max: u64,
    },
    /// Two parallel inputs of different lengths (e.g. keys and TTLs in a batch put).
    #[error("the len of {what} ({got}) is not equal to the len of keys ({expected})")]
    LengthMismatch {
        /// Which input.
        what: &'static str,
        /// Number of keys.
        expected: usize,
        /// Its length.
        got: usize,
    },
    /// `compare_and_swap` / `compare_and_delete` on a client not in atomic mode.
    #[error("using CompareAndSwap without enable atomic mode")]
    AtomicModeRequired,
    /// A column family name TiKV does not know.
    #[error("invalid column family {0:?} (expected default, lock or write)")]
    InvalidColumnFamily(String),
    /// Any other invalid argument.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Invalid configuration.
    #[error("invalid configuration: {0}")]
    Config(String),

    // ---- server answers ----
    /// The `error` string of a RawKV reply (TiKV reports raw-API failures as text).
    #[error("tikv error: {0}")]
    Server(String),
    /// A write conflict (client-go `ErrWriteConflict`).
    #[error("write conflict {{ {0:?} }}")]
    WriteConflict(Box<kvrpcpb::WriteConflict>),
    /// The key already exists (client-go `ErrKeyExist`).
    #[error("key already exists {{ {0:?} }}")]
    KeyExists(Box<kvrpcpb::AlreadyExist>),
    /// A deadlock was detected (client-go `ErrDeadlock`).
    #[error("deadlock {{ {0:?} }}")]
    Deadlock(Box<kvrpcpb::Deadlock>),
    /// An assertion on data failed (client-go `ErrAssertionFailed`).
    #[error("assertion failed {{ {0:?} }}")]
    AssertionFailed(Box<kvrpcpb::AssertionFailed>),
    /// The transaction's primary lock is gone (client-go: "txn %d not found").
    #[error("txn {start_ts} not found")]
    TxnNotFound {
        /// Start ts of the transaction.
        start_ts: u64,
    },
    /// A retryable key error (client-go `ErrRetryable`).
    #[error("retryable: {0}")]
    Retryable(String),
    /// TiKV aborted the transaction ("tikv aborts txn").
    #[error("tikv aborts txn: {0}")]
    Aborted(String),
    /// The commit ts is too large (async commit / 1PC).
    #[error("commit TS {commit_ts} is too large")]
    CommitTsTooLarge {
        /// The offending commit ts.
        commit_ts: u64,
    },
    /// Any other key error, kept whole.
    #[error("unexpected KeyError: {0:?}")]
    KeyError(Box<kvrpcpb::KeyError>),
    /// A region error the retry layer chose not to retry (e.g. `RaftEntryTooLarge`).
    #[error("region error: {0:?}")]
    RegionError(Box<errorpb::Error>),
    /// The region cannot serve the request (client-go `ErrRegionUnavailable`): no
    /// reachable replica, or the backoff budget ran out on region errors.
    #[error("region unavailable: {0}")]
    RegionUnavailable(String),
    /// The store kept answering `ServerIsBusy` (client-go `ErrTiKVServerBusy`).
    #[error("tikv server busy: {0}")]
    ServerBusy(String),
    /// The backoff budget of the operation was spent (client-go's backoffer
    /// "backoffer.maxSleep is exceeded"). `cause` is the typed error of the kind that
    /// slept longest (client-go `longestSleepCfg.err`: `ErrRegionUnavailable`,
    /// `ErrTiKVServerTimeout`, `ErrPDServerTimeout`, `ErrTiKVServerBusy`, ...); the
    /// predicates ([`is_region_unavailable`](Self::is_region_unavailable),
    /// [`is_server_busy`](Self::is_server_busy), [`is_timeout`](Self::is_timeout),
    /// [`is_pd_server_timeout`](Self::is_pd_server_timeout)) look at it. `history` is
    /// every backoff slept.
    #[error("{cause}: {history}")]
    BackoffExhausted {
        /// The cause: the longest-sleeping kind's error.
        cause: BackoffCause,
        /// The backoffs slept (kinds, sleeps, errors, budget).
        history: Box<BackoffHistory>,
    },
    /// PD could not be reached to locate a region or store (client-go
    /// `ErrPDServerTimeout`).
    #[error("pd server timeout: {0}")]
    PdServerTimeout(String),
    /// The outcome of a write is unknown (client-go `ErrResultUndetermined`); never retried.
    #[error("execution result undetermined: {0}")]
    Undetermined(String),
    /// A deadline passed (client-go `ErrTiKVServerTimeout` and context deadlines).
    #[error("timeout: {0}")]
    Timeout(String),
    /// A store could not be reached or answered with a gRPC error.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Region or store lookup failed.
    #[error(transparent)]
    Locate(#[from] LocateError),
    /// A PD request failed (client-go `PDError`).
    #[error(transparent)]
    Pd(#[from] PdError),
    /// A store returned a key outside the client's keyspace (API V2): a server bug; the
    /// reply is refused instead of silently dropping the key.
    #[error("store returned key {key:?} outside keyspace {keyspace_id}")]
    KeyOutsideKeyspace {
        /// The client's keyspace id.
        keyspace_id: u32,
        /// The key as the store returned it (request key space).
        key: Vec<u8>,
    },
    /// The keyspace does not exist or is not enabled.
    #[error("keyspace {0:?} not found or not enabled")]
    KeyspaceNotFound(String),
    /// A reply of the wrong kind, or without its body (client-go `ErrBodyMissing`).
    #[error("unexpected response: expected {expected}, got {got}")]
    UnexpectedResponse {
        /// The response kind expected.
        expected: &'static str,
        /// What came back.
        got: String,
    },
    /// The client was closed.
    #[error("client closed")]
    Closed,
    /// The operation was canceled.
    #[error("canceled")]
    Canceled,
    /// A user interceptor rejected the request (client-go `RPCInterceptor` returning an
    /// error).
    #[error("interceptor {name}: {message}")]
    Intercepted {
        /// The interceptor's name.
        name: String,
        /// Its message.
        message: String,
    },
    /// Any other error of the layers (lock resolution, unexpected replies, ...).
    #[error(transparent)]
    Layer(Box<tikv_tower_layers::Error>),
    /// An error of another component (e.g. a user layer), boxed.
    #[error("{0}")]
    Other(std::sync::Arc<dyn std::error::Error + Send + Sync>),

    // ---- transactional reads (issue 10: snapshots, safety checks) ----
    /// The start ts is below the txn safe point: data it needs may be garbage-collected
    /// (client-go `ErrTxnAbortedByGC`, raised by `KVStore.CheckVisibility`).
    #[error("start ts {start_ts} is older than the txn safe point {safe_point}: the data it reads may be GC-ed")]
    TxnAbortedByGc {
        /// The start (read) ts refused.
        start_ts: u64,
        /// The txn safe point it is below.
        safe_point: u64,
    },
    /// The read ts is above every timestamp PD allocated (client-go
    /// `oracle.ErrFutureTSRead`).
    #[error("cannot read with a future ts: read ts {read_ts}, current ts {current_ts}")]
    FutureTsRead {
        /// The refused read ts.
        read_ts: u64,
        /// The fresh TSO it was checked against.
        current_ts: u64,
    },
    /// A read ts no TSO can produce, or a stale read at `u64::MAX` (client-go
    /// `ErrLatestStaleRead`).
    #[error("invalid read ts: {0}")]
    InvalidReadTs(String),
    /// A stale read found the replica's safe ts behind the read ts and no fallback was
    /// left (client-go `ErrRegionDataNotReady`).
    #[error("data is not ready: region {region_id}, safe ts {safe_ts}")]
    DataIsNotReady {
        /// The region.
        region_id: u64,
        /// The replica's safe ts.
        safe_ts: u64,
    },
}

impl From<crate::pd::TsoError> for Error {
    fn from(e: crate::pd::TsoError) -> Self {
        match e {
            crate::pd::TsoError::Closed => Error::Closed,
            crate::pd::TsoError::Stream { source, .. } => Error::Pd(source),
        }
    }
}

impl From<crate::pd::ReadTsError> for Error {
    fn from(e: crate::pd::ReadTsError) -> Self {
        use crate::pd::ReadTsError as R;
        match e {
            R::Future {
                read_ts,
                current_ts,
            } => Error::FutureTsRead {
                read_ts,
                current_ts,
            },
            R::Tso(t) => t.into(),
            other => Error::InvalidReadTs(other.to_string()),
        }
    }
}

impl Error {
    /// Build the error for a kvrpcpb `KeyError` (client-go `ExtractKeyErr`).
    pub fn from_key_error(e: kvrpcpb::KeyError) -> Self {
        if let Some(c) = e.conflict {
            return Error::WriteConflict(Box::new(c));
        }
        if !e.retryable.is_empty() {
            return Error::Retryable(e.retryable);
        }
        if let Some(a) = e.assertion_failed {
            return Error::AssertionFailed(Box::new(a));
        }
        if !e.abort.is_empty() {
            return Error::Aborted(e.abort);
        }
        if let Some(t) = e.commit_ts_too_large {
            return Error::CommitTsTooLarge {
                commit_ts: t.commit_ts,
            };
        }
        if let Some(t) = e.txn_not_found {
            return Error::TxnNotFound {
                start_ts: t.start_ts,
            };
        }
        if let Some(a) = e.already_exist {
            return Error::KeyExists(Box::new(a));
        }
        if let Some(d) = e.deadlock {
            return Error::Deadlock(Box::new(d));
        }
        Error::KeyError(Box::new(e))
    }

    /// Build the error for a region error that reached the user, by its kind
    /// ([`RegionErrorKind::of`](tikv_tower_layers::RegionErrorKind::of), the one
    /// classification the layers use too).
    pub fn from_region_error(e: errorpb::Error) -> Self {
        use tikv_tower_layers::RegionErrorKind as K;
        match K::of(&e) {
            K::ServerIsBusy => Error::ServerBusy(e.message),
            K::UndeterminedResult => Error::Undetermined(e.message),
            K::DataIsNotReady => {
                let (region_id, safe_ts) = e
                    .data_is_not_ready
                    .as_ref()
                    .map_or((0, 0), |d| (d.region_id, d.safe_ts));
                Error::DataIsNotReady { region_id, safe_ts }
            }
            K::RegionNotFound | K::RegionNotInitialized => {
                Error::RegionUnavailable(format!("{e:?}"))
            }
            _ => Error::RegionError(Box::new(e)),
        }
    }

    /// client-go `ErrTxnAbortedByGC`: the start ts fell below the txn safe point.
    pub fn is_txn_aborted_by_gc(&self) -> bool {
        matches!(self, Error::TxnAbortedByGc { .. })
    }

    /// client-go `oracle.ErrFutureTSRead`.
    pub fn is_future_ts_read(&self) -> bool {
        matches!(self, Error::FutureTsRead { .. })
    }

    /// The cause of an exhausted backoff budget, if this is one.
    pub fn backoff_cause(&self) -> Option<BackoffCause> {
        match self {
            Error::BackoffExhausted { cause, .. } => Some(*cause),
            _ => None,
        }
    }

    /// The backoff history of an exhausted budget, if this is one.
    pub fn backoff_history(&self) -> Option<&BackoffHistory> {
        match self {
            Error::BackoffExhausted { history, .. } => Some(history),
            _ => None,
        }
    }

    /// client-go `ErrPDServerTimeout`: PD could not be reached in time.
    pub fn is_pd_server_timeout(&self) -> bool {
        matches!(self, Error::PdServerTimeout(_))
            || self.backoff_cause() == Some(BackoffCause::PdServerTimeout)
    }

    /// Wrap any error.
    pub fn other(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Other(std::sync::Arc::new(e))
    }

    /// The input was rejected before sending (empty key, inverted range, too large, ...).
    pub fn is_invalid_argument(&self) -> bool {
        matches!(
            self,
            Error::EmptyKey
                | Error::InvalidRange { .. }
                | Error::EntryTooLarge { .. }
                | Error::KeyTooLarge { .. }
                | Error::MaxScanLimitExceeded { .. }
                | Error::LengthMismatch { .. }
                | Error::AtomicModeRequired
                | Error::InvalidColumnFamily(_)
                | Error::InvalidArgument(_)
                | Error::Config(_)
        )
    }

    /// client-go `IsErrorUndetermined`: a write may or may not have been applied.
    pub fn is_undetermined(&self) -> bool {
        matches!(self, Error::Undetermined(_))
    }

    /// client-go `ErrRegionUnavailable`: the region could not be served.
    pub fn is_region_unavailable(&self) -> bool {
        matches!(self, Error::RegionUnavailable(_) | Error::RegionError(_))
            || self.backoff_cause() == Some(BackoffCause::RegionUnavailable)
    }

    /// A deadline passed somewhere on the path.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            Error::Timeout(_)
                | Error::PdServerTimeout(_)
                | Error::Transport(TransportError::Timeout { .. })
        ) || matches!(
            self.backoff_cause(),
            Some(BackoffCause::TiKvServerTimeout | BackoffCause::PdServerTimeout)
        ) || matches!(self, Error::Transport(TransportError::Status { code, .. }) if *code == tonic::Code::DeadlineExceeded)
    }

    /// client-go `ErrTiKVServerBusy`.
    pub fn is_server_busy(&self) -> bool {
        matches!(self, Error::ServerBusy(_))
            || self.backoff_cause() == Some(BackoffCause::TiKvServerBusy)
    }

    /// The backoff budget ran out.
    pub fn is_backoff_exhausted(&self) -> bool {
        matches!(self, Error::BackoffExhausted { .. })
    }

    /// client-go `ErrMaxScanLimitExceeded`.
    pub fn is_max_scan_limit_exceeded(&self) -> bool {
        matches!(self, Error::MaxScanLimitExceeded { .. })
    }

    /// A transactional key error (conflict, exists, deadlock, assertion, ...).
    pub fn is_key_error(&self) -> bool {
        matches!(
            self,
            Error::WriteConflict(_)
                | Error::KeyExists(_)
                | Error::Deadlock(_)
                | Error::AssertionFailed(_)
                | Error::TxnNotFound { .. }
                | Error::Retryable(_)
                | Error::Aborted(_)
                | Error::CommitTsTooLarge { .. }
                | Error::KeyError(_)
        )
    }

    /// client-go `IsErrWriteConflict`.
    pub fn is_write_conflict(&self) -> bool {
        matches!(self, Error::WriteConflict(_))
    }

    /// client-go `IsErrKeyExist`.
    pub fn is_key_exists(&self) -> bool {
        matches!(self, Error::KeyExists(_))
    }

    /// client-go `ErrDeadlock`.
    pub fn is_deadlock(&self) -> bool {
        matches!(self, Error::Deadlock(_))
    }

    /// A failure to reach a store or PD (send failure, not a server answer).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Transport(TransportError::Unavailable { .. }))
            || matches!(self, Error::Pd(p) if p.is_retryable())
    }

    /// Whether retrying the whole operation later may succeed: transient server and
    /// network conditions, write conflicts and retryable key errors. Invalid input,
    /// undetermined results and permanent key errors are not retryable.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Retryable(_)
                | Error::WriteConflict(_)
                | Error::ServerBusy(_)
                | Error::RegionUnavailable(_)
                | Error::BackoffExhausted { .. }
                | Error::PdServerTimeout(_)
                | Error::Timeout(_)
        ) || self.is_unreachable()
    }
}

impl From<tikv_tower_layers::Error> for Error {
    /// Map the layers' error model onto the user-facing one (client-go turns the
    /// sender's region errors and backoffer failures into `tikverr` values the same way).
    fn from(e: tikv_tower_layers::Error) -> Self {
        use tikv_tower_layers::Error as L;
        match e {
            L::Region { error, .. } => Error::from_region_error(*error),
            L::RegionUnavailable(v) => {
                Error::RegionUnavailable(format!("region {} (no replica left to try)", v.id))
            }
            L::Undetermined(m) => Error::Undetermined(m),
            L::RaftEntryTooLarge {
                entry_size, limit, ..
            } => Error::EntryTooLarge {
                limit,
                size: entry_size,
            },
            L::Flashback { region_id, message } => {
                Error::RegionUnavailable(format!("region {region_id} in flashback: {message}"))
            }
            L::BackoffExhausted(history) => Error::BackoffExhausted {
                cause: history.cause(),
                history,
            },
            L::Locate(LocateError::Pd(m)) => Error::PdServerTimeout(m),
            L::Transport(t) | L::SendFailed { source: t, .. } => match t {
                TransportError::Canceled => Error::Canceled,
                t => Error::Transport(t),
            },
            L::Locate(l) => Error::Locate(l),
            L::DeadlineExceeded => Error::Timeout("operation deadline exceeded".into()),
            L::Timeout(d) => Error::Timeout(format!("rpc timed out after {d:?}")),
            L::InvalidArgument(m) => Error::InvalidArgument(m),
            L::Key(k) => Error::from_key_error(*k),
            L::Intercepted { name, message } => Error::Intercepted { name, message },
            L::UnexpectedReply { expected, got } => Error::UnexpectedResponse {
                expected: expected.as_str(),
                got: got.as_str().to_owned(),
            },
            other => Error::Layer(Box::new(other)),
        }
    }
}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Self {
        match s.code() {
            tonic::Code::DeadlineExceeded => Error::Timeout(s.message().to_string()),
            tonic::Code::Cancelled => Error::Canceled,
            code => Error::Transport(TransportError::Status {
                addr: std::sync::Arc::from(""),
                code,
                message: s.message().to_string(),
            }),
        }
    }
}

// ---- lock resolution (txn::resolver) ----
impl Error {
    /// client-go `ErrResolveLockTimeout`: the operation's backoff budget ran out while
    /// waiting for locks (`BoTxnLock`, `BoTxnLockFast`, `BoTxnNotFound` slept longest).
    pub fn is_resolve_lock_timeout(&self) -> bool {
        self.backoff_cause() == Some(BackoffCause::ResolveLockTimeout)
    }

    /// client-go `txnNotFoundErr`: a transaction's primary has neither a lock nor a
    /// commit / rollback record.
    pub fn is_txn_not_found(&self) -> bool {
        matches!(self, Error::TxnNotFound { .. })
            || matches!(self, Error::KeyError(k) if k.txn_not_found.is_some())
    }

    /// TiKV's `PrimaryMismatch`: the lock checked as a primary names another primary (a
    /// non-pessimistic lock in this state is a protocol error; the resolver rolls back
    /// stale pessimistic ones itself).
    pub fn is_primary_mismatch(&self) -> bool {
        matches!(self, Error::KeyError(k) if k.primary_mismatch.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_error_extraction_follows_client_go_order() {
        let conflict = kvrpcpb::KeyError {
            conflict: Some(kvrpcpb::WriteConflict {
                start_ts: 1,
                ..Default::default()
            }),
            retryable: "also retryable".into(),
            ..Default::default()
        };
        assert!(Error::from_key_error(conflict).is_write_conflict());
        type Case = (kvrpcpb::KeyError, fn(&Error) -> bool);
        let cases: Vec<Case> = vec![
            (
                kvrpcpb::KeyError {
                    retryable: "r".into(),
                    ..Default::default()
                },
                |e| matches!(e, Error::Retryable(_)),
            ),
            (
                kvrpcpb::KeyError {
                    abort: "a".into(),
                    ..Default::default()
                },
                |e| matches!(e, Error::Aborted(_)),
            ),
            (
                kvrpcpb::KeyError {
                    txn_not_found: Some(kvrpcpb::TxnNotFound {
                        start_ts: 7,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                |e| matches!(e, Error::TxnNotFound { start_ts: 7 }),
            ),
            (
                kvrpcpb::KeyError {
                    already_exist: Some(Default::default()),
                    ..Default::default()
                },
                Error::is_key_exists,
            ),
            (
                kvrpcpb::KeyError {
                    deadlock: Some(Default::default()),
                    ..Default::default()
                },
                Error::is_deadlock,
            ),
            (kvrpcpb::KeyError::default(), |e| {
                matches!(e, Error::KeyError(_))
            }),
        ];
        for (ke, check) in cases {
            let e = Error::from_key_error(ke.clone());
            assert!(check(&e), "{ke:?} -> {e:?}");
            assert!(e.is_key_error());
            assert!(!e.is_invalid_argument());
        }
    }

    #[test]
    fn classification() {
        let invalid = [
            Error::EmptyKey,
            Error::InvalidRange {
                start: b"b".to_vec(),
                end: b"a".to_vec(),
            },
            Error::EntryTooLarge { limit: 1, size: 2 },
            Error::MaxScanLimitExceeded {
                limit: 20000,
                max: 10240,
            },
            Error::AtomicModeRequired,
            Error::LengthMismatch {
                what: "values",
                expected: 1,
                got: 2,
            },
        ];
        for e in &invalid {
            assert!(e.is_invalid_argument(), "{e}");
            assert!(!e.is_retryable(), "{e}");
            assert!(!e.is_undetermined());
        }
        assert!(Error::Undetermined("x".into()).is_undetermined());
        assert!(!Error::Undetermined("x".into()).is_retryable());
        let busy = Error::from_region_error(errorpb::Error {
            server_is_busy: Some(Default::default()),
            ..Default::default()
        });
        assert!(busy.is_server_busy() && busy.is_retryable());
        let too_large = Error::from_region_error(errorpb::Error {
            raft_entry_too_large: Some(Default::default()),
            ..Default::default()
        });
        assert!(too_large.is_region_unavailable());
        let t = Error::Transport(TransportError::Timeout {
            addr: "a".into(),
            elapsed: std::time::Duration::from_secs(1),
        });
        assert!(t.is_timeout());
        assert!(Error::from(tonic::Status::deadline_exceeded("x")).is_timeout());
        assert!(Error::MaxScanLimitExceeded { limit: 1, max: 0 }.is_max_scan_limit_exceeded());
    }
}
