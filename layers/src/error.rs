//! The error model of the layers.
//!
//! Layers fail with one typed [`Error`]. Region errors (`errorpb.Error`) are classified
//! into [`RegionErrorKind`]; the route layer attaches a [`Decision`] saying what the
//! region-error matrix decided (retry now, back off then retry, re-locate / re-split,
//! give up), and the retry layer executes it. Key errors (`kvrpcpb.KeyError`) are *not*
//! errors at this level: they stay in the [`Response`](crate::Response) for the protocols
//! above; [`Error::Key`] exists so those protocols can surface one through the same type.
//!
//! client-go counterpart: `tikverr` (`ErrRegionUnavailable`, `ErrTiKVServerTimeout`,
//! `ErrBodyMissing`, `ErrResultUndetermined`, ...) plus the `(shouldRetry, err)` pair of
//! `onRegionError`.
//!
//! # Example
//!
//! ```
//! use tikv_tower_layers::{Error, RegionErrorKind, TransportError};
//! use tikv_tower_proto::errorpb;
//!
//! fn what_next(result: Result<(), Error>) -> &'static str {
//!     match result {
//!         Ok(()) => "done",
//!         Err(e) if e.is_undetermined() => "commit outcome unknown: report, don't retry",
//!         Err(e) if e.is_retryable() => "a fresh operation may succeed",
//!         Err(_) => "give up",
//!     }
//! }
//! let refused = TransportError::Unavailable { addr: "store-1".into(), message: "connect: refused".into() };
//! assert_eq!(what_next(Err(refused.into())), "a fresh operation may succeed");
//! assert_eq!(what_next(Err(Error::Undetermined("commit".into()))), "commit outcome unknown: report, don't retry");
//! assert_eq!(what_next(Err(Error::InvalidArgument("empty key".into()))), "give up");
//!
//! // Region errors are classified; stale routes are re-located (or re-split), not failed.
//! let stale = errorpb::Error { epoch_not_match: Some(Default::default()), ..Default::default() };
//! assert_eq!(RegionErrorKind::of(&stale), RegionErrorKind::EpochNotMatch);
//! assert!(RegionErrorKind::of(&stale).is_stale_route());
//! ```

use std::time::Duration;

use tikv_tower_proto::{errorpb, kvrpcpb};

use crate::call::TransportError;
use crate::locate::{LocateError, RegionVerId};
use crate::retry::backoff::BackoffKind;

/// The kind of a region error (one per `errorpb.Error` field, in field order), client-go
/// `regionErrorToLabel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegionErrorKind {
    /// `not_leader`.
    NotLeader,
    /// `region_not_found`.
    RegionNotFound,
    /// `key_not_in_region`.
    KeyNotInRegion,
    /// `epoch_not_match`.
    EpochNotMatch,
    /// `server_is_busy`.
    ServerIsBusy,
    /// `stale_command`.
    StaleCommand,
    /// `store_not_match`.
    StoreNotMatch,
    /// `raft_entry_too_large` (never retried).
    RaftEntryTooLarge,
    /// `max_timestamp_not_synced`.
    MaxTimestampNotSynced,
    /// `read_index_not_ready`.
    ReadIndexNotReady,
    /// `proposal_in_merging_mode`.
    ProposalInMergingMode,
    /// `data_is_not_ready` (stale reads).
    DataIsNotReady,
    /// `region_not_initialized`.
    RegionNotInitialized,
    /// `disk_full`.
    DiskFull,
    /// `RecoveryInProgress`.
    RecoveryInProgress,
    /// `FlashbackInProgress` (not retried).
    FlashbackInProgress,
    /// `FlashbackNotPrepared` (not retried).
    FlashbackNotPrepared,
    /// `is_witness`.
    IsWitness,
    /// `mismatch_peer_id`.
    MismatchPeerId,
    /// `bucket_version_not_match`.
    BucketVersionNotMatch,
    /// `undetermined_result` (never retried: the write may have been applied).
    UndeterminedResult,
    /// The message names a deadline exceeded on the server (client-go `isDeadlineExceeded`).
    DeadlineExceeded,
    /// No known field set.
    Unknown,
}

impl RegionErrorKind {
    /// Classify a region error (client-go `regionErrorToLabel`; the first set field in
    /// `errorpb.Error` field order wins, as in `onRegionError`).
    pub fn of(e: &errorpb::Error) -> RegionErrorKind {
        use RegionErrorKind::*;
        if e.undetermined_result.is_some() {
            UndeterminedResult
        } else if e.not_leader.is_some() {
            NotLeader
        } else if e.disk_full.is_some() {
            DiskFull
        } else if e.recovery_in_progress.is_some() {
            RecoveryInProgress
        } else if e.is_witness.is_some() {
            IsWitness
        } else if e.flashback_in_progress.is_some() {
            FlashbackInProgress
        } else if e.flashback_not_prepared.is_some() {
            FlashbackNotPrepared
        } else if e.region_not_found.is_some() {
            RegionNotFound
        } else if e.key_not_in_region.is_some() {
            KeyNotInRegion
        } else if e.epoch_not_match.is_some() {
            EpochNotMatch
        } else if e.bucket_version_not_match.is_some() {
            BucketVersionNotMatch
        } else if e.server_is_busy.is_some() {
            ServerIsBusy
        } else if e.stale_command.is_some() {
            StaleCommand
        } else if e.store_not_match.is_some() {
            StoreNotMatch
        } else if e.raft_entry_too_large.is_some() {
            RaftEntryTooLarge
        } else if e.max_timestamp_not_synced.is_some() {
            MaxTimestampNotSynced
        } else if e.region_not_initialized.is_some() {
            RegionNotInitialized
        } else if e.read_index_not_ready.is_some() {
            ReadIndexNotReady
        } else if e.proposal_in_merging_mode.is_some() {
            ProposalInMergingMode
        } else if e.data_is_not_ready.is_some() {
            DataIsNotReady
        } else if e.mismatch_peer_id.is_some() {
            MismatchPeerId
        } else if e.message.contains("Deadline is exceeded")
            || e.message.contains("deadline is exceeded")
        {
            DeadlineExceeded
        } else {
            Unknown
        }
    }

    /// A short label (metrics / logs), client-go's label strings.
    pub fn label(self) -> &'static str {
        use RegionErrorKind::*;
        match self {
            NotLeader => "not_leader",
            RegionNotFound => "region_not_found",
            KeyNotInRegion => "key_not_in_region",
            EpochNotMatch => "epoch_not_match",
            ServerIsBusy => "server_is_busy",
            StaleCommand => "stale_command",
            StoreNotMatch => "store_not_match",
            RaftEntryTooLarge => "raft_entry_too_large",
            MaxTimestampNotSynced => "max_timestamp_not_synced",
            ReadIndexNotReady => "read_index_not_ready",
            ProposalInMergingMode => "proposal_in_merging_mode",
            DataIsNotReady => "data_is_not_ready",
            RegionNotInitialized => "region_not_initialized",
            DiskFull => "disk_full",
            RecoveryInProgress => "recovery_in_progress",
            FlashbackInProgress => "flashback_in_progress",
            FlashbackNotPrepared => "flashback_not_prepared",
            IsWitness => "peer_is_witness",
            MismatchPeerId => "mismatch_peer_id",
            BucketVersionNotMatch => "bucket_version_not_match",
            UndeterminedResult => "undetermined_result",
            DeadlineExceeded => "deadline_exceeded",
            Unknown => "unknown",
        }
    }

    /// Whether the request's routing went stale (the caller must re-locate / re-split).
    pub fn is_stale_route(self) -> bool {
        matches!(
            self,
            RegionErrorKind::EpochNotMatch
                | RegionErrorKind::RegionNotFound
                | RegionErrorKind::KeyNotInRegion
        )
    }
}

/// What to do after a failed attempt: the one decision type that flows from the
/// region-error matrix and the replica session (which attach it to the error) through the
/// retry session (which may override it) to the retry loop (which executes it).
///
/// client-go spreads this over `onRegionError`'s `(shouldRetry, err)`, the selector's
/// pending backoffs and the callers' `bo.Backoff(BoRegionMiss)` re-locate loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Retry at once (a new leader is known, another replica can be tried).
    Now,
    /// Back off with this kind, then retry the same shard.
    Backoff(BackoffKind),
    /// The cached route was dropped: re-locate the key (or re-split a pinned shard), after
    /// backing off with the kind if given (client-go: "return the region error to the
    /// caller", which backs off `BoRegionMiss` and re-splits).
    Relocate(Option<BackoffKind>),
    /// Stop: return the error to the caller.
    Return,
}

impl Decision {
    /// The decision for a failed region or store lookup (client-go: `LocateKey` callers
    /// back off `BoPDRPC` on PD errors and `BoRegionMiss` on a missing region; an unknown
    /// store re-locates). Used by the retry session and by the shard layer's splitting.
    pub fn for_locate(e: &LocateError) -> Decision {
        match e {
            LocateError::Pd(_) => Decision::Backoff(BackoffKind::PdRpc),
            LocateError::RegionNotFound(_) => Decision::Backoff(BackoffKind::RegionMiss),
            LocateError::StoreNotFound(_) => Decision::Relocate(Some(BackoffKind::RegionMiss)),
            LocateError::Invalid(_) | LocateError::Closed => Decision::Return,
        }
    }
}

/// Errors of the layers.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A region error the stack did not (or could not) resolve by retrying.
    #[error("region {region:?} error {}: {}", kind.label(), error.message)]
    Region {
        /// The region the request was sent to.
        region: RegionVerId,
        /// Store that answered (0 if none).
        store_id: u64,
        /// Classification.
        kind: RegionErrorKind,
        /// What the matrix decided.
        decision: Decision,
        /// The server's error.
        error: Box<errorpb::Error>,
    },
    /// All replicas of a region were tried without success (client-go
    /// `ErrRegionUnavailable` / "no replica available").
    #[error("region {0:?} unavailable: no replica left to try")]
    RegionUnavailable(RegionVerId),
    /// The server answered `UndeterminedResult`: the write may or may not be applied.
    #[error("undetermined result: {0}")]
    Undetermined(String),
    /// The proposal was too large for raft (`RaftEntryTooLarge`).
    #[error("raft entry too large in region {region_id}: {entry_size} bytes, limit {limit}")]
    RaftEntryTooLarge {
        /// Region id.
        region_id: u64,
        /// Entry size.
        entry_size: u64,
        /// The limit (TiKV `raft-entry-max-size` as configured in the client; 0 = unknown).
        limit: u64,
    },
    /// The region is in a flashback (`FlashbackInProgress` / `FlashbackNotPrepared`).
    #[error("region {region_id} flashback: {message}")]
    Flashback {
        /// Region id.
        region_id: u64,
        /// What happened.
        message: String,
    },
    /// The shared backoff budget is spent (client-go "backoffer.maxSleep is exceeded"):
    /// the whole history, whose longest-sleeping kind names the cause
    /// ([`BackoffHistory::cause`](crate::retry::backoff::BackoffHistory::cause)).
    #[error("{}: {}", .0.cause(), .0)]
    BackoffExhausted(Box<crate::retry::backoff::BackoffHistory>),
    /// The store could not be reached / did not answer (after retries where allowed).
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// One attempt's send failed (produced by the route layer with the matrix's decision;
    /// the retry layer turns a final one into [`Error::Transport`]).
    #[error("send to store {store_id} failed: {source}")]
    SendFailed {
        /// The store.
        store_id: u64,
        /// What the matrix decided.
        decision: Decision,
        /// The transport's error.
        source: TransportError,
    },
    /// Region or store lookup failed.
    #[error(transparent)]
    Locate(#[from] LocateError),
    /// The operation's deadline passed.
    #[error("operation deadline exceeded")]
    DeadlineExceeded,
    /// An RPC timed out at the timeout layer.
    #[error("rpc timed out after {0:?}")]
    Timeout(Duration),
    /// The request cannot be served as given.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A key error surfaced by a protocol above the layers (never produced by the layers).
    #[error("key error: {0:?}")]
    Key(Box<kvrpcpb::KeyError>),
    /// A user interceptor refused the request.
    #[error("interceptor {name}: {message}")]
    Intercepted {
        /// Interceptor name.
        name: String,
        /// Reason.
        message: String,
    },
    /// Resolving locks failed.
    #[error("resolve lock: {0}")]
    ResolveLock(String),
    /// A reply did not have the expected shape (e.g. wrong response kind).
    #[error("unexpected reply: {0}")]
    Unexpected(String),
    /// A typed send got a reply of another kind than its request's (see
    /// [`crate::typed::send`]).
    #[error("unexpected reply: expected {expected}, got {got}")]
    UnexpectedReply {
        /// The reply kind the request asked for.
        expected: tikv_tower_proto::rpc::RpcKind,
        /// The kind that came back.
        got: tikv_tower_proto::rpc::RpcKind,
    },
}

impl Error {
    /// Whether a *new* attempt of the whole operation may succeed (the stack already
    /// retried what it could): transport failures, exhausted budgets, unavailable regions,
    /// PD errors, timeouts.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport(e) => !matches!(e, TransportError::Canceled),
            Error::Locate(e) => matches!(e, LocateError::Pd(_) | LocateError::RegionNotFound(_)),
            Error::BackoffExhausted(_)
            | Error::RegionUnavailable(_)
            | Error::Timeout(_)
            | Error::DeadlineExceeded => true,
            Error::Region { decision, .. } | Error::SendFailed { decision, .. } => {
                !matches!(decision, Decision::Return)
            }
            _ => false,
        }
    }

    /// Whether a write's outcome is unknown (it may have been applied): server
    /// `UndeterminedResult`, or a transport failure after the request may have reached
    /// the store (client-go `ErrResultUndetermined` for commits).
    pub fn is_undetermined(&self) -> bool {
        match self {
            Error::Undetermined(_) | Error::Timeout(_) => true,
            Error::Transport(e) | Error::SendFailed { source: e, .. } => e.may_have_reached_store(),
            _ => false,
        }
    }

    /// The region error kind, if this is a region error.
    pub fn region_error_kind(&self) -> Option<RegionErrorKind> {
        match self {
            Error::Region { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Whether the error means "routing is stale, re-split / re-locate".
    pub fn is_stale_route(&self) -> bool {
        matches!(
            self,
            Error::Region {
                decision: Decision::Relocate(_),
                ..
            } | Error::RegionUnavailable(_)
        )
    }

    /// The decision the route layer attached (region-error matrix / replica session),
    /// if any; the retry session may override it.
    pub fn decision(&self) -> Option<Decision> {
        match self {
            Error::Region { decision, .. } | Error::SendFailed { decision, .. } => Some(*decision),
            _ => None,
        }
    }

    /// The error a caller should see once retrying stopped: a failed send becomes
    /// [`Error::Transport`].
    pub fn finalize(self) -> Error {
        match self {
            Error::SendFailed { source, .. } => Error::Transport(source),
            other => other,
        }
    }

    /// Whether the backoff budget ran out.
    pub fn is_backoff_exhausted(&self) -> bool {
        matches!(self, Error::BackoffExhausted(_))
    }
}
