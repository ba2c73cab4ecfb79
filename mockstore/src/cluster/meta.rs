//! Region and store metadata as the mock cluster keeps it.
//!
//! These are plain Rust mirrors of `metapb.Region` / `metapb.Store` plus the
//! mock-only state (leader, term, stopped flag). Region boundaries are kept in
//! the cluster's *boundary form* (see [`BoundaryEncoding`](super::BoundaryEncoding)):
//! memcomparable-encoded for TxnKV and API-V2 RawKV, raw for API-V1 RawKV, and
//! the empty key means −∞ (start) or +∞ (end).

/// A region's epoch (`metapb.RegionEpoch`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RegionEpoch {
    /// Bumped by every membership change (add/remove peer or learner).
    pub conf_ver: u64,
    /// Bumped by every split and merge; the only part compared for normal
    /// requests.
    pub version: u64,
}

/// The role of a peer (`metapb.PeerRole`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PeerRole {
    /// A voting member (may become leader).
    #[default]
    Voter,
    /// A non-voting replica that only replicates the log.
    Learner,
}

/// One replica of a region (`metapb.Peer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Peer id (from the cluster's id allocator).
    pub id: u64,
    /// The store holding this replica.
    pub store_id: u64,
    /// Voter or learner.
    pub role: PeerRole,
}

/// A region: a contiguous key range replicated by its peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    /// Region id.
    pub id: u64,
    /// Inclusive start boundary in boundary form (empty = −∞).
    pub start_key: Vec<u8>,
    /// Exclusive end boundary in boundary form (empty = +∞).
    pub end_key: Vec<u8>,
    /// Current epoch.
    pub epoch: RegionEpoch,
    /// Every replica, voters and learners.
    pub peers: Vec<Peer>,
    /// The leader's peer id, or `None` while there is no leader.
    pub leader: Option<u64>,
    /// The raft term of the current leadership (bumped by leader changes).
    pub term: u64,
    /// Peers reported down (peer ids).
    pub down_peers: Vec<u64>,
    /// Peers reported pending (peer ids).
    pub pending_peers: Vec<u64>,
}

impl Region {
    /// The leader peer, if the region has one.
    pub fn leader_peer(&self) -> Option<&Peer> {
        let leader = self.leader?;
        self.peers.iter().find(|p| p.id == leader)
    }

    /// The peer of this region on `store_id`, if any.
    pub fn peer_on_store(&self, store_id: u64) -> Option<&Peer> {
        self.peers.iter().find(|p| p.store_id == store_id)
    }

    /// Whether `key` (in boundary form) is in `[start_key, end_key)`.
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start_key.as_slice()
            && (self.end_key.is_empty() || key < self.end_key.as_slice())
    }

    /// Whether the region overlaps `[start, end)` (boundary form; empty end =
    /// +∞).
    pub fn overlaps(&self, start: &[u8], end: &[u8]) -> bool {
        let starts_before_end = end.is_empty() || self.start_key.as_slice() < end;
        let ends_after_start = self.end_key.is_empty() || self.end_key.as_slice() > start;
        starts_before_end && ends_after_start
    }
}

/// A store's PD-visible state (`metapb.StoreState`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StoreState {
    /// Serving.
    #[default]
    Up,
    /// Being decommissioned (still reported by PD).
    Offline,
    /// Removed; PD no longer reports it.
    Tombstone,
}

/// A store (`metapb.Store`) plus mock-only liveness.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    /// Store id.
    pub id: u64,
    /// Address clients dial: `inproc://store-<id>` in-process, or
    /// `127.0.0.1:<port>` once served over gRPC.
    pub address: String,
    /// PD-visible state.
    pub state: StoreState,
    /// Labels (`key`, `value`), e.g. `zone=z1`.
    pub labels: Vec<(String, String)>,
    /// Reported TiKV version.
    pub version: String,
    /// Status (HTTP) address, empty if none.
    pub status_address: String,
    /// Whether the store is stopped: every RPC fails with `UNAVAILABLE`, while
    /// PD keeps reporting the store (as real PD does until it marks it down).
    pub stopped: bool,
    /// Unix seconds when the store last started.
    pub start_timestamp: i64,
}

/// The in-process address of store `id`.
pub fn inproc_address(id: u64) -> String {
    format!("inproc://store-{id}")
}

/// A keyspace (`keyspacepb.KeyspaceMeta`; of its config map only the GC management
/// type).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyspace {
    /// Keyspace id (24 bits).
    pub id: u32,
    /// Keyspace name (`DEFAULT` is id 0).
    pub name: String,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// Keyspace-level GC (PD keyspace config `gc_management_type = keyspace_level`): the
    /// keyspace has its own txn / GC safe points and barriers; otherwise it follows the
    /// cluster-level ("unified") GC of the null keyspace.
    pub keyspace_level_gc: bool,
}
