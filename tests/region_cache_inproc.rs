//! The region cache against the in-process mockstore: loads, TiKV's EpochNotMatch and
//! NotLeader feedback, store resolution.
#![cfg(feature = "embedded")]

use tikv_tower::pd::ApiCodec;
use tikv_tower::region_cache::RegionCache;
use tikv_tower::transport::Transport;
use tikv_tower_layers::locate::{RegionLocator, RegionRoute};
use tikv_tower_mockstore::MockCluster;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};

mod common;

use common::{call_route, in_process_cache};

async fn setup(cluster: &MockCluster) -> RegionCache {
    in_process_cache(cluster, ApiCodec::v1_txn()).await
}

/// A KvGet for `key` stamped with `route` (leader peer), sent over the in-process transport.
async fn kv_get(
    cluster: &MockCluster,
    cache: &RegionCache,
    route: &RegionRoute,
    key: &[u8],
) -> StoreResponse {
    let req = StoreRequest::Get(Box::new(kvrpcpb::GetRequest {
        key: key.to_vec().into(),
        version: 1,
        ..Default::default()
    }));
    let transport = Transport::in_process(cluster.clone());
    call_route(cache, &transport, route, req, None)
        .await
        .expect("reply")
}

#[tokio::test]
async fn locates_keys_and_stores() {
    let cluster = MockCluster::builder()
        .stores(3)
        .split_keys([b"m".as_slice()])
        .build();
    let cache = setup(&cluster).await;
    let a = cache.locate_key(b"a").await.unwrap();
    let z = cache.locate_key(b"z").await.unwrap();
    assert_eq!((a.start_key(), a.end_key()), (&b""[..], &b"m"[..]));
    assert_eq!((z.start_key(), z.end_key()), (&b"m"[..], &b""[..]));
    assert_eq!(
        cache.locate_end_key(b"m").await.unwrap().region.id,
        a.region.id
    );
    assert_eq!(
        cache.locate_end_key(b"").await.unwrap().region.id,
        z.region.id
    );
    assert_eq!(
        cache.locate_region_id(z.region.id).await.unwrap().region.id,
        z.region.id
    );
    let leader = a.leader.expect("PD reports the leader");
    let store = cache.store(leader.store_id).await.unwrap();
    assert!(
        cluster.store_by_addr(&store.addr).is_some(),
        "address {} is reachable",
        store.addr
    );
    let ranges = cache.locate_range(b"", b"").await.unwrap();
    assert_eq!(ranges.len(), 2);
}

#[tokio::test]
async fn epoch_not_match_from_tikv_updates_the_cache() {
    let cluster = MockCluster::builder()
        .stores(1)
        .split_keys([b"m".as_slice()])
        .build();
    let cache = setup(&cluster).await;
    let stale = cache.locate_key(b"a").await.unwrap();
    cluster.split_keys([b"f".as_slice()]).unwrap();

    let resp = kv_get(&cluster, &cache, &stale, b"a").await;
    let err = resp.region_error().cloned().expect("region error");
    let enm = err.epoch_not_match.expect("EpochNotMatch");
    let calls = cache.pd().rpc_count();
    assert!(cache.on_epoch_not_match(stale.ver_id(), &enm.current_regions));
    let a = cache.locate_key(b"a").await.unwrap();
    let g = cache.locate_key(b"g").await.unwrap();
    assert_eq!((a.start_key(), a.end_key()), (&b""[..], &b"f"[..]));
    assert_eq!((g.start_key(), g.end_key()), (&b"f"[..], &b"m"[..]));
    assert_eq!(
        cache.pd().rpc_count(),
        calls,
        "served from the regions TiKV returned"
    );
    // The refreshed route is accepted by the store.
    let resp = kv_get(&cluster, &cache, &a, b"a").await;
    assert!(resp.region_error().is_none(), "{:?}", resp.region_error());
}

#[tokio::test]
async fn not_leader_moves_the_leader() {
    let cluster = MockCluster::builder().stores(3).build();
    let cache = setup(&cluster).await;
    let route = cache.locate_key(b"k").await.unwrap();
    let old = route.leader.unwrap();
    let target = route
        .region
        .peers
        .iter()
        .find(|p| p.store_id != old.store_id)
        .unwrap()
        .store_id;
    cluster.transfer_leader(route.region.id, target).unwrap();
    let resp = kv_get(&cluster, &cache, &route, b"k").await;
    let nl = resp
        .region_error()
        .and_then(|e| e.not_leader)
        .expect("NotLeader");
    cache.update_leader(route.ver_id(), nl.leader);
    let route = cache.locate_key(b"k").await.unwrap();
    assert_eq!(route.leader.as_ref().map(|p| p.store_id), Some(target));
    let resp = kv_get(&cluster, &cache, &route, b"k").await;
    assert!(resp.region_error().is_none(), "{:?}", resp.region_error());
}
