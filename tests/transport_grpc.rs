//! The gRPC transport and region cache against mockstore served on loopback.
#![cfg(feature = "embedded")]

use std::time::Duration;

use tikv_tower::transport::{GrpcOptions, Transport};
use tikv_tower_layers::call::TransportError;
use tikv_tower_mockstore::server::ServeOptions;
use tikv_tower_proto::rpc::StoreResponse;

mod common;

use common::{call, grpc_raw_cache, raw_cluster, raw_get, raw_get_eventually_ok, raw_put};

const TIMEOUT: Option<Duration> = Some(Duration::from_secs(5));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_rpcs_over_grpc_and_store_restart() {
    let cluster = raw_cluster(b"m");
    let served = cluster.serve_grpc(ServeOptions::default()).await.unwrap();
    let cache = grpc_raw_cache(&served).await;
    let transport = Transport::grpc(GrpcOptions::default());

    for key in [b"apple".as_slice(), b"zebra"] {
        let put = raw_put(key, key);
        let resp = call(&cache, &transport, key, put, TIMEOUT).await.unwrap();
        assert!(resp.region_error().is_none(), "{:?}", resp.region_error());
        // Several calls spread over the channel pool.
        for _ in 0..8 {
            match call(&cache, &transport, key, raw_get(key), TIMEOUT)
                .await
                .unwrap()
            {
                StoreResponse::RawGet(r) => assert_eq!(r.value, key.to_vec()),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    let store_id = cluster.stores()[0].id;
    served.stop_store(store_id).await.unwrap();
    let err = call(&cache, &transport, b"apple", raw_get(b"apple"), TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Unavailable { .. }), "{err:?}");
    served.start_store(store_id).await.unwrap();
    let ok = raw_get_eventually_ok(&cache, &transport, b"apple", TIMEOUT).await;
    assert!(ok, "the transport reconnects after the store restarts");
    served.shutdown().await;
}
