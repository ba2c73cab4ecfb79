//! The transport against the in-process mockstore: raw writes and reads, stopped stores.
#![cfg(feature = "embedded")]

use tikv_tower::pd::ApiCodec;
use tikv_tower::transport::Transport;
use tikv_tower_layers::call::TransportError;
use tikv_tower_proto::rpc::StoreResponse;

mod common;

use common::{call, in_process_cache, raw_cluster, raw_get, raw_put};

#[tokio::test]
async fn raw_put_get_and_stopped_store() {
    let cluster = raw_cluster(b"m");
    let cache = in_process_cache(&cluster, ApiCodec::v1_raw()).await;
    let transport = Transport::in_process(cluster.clone());

    for key in [b"apple".as_slice(), b"zebra"] {
        let put = raw_put(key, b"v");
        let resp = call(&cache, &transport, key, put, None).await.unwrap();
        assert!(resp.region_error().is_none(), "{:?}", resp.region_error());
        match call(&cache, &transport, key, raw_get(key), None)
            .await
            .unwrap()
        {
            StoreResponse::RawGet(r) => {
                assert_eq!((r.value.as_ref(), r.error.as_str()), (&b"v"[..], ""))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    let store_id = cluster.stores()[0].id;
    cluster.stop_store(store_id).unwrap();
    let err = call(&cache, &transport, b"apple", raw_get(b"apple"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Unavailable { .. }), "{err:?}");
    cluster.start_store(store_id).unwrap();
    let get = raw_get(b"apple");
    assert!(call(&cache, &transport, b"apple", get, None).await.is_ok());
}
