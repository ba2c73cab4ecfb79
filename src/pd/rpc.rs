//! The PD RPC backend: one connection to one PD member.
//!
//! [`PdRpc`] is the seam between [`PdClient`](super::PdClient) (leader discovery, retries,
//! cluster-id checks, decoding) and the wire: the tonic backend
//! ([`GrpcPdConnector`](super::grpc::GrpcPdConnector)), the in-process backend over
//! mockstore's `MockPd` (feature `embedded`), and fakes in tests. A [`PdConnector`] opens a
//! [`PdRpc`] per member URL. It plays the role of the PD Go client's per-URL gRPC
//! connections (`servicediscovery.ServiceDiscovery.GetOrCreateGRPCConn`).

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tikv_tower_proto::{keyspacepb, pdpb};
use tokio::sync::mpsc;

use super::error::PdError;

/// An open bidirectional `Tso` stream: requests go into `requests`, replies come out of
/// `responses` in order.
pub struct TsoStream {
    /// Request sink (dropping it ends the stream).
    pub requests: mpsc::Sender<pdpb::TsoRequest>,
    /// Reply stream.
    pub responses: BoxStream<'static, Result<pdpb::TsoResponse, tonic::Status>>,
}

impl std::fmt::Debug for TsoStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsoStream").finish_non_exhaustive()
    }
}

/// The result of one PD RPC.
pub type RpcFuture<T> = BoxFuture<'static, Result<T, tonic::Status>>;

macro_rules! pd_rpc_trait {
    ($( $(#[$doc:meta])* $method:ident($req:ty) -> $resp:ty; )*) => {
        /// One connection to one PD member: one method per unary PD / Keyspace RPC, plus
        /// the `Tso` stream. Errors are raw gRPC statuses; [`PdClient`](super::PdClient)
        /// classifies them into [`PdError`].
        pub trait PdRpc: Send + Sync + 'static {
            /// The member URL this connection talks to.
            fn url(&self) -> &str;
            $( $(#[$doc])* fn $method(&self, req: $req) -> RpcFuture<$resp>; )*
            /// Opens a `Tso` stream.
            fn tso(&self) -> RpcFuture<TsoStream>;
        }
    };
}

/// Invokes `$m!` with the list of unary PD RPCs: `(method, Request, Response, service)`.
macro_rules! for_each_pd_rpc {
    ($m:ident) => {
        $m! {
            /// `PD/GetMembers`.
            get_members(pdpb::GetMembersRequest) -> pdpb::GetMembersResponse;
            /// `PD/GetRegion`.
            get_region(pdpb::GetRegionRequest) -> pdpb::GetRegionResponse;
            /// `PD/GetPrevRegion`.
            get_prev_region(pdpb::GetRegionRequest) -> pdpb::GetRegionResponse;
            /// `PD/GetRegionByID`.
            get_region_by_id(pdpb::GetRegionByIdRequest) -> pdpb::GetRegionResponse;
            /// `PD/ScanRegions`.
            scan_regions(pdpb::ScanRegionsRequest) -> pdpb::ScanRegionsResponse;
            /// `PD/BatchScanRegions`.
            batch_scan_regions(pdpb::BatchScanRegionsRequest) -> pdpb::BatchScanRegionsResponse;
            /// `PD/GetStore`.
            get_store(pdpb::GetStoreRequest) -> pdpb::GetStoreResponse;
            /// `PD/GetAllStores`.
            get_all_stores(pdpb::GetAllStoresRequest) -> pdpb::GetAllStoresResponse;
            /// `PD/GetGCSafePoint`.
            get_gc_safe_point(pdpb::GetGcSafePointRequest) -> pdpb::GetGcSafePointResponse;
            /// `PD/UpdateGCSafePoint`.
            update_gc_safe_point(pdpb::UpdateGcSafePointRequest) -> pdpb::UpdateGcSafePointResponse;
            /// `PD/UpdateServiceGCSafePoint`.
            update_service_gc_safe_point(pdpb::UpdateServiceGcSafePointRequest) -> pdpb::UpdateServiceGcSafePointResponse;
            /// `PD/AdvanceTxnSafePoint`.
            advance_txn_safe_point(pdpb::AdvanceTxnSafePointRequest) -> pdpb::AdvanceTxnSafePointResponse;
            /// `PD/AdvanceGCSafePoint`.
            advance_gc_safe_point(pdpb::AdvanceGcSafePointRequest) -> pdpb::AdvanceGcSafePointResponse;
            /// `PD/SetGCBarrier`.
            set_gc_barrier(pdpb::SetGcBarrierRequest) -> pdpb::SetGcBarrierResponse;
            /// `PD/DeleteGCBarrier`.
            delete_gc_barrier(pdpb::DeleteGcBarrierRequest) -> pdpb::DeleteGcBarrierResponse;
            /// `PD/GetGCState`.
            get_gc_state(pdpb::GetGcStateRequest) -> pdpb::GetGcStateResponse;
            /// `PD/SplitRegions`.
            split_regions(pdpb::SplitRegionsRequest) -> pdpb::SplitRegionsResponse;
            /// `PD/ScatterRegion`.
            scatter_region(pdpb::ScatterRegionRequest) -> pdpb::ScatterRegionResponse;
            /// `PD/GetOperator`.
            get_operator(pdpb::GetOperatorRequest) -> pdpb::GetOperatorResponse;
            /// `Keyspace/LoadKeyspace`.
            load_keyspace(keyspacepb::LoadKeyspaceRequest) -> keyspacepb::LoadKeyspaceResponse;
            /// `Keyspace/LoadKeyspaceByID`.
            load_keyspace_by_id(keyspacepb::LoadKeyspaceByIdRequest) -> keyspacepb::LoadKeyspaceResponse;
        }
    };
}
pub(crate) use for_each_pd_rpc;

for_each_pd_rpc!(pd_rpc_trait);

/// Opens connections to PD members by URL.
pub trait PdConnector: Send + Sync + 'static {
    /// Connects to the member at `url` (`http://host:port` or an in-process name).
    fn connect(&self, url: &str) -> BoxFuture<'static, Result<Arc<dyn PdRpc>, PdError>>;
}

/// Builds a [`TsoStream`] from a function that allocates `count` timestamps and returns
/// the last one (like `MockPd::tso`), answering requests in order on a spawned task.
/// Used by the in-process backend and by test fakes.
pub fn tso_stream_from_fn<F>(cluster_id: u64, alloc: F) -> TsoStream
where
    F: Fn(u32) -> Result<pdpb::Timestamp, tonic::Status> + Send + 'static,
{
    let (req_tx, mut req_rx) = mpsc::channel::<pdpb::TsoRequest>(64);
    let (resp_tx, resp_rx) = mpsc::channel(64);
    tokio::spawn(async move {
        while let Some(req) = req_rx.recv().await {
            let reply = alloc(req.count).map(|ts| pdpb::TsoResponse {
                header: Some(pdpb::ResponseHeader {
                    cluster_id,
                    error: None,
                }),
                count: req.count,
                timestamp: Some(ts),
            });
            let failed = reply.is_err();
            if resp_tx.send(reply).await.is_err() || failed {
                break;
            }
        }
    });
    TsoStream {
        requests: req_tx,
        responses: Box::pin(tokio_stream::wrappers::ReceiverStream::new(resp_rx)),
    }
}
