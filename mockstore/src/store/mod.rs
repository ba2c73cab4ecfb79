//! A store of the mock cluster: the TiKV side of every request.
//!
//! [`MockStore::handle`] is the one entry point, shared by the in-process
//! transport and the gRPC servers. In order it:
//!
//! 1. fails with `UNAVAILABLE` while the store is stopped;
//! 2. applies fault rules ([`crate::fault`]): delay, drop, gRPC status, a
//!    canned response or an injected region error;
//! 3. runs the region checks ([`crate::region_check`]) — except for
//!    `UnsafeDestroyRange` and `GetStoreSafeTS`, store-level commands — and answers a failed
//!    check with a response whose only field is `region_error`;
//! 4. checks the API version / key mode of transactional reads and locks
//!    (a `KeyError`, not a region error), then dispatches: transactional kinds to the percolator engine
//!    ([`crate::mvcc::TxnEngine`]) with this store's
//!    [`ConcurrencyManager`](crate::mvcc::ConcurrencyManager), raw kinds to
//!    the raw storage ([`crate::raw`]), `SplitRegion` to the cluster;
//!    A stale read above the region's safe ts gets `DataIsNotReady`
//!    (`safe_ts`). Async-commit / 1PC prewrites first need a synced `max_ts` after a
//!    restart or a leader change (`MaxTimestampNotSynced` once, see
//!    `max_ts_sync`).
//! 5. after a write, notes the region for the split checker, which runs on its tick (committed versions / size,
//!    like TiKV's keys and size split checkers).
//!
//! `KvGC` answers gRPC `UNIMPLEMENTED`, as current TiKV does.

pub mod bounds;
mod dispatch;
mod max_ts_sync;
pub(crate) mod request_keys;
mod safe_ts;
pub mod split_check;
mod txn_mode;

use std::sync::Arc;

use tikv_tower_proto::rpc::{RpcKind, StoreRequest, StoreResponse};

use crate::cluster::MockCluster;
use crate::fault::FaultAction;
use crate::mvcc::ConcurrencyManager;
use crate::region_check::{self, CheckFailure, CheckParams};

/// Per-store runtime state that a restart resets.
#[derive(Debug, Default)]
pub(crate) struct StoreRuntime {
    /// The store's `max_ts` and memory locks.
    pub(crate) cm: ConcurrencyManager,
    /// What still needs a `max_ts` sync (see [`max_ts_sync`]).
    pub(crate) max_ts_sync: max_ts_sync::MaxTsSync,
}

impl StoreRuntime {
    /// The runtime of a store that just restarted: fresh `max_ts`, not
    /// synced.
    pub(crate) fn restarted() -> Self {
        StoreRuntime {
            cm: ConcurrencyManager::new(),
            max_ts_sync: max_ts_sync::MaxTsSync::unsynced(),
        }
    }
}

/// A handle to one store of a [`MockCluster`] (cheap to clone).
#[derive(Clone)]
pub struct MockStore {
    cluster: MockCluster,
    id: u64,
}

impl std::fmt::Debug for MockStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockStore").field("id", &self.id).finish()
    }
}

impl MockStore {
    pub(crate) fn new(cluster: MockCluster, id: u64) -> Self {
        MockStore { cluster, id }
    }

    /// The store id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The cluster this store belongs to.
    pub fn cluster(&self) -> &MockCluster {
        &self.cluster
    }

    /// Whether the store is stopped (every RPC fails with `UNAVAILABLE`).
    pub fn is_stopped(&self) -> bool {
        self.cluster
            .inner
            .state
            .read()
            .store(self.id)
            .is_none_or(|s| s.stopped)
    }

    /// This store's concurrency manager (its `max_ts`).
    pub fn concurrency_manager(&self) -> ConcurrencyManager {
        self.runtime().cm.clone()
    }

    fn runtime(&self) -> Arc<StoreRuntime> {
        self.cluster.store_runtime(self.id)
    }

    fn unavailable(&self) -> tonic::Status {
        tonic::Status::unavailable(format!("store {} is not available", self.id))
    }

    /// Handles one store RPC: the same code whether called in-process or
    /// through the gRPC server. Region errors are inside the response;
    /// `Err` is a gRPC-level failure (`UNAVAILABLE` while stopped or when a
    /// fault drops the RPC, `INVALID_ARGUMENT` on a cluster-id mismatch,
    /// `UNIMPLEMENTED` for `KvGC`).
    pub async fn handle(&self, req: StoreRequest) -> Result<StoreResponse, tonic::Status> {
        let recorder = self.cluster.recorder();
        if recorder.is_recording() {
            let copy = req.clone();
            let res = self.handle_inner(req).await;
            recorder.record(self.id, copy, &res);
            return res;
        }
        self.handle_inner(req).await
    }

    async fn handle_inner(&self, req: StoreRequest) -> Result<StoreResponse, tonic::Status> {
        if self.is_stopped() {
            return Err(self.unavailable());
        }
        let kind = req.kind();
        let decision = self.cluster.faults().decide(self.id, &req);
        if !decision.delay.is_zero() {
            tokio::time::sleep(decision.delay).await;
            if self.is_stopped() {
                return Err(self.unavailable());
            }
            if let Some(resp) = deadline_exceeded(&req, decision.delay) {
                return Ok(resp);
            }
        }
        let mut apply_then_drop = false;
        match decision.action {
            None => {}
            Some(FaultAction::Drop) => return Err(self.unavailable()),
            Some(FaultAction::Status(code, msg)) => return Err(tonic::Status::new(code, msg)),
            Some(FaultAction::Respond(resp)) => return Ok(*resp),
            Some(FaultAction::RegionError(e)) => {
                let err = {
                    let state = self.cluster.inner.state.read();
                    let buckets = |r: &crate::cluster::Region| self.cluster.region_buckets(r);
                    region_check::injected_error(&state, buckets, self.id, &req, &e)
                };
                let mut resp = StoreResponse::default_for(kind);
                resp.set_region_error(err);
                return Ok(resp);
            }
            Some(FaultAction::ApplyThenDrop) => apply_then_drop = true,
            Some(FaultAction::Delay(_)) => {}
        }
        let resp = self.handle_checked(req).await?;
        if apply_then_drop {
            return Err(self.unavailable());
        }
        Ok(resp)
    }

    async fn handle_checked(&self, req: StoreRequest) -> Result<StoreResponse, tonic::Status> {
        let kind = req.kind();
        let config = self.cluster.config();
        let ctx_cluster_id = req.context().map_or(0, |c| c.cluster_id);
        if kind == RpcKind::Gc {
            return Err(tonic::Status::unimplemented(
                "KvGC is not implemented by TiKV",
            ));
        }
        if let StoreRequest::StoreSafeTs(r) = &req {
            // Store-level, no region checks (TiKV `GetStoreSafeTS`).
            let safe_ts = self.cluster.store_safe_ts(self.id, r.key_range.as_ref());
            return Ok(StoreResponse::StoreSafeTs(Box::new(
                tikv_tower_proto::kvrpcpb::StoreSafeTsResponse {
                    safe_ts,
                    region_error: None,
                },
            )));
        }
        if let StoreRequest::UnsafeDestroyRange(r) = req {
            if let Err(CheckFailure::Status(s)) =
                region_check::check_cluster_id(config.cluster_id, ctx_cluster_id)
            {
                return Err(s);
            }
            return Ok(StoreResponse::UnsafeDestroyRange(Box::new(
                self.unsafe_destroy_range(&r),
            )));
        }
        let params = CheckParams {
            cluster_id: config.cluster_id,
            store_id: self.id,
            api_version: config.api_version,
            raft_entry_max_size: config.raft_entry_max_size,
        };
        let checked = {
            let state = self.cluster.inner.state.read();
            region_check::check_request(&state, params, &req)
        };
        match checked {
            Err(CheckFailure::Status(s)) => Err(s),
            Err(CheckFailure::Region(e)) => {
                let mut resp = StoreResponse::default_for(kind);
                resp.set_region_error(*e);
                Ok(resp)
            }
            Ok(region) => {
                if let Some(resp) = txn_mode::check_txn_api(config.api_version, &req) {
                    return Ok(resp);
                }
                if let Some(e) = safe_ts::check_stale_read(&self.cluster, self.id, &region, &req)
                    .or_else(|| self.check_max_ts_synced(region.id, &req))
                {
                    let mut resp = StoreResponse::default_for(kind);
                    resp.set_region_error(e);
                    return Ok(resp);
                }
                let resp = self.dispatch(&region, req).await;
                if !kind.is_read_only() && resp.region_error().is_none() {
                    self.cluster.check_split(region.id);
                }
                Ok(resp)
            }
        }
    }
}

/// TiKV answers a command that waited past `ctx.max_execution_duration_ms`
/// with `ServerIsBusy{reason: "deadline is exceeded"}`
/// (`set_deadline_exceeded_busy_error`); in the mock only injected delays
/// make a request wait that long.
fn deadline_exceeded(req: &StoreRequest, waited: std::time::Duration) -> Option<StoreResponse> {
    let limit = req.context().map_or(0, |c| c.max_execution_duration_ms);
    if limit == 0 || waited <= std::time::Duration::from_millis(limit) {
        return None;
    }
    let mut resp = StoreResponse::default_for(req.kind());
    resp.set_region_error(tikv_tower_proto::errorpb::Error {
        message: "deadline is exceeded".into(),
        server_is_busy: Some(tikv_tower_proto::errorpb::ServerIsBusy {
            reason: "deadline is exceeded".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    Some(resp)
}
