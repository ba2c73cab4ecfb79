//! Cluster metadata and topology changes (spec §4.1, §4.2): bootstrap ids,
//! right-derived splits, merges, leader transfer, peer changes, lookups,
//! auto split, the SplitRegion RPC, API-V2 pre-split, store addresses.

use tikv_tower_mockstore::cluster::{ApiVersion, BoundaryEncoding, ClusterError, PeerRole, Region};
use tikv_tower_mockstore::codec::encode_bytes;
use tikv_tower_mockstore::MockCluster;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};

mod common;

use common::peer_ctx;

fn raw_cluster() -> MockCluster {
    MockCluster::builder()
        .stores(3)
        .boundary_encoding(BoundaryEncoding::Raw)
        .build()
}

async fn raw_get(c: &MockCluster, region: &Region, store_id: u64, key: &[u8]) -> StoreResponse {
    let req: StoreRequest = kvrpcpb::RawGetRequest {
        context: Some(peer_ctx(region, store_id)),
        key: key.to_vec().into(),
        ..Default::default()
    }
    .into();
    c.store(store_id)
        .expect("store")
        .handle(req)
        .await
        .expect("rpc")
}

#[test]
fn single_store_bootstrap_ids_follow_mocktikv() {
    let c = MockCluster::builder().build();
    let stores = c.stores();
    assert_eq!(stores.len(), 1);
    assert_eq!(stores[0].id, 1);
    assert_eq!(stores[0].address, "inproc://store-1");
    let regions = c.regions();
    assert_eq!(regions.len(), 1);
    assert_eq!(regions[0].id, 3);
    assert_eq!(regions[0].peers[0].id, 2);
    assert_eq!(regions[0].leader, Some(2));
    assert_eq!(
        (
            regions[0].start_key.as_slice(),
            regions[0].end_key.as_slice()
        ),
        (&b""[..], &b""[..])
    );
    let a = c.alloc_id();
    assert!(a > 3);
    assert_eq!(c.alloc_ids(2), vec![a + 1, a + 2]);
}

#[test]
fn replicas_and_learners_on_several_stores() {
    let c = MockCluster::builder()
        .stores(5)
        .replicas(3)
        .learners(1)
        .zones(2)
        .build();
    let r = &c.regions()[0];
    let roles: Vec<(u64, PeerRole)> = r.peers.iter().map(|p| (p.store_id, p.role)).collect();
    assert_eq!(
        roles,
        vec![
            (1, PeerRole::Voter),
            (2, PeerRole::Voter),
            (3, PeerRole::Voter),
            (4, PeerRole::Learner)
        ]
    );
    assert_eq!(r.leader_peer().map(|p| p.store_id), Some(1));
    let labels = c.store_meta(2).expect("store 2").labels;
    assert_eq!(labels, vec![("zone".to_string(), "z1".to_string())]);
}

#[test]
fn split_is_right_derived_and_bumps_every_version() {
    let c = raw_cluster();
    let original = c.regions()[0].clone();
    let regions = c
        .split_region(original.id, vec![b"k2".to_vec(), b"k1".to_vec()])
        .expect("split");
    assert_eq!(regions.len(), 3);
    let ranges: Vec<(&[u8], &[u8])> = regions
        .iter()
        .map(|r| (r.start_key.as_slice(), r.end_key.as_slice()))
        .collect();
    assert_eq!(
        ranges,
        vec![
            (&b""[..], &b"k1"[..]),
            (&b"k1"[..], &b"k2"[..]),
            (&b"k2"[..], &b""[..])
        ]
    );
    // The original id keeps the right-most range.
    assert_eq!(regions[2].id, original.id);
    assert_eq!(regions[2].peers, original.peers);
    for r in &regions {
        assert_eq!(
            r.epoch.version,
            original.epoch.version + 2,
            "region {}",
            r.id
        );
        assert_eq!(r.epoch.conf_ver, original.epoch.conf_ver);
        assert_eq!(r.leader_peer().map(|p| p.store_id), Some(1));
        assert_eq!(r.peers.len(), 3);
    }
    // New peers have fresh ids.
    let mut ids: Vec<u64> = regions
        .iter()
        .flat_map(|r| r.peers.iter().map(|p| p.id))
        .collect();
    ids.extend(regions.iter().map(|r| r.id));
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n);
    // Invalid splits.
    let left = &regions[0];
    assert!(matches!(
        c.split_region(left.id, vec![b"zz".to_vec()]),
        Err(ClusterError::KeyNotInRegion { .. })
    ));
    assert!(matches!(
        c.split_region(left.id, vec![Vec::new()]),
        Err(ClusterError::InvalidSplitKey { .. })
    ));
    assert!(matches!(
        c.split_region(regions[1].id, vec![b"k1".to_vec()]),
        Err(ClusterError::InvalidSplitKey { .. })
    ));
    assert!(matches!(
        c.split_region(424242, vec![b"a".to_vec()]),
        Err(ClusterError::RegionNotFound(424242))
    ));
}

#[test]
fn lookups_by_key_prev_and_scan() {
    let c = raw_cluster();
    c.split_keys([b"b", b"d", b"f"]).expect("split");
    assert_eq!(c.region_count(), 4);
    let at = |k: &[u8]| c.region_by_key(k).map(|r| r.start_key);
    assert_eq!(at(b"a"), Some(b"".to_vec()));
    assert_eq!(at(b"b"), Some(b"b".to_vec()));
    assert_eq!(at(b"e"), Some(b"d".to_vec()));
    assert_eq!(at(b"zzz"), Some(b"f".to_vec()));
    assert_eq!(
        c.prev_region(b"e").map(|r| r.start_key),
        Some(b"b".to_vec())
    );
    assert_eq!(c.prev_region(b"a"), None);
    let scan = |s: &[u8], e: &[u8], l| {
        c.scan_regions(s, e, l)
            .into_iter()
            .map(|r| r.start_key)
            .collect::<Vec<_>>()
    };
    assert_eq!(scan(b"c", b"e", 0), vec![b"b".to_vec(), b"d".to_vec()]);
    assert_eq!(
        scan(b"c", b"", 0),
        vec![b"b".to_vec(), b"d".to_vec(), b"f".to_vec()]
    );
    assert_eq!(scan(b"", b"", 2), vec![b"".to_vec(), b"b".to_vec()]);
    assert_eq!(scan(b"d", b"d\0", 0), vec![b"d".to_vec()]);
    // split_keys skips existing boundaries.
    assert!(c.split_keys([b"b"]).expect("noop").is_empty());
}

#[tokio::test]
async fn merge_widens_target_and_source_disappears() {
    let c = raw_cluster();
    let regions = c
        .split_region(c.regions()[0].id, vec![b"m".to_vec()])
        .expect("split");
    let (left, right) = (regions[0].clone(), regions[1].clone());
    let merged = c.merge(left.id, right.id).expect("merge");
    assert_eq!(merged.id, right.id);
    assert_eq!(
        (merged.start_key.as_slice(), merged.end_key.as_slice()),
        (&b""[..], &b""[..])
    );
    assert_eq!(
        merged.epoch.version,
        left.epoch.version.max(right.epoch.version) + 1
    );
    assert!(c.region(left.id).is_none());
    // A request to the merged-away region.
    let resp = raw_get(&c, &left, 1, b"a").await;
    assert!(resp
        .region_error()
        .and_then(|e| e.region_not_found.as_ref())
        .is_some());
    // A stale epoch on the target.
    let resp = raw_get(&c, &right, 1, b"z").await;
    assert!(resp
        .region_error()
        .and_then(|e| e.epoch_not_match.as_ref())
        .is_some());
    // Non-adjacent regions refuse to merge.
    let c2 = raw_cluster();
    let rs = c2
        .split_region(c2.regions()[0].id, vec![b"b".to_vec(), b"d".to_vec()])
        .expect("split");
    assert!(matches!(
        c2.merge(rs[0].id, rs[2].id),
        Err(ClusterError::NotAdjacent { .. })
    ));
}

#[tokio::test]
async fn leader_transfer_and_peer_changes() {
    let c = raw_cluster();
    let r0 = c.regions()[0].clone();
    let r1 = c.transfer_leader(r0.id, 2).expect("transfer");
    assert_eq!(r1.epoch, r0.epoch);
    assert_eq!(r1.term, r0.term + 1);
    // The old leader names the new one.
    let resp = raw_get(&c, &r1, 1, b"a").await;
    let nl = resp
        .region_error()
        .and_then(|e| e.not_leader)
        .expect("not leader");
    assert_eq!(nl.leader.map(|p| p.store_id), Some(2));
    let resp = raw_get(&c, &r1, 2, b"a").await;
    assert!(resp.region_error().is_none());
    // Remove the leader's peer: conf_ver + 1 and no leader.
    let r2 = c.remove_peer(r0.id, 2).expect("remove");
    assert_eq!(r2.epoch.conf_ver, r0.epoch.conf_ver + 1);
    assert_eq!(r2.epoch.version, r0.epoch.version);
    assert_eq!(r2.leader, None);
    let resp = raw_get(&c, &r2, 1, b"a").await;
    let nl = resp
        .region_error()
        .and_then(|e| e.not_leader)
        .expect("not leader");
    assert_eq!(nl.leader, None);
    // Add it back as a learner; learners cannot lead.
    let r3 = c.add_learner(r0.id, 2).expect("learner");
    assert_eq!(r3.epoch.conf_ver, r0.epoch.conf_ver + 2);
    assert!(matches!(
        c.transfer_leader(r0.id, 2),
        Err(ClusterError::NotVoter { .. })
    ));
    assert!(matches!(
        c.add_peer(r0.id, 2),
        Err(ClusterError::PeerExists { .. })
    ));
    assert!(matches!(
        c.add_peer(r0.id, 99),
        Err(ClusterError::StoreNotFound(99))
    ));
    c.transfer_leader(r0.id, 3).expect("transfer to 3");
    // A learner serves replica reads.
    let mut cx = peer_ctx(&c.region(r0.id).expect("region"), 2);
    cx.replica_read = true;
    let req: StoreRequest = kvrpcpb::RawGetRequest {
        context: Some(cx),
        key: "a".into(),
        ..Default::default()
    }
    .into();
    let resp = c.store(2).expect("store").handle(req).await.expect("rpc");
    assert!(resp.region_error().is_none(), "{:?}", resp.region_error());
    // give_up_leader
    let r4 = c.give_up_leader(r0.id).expect("give up");
    assert_eq!(r4.leader, None);
}

#[tokio::test]
async fn auto_split_by_key_count() {
    let c = MockCluster::builder()
        .boundary_encoding(BoundaryEncoding::Raw)
        .region_max_keys(10, 7)
        .build();
    for i in 0..200u32 {
        let key = format!("k{i:04}").into_bytes();
        let region = c.region_for_user_key(&key).expect("region");
        let req: StoreRequest = kvrpcpb::RawPutRequest {
            context: Some(peer_ctx(&region, 1)),
            key: key.into(),
            value: "v".into(),
            ..Default::default()
        }
        .into();
        let resp = c.store(1).expect("store").handle(req).await.expect("rpc");
        assert!(resp.region_error().is_none());
    }
    let n = c.region_count();
    assert!(n >= 15, "only {n} regions");
    // Regions tile the key space.
    let regions = c.regions();
    assert!(regions.first().is_some_and(|r| r.start_key.is_empty()));
    assert!(regions.last().is_some_and(|r| r.end_key.is_empty()));
    for w in regions.windows(2) {
        assert_eq!(w[0].end_key, w[1].start_key);
    }
}

#[tokio::test]
async fn split_region_rpc_returns_every_region() {
    let c = MockCluster::builder().build();
    let region = c.regions()[0].clone();
    let req: StoreRequest = kvrpcpb::SplitRegionRequest {
        context: Some(peer_ctx(&region, 1)),
        split_keys: vec!["b".into(), "a".into(), "a".into()],
        ..Default::default()
    }
    .into();
    match c.store(1).expect("store").handle(req).await.expect("rpc") {
        StoreResponse::SplitRegion(r) => {
            assert!(r.region_error.is_none());
            let starts: Vec<Vec<u8>> = r
                .regions
                .iter()
                .map(|r| r.start_key.clone())
                .map(Into::into)
                .collect();
            assert_eq!(
                starts,
                vec![Vec::new(), encode_bytes(b"a"), encode_bytes(b"b")]
            );
            assert_eq!(r.regions[2].id, region.id);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn api_v2_presplits_keyspace_ranges() {
    let c = MockCluster::builder()
        .api_version(ApiVersion::V2)
        .keyspace("ks7", 7)
        .build();
    let boundaries: Vec<Vec<u8>> = c
        .regions()
        .iter()
        .skip(1)
        .map(|r| r.start_key.clone())
        .collect();
    for b in [
        &b"r\0\0\0"[..],
        b"r\0\0\x01",
        b"r\0\0\x07",
        b"r\0\0\x08",
        b"x\0\0\0",
        b"x\0\0\x01",
        b"x\0\0\x07",
        b"x\0\0\x08",
    ] {
        assert!(
            boundaries.contains(&encode_bytes(b)),
            "missing boundary {b:?}"
        );
    }
    assert_eq!(c.keyspace_by_name("DEFAULT").map(|k| k.id), Some(0));
    assert_eq!(c.keyspace_by_id(7).map(|k| k.name), Some("ks7".to_string()));
    assert!(c.keyspace_by_name("nope").is_none());
}

#[tokio::test]
async fn store_addresses_and_liveness() {
    let c = raw_cluster();
    assert_eq!(c.store_by_addr("inproc://store-2").map(|s| s.id()), Some(2));
    c.set_store_address(2, "127.0.0.1:20161").expect("set addr");
    assert_eq!(c.store_by_addr("127.0.0.1:20161").map(|s| s.id()), Some(2));
    assert_eq!(c.store_by_addr("inproc://store-2").map(|s| s.id()), Some(2));
    assert!(c.store_by_addr("127.0.0.1:1").is_none());
    let id = c.add_store(vec![("engine".into(), "tiflash".into())]);
    assert!(c.store(id).is_some());
    c.set_store_state(id, tikv_tower_mockstore::cluster::StoreState::Tombstone)
        .expect("tombstone");
    assert!(c.store(id).is_none());
    assert!(matches!(
        c.stop_store(999),
        Err(ClusterError::StoreNotFound(999))
    ));
    c.stop_store(3).expect("stop");
    let store = c.store(3).expect("stopped store handle");
    assert!(store.is_stopped());
    assert_eq!(
        c.store_meta(3).map(|s| s.state),
        Some(tikv_tower_mockstore::cluster::StoreState::Up)
    );
}

#[tokio::test]
async fn auto_split_counts_transactional_keys_too() {
    let c = MockCluster::builder().region_max_keys(10, 5).build();
    for i in 0..60u32 {
        let key = format!("t{i:04}").into_bytes();
        let region = c.region_for_user_key(&key).expect("region");
        let req: StoreRequest = kvrpcpb::PrewriteRequest {
            context: Some(peer_ctx(&region, 1)),
            mutations: vec![kvrpcpb::Mutation {
                key: key.clone().into(),
                value: "v".into(),
                ..Default::default()
            }],
            primary_lock: key.into(),
            start_version: 100 + u64::from(i),
            lock_ttl: 3000,
            ..Default::default()
        }
        .into();
        let resp = c.store(1).expect("store").handle(req).await.expect("rpc");
        assert!(resp.region_error().is_none(), "{:?}", resp.region_error());
    }
    assert!(c.region_count() >= 6, "only {} regions", c.region_count());
    // Boundaries are memcomparable-encoded user keys.
    for r in c.regions().iter().skip(1) {
        assert!(tikv_tower_mockstore::codec::decode_bytes(&r.start_key).is_ok());
    }
}
