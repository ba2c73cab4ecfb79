//! Dispatch of every [`StoreRequest`] variant to its unary `tikvpb.Tikv` method.

use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
use tikv_tower_proto::tikvpb::tikv_client::TikvClient;
use tonic::transport::Channel;

macro_rules! dispatch_unary {
    ($client:ident, $req:ident, $timeout:ident; $($variant:ident => $method:ident,)*) => {
        match $req {
            $(
                StoreRequest::$variant(r) => {
                    let mut request = tonic::Request::new(*r);
                    if let Some(t) = $timeout {
                        request.set_timeout(t);
                    }
                    $client.$method(request).await.map(|resp| StoreResponse::$variant(Box::new(resp.into_inner())))
                }
            )*
        }
    };
}

/// Sends `req` as its unary RPC on `client` (client-go `tikvrpc.CallRPC`). `timeout` is
/// also sent to the server as `grpc-timeout`.
pub(crate) async fn call_unary(
    mut client: TikvClient<Channel>,
    req: StoreRequest,
    timeout: Option<std::time::Duration>,
) -> Result<StoreResponse, tonic::Status> {
    dispatch_unary!(client, req, timeout;
        Get => kv_get,
        Scan => kv_scan,
        BatchGet => kv_batch_get,
        Prewrite => kv_prewrite,
        Commit => kv_commit,
        Cleanup => kv_cleanup,
        BatchRollback => kv_batch_rollback,
        PessimisticLock => kv_pessimistic_lock,
        PessimisticRollback => kv_pessimistic_rollback,
        TxnHeartBeat => kv_txn_heart_beat,
        CheckTxnStatus => kv_check_txn_status,
        CheckSecondaryLocks => kv_check_secondary_locks,
        ResolveLock => kv_resolve_lock,
        ScanLock => kv_scan_lock,
        Gc => kv_gc,
        DeleteRange => kv_delete_range,
        Flush => kv_flush,
        BufferBatchGet => kv_buffer_batch_get,
        RawGet => raw_get,
        RawBatchGet => raw_batch_get,
        RawPut => raw_put,
        RawBatchPut => raw_batch_put,
        RawDelete => raw_delete,
        RawBatchDelete => raw_batch_delete,
        RawScan => raw_scan,
        RawBatchScan => raw_batch_scan,
        RawDeleteRange => raw_delete_range,
        RawGetKeyTtl => raw_get_key_ttl,
        RawCompareAndSwap => raw_compare_and_swap,
        RawChecksum => raw_checksum,
        UnsafeDestroyRange => unsafe_destroy_range,
        SplitRegion => split_region,
        MvccGetByKey => mvcc_get_by_key,
        MvccGetByStartTs => mvcc_get_by_start_ts,
    )
}
