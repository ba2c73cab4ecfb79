//! Setup shared by the transport, PD and TSO integration tests.

use std::time::Duration;

use tikv_tower::pd::{ApiCodec, Oracle, PdClient};
use tikv_tower::region_cache::{RegionCache, RegionCacheConfig};
use tikv_tower::transport::{GrpcOptions, StoreConnector, Transport};
use tikv_tower_layers::call::{StoreCall, TransportError};
use tikv_tower_layers::locate::{RegionLocator, RegionRoute};
use tikv_tower_mockstore::cluster::BoundaryEncoding;
use tikv_tower_mockstore::server::ServedCluster;
use tikv_tower_mockstore::MockCluster;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
use tower::ServiceExt;

/// A one-store cluster with raw boundaries, split at `split`.
#[allow(dead_code)]
pub fn raw_cluster(split: &[u8]) -> MockCluster {
    MockCluster::builder()
        .stores(1)
        .boundary_encoding(BoundaryEncoding::Raw)
        .split_keys([split])
        .build()
}

/// A raw-mode region cache over a gRPC PD client of `served`.
#[allow(dead_code)]
pub async fn grpc_raw_cache(served: &ServedCluster) -> RegionCache {
    let pd = PdClient::grpc(vec![served.pd_addr().to_string()], GrpcOptions::default())
        .await
        .unwrap()
        .with_codec(ApiCodec::v1_raw());
    RegionCache::new(pd, RegionCacheConfig::default())
}

/// A region cache over an in-process PD client of `cluster`, with `codec`.
#[allow(dead_code)]
pub async fn in_process_cache(cluster: &MockCluster, codec: ApiCodec) -> RegionCache {
    let pd = PdClient::in_process(cluster.clone())
        .await
        .unwrap()
        .with_codec(codec);
    RegionCache::new(pd, RegionCacheConfig::default())
}

/// Sends `req` for `key` to the leader of its region, as the cache locates it.
#[allow(dead_code)]
pub async fn call<C: StoreConnector>(
    cache: &RegionCache,
    transport: &Transport<C>,
    key: &[u8],
    req: StoreRequest,
    timeout: Option<Duration>,
) -> Result<StoreResponse, TransportError> {
    let route = cache.locate_key(key).await.unwrap();
    call_route(cache, transport, &route, req, timeout).await
}

/// Sends `req`, stamped with `route` (its leader peer), to that leader's store.
#[allow(dead_code)]
pub async fn call_route<C: StoreConnector>(
    cache: &RegionCache,
    transport: &Transport<C>,
    route: &RegionRoute,
    mut req: StoreRequest,
    timeout: Option<Duration>,
) -> Result<StoreResponse, TransportError> {
    let leader = route.leader.expect("leader");
    let store = cache.store(leader.store_id).await.unwrap();
    let ctx = req.context_mut();
    ctx.region_id = route.region.id;
    ctx.region_epoch = route.region.region_epoch;
    ctx.peer = Some(leader);
    let call = StoreCall {
        store_id: store.id,
        addr: store.addr,
        request: req,
        timeout,
    };
    transport.clone().oneshot(call).await
}

/// Retries a RawGet of `key` (up to 20 times, 50 ms apart) until it succeeds.
#[allow(dead_code)]
pub async fn raw_get_eventually_ok<C: StoreConnector>(
    cache: &RegionCache,
    transport: &Transport<C>,
    key: &[u8],
    timeout: Option<Duration>,
) -> bool {
    for _ in 0..20 {
        if call(cache, transport, key, raw_get(key), timeout)
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A RawGet of `key`.
#[allow(dead_code)]
pub fn raw_get(key: &[u8]) -> StoreRequest {
    StoreRequest::RawGet(Box::new(kvrpcpb::RawGetRequest {
        key: key.to_vec().into(),
        ..Default::default()
    }))
}

/// A RawPut of `key` = `value`.
#[allow(dead_code)]
pub fn raw_put(key: &[u8], value: &[u8]) -> StoreRequest {
    StoreRequest::RawPut(Box::new(kvrpcpb::RawPutRequest {
        key: key.to_vec().into(),
        value: value.to_vec().into(),
        ..Default::default()
    }))
}

/// `n` timestamps requested concurrently from `oracle`, in completion order.
#[allow(dead_code)]
pub async fn concurrent_timestamps(oracle: &Oracle, n: usize) -> Vec<u64> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let o = oracle.clone();
            tokio::spawn(async move { o.get_timestamp().await })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.unwrap().unwrap());
    }
    all
}
