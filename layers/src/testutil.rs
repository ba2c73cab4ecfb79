//! Test fakes: a region locator with a possibly stale cache over a "true" cluster layout,
//! and a store transport serving RawKV from a map with epoch / leader checks and
//! scripted failures.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
use tikv_tower_proto::{errorpb, kvrpcpb, metapb};

use crate::call::{StoreCall, TransportError};
use crate::locate::{
    InvalidReason, LocateError, RegionLocator, RegionRoute, RegionVerId, StoreRoute,
};

pub fn peer(region: u64, store: u64) -> metapb::Peer {
    metapb::Peer {
        id: region * 10 + store,
        store_id: store,
        ..Default::default()
    }
}

pub fn region(id: u64, start: &str, end: &str, ver: u64) -> metapb::Region {
    metapb::Region {
        id,
        start_key: start.as_bytes().to_vec().into(),
        end_key: end.as_bytes().to_vec().into(),
        region_epoch: Some(metapb::RegionEpoch {
            conf_ver: 1,
            version: ver,
        }),
        peers: (1..=3).map(|s| peer(id, s)).collect(),
        ..Default::default()
    }
}

/// A scripted reply for the next matching call.
#[derive(Debug, Clone)]
pub enum Scripted {
    Region(Box<errorpb::Error>),
    Transport(TransportError),
}

#[derive(Default)]
pub struct ClusterState {
    /// The truth: regions and their leader store.
    pub truth: Vec<(metapb::Region, u64)>,
    /// The client's cache (may be stale).
    pub cache: Vec<(metapb::Region, u64)>,
    pub data: BTreeMap<Bytes, Bytes>,
    pub down: HashSet<u64>,
    pub script: VecDeque<(Option<u64>, Scripted)>,
    /// Every call: store id and stamped context.
    pub calls: Vec<(u64, kvrpcpb::Context)>,
    pub leader_updates: Vec<(u64, Option<u64>)>,
    pub invalidations: Vec<(u64, InvalidReason)>,
    pub send_fails: Vec<u64>,
}

#[derive(Clone, Default)]
pub struct Cluster(pub Arc<Mutex<ClusterState>>);

impl Cluster {
    /// One region `[,)` led by store 1, cache in sync.
    pub fn single() -> Cluster {
        Cluster::with_regions(vec![(region(1, "", "", 1), 1)])
    }

    pub fn with_regions(regions: Vec<(metapb::Region, u64)>) -> Cluster {
        let c = Cluster::default();
        {
            let mut s = c.0.lock();
            s.truth = regions.clone();
            s.cache = regions;
        }
        c
    }

    pub fn put(&self, k: &str, v: &str) {
        self.0.lock().data.insert(
            Bytes::copy_from_slice(k.as_bytes()),
            Bytes::copy_from_slice(v.as_bytes()),
        );
    }

    pub fn script(&self, store: Option<u64>, s: Scripted) {
        self.0.lock().script.push_back((store, s));
    }

    pub fn calls(&self) -> Vec<(u64, kvrpcpb::Context)> {
        self.0.lock().calls.clone()
    }

    pub fn stores_called(&self) -> Vec<u64> {
        self.0.lock().calls.iter().map(|(s, _)| *s).collect()
    }

    fn route(r: &(metapb::Region, u64)) -> RegionRoute {
        let leader = r.0.peers.iter().find(|p| p.store_id == r.1).cloned();
        RegionRoute {
            region: Arc::new(r.0.clone()),
            leader,
        }
    }

    /// The route of the first cached region matching `pred`.
    fn cached_route(
        &self,
        pred: impl Fn(&metapb::Region) -> bool,
    ) -> Result<RegionRoute, LocateError> {
        self.0
            .lock()
            .cache
            .iter()
            .find(|(r, _)| pred(r))
            .map(Self::route)
            .ok_or_else(|| LocateError::RegionNotFound("no region".into()))
    }

    fn contains(r: &metapb::Region, key: &[u8]) -> bool {
        key >= r.start_key.as_ref() && (r.end_key.is_empty() || key < r.end_key.as_ref())
    }

    /// The transport: a clonable service.
    pub fn transport(
        &self,
    ) -> impl tower_service::Service<
        StoreCall,
        Response = StoreResponse,
        Error = TransportError,
        Future = impl Future<Output = Result<StoreResponse, TransportError>> + Send,
    > + Clone
           + Send
           + Sync
           + 'static {
        let c = self.clone();
        tower::service_fn(move |call: StoreCall| {
            let c = c.clone();
            async move { c.serve(call) }
        })
    }

    pub fn serve(&self, call: StoreCall) -> Result<StoreResponse, TransportError> {
        let mut s = self.0.lock();
        let ctx = call.request.context().cloned().unwrap_or_default();
        s.calls.push((call.store_id, ctx.clone()));
        if let Some(pos) = s
            .script
            .iter()
            .position(|(st, _)| st.is_none() || *st == Some(call.store_id))
        {
            let (_, scripted) = s.script.remove(pos).expect("position is valid");
            match scripted {
                Scripted::Transport(e) => return Err(e),
                Scripted::Region(e) => {
                    let e = *e;
                    let mut resp = StoreResponse::default_for(call.request.kind());
                    resp.set_region_error(e);
                    return Ok(resp);
                }
            }
        }
        if s.down.contains(&call.store_id) {
            return Err(TransportError::Unavailable {
                addr: call.addr.clone(),
                message: "store down".into(),
            });
        }
        let kind = call.request.kind();
        let region_err = |e: errorpb::Error| {
            let mut resp = StoreResponse::default_for(kind);
            resp.set_region_error(e);
            Ok(resp)
        };
        let Some((truth, leader)) = s.truth.iter().find(|(r, _)| r.id == ctx.region_id).cloned()
        else {
            return region_err(errorpb::Error {
                region_not_found: Some(errorpb::RegionNotFound {
                    region_id: ctx.region_id,
                }),
                ..Default::default()
            });
        };
        if ctx.region_epoch != truth.region_epoch {
            let current = s.truth.iter().map(|(r, _)| r.clone()).collect();
            return region_err(errorpb::Error {
                message: "epoch not match".into(),
                epoch_not_match: Some(errorpb::EpochNotMatch {
                    current_regions: current,
                }),
                ..Default::default()
            });
        }
        if call.store_id != leader && !ctx.replica_read && !ctx.stale_read {
            return region_err(errorpb::Error {
                not_leader: Some(errorpb::NotLeader {
                    region_id: truth.id,
                    leader: Some(peer(truth.id, leader)),
                }),
                ..Default::default()
            });
        }
        let not_in_region = |k: &[u8]| errorpb::Error {
            key_not_in_region: Some(errorpb::KeyNotInRegion {
                key: k.to_vec().into(),
                region_id: truth.id,
                ..Default::default()
            }),
            ..Default::default()
        };
        match call.request {
            StoreRequest::RawGet(r) => {
                if !Self::contains(&truth, &r.key) {
                    return region_err(not_in_region(&r.key));
                }
                let v = s.data.get(&r.key).cloned();
                Ok(StoreResponse::RawGet(Box::new(kvrpcpb::RawGetResponse {
                    not_found: v.is_none(),
                    value: v.unwrap_or_default(),
                    ..Default::default()
                })))
            }
            StoreRequest::RawBatchGet(r) => {
                if !r.keys.iter().all(|k| Self::contains(&truth, k)) {
                    return region_err(not_in_region(&r.keys[0]));
                }
                let pairs = r
                    .keys
                    .iter()
                    .filter_map(|k| {
                        s.data.get(k).map(|v| kvrpcpb::KvPair {
                            key: k.clone(),
                            value: v.clone(),
                            ..Default::default()
                        })
                    })
                    .collect();
                Ok(StoreResponse::RawBatchGet(Box::new(
                    kvrpcpb::RawBatchGetResponse {
                        pairs,
                        ..Default::default()
                    },
                )))
            }
            StoreRequest::RawBatchPut(r) => {
                if !r.pairs.iter().all(|p| Self::contains(&truth, &p.key)) {
                    return region_err(not_in_region(&r.pairs[0].key));
                }
                for p in r.pairs {
                    s.data.insert(p.key, p.value);
                }
                Ok(StoreResponse::RawBatchPut(Default::default()))
            }
            StoreRequest::RawScan(r) => {
                let (lo, hi) = if r.reverse {
                    (r.end_key.clone(), r.start_key.clone())
                } else {
                    (r.start_key.clone(), r.end_key.clone())
                };
                let in_region_lo = lo >= truth.start_key;
                let in_region_hi =
                    truth.end_key.is_empty() || (!hi.is_empty() && hi <= truth.end_key);
                if !in_region_lo || !in_region_hi {
                    return region_err(not_in_region(&lo));
                }
                let mut kvs: Vec<kvrpcpb::KvPair> = s
                    .data
                    .iter()
                    .filter(|(k, _)| **k >= *lo && (hi.is_empty() || **k < *hi))
                    .map(|(k, v)| kvrpcpb::KvPair {
                        key: k.clone(),
                        value: v.clone(),
                        ..Default::default()
                    })
                    .collect();
                if r.reverse {
                    kvs.reverse();
                }
                kvs.truncate(r.limit as usize);
                Ok(StoreResponse::RawScan(Box::new(kvrpcpb::RawScanResponse {
                    kvs,
                    ..Default::default()
                })))
            }
            StoreRequest::RawDeleteRange(r) => {
                let keys: Vec<_> = s
                    .data
                    .keys()
                    .filter(|k| **k >= r.start_key && (r.end_key.is_empty() || **k < r.end_key))
                    .cloned()
                    .collect();
                for k in keys {
                    s.data.remove(&k);
                }
                Ok(StoreResponse::RawDeleteRange(Default::default()))
            }
            other => Ok(StoreResponse::default_for(other.kind())),
        }
    }
}

impl RegionLocator for Cluster {
    fn locate_key(
        &self,
        key: &[u8],
    ) -> impl Future<Output = Result<RegionRoute, LocateError>> + Send {
        let r = self.cached_route(|r| Self::contains(r, key));
        async move { r }
    }

    fn locate_end_key(
        &self,
        key: &[u8],
    ) -> impl Future<Output = Result<RegionRoute, LocateError>> + Send {
        let r = self.cached_route(|r| {
            if key.is_empty() {
                r.end_key.is_empty()
            } else {
                r.start_key.as_ref() < key && (r.end_key.is_empty() || key <= r.end_key.as_ref())
            }
        });
        async move { r }
    }

    fn locate_region_id(
        &self,
        id: u64,
    ) -> impl Future<Output = Result<RegionRoute, LocateError>> + Send {
        let r = {
            let s = self.0.lock();
            s.cache
                .iter()
                .find(|(r, _)| r.id == id)
                .or_else(|| s.truth.iter().find(|(r, _)| r.id == id))
                .map(Self::route)
                .ok_or_else(|| LocateError::RegionNotFound(format!("region {id}")))
        };
        async move { r }
    }

    fn store(&self, store_id: u64) -> impl Future<Output = Result<StoreRoute, LocateError>> + Send {
        let r = Ok(StoreRoute {
            id: store_id,
            addr: Arc::from(format!("store-{store_id}")),
            labels: Arc::from(vec![]),
        });
        async move { r }
    }

    fn update_leader(&self, region: RegionVerId, leader: Option<metapb::Peer>) {
        let mut s = self.0.lock();
        s.leader_updates
            .push((region.id, leader.as_ref().map(|p| p.store_id)));
        if let Some(l) = leader {
            if let Some(e) = s.cache.iter_mut().find(|(r, _)| r.id == region.id) {
                e.1 = l.store_id;
            }
        }
    }

    fn on_epoch_not_match(&self, _region: RegionVerId, current: &[metapb::Region]) -> bool {
        if current.is_empty() {
            return false;
        }
        let mut s = self.0.lock();
        s.cache = s.truth.clone();
        true
    }

    fn invalidate_region(&self, region: RegionVerId, reason: InvalidReason) {
        let mut s = self.0.lock();
        s.invalidations.push((region.id, reason));
        // The next lookup "reloads from PD".
        s.cache = s.truth.clone();
    }

    fn on_send_fail(&self, _region: RegionVerId, store_id: u64) {
        self.0.lock().send_fails.push(store_id);
    }
}
