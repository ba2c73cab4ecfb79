//! The PD client and TSO over gRPC against mockstore served on loopback.
#![cfg(feature = "embedded")]

use tikv_tower::pd::{ApiCodec, Oracle, OracleConfig, PdClient};
use tikv_tower::transport::GrpcOptions;
use tikv_tower_mockstore::server::ServeOptions;
use tikv_tower_mockstore::MockCluster;

mod common;

use common::concurrent_timestamps;

#[tokio::test(flavor = "current_thread")]
async fn pd_and_tso_over_grpc() {
    let cluster = MockCluster::builder()
        .stores(3)
        .split_keys([b"m".as_slice()])
        .build();
    let served = cluster.serve_grpc(ServeOptions::default()).await.unwrap();
    let pd = PdClient::grpc(vec![served.pd_addr().to_string()], GrpcOptions::default())
        .await
        .unwrap();
    assert_eq!(pd.cluster_id(), cluster.cluster_id());
    assert_eq!(pd.leader_url(), Some(served.pd_url()));

    let pd = pd.with_codec(ApiCodec::v1_txn());
    let r = pd.get_region(b"z").await.unwrap().expect("region");
    assert_eq!(
        (r.region.start_key.as_ref(), r.region.end_key.as_ref()),
        (&b"m"[..], &b""[..])
    );
    let regions = pd
        .batch_scan_regions(&[(Vec::new(), Vec::new())], 0)
        .await
        .unwrap();
    assert_eq!(regions.len(), 2);

    let mut stores = pd.get_all_stores(true).await.unwrap();
    stores.sort_by_key(|s| s.id);
    let served_addrs: Vec<String> = served
        .store_addrs()
        .values()
        .map(|a| a.to_string())
        .collect();
    let pd_addrs: Vec<String> = stores.iter().map(|s| s.address.clone()).collect();
    assert_eq!(pd_addrs, served_addrs, "PD reports the served addresses");

    let oracle = Oracle::new(pd, OracleConfig::default());
    let mut all = concurrent_timestamps(&oracle, 500).await;
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 500);
    let rpcs = oracle.tso_client().request_count();
    eprintln!("500 concurrent timestamps: {rpcs} TSO RPCs");
    assert!(rpcs < 20, "500 timestamps took {rpcs} TSO RPCs");
    assert_eq!(oracle.tso_client().stream_count(), 1);
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_of_another_cluster_are_rejected() {
    let a = MockCluster::builder()
        .cluster_id(1111)
        .build()
        .serve_grpc(ServeOptions::default())
        .await
        .unwrap();
    let b = MockCluster::builder()
        .cluster_id(2222)
        .build()
        .serve_grpc(ServeOptions::default())
        .await
        .unwrap();
    let err = PdClient::grpc(
        vec![a.pd_addr().to_string(), b.pd_addr().to_string()],
        GrpcOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, tikv_tower::pd::PdError::ClusterIdMismatch { .. }),
        "{err:?}"
    );
    a.shutdown().await;
    b.shutdown().await;
}
