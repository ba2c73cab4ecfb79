//! The BatchCommands transport against mockstore served on loopback.
#![cfg(feature = "embedded")]

use std::time::Duration;

use tikv_tower::transport::{GrpcOptions, Transport};
use tikv_tower_layers::call::TransportError;
use tikv_tower_mockstore::server::ServeOptions;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};

mod common;

use common::{call, grpc_raw_cache, raw_cluster, raw_get, raw_get_eventually_ok, raw_put};

const TIMEOUT: Option<Duration> = Some(Duration::from_secs(5));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_the_stream() {
    let cluster = raw_cluster(b"k50");
    let served = cluster.serve_grpc(ServeOptions::default()).await.unwrap();
    let cache = grpc_raw_cache(&served).await;
    let transport = Transport::batch(GrpcOptions::default(), 128);

    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let (cache, transport) = (cache.clone(), transport.clone());
        tasks.push(tokio::spawn(async move {
            let key = format!("k{i:03}").into_bytes();
            let put = raw_put(&key, &i.to_be_bytes());
            let resp = call(&cache, &transport, &key, put, TIMEOUT).await.unwrap();
            assert!(resp.region_error().is_none(), "{:?}", resp.region_error());
            match call(&cache, &transport, &key, raw_get(&key), TIMEOUT)
                .await
                .unwrap()
            {
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
        key: "k001".into(),
        ..Default::default()
    }));
    assert!(matches!(
        call(&cache, &transport, b"k001", ttl, TIMEOUT).await,
        Ok(StoreResponse::RawGetKeyTtl(_))
    ));

    // The stream breaks with the store and is reopened after it comes back.
    let store_id = cluster.stores()[0].id;
    served.stop_store(store_id).await.unwrap();
    let err = call(&cache, &transport, b"k001", raw_get(b"k001"), TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Unavailable { .. }), "{err:?}");
    served.start_store(store_id).await.unwrap();
    let ok = raw_get_eventually_ok(&cache, &transport, b"k001", TIMEOUT).await;
    assert!(ok, "the batch stream is reopened");
    served.shutdown().await;
}
