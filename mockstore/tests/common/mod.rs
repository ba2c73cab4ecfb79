//! Request contexts shared by the cluster, store and PD integration tests.

use tikv_tower_mockstore::cluster::Region;
use tikv_tower_mockstore::MockCluster;
use tikv_tower_proto::kvrpcpb;

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
