//! A scriptable fake PD for unit tests: several members, a movable leader, regions in PD
//! key space, stores, a TSO allocator, per-method call counters and failure switches.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::Mutex;
use tikv_tower_proto::{keyspacepb, metapb, pdpb};

use super::error::PdError;
use super::rpc::{tso_stream_from_fn, PdConnector, PdRpc, RpcFuture, TsoStream};

#[derive(Default)]
pub(crate) struct FakeState {
    pub cluster_id: u64,
    pub urls: Vec<String>,
    pub leader: usize,
    /// Per-URL cluster id override (a member of another cluster).
    pub member_cluster: HashMap<String, u64>,
    pub unreachable: HashSet<String>,
    /// Regions in PD key space, sorted by start key, with leaders.
    pub regions: Vec<(metapb::Region, Option<metapb::Peer>)>,
    pub stores: HashMap<u64, metapb::Store>,
    pub physical: i64,
    pub logical: i64,
    pub calls: HashMap<&'static str, u64>,
    pub get_region_delay: Duration,
    /// The next this many `GetRegion` calls fail with `Unavailable`.
    pub get_region_failures: u32,
    pub batch_scan_unimplemented: bool,
    /// The next TSO streams fail after this many replies each.
    pub tso_fail_after: Option<u32>,
    pub tso_streams_opened: u64,
    /// Per-URL `GetMembers` header instead of the normal one (`None` = no header).
    pub member_header: HashMap<String, Option<pdpb::ResponseHeader>>,
    /// `GetPrevRegion` answers this region whatever the key.
    pub prev_region_override: Option<(metapb::Region, Option<metapb::Peer>)>,
    /// Keyspaces by name (`LoadKeyspace`).
    pub keyspaces: HashMap<String, keyspacepb::KeyspaceMeta>,
    /// TSO streams whose server side has ended (the client closed its request stream).
    pub tso_streams_closed: u64,
}

/// Counts a TSO stream's server side ending (dropped with the serving closure).
struct TsoStreamEnd(Arc<Mutex<FakeState>>);

impl Drop for TsoStreamEnd {
    fn drop(&mut self) {
        self.0.lock().tso_streams_closed += 1;
    }
}

#[derive(Clone, Default)]
pub(crate) struct FakePd {
    pub state: Arc<Mutex<FakeState>>,
}

impl FakePd {
    pub fn new(cluster_id: u64, urls: &[&str]) -> Self {
        let st = FakeState {
            cluster_id,
            urls: urls.iter().map(|s| s.to_string()).collect(),
            physical: 1_000,
            ..Default::default()
        };
        FakePd {
            state: Arc::new(Mutex::new(st)),
        }
    }

    pub fn calls(&self, m: &str) -> u64 {
        self.state.lock().calls.get(m).copied().unwrap_or(0)
    }

    pub fn connector(&self) -> Arc<dyn PdConnector> {
        Arc::new(self.clone())
    }

    fn header(&self, url: &str) -> Option<pdpb::ResponseHeader> {
        let st = self.state.lock();
        let id = st.member_cluster.get(url).copied().unwrap_or(st.cluster_id);
        Some(pdpb::ResponseHeader {
            cluster_id: id,
            error: None,
        })
    }

    /// Checks reachability and leadership, counts the call.
    fn enter(
        &self,
        url: &str,
        method: &'static str,
        need_leader: bool,
    ) -> Result<(), tonic::Status> {
        let mut st = self.state.lock();
        *st.calls.entry(method).or_default() += 1;
        if st.unreachable.contains(url) {
            return Err(tonic::Status::unavailable("connection refused"));
        }
        if need_leader && st.urls.get(st.leader).map(String::as_str) != Some(url) {
            return Err(tonic::Status::unavailable("not leader"));
        }
        Ok(())
    }

    fn find_region(&self, key: &[u8]) -> Option<(metapb::Region, Option<metapb::Peer>)> {
        let st = self.state.lock();
        st.regions
            .iter()
            .find(|(r, _)| {
                key >= r.start_key.as_ref() && (r.end_key.is_empty() || key < r.end_key.as_ref())
            })
            .cloned()
    }
}

impl PdConnector for FakePd {
    fn connect(&self, url: &str) -> BoxFuture<'static, Result<Arc<dyn PdRpc>, PdError>> {
        let conn: Arc<dyn PdRpc> = Arc::new(FakeConn {
            url: url.to_string(),
            pd: self.clone(),
        });
        Box::pin(async move { Ok(conn) })
    }
}

struct FakeConn {
    url: String,
    pd: FakePd,
}

fn unimpl<T: Send + 'static>() -> RpcFuture<T> {
    Box::pin(async { Err(tonic::Status::unimplemented("fake")) })
}

fn region_resp(
    header: Option<pdpb::ResponseHeader>,
    r: Option<(metapb::Region, Option<metapb::Peer>)>,
) -> pdpb::GetRegionResponse {
    let (region, leader) = r.map_or((None, None), |(r, l)| (Some(r), l));
    pdpb::GetRegionResponse {
        header,
        region,
        leader,
        ..Default::default()
    }
}

impl PdRpc for FakeConn {
    fn url(&self) -> &str {
        &self.url
    }

    fn get_members(&self, _req: pdpb::GetMembersRequest) -> RpcFuture<pdpb::GetMembersResponse> {
        let r = self.pd.enter(&self.url, "get_members", false).map(|_| {
            let st = self.pd.state.lock();
            let members: Vec<pdpb::Member> = st
                .urls
                .iter()
                .enumerate()
                .map(|(i, u)| pdpb::Member {
                    name: format!("pd{i}"),
                    member_id: i as u64 + 1,
                    client_urls: vec![u.clone()],
                    ..Default::default()
                })
                .collect();
            let leader = members.get(st.leader).cloned();
            let header = st.member_header.get(&self.url).cloned();
            drop(st);
            pdpb::GetMembersResponse {
                header: header.unwrap_or_else(|| self.pd.header(&self.url)),
                members,
                leader,
                ..Default::default()
            }
        });
        Box::pin(async move { r })
    }

    fn get_region(&self, req: pdpb::GetRegionRequest) -> RpcFuture<pdpb::GetRegionResponse> {
        let r = self.pd.enter(&self.url, "get_region", true).and_then(|_| {
            let mut st = self.pd.state.lock();
            if st.get_region_failures > 0 {
                st.get_region_failures -= 1;
                return Err(tonic::Status::unavailable("injected GetRegion failure"));
            }
            Ok(())
        });
        let r = r.map(|_| {
            region_resp(
                self.pd.header(&self.url),
                self.pd.find_region(&req.region_key),
            )
        });
        let delay = self.pd.state.lock().get_region_delay;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            r
        })
    }

    fn get_prev_region(&self, req: pdpb::GetRegionRequest) -> RpcFuture<pdpb::GetRegionResponse> {
        let r = self.pd.enter(&self.url, "get_prev_region", true).map(|_| {
            let st = self.pd.state.lock();
            let idx = st.regions.iter().position(|(r, _)| {
                req.region_key >= r.start_key
                    && (r.end_key.is_empty() || req.region_key < r.end_key)
            });
            let prev = match idx {
                _ if st.prev_region_override.is_some() => st.prev_region_override.clone(),
                Some(i) if i > 0 => st.regions.get(i - 1).cloned(),
                Some(_) => None,
                None => st.regions.last().cloned(),
            };
            drop(st);
            region_resp(self.pd.header(&self.url), prev)
        });
        Box::pin(async move { r })
    }

    fn get_region_by_id(
        &self,
        req: pdpb::GetRegionByIdRequest,
    ) -> RpcFuture<pdpb::GetRegionResponse> {
        let r = self.pd.enter(&self.url, "get_region_by_id", true).map(|_| {
            let found = self
                .pd
                .state
                .lock()
                .regions
                .iter()
                .find(|(r, _)| r.id == req.region_id)
                .cloned();
            region_resp(self.pd.header(&self.url), found)
        });
        Box::pin(async move { r })
    }

    fn scan_regions(&self, req: pdpb::ScanRegionsRequest) -> RpcFuture<pdpb::ScanRegionsResponse> {
        let r = self.pd.enter(&self.url, "scan_regions", true).map(|_| {
            let st = self.pd.state.lock();
            let regions = st
                .regions
                .iter()
                .filter(|(r, _)| {
                    (r.end_key.is_empty() || r.end_key > req.start_key)
                        && (req.end_key.is_empty() || r.start_key < req.end_key)
                })
                .map(|(r, l)| pdpb::Region {
                    region: Some(r.clone()),
                    leader: *l,
                    ..Default::default()
                })
                .collect();
            drop(st);
            pdpb::ScanRegionsResponse {
                header: self.pd.header(&self.url),
                regions,
                ..Default::default()
            }
        });
        Box::pin(async move { r })
    }

    fn batch_scan_regions(
        &self,
        req: pdpb::BatchScanRegionsRequest,
    ) -> RpcFuture<pdpb::BatchScanRegionsResponse> {
        if self.pd.state.lock().batch_scan_unimplemented {
            let _ = self.pd.enter(&self.url, "batch_scan_regions", true);
            return unimpl();
        }
        let r = self
            .pd
            .enter(&self.url, "batch_scan_regions", true)
            .map(|_| {
                let st = self.pd.state.lock();
                let mut regions: Vec<pdpb::Region> = Vec::new();
                for kr in &req.ranges {
                    for (r, l) in &st.regions {
                        let overlaps = (r.end_key.is_empty() || r.end_key > kr.start_key)
                            && (kr.end_key.is_empty() || r.start_key < kr.end_key);
                        if overlaps
                            && !regions
                                .iter()
                                .any(|x| x.region.as_ref().map(|m| m.id) == Some(r.id))
                        {
                            regions.push(pdpb::Region {
                                region: Some(r.clone()),
                                leader: *l,
                                ..Default::default()
                            });
                        }
                    }
                }
                drop(st);
                pdpb::BatchScanRegionsResponse {
                    header: self.pd.header(&self.url),
                    regions,
                }
            });
        Box::pin(async move { r })
    }

    fn get_store(&self, req: pdpb::GetStoreRequest) -> RpcFuture<pdpb::GetStoreResponse> {
        let r = self.pd.enter(&self.url, "get_store", true).map(|_| {
            let store = self.pd.state.lock().stores.get(&req.store_id).cloned();
            pdpb::GetStoreResponse {
                header: self.pd.header(&self.url),
                store,
            }
        });
        Box::pin(async move { r })
    }

    fn get_all_stores(
        &self,
        _req: pdpb::GetAllStoresRequest,
    ) -> RpcFuture<pdpb::GetAllStoresResponse> {
        let r = self.pd.enter(&self.url, "get_all_stores", true).map(|_| {
            let stores = self.pd.state.lock().stores.values().cloned().collect();
            pdpb::GetAllStoresResponse {
                header: self.pd.header(&self.url),
                stores,
            }
        });
        Box::pin(async move { r })
    }

    fn get_gc_safe_point(
        &self,
        _req: pdpb::GetGcSafePointRequest,
    ) -> RpcFuture<pdpb::GetGcSafePointResponse> {
        unimpl()
    }
    fn update_gc_safe_point(
        &self,
        req: pdpb::UpdateGcSafePointRequest,
    ) -> RpcFuture<pdpb::UpdateGcSafePointResponse> {
        let r = self
            .pd
            .enter(&self.url, "update_gc_safe_point", true)
            .map(|_| pdpb::UpdateGcSafePointResponse {
                header: self.pd.header(&self.url),
                new_safe_point: req.safe_point,
            });
        Box::pin(async move { r })
    }
    fn update_service_gc_safe_point(
        &self,
        _req: pdpb::UpdateServiceGcSafePointRequest,
    ) -> RpcFuture<pdpb::UpdateServiceGcSafePointResponse> {
        unimpl()
    }
    fn advance_txn_safe_point(
        &self,
        _req: pdpb::AdvanceTxnSafePointRequest,
    ) -> RpcFuture<pdpb::AdvanceTxnSafePointResponse> {
        unimpl()
    }
    fn advance_gc_safe_point(
        &self,
        _req: pdpb::AdvanceGcSafePointRequest,
    ) -> RpcFuture<pdpb::AdvanceGcSafePointResponse> {
        unimpl()
    }
    fn set_gc_barrier(
        &self,
        _req: pdpb::SetGcBarrierRequest,
    ) -> RpcFuture<pdpb::SetGcBarrierResponse> {
        unimpl()
    }
    fn delete_gc_barrier(
        &self,
        _req: pdpb::DeleteGcBarrierRequest,
    ) -> RpcFuture<pdpb::DeleteGcBarrierResponse> {
        unimpl()
    }
    fn get_gc_state(&self, _req: pdpb::GetGcStateRequest) -> RpcFuture<pdpb::GetGcStateResponse> {
        unimpl()
    }
    fn split_regions(
        &self,
        _req: pdpb::SplitRegionsRequest,
    ) -> RpcFuture<pdpb::SplitRegionsResponse> {
        unimpl()
    }
    fn scatter_region(
        &self,
        _req: pdpb::ScatterRegionRequest,
    ) -> RpcFuture<pdpb::ScatterRegionResponse> {
        unimpl()
    }
    fn get_operator(&self, _req: pdpb::GetOperatorRequest) -> RpcFuture<pdpb::GetOperatorResponse> {
        unimpl()
    }
    fn load_keyspace(
        &self,
        req: keyspacepb::LoadKeyspaceRequest,
    ) -> RpcFuture<keyspacepb::LoadKeyspaceResponse> {
        let r = self.pd.enter(&self.url, "load_keyspace", true).map(|_| {
            let keyspace = self.pd.state.lock().keyspaces.get(&req.name).cloned();
            keyspacepb::LoadKeyspaceResponse {
                header: self.pd.header(&self.url),
                keyspace,
            }
        });
        Box::pin(async move { r })
    }
    fn load_keyspace_by_id(
        &self,
        _req: keyspacepb::LoadKeyspaceByIdRequest,
    ) -> RpcFuture<keyspacepb::LoadKeyspaceResponse> {
        unimpl()
    }

    fn tso(&self) -> RpcFuture<TsoStream> {
        if let Err(e) = self.pd.enter(&self.url, "tso", true) {
            return Box::pin(async move { Err(e) });
        }
        let (cluster_id, fail_after) = {
            let mut st = self.pd.state.lock();
            st.tso_streams_opened += 1;
            (st.cluster_id, st.tso_fail_after)
        };
        let state = self.pd.state.clone();
        let served = std::sync::atomic::AtomicU32::new(0);
        let end = TsoStreamEnd(state.clone());
        let stream = tso_stream_from_fn(cluster_id, move |count| {
            let _end = &end;
            let n = served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if fail_after.is_some_and(|f| n >= f) {
                return Err(tonic::Status::unavailable("tso stream broken"));
            }
            let mut st = state.lock();
            st.logical += i64::from(count);
            if st.logical >= 1 << 18 {
                st.physical += 1;
                st.logical = i64::from(count);
            }
            Ok(pdpb::Timestamp {
                physical: st.physical,
                logical: st.logical,
                suffix_bits: 0,
            })
        });
        Box::pin(async move { Ok(stream) })
    }
}
