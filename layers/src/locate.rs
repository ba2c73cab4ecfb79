//! Region routing: the contract between the layers and the region cache.
//!
//! The layers never talk to PD themselves. They ask a [`RegionLocator`] (implemented by
//! `tikv_tower::region_cache::RegionCache`, or by a fake in tests) which region holds a
//! key and which store serves a peer, and tell it what they learned from a reply
//! (a new leader, a stale epoch, a failed store) — client-go's `RegionCache` methods
//! `LocateKey`, `LocateEndKey`, `LocateRegionByID`, `UpdateLeader`,
//! `OnRegionEpochNotMatch`, `InvalidateCachedRegionWithReason`, `OnSendFail`.
//!
//! Keys here are in *request key space*: exactly the bytes a kvrpcpb request carries
//! (keyspace prefix included under API V2, never memcomparable-encoded). The PD client
//! decodes region boundaries into that space before they reach the cache.

use std::future::Future;
use std::sync::Arc;

use tikv_tower_proto::metapb;

/// A region's identity at one epoch (client-go's `RegionVerID`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionVerId {
    /// Region id.
    pub id: u64,
    /// Epoch `conf_ver`.
    pub conf_ver: u64,
    /// Epoch `version`.
    pub ver: u64,
}

impl RegionVerId {
    /// The id and epoch of `region`.
    pub fn of(region: &metapb::Region) -> Self {
        let epoch = region.region_epoch.unwrap_or_default();
        RegionVerId {
            id: region.id,
            conf_ver: epoch.conf_ver,
            ver: epoch.version,
        }
    }
}

/// A region as routing needs it: bounds, epoch, peers, and the leader if known.
#[derive(Debug, Clone)]
pub struct RegionRoute {
    /// The region (bounds in request key space, epoch, peers).
    pub region: Arc<metapb::Region>,
    /// The peer believed to be leader, if any.
    pub leader: Option<metapb::Peer>,
}

impl RegionRoute {
    /// The region's id and epoch.
    pub fn ver_id(&self) -> RegionVerId {
        RegionVerId::of(&self.region)
    }
    /// Inclusive start key (empty = unbounded).
    pub fn start_key(&self) -> &[u8] {
        &self.region.start_key
    }
    /// Exclusive end key (empty = unbounded).
    pub fn end_key(&self) -> &[u8] {
        &self.region.end_key
    }
    /// Whether `key` lies in `[start, end)`.
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start_key() && (self.end_key().is_empty() || key < self.end_key())
    }
}

/// A store as routing needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreRoute {
    /// Store id.
    pub id: u64,
    /// Address to dial.
    pub addr: Arc<str>,
    /// Store labels (zone, host, engine, ...), used by replica selection.
    pub labels: Arc<[metapb::StoreLabel]>,
    /// The store's state as PD reports it (`Up`, `Offline`, `Tombstone`), seen by replica
    /// policies.
    pub state: metapb::StoreState,
}

/// Why a cached region is dropped (client-go's `InvalidReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidReason {
    /// The region's epoch changed (split, merge, conf change).
    EpochNotMatch,
    /// The store no longer has the region.
    RegionNotFound,
    /// The request key is outside the cached bounds.
    KeyNotInRegion,
    /// No peer of the region is reachable.
    NoLeader,
    /// The store answered `StoreNotMatch`.
    StoreNotMatch,
    /// Any other reason (e.g. all replicas tried).
    Other,
}

/// Errors of a region or store lookup.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LocateError {
    /// PD could not be reached or answered with an error; retry with `BoPDRPC`.
    #[error("PD request failed: {0}")]
    Pd(String),
    /// PD knows no region for the key / id (yet); retry with `BoRegionMiss`.
    #[error("region not found: {0}")]
    RegionNotFound(String),
    /// The store is unknown to PD or tombstoned.
    #[error("store {0} not found")]
    StoreNotFound(u64),
    /// PD returned a region that cannot be used (e.g. undecodable boundaries).
    #[error("invalid region from PD: {0}")]
    Invalid(String),
    /// The locator's client was closed: nothing is looked up any more.
    #[error("region cache closed")]
    Closed,
}

/// Region and store lookup with feedback, as the layers need it.
///
/// Implementations must be cheap to call concurrently: lookups of cached regions must not
/// take a global write lock, and concurrent misses on the same key should share one PD
/// request.
pub trait RegionLocator: Send + Sync + 'static {
    /// The region containing `key` (client-go `LocateKey`).
    fn locate_key(
        &self,
        key: &[u8],
    ) -> impl Future<Output = Result<RegionRoute, LocateError>> + Send;
    /// The region whose range ends at or after `key` exclusively, i.e. contains the key
    /// just before `key` (client-go `LocateEndKey`, for reverse scans). An empty key means
    /// the last region.
    fn locate_end_key(
        &self,
        key: &[u8],
    ) -> impl Future<Output = Result<RegionRoute, LocateError>> + Send;
    /// The region with this id (client-go `LocateRegionByID`).
    fn locate_region_id(
        &self,
        id: u64,
    ) -> impl Future<Output = Result<RegionRoute, LocateError>> + Send;
    /// The store with this id (address re-resolved when it was invalidated).
    fn store(&self, store_id: u64) -> impl Future<Output = Result<StoreRoute, LocateError>> + Send;

    /// A reply named a new leader (or none: `leader == None` means "no leader known",
    /// client-go `UpdateLeader`).
    fn update_leader(&self, region: RegionVerId, leader: Option<metapb::Peer>);
    /// A reply carried `EpochNotMatch`; insert `current_regions` (already in request key
    /// space) and drop the stale entry. Returns false when the reply told nothing newer
    /// than the cache (client-go `OnRegionEpochNotMatch`).
    fn on_epoch_not_match(&self, region: RegionVerId, current_regions: &[metapb::Region]) -> bool;
    /// A reply carried `BucketVersionNotMatch` with the region's latest bucket `version`
    /// and `keys` (as TiKV sent them): record them if newer (client-go
    /// `OnBucketVersionNotMatch`). Locators that keep no buckets ignore it.
    fn on_bucket_version_not_match(
        &self,
        _region: RegionVerId,
        _version: u64,
        _keys: &[bytes::Bytes],
    ) {
    }
    /// Drop the cached region (client-go `InvalidateCachedRegionWithReason`).
    fn invalidate_region(&self, region: RegionVerId, reason: InvalidReason);
    /// Sending to `store_id` failed: mark its address for re-resolution and the region's
    /// entry for reload (client-go `OnSendFail`).
    fn on_send_fail(&self, region: RegionVerId, store_id: u64);
}
