//! Request contexts shared by the cluster, store and PD integration tests.

use tikv_tower_mockstore::cluster::Region;
use tikv_tower_mockstore::MockCluster;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};

/// A context for `region` addressed to its peer on `store_id` (no peer if it has none there).
#[allow(dead_code)]
pub fn peer_ctx(region: &Region, store_id: u64) -> kvrpcpb::Context {
    kvrpcpb::Context {
        region_id: region.id,
        region_epoch: Some(region.epoch.to_pb()),
        peer: region.peer_on_store(store_id).map(|p| p.to_pb()),
        ..Default::default()
    }
}

/// A context routing `key` to its region's leader.
#[allow(dead_code)]
pub fn leader_ctx(cluster: &MockCluster, key: &[u8]) -> kvrpcpb::Context {
    let region = cluster.region_for_user_key(key).expect("region");
    let leader = region.leader_peer().copied().expect("leader");
    kvrpcpb::Context {
        region_id: region.id,
        region_epoch: Some(region.epoch.to_pb()),
        peer: Some(leader.to_pb()),
        ..Default::default()
    }
}

/// Sends `req` to the leader of the region holding `route_key`, its context
/// stamped for that region and API version `api`; a failed RPC panics.
#[allow(dead_code)]
pub async fn send_to_leader(
    cluster: &MockCluster,
    route_key: &[u8],
    api: i32,
    mut req: StoreRequest,
) -> StoreResponse {
    let region = cluster.region_for_user_key(route_key).expect("region");
    let leader = region.leader_peer().copied().expect("leader");
    let ctx = req.context_mut();
    ctx.region_id = region.id;
    ctx.region_epoch = Some(region.epoch.to_pb());
    ctx.peer = Some(leader.to_pb());
    ctx.api_version = api;
    cluster
        .store(leader.store_id)
        .expect("store")
        .handle(req)
        .await
        .expect("rpc")
}

/// A prewrite of `key` = `v` as its own primary (lock TTL 3 s) under `ctx`.
#[allow(dead_code)]
pub fn put_prewrite(ctx: kvrpcpb::Context, start_ts: u64, key: &[u8]) -> kvrpcpb::PrewriteRequest {
    kvrpcpb::PrewriteRequest {
        context: Some(ctx),
        mutations: vec![kvrpcpb::Mutation {
            key: key.to_vec().into(),
            value: "v".into(),
            ..Default::default()
        }],
        primary_lock: key.to_vec().into(),
        start_version: start_ts,
        lock_ttl: 3000,
        ..Default::default()
    }
}
