//! The transport against the in-process mockstore: raw writes and reads, stopped stores.
#![cfg(feature = "embedded")]

use tikv_tower::pd::{ApiCodec, PdClient};
use tikv_tower::region_cache::{RegionCache, RegionCacheConfig};
use tikv_tower::transport::Transport;
use tikv_tower_layers::call::{StoreCall, TransportError};
use tikv_tower_layers::locate::RegionLocator;
use tikv_tower_mockstore::cluster::BoundaryEncoding;
use tikv_tower_mockstore::MockCluster;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
use tower::ServiceExt;

async fn call(
    cache: &RegionCache,
    transport: &Transport<impl tikv_tower::transport::StoreConnector>,
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
    transport
        .clone()
        .oneshot(StoreCall {
            store_id: store.id,
            addr: store.addr,
            request: req,
            timeout: None,
        })
        .await
}

#[tokio::test]
async fn raw_put_get_and_stopped_store() {
    let cluster = MockCluster::builder()
        .stores(1)
        .boundary_encoding(BoundaryEncoding::Raw)
        .split_keys([b"m".as_slice()])
        .build();
    let pd = PdClient::in_process(cluster.clone())
        .await
        .unwrap()
        .with_codec(ApiCodec::v1_raw());
    let cache = RegionCache::new(pd, RegionCacheConfig::default());
    let transport = Transport::in_process(cluster.clone());

    for key in [b"apple".as_slice(), b"zebra"] {
        let put = StoreRequest::RawPut(Box::new(kvrpcpb::RawPutRequest {
            key: key.to_vec(),
            value: b"v".to_vec(),
            ..Default::default()
        }));
        let resp = call(&cache, &transport, key, put).await.unwrap();
        assert!(resp.region_error().is_none(), "{:?}", resp.region_error());
        let get = StoreRequest::RawGet(Box::new(kvrpcpb::RawGetRequest {
            key: key.to_vec(),
            ..Default::default()
        }));
        match call(&cache, &transport, key, get).await.unwrap() {
            StoreResponse::RawGet(r) => {
                assert_eq!((r.value.as_slice(), r.error.as_str()), (&b"v"[..], ""))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    let store_id = cluster.stores()[0].id;
    cluster.stop_store(store_id).unwrap();
    let get = StoreRequest::RawGet(Box::new(kvrpcpb::RawGetRequest {
        key: b"apple".to_vec(),
        ..Default::default()
    }));
    let err = call(&cache, &transport, b"apple", get.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Unavailable { .. }), "{err:?}");
    cluster.start_store(store_id).unwrap();
    assert!(call(&cache, &transport, b"apple", get).await.is_ok());
}
