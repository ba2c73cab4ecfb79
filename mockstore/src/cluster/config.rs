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

    /// The form a request key takes when compared with region boundaries
    /// (TiKV `components/api_version`: `ApiV1::encode_raw_key` is
    /// `Key::from_encoded_slice`, i.e. a V1 / V1TTL raw key is compared
    /// unencoded; transactional keys (`Key::from_raw`) and every API-V2 key
    /// (`ApiV2::encode_raw_key` = `Key::from_raw`) are memcomparable-encoded).
    /// The form belongs to the request, not the cluster: in a V1 cluster raw
    /// and transactional data share one key space and regions may be split at
    /// either form.
    pub fn key_form(self, is_raw: bool) -> BoundaryEncoding {
        if is_raw && self != ApiVersion::V2 {
            BoundaryEncoding::Raw
        } else {
            BoundaryEncoding::Memcomparable
        }
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

/// The form of a key compared with region boundaries.
///
/// TiKV compares TxnKV keys and API-V2 RawKV keys memcomparable-encoded and
/// API-V1 RawKV keys unencoded ([`ApiVersion::key_form`]); each request's
/// keys take its own form. The cluster's configured form only says how the
/// plain split keys given to the builder, `--split-key` and the test helpers
/// ([`MockCluster::split_keys`](crate::MockCluster::split_keys),
/// [`MockCluster::region_for_user_key`](crate::MockCluster::region_for_user_key))
/// are converted.
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
/// On a split-check tick, a region written since the last tick is split once
/// it holds more than `max_keys` committed transaction versions (or
/// `max_size` bytes of raw and transactional data); it is cut every
/// `split_keys` versions (or `split_size` bytes), as TiKV's keys / size split
/// checkers do (see [`crate::store::split_check`]). `None` disables a check.
/// TiKV's defaults are `region-split-size` 256 MiB with `region-max-size`
/// 1.5× that; the mock has no auto split unless asked.
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
    /// The split-check tick (`split-region-check-tick-interval`, on the
    /// cluster clock); `None` = TiKV's 10 s, zero = after every write.
    pub check_interval: Option<std::time::Duration>,
}

/// The configuration of a built cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Cluster id reported by PD and checked against `Context.cluster_id`.
    pub cluster_id: u64,
    /// Storage API version.
    pub api_version: ApiVersion,
    /// The form plain split keys and the key helpers convert to (always
    /// memcomparable under API V2); requests use [`ApiVersion::key_form`].
    pub boundary_encoding: BoundaryEncoding,
    /// Largest write (bytes) before `RaftEntryTooLarge`.
    pub raft_entry_max_size: u64,
    /// Auto-split thresholds.
    pub split: SplitThresholds,
    /// PD-style automatic merges (`None`: off, the default).
    pub merge: Option<crate::pd::merge_check::MergeConfig>,
    /// Seed of the fault-injection random generator.
    pub seed: u64,
    /// Regions carry buckets, which PD reports to `need_buckets` lookups (off by
    /// default; see [`buckets`](super::buckets)).
    pub region_buckets: bool,
}
