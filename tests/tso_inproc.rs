//! The TSO dispatcher and Oracle against the in-process mockstore PD.
#![cfg(feature = "embedded")]

use std::time::{SystemTime, UNIX_EPOCH};

use tikv_tower::pd::tso::extract_physical;
use tikv_tower::pd::{Oracle, OracleConfig, PdClient};
use tikv_tower_mockstore::MockCluster;

mod common;

use common::concurrent_timestamps;

#[tokio::test(flavor = "current_thread")]
async fn concurrent_requests_are_batched_and_strictly_increasing() {
    let pd = PdClient::in_process(MockCluster::builder().build())
        .await
        .unwrap();
    let oracle = Oracle::new(pd, OracleConfig::default());
    let first = oracle.get_timestamp().await.unwrap();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        (extract_physical(first) - now_ms).abs() < 10_000,
        "physical part tracks the wall clock"
    );

    let before = oracle.tso_client().request_count();
    let mut all = concurrent_timestamps(&oracle, 1000).await;
    let rpcs = oracle.tso_client().request_count() - before;
    eprintln!("1000 concurrent timestamps: {rpcs} TSO RPCs");
    assert!(rpcs < 20, "1000 timestamps took {rpcs} TSO RPCs");
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 1000);
    assert!(all[0] > first);

    let mut last = 0;
    for _ in 0..100 {
        let ts = oracle.get_timestamp().await.unwrap();
        assert!(ts > last);
        last = ts;
    }
    assert!(oracle.get_low_resolution_ts() >= last);
    assert!(!oracle.is_expired(last, 60_000));
}
