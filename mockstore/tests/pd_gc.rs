//! PD GC driving the engine, in-process: advancing the cluster-level GC safe point
//! garbage-collects old MVCC versions (TiKV's GC worker, stood in for by PD).

use tikv_tower_mockstore::MockCluster;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::pdpb::{self, pd_server::Pd};
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
use tonic::Request;

mod common;

use common::leader_ctx;

fn version(ts: pdpb::Timestamp) -> u64 {
    ((ts.physical as u64) << 18) | ts.logical as u64
}

async fn write(cluster: &MockCluster, key: &[u8], value: &[u8]) {
    let pd = cluster.pd();
    let store = cluster.store(1).expect("store");
    let start = version(pd.tso(1).expect("tso"));
    let pw = kvrpcpb::PrewriteRequest {
        context: Some(leader_ctx(cluster, key)),
        mutations: vec![kvrpcpb::Mutation {
            op: kvrpcpb::Op::Put as i32,
            key: key.to_vec().into(),
            value: value.to_vec().into(),
            ..Default::default()
        }],
        primary_lock: key.to_vec().into(),
        start_version: start,
        lock_ttl: 3000,
        txn_size: 1,
        ..Default::default()
    };
    match store
        .handle(StoreRequest::Prewrite(Box::new(pw)))
        .await
        .expect("prewrite")
    {
        StoreResponse::Prewrite(r) => assert!(r.errors.is_empty(), "{r:?}"),
        other => panic!("{other:?}"),
    }
    let cm = kvrpcpb::CommitRequest {
        context: Some(leader_ctx(cluster, key)),
        start_version: start,
        keys: vec![key.to_vec().into()],
        commit_version: version(pd.tso(1).expect("tso")),
        ..Default::default()
    };
    match store
        .handle(StoreRequest::Commit(Box::new(cm)))
        .await
        .expect("commit")
    {
        StoreResponse::Commit(r) => assert!(r.error.is_none(), "{r:?}"),
        other => panic!("{other:?}"),
    }
}

async fn writes_of(cluster: &MockCluster, key: &[u8]) -> usize {
    let store = cluster.store(1).expect("store");
    let req = kvrpcpb::MvccGetByKeyRequest {
        context: Some(leader_ctx(cluster, key)),
        key: key.to_vec().into(),
    };
    match store
        .handle(StoreRequest::MvccGetByKey(Box::new(req)))
        .await
        .expect("mvcc")
    {
        StoreResponse::MvccGetByKey(r) => r.info.map_or(0, |i| i.writes.len()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn advancing_the_gc_safe_point_collects_old_versions() {
    let cluster = MockCluster::builder().build();
    let pd = cluster.pd();
    let header = Some(pdpb::RequestHeader {
        cluster_id: cluster.cluster_id(),
        ..Default::default()
    });
    for v in [b"1", b"2", b"3"] {
        write(&cluster, b"k", v).await;
    }
    assert_eq!(writes_of(&cluster, b"k").await, 3);

    let now = version(pd.tso(1).expect("tso"));
    let txn = pd
        .advance_txn_safe_point(Request::new(pdpb::AdvanceTxnSafePointRequest {
            header: header.clone(),
            keyspace_scope: None,
            target: now,
        }))
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!(txn.new_txn_safe_point, now);
    let gc = pd
        .advance_gc_safe_point(Request::new(pdpb::AdvanceGcSafePointRequest {
            header,
            keyspace_scope: None,
            target: now,
        }))
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!(gc.new_gc_safe_point, now);
    assert_eq!(pd.gc_safe_points(), (now, now));
    // Only the newest Put survives.
    assert_eq!(writes_of(&cluster, b"k").await, 1);
}
