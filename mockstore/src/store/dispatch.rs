//! Dispatch of a checked request to the engine that runs it.

use std::ops::Bound;

use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};

use super::bounds::RawBounds;
use super::MockStore;
use crate::cluster::{ClusterError, Region};
use crate::raw::handler::{handle_raw, RawCtx};
use crate::raw::RawCf;

impl MockStore {
    /// Runs a request that passed the region checks on `region`.
    pub(super) async fn dispatch(&self, region: &Region, req: StoreRequest) -> StoreResponse {
        let cluster = &self.cluster;
        let bounds = RawBounds::of(region, cluster.boundary_encoding());
        if req.kind().is_raw() {
            let ctx = RawCtx {
                store: cluster.raw(),
                api: cluster.api_version(),
                now: cluster.clock().now_secs(),
                bounds: &bounds,
            };
            if let Some(resp) = handle_raw(&ctx, req) {
                return resp;
            }
            // Unreachable: every raw kind is handled above.
            return StoreResponse::default_for(tikv_tower_proto::rpc::RpcKind::RawGet);
        }
        let engine = cluster.engine();
        let rt = self.runtime();
        let cm = &rt.cm;
        let range = bounds.as_pair();
        match req {
            StoreRequest::Get(r) => engine.get(cm, &r, range).into(),
            StoreRequest::Scan(r) => engine.scan(cm, &r, range).into(),
            StoreRequest::BatchGet(r) => engine.batch_get(cm, &r, range).into(),
            StoreRequest::Prewrite(r) => engine.prewrite(cm, &r, range).into(),
            StoreRequest::Commit(r) => engine.commit(cm, &r, range).into(),
            StoreRequest::Cleanup(r) => engine.cleanup(cm, &r, range).into(),
            StoreRequest::BatchRollback(r) => engine.batch_rollback(cm, &r, range).into(),
            StoreRequest::PessimisticLock(r) => engine.pessimistic_lock(cm, &r, range).await.into(),
            StoreRequest::PessimisticRollback(r) => {
                engine.pessimistic_rollback(cm, &r, range).into()
            }
            StoreRequest::TxnHeartBeat(r) => engine.txn_heart_beat(cm, &r, range).into(),
            StoreRequest::CheckTxnStatus(r) => engine.check_txn_status(cm, &r, range).into(),
            StoreRequest::CheckSecondaryLocks(r) => {
                engine.check_secondary_locks(cm, &r, range).into()
            }
            StoreRequest::ResolveLock(r) => engine.resolve_lock(cm, &r, range).into(),
            StoreRequest::ScanLock(r) => engine.scan_lock(cm, &r, range).into(),
            StoreRequest::DeleteRange(r) => engine.delete_range(&r, range).into(),
            StoreRequest::Flush(r) => engine.flush(cm, &r, range).into(),
            StoreRequest::BufferBatchGet(r) => engine.buffer_batch_get(&r, range).into(),
            StoreRequest::MvccGetByKey(r) => engine.mvcc_get_by_key(&r, range).into(),
            StoreRequest::MvccGetByStartTs(r) => engine.mvcc_get_by_start_ts(&r, range).into(),
            StoreRequest::SplitRegion(r) => self.split_region(region, *r).into(),
            StoreRequest::UnsafeDestroyRange(r) => self.unsafe_destroy_range(&r).into(),
            // KvGC is refused before the checks; raw kinds are handled above.
            other => StoreResponse::default_for(other.kind()),
        }
    }

    /// `UnsafeDestroyRange`: store-level, no region checks; removes locks,
    /// writes and raw data in `[start, end)` on the whole cluster (TiKV
    /// deletes the range in every column family).
    pub(super) fn unsafe_destroy_range(
        &self,
        r: &kvrpcpb::UnsafeDestroyRangeRequest,
    ) -> kvrpcpb::UnsafeDestroyRangeResponse {
        let resp = self.cluster.engine().unsafe_destroy_range(r);
        if resp.error.is_empty() && r.start_key < r.end_key {
            let raw = self.cluster.raw();
            for cf in [RawCf::Default, RawCf::Lock, RawCf::Write] {
                raw.delete_range(
                    cf,
                    Bound::Included(r.start_key.as_ref()),
                    Bound::Excluded(r.end_key.as_ref()),
                    |_| true,
                );
            }
        }
        resp
    }

    /// `SplitRegion`: splits the addressed region at the request keys
    /// (converted to boundary form), right-derived. Keys equal to the region
    /// start are skipped (deviation: TiKV refuses the whole request with
    /// "invalid split request"); a key outside the region gives
    /// `KeyNotInRegion`. The deprecated `split_key` / `left` / `right` fields
    /// are still honoured and filled for old clients.
    #[allow(deprecated)]
    fn split_region(
        &self,
        region: &Region,
        r: kvrpcpb::SplitRegionRequest,
    ) -> kvrpcpb::SplitRegionResponse {
        let enc = self.cluster.boundary_encoding();
        let mut raw_keys = r.split_keys;
        if raw_keys.is_empty() && !r.split_key.is_empty() {
            raw_keys.push(r.split_key);
        }
        let mut keys: Vec<Vec<u8>> = raw_keys
            .iter()
            .filter(|k| !k.is_empty())
            .map(|k| enc.to_boundary(k))
            .filter(|k| *k != region.start_key)
            .collect();
        keys.sort();
        keys.dedup();
        let mut resp = kvrpcpb::SplitRegionResponse::default();
        if keys.is_empty() {
            resp.regions = vec![region.to_pb()];
            return resp;
        }
        match self.cluster.split_region(region.id, keys) {
            Ok(regions) => {
                resp.left = regions.first().map(Region::to_pb);
                resp.right = regions.last().map(Region::to_pb);
                resp.regions = regions.iter().map(Region::to_pb).collect();
            }
            Err(ClusterError::KeyNotInRegion { key, region_id }) => {
                resp.region_error = Some(tikv_tower_proto::errorpb::Error {
                    message: format!("key {key:?} is not in region {region_id}"),
                    key_not_in_region: Some(tikv_tower_proto::errorpb::KeyNotInRegion {
                        key: key.into(),
                        region_id,
                        start_key: region.start_key.clone().into(),
                        end_key: region.end_key.clone().into(),
                    }),
                    ..Default::default()
                });
            }
            Err(e) => {
                resp.region_error = Some(tikv_tower_proto::errorpb::Error {
                    message: e.to_string(),
                    ..Default::default()
                });
            }
        }
        resp
    }
}
