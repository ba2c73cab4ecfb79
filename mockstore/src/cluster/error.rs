//! Errors of the cluster's topology operations.

use thiserror::Error;

/// Why a topology operation (split, merge, peer change, ...) was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClusterError {
    /// No region with this id.
    #[error("region {0} not found")]
    RegionNotFound(u64),
    /// No store with this id.
    #[error("store {0} not found")]
    StoreNotFound(u64),
    /// A store with this id already exists.
    #[error("store {0} already exists")]
    StoreExists(u64),
    /// The region has no peer on the store.
    #[error("region {region_id} has no peer on store {store_id}")]
    PeerNotFound {
        /// Region id.
        region_id: u64,
        /// Store id.
        store_id: u64,
    },
    /// The region already has a peer on the store.
    #[error("region {region_id} already has a peer on store {store_id}")]
    PeerExists {
        /// Region id.
        region_id: u64,
        /// Store id.
        store_id: u64,
    },
    /// Only a voter can lead.
    #[error("peer of region {region_id} on store {store_id} is not a voter")]
    NotVoter {
        /// Region id.
        region_id: u64,
        /// Store id.
        store_id: u64,
    },
    /// A split key is empty, equal to the region start, or repeated
    /// (TiKV `validate_split_region`: "invalid split request").
    #[error("invalid split request for region {region_id}: {reason}")]
    InvalidSplitKey {
        /// Region id.
        region_id: u64,
        /// What is wrong.
        reason: String,
    },
    /// A split key is outside the region (boundary form).
    #[error("split key {key:?} is not in region {region_id}")]
    KeyNotInRegion {
        /// The key (boundary form).
        key: Vec<u8>,
        /// Region id.
        region_id: u64,
    },
    /// Merge source and target are not adjacent.
    #[error("regions {source_id} and {target_id} are not adjacent")]
    NotAdjacent {
        /// Source region id.
        source_id: u64,
        /// Target region id.
        target_id: u64,
    },
}
