//! The PD client against the in-process mockstore PD.
#![cfg(feature = "embedded")]

use tikv_tower::pd::{ApiCodec, KeyMode, PdClient, NULL_KEYSPACE_ID};
use tikv_tower_mockstore::cluster::ApiVersion;
use tikv_tower_mockstore::MockCluster;

fn cluster() -> MockCluster {
    MockCluster::builder()
        .stores(3)
        .split_keys([b"b".as_slice(), b"m"])
        .build()
}

#[tokio::test]
async fn discovers_the_in_process_leader() {
    let c = cluster();
    let pd = PdClient::in_process(c.clone()).await.unwrap();
    assert_eq!(pd.cluster_id(), c.cluster_id());
    assert!(pd.leader_url().is_some());
}

#[tokio::test]
async fn regions_are_decoded_into_request_key_space() {
    let pd = PdClient::in_process(cluster())
        .await
        .unwrap()
        .with_codec(ApiCodec::v1_txn());
    let r = pd.get_region(b"c").await.unwrap().expect("region");
    assert_eq!(
        (r.region.start_key.as_ref(), r.region.end_key.as_ref()),
        (&b"b"[..], &b"m"[..])
    );
    assert!(r.leader.is_some());
    let prev = pd
        .get_prev_region(b"c")
        .await
        .unwrap()
        .expect("prev region");
    assert_eq!(
        (prev.region.start_key.as_ref(), prev.region.end_key.as_ref()),
        (&b""[..], &b"b"[..])
    );
    let by_id = pd
        .get_region_by_id(r.region.id)
        .await
        .unwrap()
        .expect("by id");
    assert_eq!(by_id.region, r.region);
    assert!(pd.get_region_by_id(999_999).await.unwrap().is_none());
    let all = pd
        .batch_scan_regions(&[(b"a".to_vec(), b"z".to_vec())], 0)
        .await
        .unwrap();
    let bounds: Vec<(&[u8], &[u8])> = all
        .iter()
        .map(|r| (r.region.start_key.as_ref(), r.region.end_key.as_ref()))
        .collect();
    assert_eq!(
        bounds,
        vec![
            (&b""[..], &b"b"[..]),
            (&b"b"[..], &b"m"[..]),
            (&b"m"[..], &b""[..])
        ]
    );
    let scanned = pd.scan_regions(b"", b"", 0).await.unwrap();
    assert_eq!(scanned.len(), 3);
}

#[tokio::test]
async fn stores() {
    let pd = PdClient::in_process(cluster()).await.unwrap();
    let stores = pd.get_all_stores(true).await.unwrap();
    assert_eq!(stores.len(), 3);
    let s = pd.get_store(stores[0].id).await.unwrap().expect("store");
    assert_eq!(s.address, stores[0].address);
    assert!(pd.get_store(999_999).await.unwrap().is_none());
}

#[tokio::test]
async fn keyspaces_and_v2_regions() {
    let c = MockCluster::builder()
        .api_version(ApiVersion::V2)
        .keyspace("ks1", 1)
        .build();
    let pd = PdClient::in_process(c).await.unwrap();
    let default = pd.load_keyspace("DEFAULT").await.unwrap();
    assert_eq!(default.name, "DEFAULT");
    let ks1 = pd.load_keyspace("ks1").await.unwrap();
    let by_id = pd.load_keyspace_by_id(1).await.unwrap();
    assert_eq!(by_id.name, ks1.name);
    assert!(pd.load_keyspace("nope").await.is_err());

    let pd = pd.with_codec(ApiCodec::v2(KeyMode::Txn, 1));
    let r = pd
        .get_region(b"x\0\0\x01key")
        .await
        .unwrap()
        .expect("region");
    assert!(
        r.region.start_key.as_ref() >= b"x\0\0\x01".as_slice(),
        "{:?}",
        r.region.start_key
    );
    assert!(r.region.end_key.as_ref() <= b"x\0\0\x02".as_slice() && !r.region.end_key.is_empty());
}

#[tokio::test]
async fn gc_safe_points_and_barriers() {
    let pd = PdClient::in_process(cluster()).await.unwrap();
    // PD >= v9: the GC safe point may not pass the txn safe point.
    assert!(pd.update_gc_safe_point(100).await.is_err());
    let adv = pd
        .advance_txn_safe_point(NULL_KEYSPACE_ID, 200)
        .await
        .unwrap();
    assert_eq!(adv.new_txn_safe_point, 200);
    assert_eq!(pd.update_gc_safe_point(100).await.unwrap(), 100);
    assert_eq!(
        pd.update_gc_safe_point(50).await.unwrap(),
        100,
        "never goes back"
    );
    assert_eq!(pd.get_gc_safe_point().await.unwrap(), 100);
    let (_, new_gc) = pd
        .advance_gc_safe_point(NULL_KEYSPACE_ID, 150)
        .await
        .unwrap();
    assert_eq!(new_gc, 150);
    let barrier = pd
        .set_gc_barrier(NULL_KEYSPACE_ID, "b1", 300, None)
        .await
        .unwrap();
    assert_eq!(barrier.map(|b| b.barrier_ts), Some(300));
    let state = pd.get_gc_state(NULL_KEYSPACE_ID, false).await.unwrap();
    assert_eq!(state.txn_safe_point, 200);
    assert!(state.gc_barriers.iter().any(|b| b.barrier_id == "b1"));
    let deleted = pd.delete_gc_barrier(NULL_KEYSPACE_ID, "b1").await.unwrap();
    assert_eq!(deleted.map(|b| b.barrier_id), Some("b1".to_string()));
}
