//! `close()` of a client built on the store core stops every background task it started,
//! over real gRPC (mockstore served on 127.0.0.1, ports from :0): the PD membership loop,
//! the TSO dispatcher and updater, and the BatchCommands send/receive loops.
#![cfg(feature = "embedded")]

mod raw_common;

use raw_common::*;
use tikv_tower::config::{ApiVersion, Config};
use tikv_tower::{Error, RawClient};
use tikv_tower_mockstore::server::ServeOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_stops_pd_tso_and_batch_stream_tasks() {
    let c = cluster(ApiVersion::V1, 3, split_keys());
    let served = c.serve_grpc(ServeOptions::default()).await.expect("serve");
    let client = RawClient::connect_with_config([served.pd_addr().to_string()], Config::default())
        .await
        .expect("connect");
    let store = client.store().expect("built on a store core").clone();
    client.put("k", "v").await.unwrap();
    assert_eq!(client.get("k").await.unwrap(), Some(b"v".to_vec()));
    store
        .oracle()
        .get_timestamp()
        .await
        .expect("ts over the PD stream");

    let running = store.tasks().running();
    for name in [
        "pd-member-loop",
        "tso-dispatcher",
        "tso-low-resolution-updater",
        "batch-send-loop",
        "batch-recv-loop",
    ] {
        assert!(running.contains(&name), "{name} not running: {running:?}");
    }

    client.close();
    assert!(store.is_closed());
    let tasks = store.tasks().clone();
    tokio::time::timeout(std::time::Duration::from_secs(5), tasks.join())
        .await
        .expect("every task ends after close");
    assert!(tasks.running().is_empty(), "{:?}", tasks.running());
    assert!(matches!(client.get("k").await, Err(Error::Closed)));
    assert!(store.oracle().get_timestamp().await.is_err());
}
