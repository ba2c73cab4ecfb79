//! Test hooks of the cluster: request recorder, `schedule_delay`, PD view
//! lag, pre-split, down peers.

use std::time::Duration;

use tikv_tower_mockstore::cluster::{ApiVersion, BoundaryEncoding};
use tikv_tower_mockstore::codec::encode_bytes;
use tikv_tower_mockstore::MockCluster;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{RpcKind, StoreRequest};

mod common;

use common::{peer_ctx, put_prewrite};

#[tokio::test]
async fn recorder_logs_requests_and_outcomes() {
    let c = MockCluster::builder().stores(2).build();
    let region = c.regions()[0].clone();
    let get = |store| -> StoreRequest {
        kvrpcpb::RawGetRequest {
            context: Some(peer_ctx(&region, store)),
            key: "k".into(),
            ..Default::default()
        }
        .into()
    };
    c.store(1)
        .expect("store")
        .handle(get(1))
        .await
        .expect("not recorded");
    c.recorder().start();
    c.store(1).expect("store").handle(get(1)).await.expect("ok");
    c.store(2)
        .expect("store")
        .handle(get(2))
        .await
        .expect("not leader, still ok");
    c.stop_store(2).expect("stop");
    let _ = c.store(2).expect("store").handle(get(2)).await;
    c.recorder().stop();
    let log = c.recorder().take();
    assert_eq!(log.len(), 3);
    assert_eq!(
        log.iter().map(|r| r.store_id).collect::<Vec<_>>(),
        vec![1, 2, 2]
    );
    assert!(log.iter().all(|r| r.request.kind() == RpcKind::RawGet));
    assert!(log[0]
        .response
        .as_ref()
        .is_ok_and(|r| r.region_error().is_none()));
    assert!(log[1]
        .response
        .as_ref()
        .is_ok_and(|r| r.region_error().is_some_and(|e| e.not_leader.is_some())));
    assert!(matches!(
        log[2].response,
        Err((tonic::Code::Unavailable, _))
    ));
    assert!(c.recorder().take().is_empty());
}

#[tokio::test(start_paused = true)]
async fn schedule_delay_hits_the_next_prewrite_of_that_txn_only() {
    let c = MockCluster::builder().build();
    let region = c.regions()[0].clone();
    c.faults()
        .schedule_delay(10, region.id, Duration::from_millis(250));
    let prewrite = |start_ts: u64, key: &[u8]| -> StoreRequest {
        put_prewrite(peer_ctx(&region, 1), start_ts, key).into()
    };
    let store = c.store(1).expect("store");
    let t = tokio::time::Instant::now();
    store.handle(prewrite(11, b"a")).await.expect("other txn");
    assert_eq!(t.elapsed(), Duration::ZERO);
    store.handle(prewrite(10, b"b")).await.expect("delayed");
    assert_eq!(t.elapsed(), Duration::from_millis(250));
    store.handle(prewrite(10, b"c")).await.expect("only once");
    assert_eq!(t.elapsed(), Duration::from_millis(250));
}

#[tokio::test]
async fn pd_lag_serves_stale_regions_until_sync() {
    let c = MockCluster::builder()
        .boundary_encoding(BoundaryEncoding::Raw)
        .build();
    let before = c.regions()[0].clone();
    c.set_pd_lag(true);
    c.split_keys([b"m"]).expect("split");
    // PD still reports the old single region; the store knows better.
    assert_eq!(c.region_count(), 1);
    let stale = c.region_by_key(b"z").expect("pd region");
    assert_eq!(stale.epoch, before.epoch);
    let req: StoreRequest = kvrpcpb::RawGetRequest {
        context: Some(peer_ctx(&stale, 1)),
        key: "z".into(),
        ..Default::default()
    }
    .into();
    let resp = c.store(1).expect("store").handle(req).await.expect("rpc");
    assert!(resp
        .region_error()
        .and_then(|e| e.epoch_not_match.as_ref())
        .is_some());
    assert_eq!(
        c.live_region(before.id).map(|r| r.start_key),
        Some(b"m".to_vec())
    );
    c.sync_pd();
    assert_eq!(c.region_count(), 2);
    c.set_pd_lag(false);
    assert_eq!(c.region_count(), 2);
}

#[test]
fn presplit_cuts_evenly() {
    let c = MockCluster::builder()
        .boundary_encoding(BoundaryEncoding::Raw)
        .presplit(4)
        .build();
    let starts: Vec<Vec<u8>> = c.regions().iter().map(|r| r.start_key.clone()).collect();
    assert_eq!(starts, vec![Vec::new(), vec![64], vec![128], vec![192]]);
    let v2 = MockCluster::builder()
        .api_version(ApiVersion::V2)
        .presplit(40)
        .build();
    let in_default_raw = v2
        .regions()
        .iter()
        .filter(|r| {
            r.start_key >= encode_bytes(b"r\0\0\0") && r.start_key < encode_bytes(b"r\0\0\x01")
        })
        .count();
    assert_eq!(in_default_raw, 40);
}

#[test]
fn down_peers_are_reported() {
    let c = MockCluster::builder().stores(3).build();
    let region = c.regions()[0].clone();
    let r = c.set_peer_down(region.id, 2, true).expect("down");
    assert_eq!(
        r.down_peers,
        vec![region.peer_on_store(2).expect("peer").id]
    );
    let r = c.set_peer_down(region.id, 2, false).expect("up");
    assert!(r.down_peers.is_empty());
    assert!(c.set_peer_down(region.id, 9, true).is_err());
}

#[tokio::test]
async fn lose_pessimistic_locks_drops_them_in_the_region_only() {
    let c = MockCluster::builder().split_keys([b"m"]).build();
    let lock = |key: &[u8], ts: u64| {
        let region = c.region_for_user_key(key).expect("region");
        let req: StoreRequest = kvrpcpb::PessimisticLockRequest {
            context: Some(peer_ctx(&region, 1)),
            mutations: vec![kvrpcpb::Mutation {
                op: kvrpcpb::Op::PessimisticLock as i32,
                key: key.to_vec().into(),
                ..Default::default()
            }],
            primary_lock: key.to_vec().into(),
            start_version: ts,
            for_update_ts: ts,
            lock_ttl: 3000,
            ..Default::default()
        }
        .into();
        let store = c.store(1).expect("store");
        async move {
            let resp = store.handle(req).await.expect("rpc");
            assert!(resp.region_error().is_none());
        }
    };
    lock(b"a", 10).await;
    lock(b"b", 11).await;
    lock(b"x", 12).await;
    let left = c.region_for_user_key(b"a").expect("left").id;
    assert_eq!(c.lose_pessimistic_locks(left), 2);
    assert_eq!(c.lose_pessimistic_locks(left), 0);
    assert!(c.engine().store().load_lock(b"x").is_some());
    assert!(c.engine().store().load_lock(b"a").is_none());
    assert_eq!(c.lose_pessimistic_locks(424242), 0);
}
