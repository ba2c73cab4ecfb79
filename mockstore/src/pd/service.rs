//! `impl pdpb::pd_server::Pd for MockPd`: the PD gRPC service.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tikv_tower_proto::pdpb::{self, pd_server::Pd};
use tonic::{Request, Response, Status};

use super::gc::{GcError, GcStates, NULL_KEYSPACE_ID};
use super::{region_extras, MockPd};
use crate::cluster::{group_split_keys, Region};

type PdResult<T> = Result<Response<T>, Status>;

/// The reply of a GC RPC whose outcome is `res: Result<_, GcError>`: `Ok` is an OK
/// header plus the listed fields, `Err` an error header with every other field at its
/// default (unset / zero), as PD's GC service answers.
macro_rules! gc_reply {
    ($pd:expr, $res:expr, $resp:ident, |$v:pat_param| { $($field:ident: $val:expr),* $(,)? }) => {
        Ok(Response::new(match $res {
            Ok($v) => pdpb::$resp {
                header: $pd.ok_header(),
                $($field: $val),*
            },
            Err(e) => pdpb::$resp {
                header: $pd.gc_err_header(&e),
                ..Default::default()
            },
        }))
    };
}

impl MockPd {
    /// The `GetRegion` / `GetPrevRegion` / `GetRegionByID` reply: an OK header, and the
    /// region's fields when there is one.
    fn region_reply(
        &self,
        region: Option<Region>,
        need_buckets: bool,
    ) -> PdResult<pdpb::GetRegionResponse> {
        let mut resp = pdpb::GetRegionResponse {
            header: self.ok_header(),
            ..Default::default()
        };
        if let Some(region) = region {
            resp.buckets = self.buckets(&region, need_buckets);
            let (leader, down, pending) = region_extras(&region);
            resp.region = Some(region.to_pb());
            resp.leader = leader;
            resp.down_peers = down;
            resp.pending_peers = pending;
        }
        Ok(Response::new(resp))
    }

    fn gc_err_header(&self, e: &GcError) -> Option<pdpb::ResponseHeader> {
        self.err_header(pdpb::ErrorType::Unknown, e.to_string())
    }

    /// The keyspace a GC RPC's `keyspace_scope` acts on (see `GcStates::redirect`).
    fn gc_keyspace(
        &self,
        scope: Option<&pdpb::KeyspaceScope>,
        user_api: bool,
    ) -> Result<u32, GcError> {
        GcStates::redirect(scope, |id| self.keyspace_level_gc(id), user_api)
    }

    /// Regions of `BatchScanRegions` (PD `BatchScanRegions`): ranges must be sorted and
    /// non-overlapping; regions are deduplicated and capped at `limit` (<= 0: none).
    fn batch_scan(
        &self,
        req: &pdpb::BatchScanRegionsRequest,
    ) -> Result<Vec<pdpb::Region>, pdpb::Error> {
        let invalid = |m: String| pdpb::Error {
            r#type: pdpb::ErrorType::Unknown as i32,
            message: m,
        };
        for pair in req.ranges.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if a.end_key.is_empty() || a.end_key > b.start_key {
                return Err(invalid("invalid key range, ranges overlapped".into()));
            }
        }
        for r in &req.ranges {
            if !r.end_key.is_empty() && r.start_key > r.end_key {
                return Err(invalid("invalid key range, start key > end key".into()));
            }
        }
        let limit = usize::try_from(req.limit).unwrap_or(0);
        let mut out: Vec<Region> = Vec::new();
        'ranges: for r in &req.ranges {
            let found = self.cluster.scan_regions(&r.start_key, &r.end_key, 0);
            if req.contain_all_key_range && !covers(&found, &r.start_key, &r.end_key) {
                return Err(pdpb::Error {
                    r#type: pdpb::ErrorType::RegionsNotContainAllKeyRange as i32,
                    message: "regions not contain all key range".into(),
                });
            }
            for region in found {
                if out.last().is_some_and(|l| l.id == region.id) {
                    continue;
                }
                if limit > 0 && out.len() >= limit {
                    break 'ranges;
                }
                out.push(region);
            }
        }
        Ok(out
            .iter()
            .map(|r| self.region_pb(r, req.need_buckets))
            .collect())
    }
}

impl MockPd {
    /// Splits at region-boundary `keys` (PD `RegionSplitter::SplitRegions`):
    /// returns the finished percentage and the ids of the new regions.
    fn split_at(&self, keys: Vec<bytes::Bytes>) -> (u64, Vec<u64>) {
        let keys = keys
            .into_iter()
            .filter(|k| !k.is_empty())
            .map(Vec::from)
            .collect();
        let groups = group_split_keys(keys, |k| self.cluster.region_by_key(k));
        let total = groups.iter().map(|(_, k)| k.len()).sum::<usize>();
        let mut ok = 0usize;
        let mut regions_id = Vec::new();
        for (region_id, ks) in groups {
            let n = ks.len();
            if let Ok(regions) = self.cluster.split_region(region_id, ks) {
                ok += n;
                // The new regions: every piece except the one that kept the id.
                regions_id.extend(regions.iter().map(|r| r.id).filter(|id| *id != region_id));
            }
        }
        let pct = (ok * 100).checked_div(total).map_or(100, |p| p as u64);
        (pct, regions_id)
    }

    /// The reply to one `QueryRegion` request: ids of the regions holding
    /// each key and preceding each prev key (0 = none), and every region
    /// found or asked by id (an unknown id maps to an empty entry, as PD's
    /// nil).
    fn query_regions(&self, r: &pdpb::QueryRegionRequest) -> pdpb::QueryRegionResponse {
        let mut by_id = std::collections::HashMap::new();
        let note = |by_id: &mut std::collections::HashMap<u64, pdpb::RegionResponse>,
                    region: Option<Region>| match region {
            Some(region) => {
                let id = region.id;
                let (leader, down_peers, pending_peers) = region_extras(&region);
                by_id.insert(
                    id,
                    pdpb::RegionResponse {
                        region: Some(region.to_pb()),
                        leader,
                        down_peers,
                        pending_peers,
                        buckets: self.buckets(&region, r.need_buckets),
                    },
                );
                id
            }
            None => 0,
        };
        let key_id_map = r
            .keys
            .iter()
            .map(|k| note(&mut by_id, self.cluster.region_by_key(k)))
            .collect();
        let prev_key_id_map = r
            .prev_keys
            .iter()
            .map(|k| note(&mut by_id, self.cluster.prev_region(k)))
            .collect();
        for id in r.ids.iter().copied().filter(|id| *id != 0) {
            if by_id.contains_key(&id) {
                continue;
            }
            if note(&mut by_id, self.cluster.region(id)) == 0 {
                by_id.insert(id, pdpb::RegionResponse::default());
            }
        }
        pdpb::QueryRegionResponse {
            header: self.ok_header(),
            key_id_map,
            prev_key_id_map,
            regions_by_id: by_id,
        }
    }
}

/// A reply stream that ends after its first error (PD's streaming RPCs return
/// on the first failure).
fn until_first_error<T>(
    s: impl Stream<Item = Result<T, Status>>,
) -> impl Stream<Item = Result<T, Status>> {
    s.scan(false, |failed, r| {
        if *failed {
            return futures::future::ready(None);
        }
        *failed = r.is_err();
        futures::future::ready(Some(r))
    })
}

/// Whether `regions` (sorted, overlapping `[start, end)`) cover the whole range.
fn covers(regions: &[Region], start: &[u8], end: &[u8]) -> bool {
    let Some(first) = regions.first() else {
        return false;
    };
    if first.start_key.as_slice() > start {
        return false;
    }
    for pair in regions.windows(2) {
        if pair[0].end_key != pair[1].start_key {
            return false;
        }
    }
    let last_end = regions.last().map_or(&[][..], |r| r.end_key.as_slice());
    last_end.is_empty() || (!end.is_empty() && last_end >= end)
}

#[tonic::async_trait]
impl Pd for MockPd {
    async fn get_cluster_info(
        &self,
        _req: Request<pdpb::GetClusterInfoRequest>,
    ) -> PdResult<pdpb::GetClusterInfoResponse> {
        Ok(Response::new(pdpb::GetClusterInfoResponse {
            header: self.ok_header(),
            service_modes: vec![pdpb::ServiceMode::PdSvcMode as i32],
            tso_urls: Vec::new(),
        }))
    }

    async fn get_members(
        &self,
        _req: Request<pdpb::GetMembersRequest>,
    ) -> PdResult<pdpb::GetMembersResponse> {
        let member = self.member();
        Ok(Response::new(pdpb::GetMembersResponse {
            header: self.ok_header(),
            members: vec![member.clone()],
            leader: Some(member.clone()),
            etcd_leader: Some(member),
            tso_allocator_leaders: Default::default(),
        }))
    }

    type TsoStream =
        Pin<Box<dyn Stream<Item = Result<pdpb::TsoResponse, Status>> + Send + 'static>>;

    async fn tso(
        &self,
        req: Request<tonic::Streaming<pdpb::TsoRequest>>,
    ) -> PdResult<Self::TsoStream> {
        let pd = self.clone();
        let input = req.into_inner();
        // One reply per request, in order; the first failure ends the stream.
        let out = input.map(move |item| {
            let r = item?;
            pd.check_header(r.header.as_ref())?;
            let ts = pd.tso(r.count)?;
            Ok(pdpb::TsoResponse {
                header: pd.ok_header(),
                count: r.count,
                timestamp: Some(ts),
            })
        });
        Ok(Response::new(Box::pin(until_first_error(out))))
    }

    async fn get_store(
        &self,
        req: Request<pdpb::GetStoreRequest>,
    ) -> PdResult<pdpb::GetStoreResponse> {
        let req = checked!(self, req)?;
        let resp = match self.cluster.store_meta(req.store_id) {
            Some(store) => pdpb::GetStoreResponse {
                header: self.ok_header(),
                store: Some(store.to_pb()),
            },
            None => pdpb::GetStoreResponse {
                header: self.err_header(
                    pdpb::ErrorType::Unknown,
                    format!("invalid store ID {}, not found", req.store_id),
                ),
                store: None,
            },
        };
        Ok(Response::new(resp))
    }

    async fn get_all_stores(
        &self,
        req: Request<pdpb::GetAllStoresRequest>,
    ) -> PdResult<pdpb::GetAllStoresResponse> {
        let req = checked!(self, req)?;
        let stores = self
            .cluster
            .stores()
            .iter()
            .filter(|s| {
                !(req.exclude_tombstone_stores && s.state == crate::cluster::StoreState::Tombstone)
            })
            .map(|s| s.to_pb())
            .collect();
        Ok(Response::new(pdpb::GetAllStoresResponse {
            header: self.ok_header(),
            stores,
        }))
    }

    async fn get_region(
        &self,
        req: Request<pdpb::GetRegionRequest>,
    ) -> PdResult<pdpb::GetRegionResponse> {
        let req = checked!(self, req)?;
        self.region_reply(
            self.cluster.region_by_key(&req.region_key),
            req.need_buckets,
        )
    }

    async fn get_prev_region(
        &self,
        req: Request<pdpb::GetRegionRequest>,
    ) -> PdResult<pdpb::GetRegionResponse> {
        let req = checked!(self, req)?;
        self.region_reply(self.cluster.prev_region(&req.region_key), req.need_buckets)
    }

    async fn get_region_by_id(
        &self,
        req: Request<pdpb::GetRegionByIdRequest>,
    ) -> PdResult<pdpb::GetRegionResponse> {
        let req = checked!(self, req)?;
        self.region_reply(self.cluster.region(req.region_id), req.need_buckets)
    }

    async fn scan_regions(
        &self,
        req: Request<pdpb::ScanRegionsRequest>,
    ) -> PdResult<pdpb::ScanRegionsResponse> {
        let req = checked!(self, req)?;
        let limit = usize::try_from(req.limit).unwrap_or(0);
        let found = self
            .cluster
            .scan_regions(&req.start_key, &req.end_key, limit);
        Ok(Response::new(pdpb::ScanRegionsResponse {
            header: self.ok_header(),
            region_metas: found.iter().map(Region::to_pb).collect(),
            leaders: found
                .iter()
                .map(|r| r.leader_pb().unwrap_or_default())
                .collect(),
            regions: found.iter().map(|r| self.region_pb(r, false)).collect(),
        }))
    }

    async fn batch_scan_regions(
        &self,
        req: Request<pdpb::BatchScanRegionsRequest>,
    ) -> PdResult<pdpb::BatchScanRegionsResponse> {
        let req = checked!(self, req)?;
        let resp = match self.batch_scan(&req) {
            Ok(regions) => pdpb::BatchScanRegionsResponse {
                header: self.ok_header(),
                regions,
            },
            Err(e) => pdpb::BatchScanRegionsResponse {
                header: self.err_header(e.r#type(), e.message),
                regions: Vec::new(),
            },
        };
        Ok(Response::new(resp))
    }

    async fn scatter_region(
        &self,
        req: Request<pdpb::ScatterRegionRequest>,
    ) -> PdResult<pdpb::ScatterRegionResponse> {
        checked!(self, req)?;
        // One replica set per store already: nothing to move.
        Ok(Response::new(pdpb::ScatterRegionResponse {
            header: self.ok_header(),
            finished_percentage: 100,
            failed_regions_id: Vec::new(),
        }))
    }

    async fn get_operator(
        &self,
        req: Request<pdpb::GetOperatorRequest>,
    ) -> PdResult<pdpb::GetOperatorResponse> {
        let req = checked!(self, req)?;
        if self.cluster.region(req.region_id).is_none() {
            return Ok(Response::new(pdpb::GetOperatorResponse {
                header: self.err_header(
                    pdpb::ErrorType::RegionNotFound,
                    format!("region {} not found", req.region_id),
                ),
                region_id: req.region_id,
                ..Default::default()
            }));
        }
        Ok(Response::new(pdpb::GetOperatorResponse {
            header: self.ok_header(),
            region_id: req.region_id,
            desc: "scatter-region".into(),
            status: pdpb::OperatorStatus::Success as i32,
            kind: "admin".into(),
        }))
    }

    async fn split_regions(
        &self,
        req: Request<pdpb::SplitRegionsRequest>,
    ) -> PdResult<pdpb::SplitRegionsResponse> {
        let req = checked!(self, req)?;
        let (finished_percentage, regions_id) = self.split_at(req.split_keys);
        Ok(Response::new(pdpb::SplitRegionsResponse {
            header: self.ok_header(),
            finished_percentage,
            regions_id,
        }))
    }

    /// PD `SplitAndScatterRegions`: `SplitRegions`, then scatters the new
    /// regions (a no-op in the mock: every store already holds a replica).
    async fn split_and_scatter_regions(
        &self,
        req: Request<pdpb::SplitAndScatterRegionsRequest>,
    ) -> PdResult<pdpb::SplitAndScatterRegionsResponse> {
        let req = checked!(self, req)?;
        let (split_finished_percentage, regions_id) = self.split_at(req.split_keys);
        Ok(Response::new(pdpb::SplitAndScatterRegionsResponse {
            header: self.ok_header(),
            split_finished_percentage,
            scatter_finished_percentage: 100,
            regions_id,
        }))
    }

    type QueryRegionStream =
        Pin<Box<dyn Stream<Item = Result<pdpb::QueryRegionResponse, Status>> + Send + 'static>>;

    /// PD `QueryRegion` (`RegionsInfo::QueryRegions`): one reply per request;
    /// a cluster-id mismatch ends the stream with an error.
    async fn query_region(
        &self,
        req: Request<tonic::Streaming<pdpb::QueryRegionRequest>>,
    ) -> PdResult<Self::QueryRegionStream> {
        let pd = self.clone();
        let out = req.into_inner().map(move |item| {
            let r = item?;
            pd.check_header(r.header.as_ref())?;
            Ok(pd.query_regions(&r))
        });
        Ok(Response::new(Box::pin(until_first_error(out))))
    }

    /// PD `GetMinTS`: with one TSO allocator (no keyspace groups), a fresh
    /// timestamp from it.
    async fn get_min_ts(
        &self,
        req: Request<pdpb::GetMinTsRequest>,
    ) -> PdResult<pdpb::GetMinTsResponse> {
        checked!(self, req)?;
        let ts = self.tso(1)?;
        Ok(Response::new(pdpb::GetMinTsResponse {
            header: self.ok_header(),
            timestamp: Some(ts),
        }))
    }

    async fn get_gc_safe_point(
        &self,
        req: Request<pdpb::GetGcSafePointRequest>,
    ) -> PdResult<pdpb::GetGcSafePointResponse> {
        checked!(self, req)?;
        Ok(Response::new(pdpb::GetGcSafePointResponse {
            header: self.ok_header(),
            safe_point: self.gc_safe_points().1,
        }))
    }

    async fn update_gc_safe_point(
        &self,
        req: Request<pdpb::UpdateGcSafePointRequest>,
    ) -> PdResult<pdpb::UpdateGcSafePointResponse> {
        let req = checked!(self, req)?;
        // Legacy API: errors are gRPC errors, a smaller value is ignored.
        let (_, new) = self
            .with_gc(|gc| gc.advance_gc_safe_point(NULL_KEYSPACE_ID, req.safe_point, true))
            .map_err(|e| Status::unknown(e.to_string()))?;
        Ok(Response::new(pdpb::UpdateGcSafePointResponse {
            header: self.ok_header(),
            new_safe_point: new,
        }))
    }

    async fn update_service_gc_safe_point(
        &self,
        req: Request<pdpb::UpdateServiceGcSafePointRequest>,
    ) -> PdResult<pdpb::UpdateServiceGcSafePointResponse> {
        let req = checked!(self, req)?;
        let service_id = String::from_utf8_lossy(&req.service_id).into_owned();
        let now = self.now_ms();
        let (sid, ttl, min) = self
            .with_gc(|gc| gc.update_service_safe_point(&service_id, req.safe_point, req.ttl, now))
            .map_err(|e| Status::unknown(e.to_string()))?;
        Ok(Response::new(pdpb::UpdateServiceGcSafePointResponse {
            header: self.ok_header(),
            service_id: sid.into_bytes().into(),
            ttl,
            min_safe_point: min,
        }))
    }

    async fn advance_gc_safe_point(
        &self,
        req: Request<pdpb::AdvanceGcSafePointRequest>,
    ) -> PdResult<pdpb::AdvanceGcSafePointResponse> {
        let req = checked!(self, req)?;
        let res = self
            .gc_keyspace(req.keyspace_scope.as_ref(), false)
            .and_then(|ks| self.with_gc(|gc| gc.advance_gc_safe_point(ks, req.target, false)));
        gc_reply!(self, res, AdvanceGcSafePointResponse, |(old, new)| {
            old_gc_safe_point: old,
            new_gc_safe_point: new,
        })
    }

    async fn advance_txn_safe_point(
        &self,
        req: Request<pdpb::AdvanceTxnSafePointRequest>,
    ) -> PdResult<pdpb::AdvanceTxnSafePointResponse> {
        let req = checked!(self, req)?;
        let now = self.now_ms();
        let res = self
            .gc_keyspace(req.keyspace_scope.as_ref(), false)
            .and_then(|ks| self.with_gc(|gc| gc.advance_txn_safe_point(ks, req.target, now)));
        gc_reply!(self, res, AdvanceTxnSafePointResponse, |r| {
            old_txn_safe_point: r.old,
            new_txn_safe_point: r.new,
            blocker_description: r.blocker,
        })
    }

    async fn set_gc_barrier(
        &self,
        req: Request<pdpb::SetGcBarrierRequest>,
    ) -> PdResult<pdpb::SetGcBarrierResponse> {
        let req = checked!(self, req)?;
        let now = self.now_ms();
        let res = self
            .gc_keyspace(req.keyspace_scope.as_ref(), true)
            .and_then(|ks| {
                self.with_gc(|gc| {
                    gc.set_barrier(ks, &req.barrier_id, req.barrier_ts, req.ttl_seconds, now)
                })
            });
        gc_reply!(self, res, SetGcBarrierResponse, |info| {
            new_barrier_info: Some(info),
        })
    }

    async fn delete_gc_barrier(
        &self,
        req: Request<pdpb::DeleteGcBarrierRequest>,
    ) -> PdResult<pdpb::DeleteGcBarrierResponse> {
        let req = checked!(self, req)?;
        let now = self.now_ms();
        let res = self
            .gc_keyspace(req.keyspace_scope.as_ref(), true)
            .and_then(|ks| self.with_gc(|gc| gc.delete_barrier(ks, &req.barrier_id, now)));
        gc_reply!(self, res, DeleteGcBarrierResponse, |info| {
            deleted_barrier_info: info,
        })
    }

    async fn set_global_gc_barrier(
        &self,
        req: Request<pdpb::SetGlobalGcBarrierRequest>,
    ) -> PdResult<pdpb::SetGlobalGcBarrierResponse> {
        let req = checked!(self, req)?;
        let now = self.now_ms();
        let res = self.with_gc(|gc| {
            gc.set_global_barrier(&req.barrier_id, req.barrier_ts, req.ttl_seconds, now)
        });
        gc_reply!(self, res, SetGlobalGcBarrierResponse, |info| {
            new_barrier_info: Some(info),
        })
    }

    async fn delete_global_gc_barrier(
        &self,
        req: Request<pdpb::DeleteGlobalGcBarrierRequest>,
    ) -> PdResult<pdpb::DeleteGlobalGcBarrierResponse> {
        let req = checked!(self, req)?;
        let now = self.now_ms();
        let res = self.with_gc(|gc| gc.delete_global_barrier(&req.barrier_id, now));
        gc_reply!(self, res, DeleteGlobalGcBarrierResponse, |info| {
            deleted_barrier_info: info,
        })
    }

    async fn get_gc_state(
        &self,
        req: Request<pdpb::GetGcStateRequest>,
    ) -> PdResult<pdpb::GetGcStateResponse> {
        let req = checked!(self, req)?;
        let now = self.now_ms();
        let res = self
            .gc_keyspace(req.keyspace_scope.as_ref(), true)
            .map(|ks| {
                let gc = self.state().gc.lock();
                let state = gc.state(ks, req.exclude_gc_barriers, now);
                let global = req
                    .include_global_gc_barriers
                    .then(|| pdpb::GlobalGcBarriersInfo {
                        barriers: gc.global_barriers(now),
                    });
                (state, global)
            });
        gc_reply!(self, res, GetGcStateResponse, |(state, global)| {
            gc_state: Some(state),
            global_gc_barriers: global,
        })
    }

    async fn get_all_keyspaces_gc_states(
        &self,
        req: Request<pdpb::GetAllKeyspacesGcStatesRequest>,
    ) -> PdResult<pdpb::GetAllKeyspacesGcStatesResponse> {
        let req = checked!(self, req)?;
        let now = self.now_ms();
        let metas = self.keyspace_metas();
        let gc = self.state().gc.lock();
        // PD `iterateAllKeyspacesGCStates`: the null keyspace, then every enabled
        // keyspace: its own state under keyspace-level GC, else an empty state marked
        // not keyspace-level.
        let mut gc_states = vec![gc.state(NULL_KEYSPACE_ID, req.exclude_gc_barriers, now)];
        for meta in &metas {
            let Some(tikv_tower_proto::keyspacepb::keyspace_meta::Keyspace::Id(id)) = meta.keyspace
            else {
                continue;
            };
            gc_states.push(match self.keyspace_level_gc(id) {
                Some(true) => gc.state(id, req.exclude_gc_barriers, now),
                _ => pdpb::GcState {
                    keyspace_scope: Some(pdpb::KeyspaceScope {
                        keyspace: Some(pdpb::keyspace_scope::Keyspace::KeyspaceId(id)),
                    }),
                    is_keyspace_level_gc: false,
                    ..Default::default()
                },
            });
        }
        Ok(Response::new(pdpb::GetAllKeyspacesGcStatesResponse {
            header: self.ok_header(),
            gc_states,
            global_gc_barriers: if req.exclude_global_gc_barriers {
                Vec::new()
            } else {
                gc.global_barriers(now)
            },
        }))
    }
}
