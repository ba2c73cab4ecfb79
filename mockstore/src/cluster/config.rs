//! Static configuration of a mock cluster, fixed at build time.

/// The storage API version (TiKV `storage.api-version`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ApiVersion {
    /// V1: TxnKV (and RawKV without TTL).
    #[default]
    V1,
    /// V1TTL: RawKV only, with TTL.
    V1Ttl,
    /// V2: keyspace-prefixed keys (`x` txn, `r` raw), RawKV with TTL.
    V2,
}

impl ApiVersion {
    /// Whether raw TTL is enabled (V1TTL and V2).
    pub fn ttl_enabled(self) -> bool {
        !matches!(self, ApiVersion::V1)
    }

    /// The kvproto `APIVersion` number (V1 = 0, V1TTL = 1, V2 = 2).
    pub fn as_i32(self) -> i32 {
        match self {
            ApiVersion::V1 => 0,
            ApiVersion::V1Ttl => 1,
            ApiVersion::V2 => 2,
        }
    }
}

/// How region boundaries relate to request keys.
///
/// TiKV keeps region boundaries memcomparable-encoded for TxnKV and API-V2
/// RawKV (request keys are raw and get encoded before comparison); only
/// API-V1 RawKV uses raw boundaries. A mock cluster fixes one form.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BoundaryEncoding {
    /// Boundaries are memcomparable-encoded (the default).
    #[default]
    Memcomparable,
    /// Boundaries are raw keys (an API-V1 RawKV cluster).
    Raw,
}

impl BoundaryEncoding {
    /// The boundary form of a request key.
    pub fn to_boundary(self, key: &[u8]) -> Vec<u8> {
        match self {
            BoundaryEncoding::Memcomparable => crate::codec::encode_bytes(key),
            BoundaryEncoding::Raw => key.to_vec(),
        }
    }

    /// The boundary form of a range end, keeping empty (= +∞) empty.
    pub fn to_boundary_end(self, key: &[u8]) -> Vec<u8> {
        if key.is_empty() {
            Vec::new()
        } else {
            self.to_boundary(key)
        }
    }
}

/// Default `raft-entry-max-size` (8 MiB).
pub const DEFAULT_RAFT_ENTRY_MAX_SIZE: u64 = 8 * 1024 * 1024;
/// Default cluster id: fixed and non-zero.
pub const DEFAULT_CLUSTER_ID: u64 = 7_300_000_000_000_000_001;

/// Split-checker thresholds (TiKV `coprocessor.region-max-keys` etc.).
///
/// A region is split after a write once it holds more than `max_keys` keys (or
/// `max_size` bytes); it is cut every `split_keys` keys (or `split_size`
/// bytes), as TiKV's keys / size split checkers do. `None` disables a check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SplitThresholds {
    /// Split when a region holds more keys than this.
    pub max_keys: Option<u64>,
    /// Keys per piece when splitting by key count (defaults to `max_keys * 2/3`).
    pub split_keys: Option<u64>,
    /// Split when a region holds more bytes than this.
    pub max_size: Option<u64>,
    /// Bytes per piece when splitting by size (defaults to `max_size * 2/3`).
    pub split_size: Option<u64>,
}

/// The configuration of a built cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Cluster id reported by PD and checked against `Context.cluster_id`.
    pub cluster_id: u64,
    /// Storage API version.
    pub api_version: ApiVersion,
    /// Region boundary form.
    pub boundary_encoding: BoundaryEncoding,
    /// Largest write (bytes) before `RaftEntryTooLarge`.
    pub raft_entry_max_size: u64,
    /// Auto-split thresholds.
    pub split: SplitThresholds,
    /// Seed of the fault-injection random generator.
    pub seed: u64,
}
