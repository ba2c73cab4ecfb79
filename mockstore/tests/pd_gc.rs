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
    write_api(cluster, key, value, kvrpcpb::ApiVersion::V1).await
}

/// `api` is the request's API version (V2 for keyspace keys).
fn ctx_api(cluster: &MockCluster, key: &[u8], api: kvrpcpb::ApiVersion) -> kvrpcpb::Context {
    kvrpcpb::Context {
        api_version: api as i32,
        ..leader_ctx(cluster, key)
    }
}

async fn write_api(cluster: &MockCluster, key: &[u8], value: &[u8], api: kvrpcpb::ApiVersion) {
    let pd = cluster.pd();
    let store = cluster.store(1).expect("store");
    let start = version(pd.tso(1).expect("tso"));
    let pw = kvrpcpb::PrewriteRequest {
        context: Some(ctx_api(cluster, key, api)),
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
        context: Some(ctx_api(cluster, key, api)),
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
    writes_of_api(cluster, key, kvrpcpb::ApiVersion::V1).await
}

async fn writes_of_api(cluster: &MockCluster, key: &[u8], api: kvrpcpb::ApiVersion) -> usize {
    let store = cluster.store(1).expect("store");
    let req = kvrpcpb::MvccGetByKeyRequest {
        context: Some(ctx_api(cluster, key, api)),
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

fn scope(id: u32) -> Option<pdpb::KeyspaceScope> {
    Some(pdpb::KeyspaceScope {
        keyspace: Some(pdpb::keyspace_scope::Keyspace::KeyspaceId(id)),
    })
}

fn header_error(h: &Option<pdpb::ResponseHeader>) -> Option<String> {
    h.as_ref()
        .and_then(|h| h.error.as_ref())
        .map(|e| e.message.clone())
}

/// Written from PD `GCStateManager.redirectKeyspace` / `iterateAllKeyspacesGCStates`
/// (`pkg/gc/gc_state_manager.go`): a keyspace whose config says
/// `gc_management_type = keyspace_level` has its own txn safe point, GC safe point and
/// barriers, which every GC API acts on; a keyspace under unified GC redirects user APIs
/// to the null keyspace and refuses management APIs; `GetAllKeyspacesGCStates` lists the
/// null keyspace and every keyspace. Advancing a keyspace's GC safe point collects only
/// that keyspace's versions.
#[tokio::test]
async fn keyspace_level_gc_state_is_per_keyspace() {
    use tikv_tower_mockstore::cluster::ApiVersion;
    use tikv_tower_proto::keyspacepb::keyspace_server::Keyspace;
    const V2: kvrpcpb::ApiVersion = kvrpcpb::ApiVersion::V2;
    let cluster = MockCluster::builder()
        .api_version(ApiVersion::V2)
        .keyspace("unified", 1)
        .keyspace_level_gc("own", 2)
        .build();
    let pd = cluster.pd();
    let header = Some(pdpb::RequestHeader {
        cluster_id: cluster.cluster_id(),
        ..Default::default()
    });
    let (k1, k2) = (b"x\0\0\x01k".as_slice(), b"x\0\0\x02k".as_slice());
    for v in [b"1", b"2", b"3"] {
        write_api(&cluster, k1, v, V2).await;
        write_api(&cluster, k2, v, V2).await;
    }
    // The keyspace's config says how it is garbage-collected.
    let meta = pd
        .load_keyspace(Request::new(
            tikv_tower_proto::keyspacepb::LoadKeyspaceRequest {
                header: header.clone(),
                name: "own".into(),
                namespace: None,
            },
        ))
        .await
        .expect("rpc")
        .into_inner()
        .keyspace
        .expect("meta");
    assert_eq!(
        meta.config.get("gc_management_type").map(String::as_str),
        Some("keyspace_level")
    );

    let gc = GcApi {
        pd: pd.clone(),
        header: header.clone(),
    };
    let now = version(pd.tso(1).expect("tso"));
    // Unified keyspace: management APIs refused.
    let r = gc.advance_txn(1, now).await;
    assert!(
        header_error(&r.header).is_some_and(|m| m.contains("keyspace level GC is not enabled")),
        "{r:?}"
    );
    // Keyspace-level keyspace: its own safe points.
    let r = gc.advance_txn(2, now).await;
    assert_eq!((header_error(&r.header), r.new_txn_safe_point), (None, now));
    let r = gc.advance_gc(2, now).await;
    assert_eq!((header_error(&r.header), r.new_gc_safe_point), (None, now));
    assert_eq!(pd.keyspace_gc_safe_points(2), (now, now));
    assert_eq!(
        pd.gc_safe_points(),
        (0, 0),
        "the cluster level did not move"
    );
    // Only keyspace 2's versions were collected.
    assert_eq!(writes_of_api(&cluster, k2, V2).await, 1);
    assert_eq!(writes_of_api(&cluster, k1, V2).await, 3);

    // A barrier below keyspace 2's txn safe point is refused there; on the unified
    // keyspace it lands on the null keyspace.
    let r = gc.set_barrier(2, now - 1).await;
    assert!(
        header_error(&r.header).is_some_and(|m| m.contains("behind the txn safe point")),
        "{r:?}"
    );
    let r = gc.set_barrier(1, now - 1).await;
    assert_eq!(header_error(&r.header), None);

    let own = gc.state(2).await;
    assert!(own.is_keyspace_level_gc);
    assert_eq!((own.txn_safe_point, own.gc_safe_point), (now, now));
    assert!(own.gc_barriers.is_empty());
    let unified = gc.state(1).await;
    assert!(!unified.is_keyspace_level_gc);
    assert_eq!(unified.txn_safe_point, 0);
    assert_eq!(unified.gc_barriers.len(), 1, "{unified:?}");

    let all = pd
        .get_all_keyspaces_gc_states(Request::new(pdpb::GetAllKeyspacesGcStatesRequest {
            header: header.clone(),
            ..Default::default()
        }))
        .await
        .expect("rpc")
        .into_inner();
    let by_id: Vec<(u32, bool, u64)> = all
        .gc_states
        .iter()
        .map(|s| {
            let id = match s.keyspace_scope.as_ref().and_then(|k| k.keyspace.as_ref()) {
                Some(pdpb::keyspace_scope::Keyspace::KeyspaceId(id)) => *id,
                _ => panic!("{s:?}"),
            };
            (id, s.is_keyspace_level_gc, s.txn_safe_point)
        })
        .collect();
    assert_eq!(
        by_id,
        [
            (u32::MAX, false, 0),
            (0, false, 0),
            (1, false, 0),
            (2, true, now)
        ]
    );

    // The cluster level (blocked at the barrier) collects keyspace 1, not keyspace 2.
    let later = version(pd.tso(1).expect("tso"));
    let r = gc.advance_txn(u32::MAX, later).await;
    assert_eq!(r.new_txn_safe_point, now - 1, "held by the barrier");
    let r = gc.advance_gc(u32::MAX, now - 1).await;
    assert_eq!(header_error(&r.header), None);
    assert_eq!(writes_of_api(&cluster, k1, V2).await, 1);
    assert_eq!(pd.keyspace_gc_safe_points(2), (now, now));
}

/// The keyspace-scoped GC RPCs of a mock PD, replies unwrapped.
struct GcApi {
    pd: tikv_tower_mockstore::MockPd,
    header: Option<pdpb::RequestHeader>,
}

impl GcApi {
    async fn advance_txn(&self, id: u32, target: u64) -> pdpb::AdvanceTxnSafePointResponse {
        let req = pdpb::AdvanceTxnSafePointRequest {
            header: self.header.clone(),
            keyspace_scope: scope(id),
            target,
        };
        let r = self.pd.advance_txn_safe_point(Request::new(req)).await;
        r.expect("rpc").into_inner()
    }

    async fn advance_gc(&self, id: u32, target: u64) -> pdpb::AdvanceGcSafePointResponse {
        let req = pdpb::AdvanceGcSafePointRequest {
            header: self.header.clone(),
            keyspace_scope: scope(id),
            target,
        };
        let r = self.pd.advance_gc_safe_point(Request::new(req)).await;
        r.expect("rpc").into_inner()
    }

    async fn set_barrier(&self, id: u32, ts: u64) -> pdpb::SetGcBarrierResponse {
        let req = pdpb::SetGcBarrierRequest {
            header: self.header.clone(),
            keyspace_scope: scope(id),
            barrier_id: "b".into(),
            barrier_ts: ts,
            ttl_seconds: i64::MAX,
        };
        let r = self.pd.set_gc_barrier(Request::new(req)).await;
        r.expect("rpc").into_inner()
    }

    async fn state(&self, id: u32) -> pdpb::GcState {
        let req = pdpb::GetGcStateRequest {
            header: self.header.clone(),
            keyspace_scope: scope(id),
            exclude_gc_barriers: false,
            include_global_gc_barriers: false,
        };
        let r = self.pd.get_gc_state(Request::new(req)).await;
        r.expect("rpc").into_inner().gc_state.expect("state")
    }
}
