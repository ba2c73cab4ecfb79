//! The BatchCommands transport against mockstore served on loopback.
#![cfg(feature = "embedded")]

use std::time::Duration;

use tikv_tower::pd::{ApiCodec, PdClient};
use tikv_tower::region_cache::{RegionCache, RegionCacheConfig};
use tikv_tower::transport::{BatchTransport, GrpcOptions, Transport};
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
    transport: &BatchTransport,
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
        timeout: Some(Duration::from_secs(5)),
    };
    transport.clone().oneshot(call).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_the_stream() {
    let cluster = MockCluster::builder()
        .stores(1)
        .boundary_encoding(BoundaryEncoding::Raw)
        .split_keys([b"k50".as_slice()])
        .build();
    let served = cluster.serve_grpc(ServeOptions::default()).await.unwrap();
    let pd = PdClient::grpc(vec![served.pd_addr().to_string()], GrpcOptions::default())
        .await
        .unwrap()
        .with_codec(ApiCodec::v1_raw());
    let cache = RegionCache::new(pd, RegionCacheConfig::default());
    let transport = Transport::batch(GrpcOptions::default(), 128);

    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let (cache, transport) = (cache.clone(), transport.clone());
        tasks.push(tokio::spawn(async move {
            let key = format!("k{i:03}").into_bytes();
            let put = StoreRequest::RawPut(Box::new(kvrpcpb::RawPutRequest {
                key: key.clone(),
                value: i.to_be_bytes().to_vec(),
                ..Default::default()
            }));
            let resp = call(&cache, &transport, &key, put).await.unwrap();
            assert!(resp.region_error().is_none(), "{:?}", resp.region_error());
            let get = StoreRequest::RawGet(Box::new(kvrpcpb::RawGetRequest {
                key: key.clone(),
                ..Default::default()
            }));
            match call(&cache, &transport, &key, get).await.unwrap() {
                StoreResponse::RawGet(r) => assert_eq!(r.value, i.to_be_bytes().to_vec()),
                other => panic!("unexpected {other:?}"),
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stats = transport.connector().stats();
    eprintln!("400 batched requests in {} frames", stats.frames());
    assert_eq!(stats.requests(), 400);
    assert!(stats.frames() <= 400);
    // A unary-only kind goes over the unary pool.
    let ttl = StoreRequest::RawGetKeyTtl(Box::new(kvrpcpb::RawGetKeyTtlRequest {
        key: b"k001".to_vec(),
        ..Default::default()
    }));
    assert!(matches!(
        call(&cache, &transport, b"k001", ttl).await,
        Ok(StoreResponse::RawGetKeyTtl(_))
    ));

    // The stream breaks with the store and is reopened after it comes back.
    let store_id = cluster.stores()[0].id;
    served.stop_store(store_id).await.unwrap();
    let get = || {
        StoreRequest::RawGet(Box::new(kvrpcpb::RawGetRequest {
            key: b"k001".to_vec(),
            ..Default::default()
        }))
    };
    let err = call(&cache, &transport, b"k001", get()).await.unwrap_err();
    assert!(matches!(err, TransportError::Unavailable { .. }), "{err:?}");
    served.start_store(store_id).await.unwrap();
    let mut ok = false;
    for _ in 0..20 {
        if call(&cache, &transport, b"k001", get()).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "the batch stream is reopened");
    served.shutdown().await;
}
