//! The mock PD: cluster id, members, TSO, region and store lookup, GC state and
//! keyspaces, answering exactly what PD's gRPC services answer.
//!
//! [`MockPd`] is a cheap handle on a [`MockCluster`]'s PD state. It implements the tonic
//! server traits [`Pd`](tikv_tower_proto::pdpb::pd_server::Pd) and
//! [`Keyspace`](tikv_tower_proto::keyspacepb::keyspace_server::Keyspace), so the same
//! object serves gRPC (see [`crate::server`]) and in-process callers, which call the
//! unary methods directly with `tonic::Request::new(req)` and get timestamps from
//! [`MockPd::tso`].
//!
//! Protocol rules mirrored from PD (`server/grpc_service.go`, `server/gc_service.go`,
//! `server/keyspace_service.go`):
//! - every response carries `header.cluster_id`; a request whose `header.cluster_id`
//!   differs from the cluster's fails with a gRPC error ("mismatch cluster id"), except
//!   `GetMembers` and `GetClusterInfo`, which are how a client learns the id;
//! - lookups that find nothing answer an OK header with the field unset (`GetRegion`,
//!   `GetRegionByID`), except `GetStore`, which answers a header error;
//! - region keys are compared as given: clients send boundaries in the cluster's
//!   boundary form (memcomparable for TxnKV and API V2), exactly what PD stores;
//! - GC: see [`gc`]; when the cluster-level GC safe point advances, the MVCC engine is
//!   garbage-collected at the new safe point ([`MockCluster::gc`]), standing in for
//!   TiKV's GC worker.
//!
//! ```
//! use tikv_tower_mockstore::MockCluster;
//! let cluster = MockCluster::builder().build();
//! let pd = cluster.pd();
//! let a = pd.tso(1).unwrap();
//! let b = pd.tso(10).unwrap();
//! assert!((b.physical, b.logical) > (a.physical, a.logical));
//! ```

/// Every PD / keyspace RPC's prologue: unwraps a `tonic::Request` and checks its
/// `header.cluster_id` (`MockPd::check_header`). `checked!(self, req)?` is the
/// request message, or the "mismatch cluster id" status.
macro_rules! checked {
    ($pd:expr, $req:expr) => {{
        let req = $req.into_inner();
        $pd.check_header(req.header.as_ref()).map(|()| req)
    }};
}

pub mod gc;
mod keyspace;
pub mod merge_check;
mod service;
pub mod tso;

use parking_lot::{Mutex, RwLock};
use tikv_tower_proto::{metapb, pdpb};

use crate::cluster::{MockCluster, Region};

pub use gc::{GcError, GcStates, NULL_KEYSPACE_ID};
pub use tso::{TsoAllocator, TsoError};

/// The URL the in-process PD reports as its client URL.
pub const INPROC_PD_URL: &str = "inproc://pd";
/// Name and id of the single PD member.
const MEMBER_NAME: &str = "pd-mock";
const MEMBER_ID: u64 = 1;

/// PD-side state kept by a cluster (TSO, GC, the served URL).
#[derive(Debug, Default)]
pub struct PdState {
    tso: TsoAllocator,
    /// The merge checker's state (see [`merge_check`]).
    pub(crate) merge: Mutex<merge_check::MergeState>,
    gc: Mutex<GcStates>,
    /// `http://127.0.0.1:<port>` once served over gRPC; empty in-process.
    client_url: RwLock<String>,
}

impl PdState {
    /// The last timestamp TSO issued (0 before the first).
    pub(crate) fn last_tso(&self) -> u64 {
        self.tso.last_version()
    }
}

/// A handle on the PD of a [`MockCluster`] (cheap to clone; clones share state).
#[derive(Clone)]
pub struct MockPd {
    cluster: MockCluster,
}

impl std::fmt::Debug for MockPd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockPd")
            .field("cluster_id", &self.cluster_id())
            .finish()
    }
}

impl MockCluster {
    /// The cluster's PD.
    pub fn pd(&self) -> MockPd {
        MockPd {
            cluster: self.clone(),
        }
    }
}

impl MockPd {
    fn state(&self) -> &PdState {
        &self.cluster.inner.pd
    }

    /// The cluster this PD serves.
    pub fn cluster(&self) -> &MockCluster {
        &self.cluster
    }

    /// The cluster id (in every response header).
    pub fn cluster_id(&self) -> u64 {
        self.cluster.cluster_id()
    }

    /// Allocates `count` timestamps and returns the last one of the batch, as a `Tso`
    /// stream reply does. `count == 0` fails with `INVALID_ARGUMENT`.
    pub fn tso(&self, count: u32) -> Result<pdpb::Timestamp, tonic::Status> {
        self.state()
            .tso
            .allocate(self.cluster.clock().now_millis(), count)
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))
    }

    /// The client URL PD reports in `GetMembers` (`inproc://pd` until served).
    pub fn client_url(&self) -> String {
        let url = self.state().client_url.read();
        if url.is_empty() {
            INPROC_PD_URL.to_string()
        } else {
            url.clone()
        }
    }

    /// Sets the client URL reported by `GetMembers` (done by `serve_grpc`).
    pub fn set_client_url(&self, url: impl Into<String>) {
        *self.state().client_url.write() = url.into();
    }

    /// The cluster-level `(txn_safe_point, gc_safe_point)`.
    pub fn gc_safe_points(&self) -> (u64, u64) {
        self.state().gc.lock().safe_points(NULL_KEYSPACE_ID)
    }

    /// The single PD member.
    pub fn member(&self) -> pdpb::Member {
        let url = self.client_url();
        pdpb::Member {
            name: MEMBER_NAME.to_string(),
            member_id: MEMBER_ID,
            peer_urls: vec![url.clone()],
            client_urls: vec![url],
            ..Default::default()
        }
    }

    // ---- headers ----------------------------------------------------------

    fn ok_header(&self) -> Option<pdpb::ResponseHeader> {
        Some(pdpb::ResponseHeader {
            cluster_id: self.cluster_id(),
            error: None,
        })
    }

    fn err_header(
        &self,
        ty: pdpb::ErrorType,
        message: impl Into<String>,
    ) -> Option<pdpb::ResponseHeader> {
        Some(pdpb::ResponseHeader {
            cluster_id: self.cluster_id(),
            error: Some(pdpb::Error {
                r#type: ty as i32,
                message: message.into(),
            }),
        })
    }

    /// PD's `validateRequest`: the request's cluster id must be ours.
    fn check_header(&self, header: Option<&pdpb::RequestHeader>) -> Result<(), tonic::Status> {
        let got = header.map_or(0, |h| h.cluster_id);
        let want = self.cluster_id();
        if got != want {
            return Err(tonic::Status::unknown(format!(
                "mismatch cluster id, need {want} but got {got}"
            )));
        }
        Ok(())
    }

    /// `None` for an unknown keyspace, else whether it has keyspace-level GC (`DEFAULT`
    /// always exists).
    fn keyspace_level_gc(&self, id: u32) -> Option<bool> {
        match self.cluster.keyspace_by_id(id) {
            Some(k) => Some(k.keyspace_level_gc),
            None => (id == 0).then_some(false),
        }
    }

    /// The `(txn_safe_point, gc_safe_point)` of a keyspace with keyspace-level GC, or of
    /// the cluster ([`NULL_KEYSPACE_ID`]).
    pub fn keyspace_gc_safe_points(&self, keyspace_id: u32) -> (u64, u64) {
        self.state().gc.lock().safe_points(keyspace_id)
    }

    fn now_ms(&self) -> u64 {
        self.cluster.clock().now_millis()
    }

    /// Runs `f` on the GC state and garbage-collects the engine where a GC safe point
    /// moved up: a keyspace-level keyspace's own transactional keys at its value, the
    /// rest of the data at the cluster-level value (TiKV's GC reads each key's
    /// keyspace's safe point).
    fn with_gc<T>(&self, f: impl FnOnce(&mut GcStates) -> T) -> T {
        let level: Vec<u32> = self
            .cluster
            .keyspaces()
            .into_iter()
            .filter(|k| k.keyspace_level_gc)
            .map(|k| k.id)
            .collect();
        let scopes: Vec<u32> = std::iter::once(NULL_KEYSPACE_ID)
            .chain(level.iter().copied())
            .collect();
        let (out, moved) = {
            let mut gc = self.state().gc.lock();
            let before: Vec<u64> = scopes.iter().map(|&id| gc.safe_points(id).1).collect();
            let out = f(&mut gc);
            let moved: Vec<(u32, u64)> = scopes
                .iter()
                .zip(before)
                .filter_map(|(&id, b)| {
                    let after = gc.safe_points(id).1;
                    (after > b).then_some((id, after))
                })
                .collect();
            (out, moved)
        };
        let keyspace_of = |key: &[u8]| match crate::codec::parse_keyspace_key(key) {
            Some((crate::codec::TXN_MODE_PREFIX, id, _)) => Some(id),
            _ => None,
        };
        for (id, safe_point) in moved {
            if id == NULL_KEYSPACE_ID {
                self.cluster.gc_keys(safe_point, |k| {
                    keyspace_of(k).is_none_or(|ks| !level.contains(&ks))
                });
            } else {
                self.cluster
                    .gc_keys(safe_point, |k| keyspace_of(k) == Some(id));
            }
        }
        out
    }
}

/// `pdpb.PeerStats` / pending peers / leader of a region, as PD reports them.
fn region_extras(
    region: &Region,
) -> (
    Option<tikv_tower_proto::metapb::Peer>,
    Vec<pdpb::PeerStats>,
    Vec<tikv_tower_proto::metapb::Peer>,
) {
    let down = region
        .peers
        .iter()
        .filter(|p| region.down_peers.contains(&p.id))
        .map(|p| pdpb::PeerStats {
            peer: Some(p.to_pb()),
            down_seconds: 60,
        })
        .collect();
    let pending = region
        .peers
        .iter()
        .filter(|p| region.pending_peers.contains(&p.id))
        .map(|p| p.to_pb())
        .collect();
    (region.leader_pb(), down, pending)
}

impl MockPd {
    /// The region's buckets when asked for and the cluster has them (PD: `need_buckets`
    /// and the store config's `enable-region-bucket`).
    fn buckets(&self, region: &Region, need_buckets: bool) -> Option<metapb::Buckets> {
        if need_buckets {
            self.cluster.region_buckets(region)
        } else {
            None
        }
    }

    /// A region as `pdpb.Region` (scan results).
    fn region_pb(&self, region: &Region, need_buckets: bool) -> pdpb::Region {
        let (leader, down_peers, pending_peers) = region_extras(region);
        pdpb::Region {
            region: Some(region.to_pb()),
            leader,
            down_peers,
            pending_peers,
            buckets: self.buckets(region, need_buckets),
        }
    }
}
