//! The gRPC transport and region cache against mockstore served on loopback.
#![cfg(feature = "embedded")]

use tikv_tower::pd::{ApiCodec, PdClient};
use tikv_tower::region_cache::{RegionCache, RegionCacheConfig};
use tikv_tower::transport::{GrpcOptions, GrpcTransport, Transport};
use tikv_tower_layers::call::{StoreCall, TransportError};
use tikv_tower_layers::locate::RegionLocator;
use tikv_tower_mockstore::cluster::BoundaryEncoding;
use tikv_tower_mockstore::server::ServeOptions;
use tikv_tower_mockstore::MockCluster;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
use tower::ServiceExt;

async fn call(
    cache: &RegionCache,
    transport: &GrpcTransport,
    key: &[u8],
    mut req: StoreRequest,
) -> Result<StoreResponse, TransportError> {
    let route = cache.locate_key(key).await.unwrap();
    let leader = route.leader.unwrap();
    let store = cache.store(leader.store_id).await.unwrap();
    let ctx = req.context_mut();
    ctx.region_id = route.region.id;
    ctx.region_epoch = route.region.region_epoch;
    ctx.peer = Some(leader);
    let call = StoreCall {
        store_id: store.id,
        addr: store.addr,
        request: req,
        timeout: Some(std::time::Duration::from_secs(5)),
    };
    transport.clone().oneshot(call).await
}

fn get(key: &[u8]) -> StoreRequest {
    StoreRequest::RawGet(Box::new(kvrpcpb::RawGetRequest {
        key: key.to_vec(),
        ..Default::default()
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_rpcs_over_grpc_and_store_restart() {
    let cluster = MockCluster::builder()
        .stores(1)
        .boundary_encoding(BoundaryEncoding::Raw)
        .split_keys([b"m".as_slice()])
        .build();
    let served = cluster.serve_grpc(ServeOptions::default()).await.unwrap();
    let pd = PdClient::grpc(vec![served.pd_addr().to_string()], GrpcOptions::default())
        .await
        .unwrap()
        .with_codec(ApiCodec::v1_raw());
    let cache = RegionCache::new(pd, RegionCacheConfig::default());
    let transport = Transport::grpc(GrpcOptions::default());

    for key in [b"apple".as_slice(), b"zebra"] {
        let put = StoreRequest::RawPut(Box::new(kvrpcpb::RawPutRequest {
            key: key.to_vec(),
            value: key.to_vec(),
            ..Default::default()
        }));
        let resp = call(&cache, &transport, key, put).await.unwrap();
        assert!(resp.region_error().is_none(), "{:?}", resp.region_error());
        // Several calls spread over the channel pool.
        for _ in 0..8 {
            match call(&cache, &transport, key, get(key)).await.unwrap() {
                StoreResponse::RawGet(r) => assert_eq!(r.value, key.to_vec()),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    let store_id = cluster.stores()[0].id;
    served.stop_store(store_id).await.unwrap();
    let err = call(&cache, &transport, b"apple", get(b"apple"))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Unavailable { .. }), "{err:?}");
    served.start_store(store_id).await.unwrap();
    let mut ok = false;
    for _ in 0..20 {
        if call(&cache, &transport, b"apple", get(b"apple"))
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ok, "the transport reconnects after the store restarts");
    served.shutdown().await;
}
