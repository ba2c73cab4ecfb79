//! Typed errors of PD RPCs.

use tikv_tower_layers::locate::LocateError;

use super::codec::CodecError;

/// Why a PD request failed (client-go / PD client `errs` classes, typed).
#[derive(Debug, Clone, thiserror::Error)]
pub enum PdError {
    /// A gRPC failure talking to a PD member (connect failed, stream broken, status).
    #[error("PD {url}: gRPC {code:?}: {message}")]
    Grpc {
        /// The member's URL.
        url: String,
        /// gRPC status code.
        code: tonic::Code,
        /// Status message.
        message: String,
    },
    /// The member answered "not leader": the client re-discovers the leader.
    #[error("PD {url} is not the leader: {message}")]
    NotLeader {
        /// The member's URL.
        url: String,
        /// Server message.
        message: String,
    },
    /// No endpoint answered `GetMembers` or no member is leader.
    #[error("no PD leader reachable: {0}")]
    NoLeader(String),
    /// The member belongs to another cluster (or the endpoints disagree on the cluster id).
    #[error("PD cluster id mismatch: expected {expected}, got {got}")]
    ClusterIdMismatch {
        /// The cluster id the client was bound to.
        expected: u64,
        /// The id received.
        got: u64,
    },
    /// The response carried no header (PD always sets one).
    #[error("PD response without header")]
    MissingHeader,
    /// The response header carried a PD error.
    #[error("PD error {kind:?}: {message}")]
    Server {
        /// `pdpb::ErrorType` as i32.
        kind: i32,
        /// Server message.
        message: String,
    },
    /// The server does not implement the RPC (callers fall back, e.g. BatchScanRegions).
    #[error("PD RPC unimplemented: {0}")]
    Unimplemented(String),
    /// A region from PD could not be decoded into request key space.
    #[error("region boundary from PD: {0}")]
    Codec(#[from] CodecError),
    /// A reply was malformed (e.g. a TSO reply with the wrong count).
    #[error("malformed PD reply: {0}")]
    Protocol(String),
    /// A member answered bootstrap's `GetMembers` with cluster id 0, which PD never assigns
    /// (pinning it would switch off every later cluster-id check).
    #[error("PD {url} reports cluster id 0")]
    InvalidClusterId {
        /// The member's URL.
        url: String,
    },
    /// A region reply does not cover what was asked (e.g. GetPrevRegion returned a region
    /// that does not end at or before the key).
    #[error("PD {rpc} for key {key:?} returned region {region_id} [{start:?}, {end:?})")]
    UnexpectedRegion {
        /// The RPC.
        rpc: &'static str,
        /// The key asked about (request key space).
        key: Vec<u8>,
        /// The region returned.
        region_id: u64,
        /// Its start key (request key space).
        start: Vec<u8>,
        /// Its end key (request key space; empty = unbounded).
        end: Vec<u8>,
    },
    /// PD reports a live store without an address (client-go `initResolve`: "empty store
    /// address"); nothing can be sent to it.
    #[error("PD reports store {store_id} without an address")]
    EmptyStoreAddress {
        /// The store.
        store_id: u64,
    },
    /// A keyspace id wider than the 24 bits of the API V2 key prefix.
    #[error("keyspace id {0} does not fit in 24 bits")]
    InvalidKeyspaceId(u32),
    /// The client was closed.
    #[error("PD client closed")]
    Closed,
    /// Retries exhausted; carries the last error.
    #[error("PD request failed after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: Box<PdError>,
    },
}

impl PdError {
    /// Classifies a tonic status from `url`.
    pub fn from_status(url: &str, status: &tonic::Status) -> Self {
        let message = status.message().to_string();
        if is_not_leader_message(&message) {
            return PdError::NotLeader {
                url: url.to_string(),
                message,
            };
        }
        if status.code() == tonic::Code::Unimplemented {
            return PdError::Unimplemented(message);
        }
        if message.contains("mismatch cluster id") {
            // PD's `ErrMismatchClusterID`: "mismatch cluster id, need {server} but got
            // {request}": the server's id is what the client got back, the request's is
            // the one the client expected.
            let after = |word: &str| -> u64 {
                message
                    .split(word)
                    .nth(1)
                    .and_then(|rest| {
                        rest.split(|c: char| !c.is_ascii_digit())
                            .find(|t| !t.is_empty())
                    })
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)
            };
            return PdError::ClusterIdMismatch {
                expected: after("got "),
                got: after("need "),
            };
        }
        PdError::Grpc {
            url: url.to_string(),
            code: status.code(),
            message,
        }
    }

    /// Whether retrying (after re-discovering the leader) may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            // Business errors come back as `Unknown`; only transport-level failures retry.
            PdError::Grpc { code, .. } => matches!(
                code,
                tonic::Code::Unavailable
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::Aborted
                    | tonic::Code::Cancelled
            ),
            PdError::NotLeader { .. } | PdError::NoLeader(_) => true,
            // Header errors are answers, not outages; only NOT_BOOTSTRAPPED may clear up.
            PdError::Server { kind, .. } => *kind == 2,
            _ => false,
        }
    }

    /// Whether the error means the member is not (or no longer) the leader, so the
    /// client should refresh membership before retrying.
    pub fn needs_member_update(&self) -> bool {
        matches!(self, PdError::NotLeader { .. } | PdError::NoLeader(_))
            || matches!(self, PdError::Grpc { code, .. } if matches!(code, tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled))
    }
}

/// Whether a PD error message says the member is not the leader (PD's `ErrNotLeader`,
/// `ErrNotServing` texts, as the PD client's `IsLeaderChange` checks).
pub fn is_not_leader_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("not leader")
        || m.contains("is not leader")
        || m.contains("no leader")
        || m.contains("not served")
}

impl From<PdError> for LocateError {
    fn from(e: PdError) -> Self {
        match e {
            PdError::Codec(c) => LocateError::Invalid(c.to_string()),
            PdError::Closed => LocateError::Closed,
            e @ (PdError::UnexpectedRegion { .. } | PdError::EmptyStoreAddress { .. }) => {
                LocateError::Invalid(e.to_string())
            }
            other => LocateError::Pd(other.to_string()),
        }
    }
}
