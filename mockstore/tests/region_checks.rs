//! The region checks of spec §2.1, one table row per rule: each row builds a
//! request that breaks exactly one rule and names the error it must get.

use tikv_tower_mockstore::cluster::BoundaryEncoding;
use tikv_tower_mockstore::MockCluster;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
use tikv_tower_proto::{errorpb, kvrpcpb};

mod common;

use common::peer_ctx;

/// What a request must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Ok,
    InvalidArgument,
    StoreNotMatch,
    RegionNotFound,
    MismatchPeerId,
    StaleCommand,
    NotLeaderWith(u64),
    MissingEpoch,
    EpochNotMatch(usize),
    KeyNotInRegion,
    RaftEntryTooLarge,
}

fn classify(res: Result<StoreResponse, tonic::Status>) -> Expect {
    let resp = match res {
        Err(s) if s.code() == tonic::Code::InvalidArgument => return Expect::InvalidArgument,
        Err(s) => panic!("unexpected status {s:?}"),
        Ok(r) => r,
    };
    let Some(e) = resp.region_error() else {
        return Expect::Ok;
    };
    let e: &errorpb::Error = e;
    if e.store_not_match.is_some() {
        Expect::StoreNotMatch
    } else if e.region_not_found.is_some() {
        Expect::RegionNotFound
    } else if e.mismatch_peer_id.is_some() {
        Expect::MismatchPeerId
    } else if e.stale_command.is_some() {
        Expect::StaleCommand
    } else if let Some(nl) = &e.not_leader {
        Expect::NotLeaderWith(nl.leader.as_ref().map_or(0, |p| p.store_id))
    } else if let Some(enm) = &e.epoch_not_match {
        Expect::EpochNotMatch(enm.current_regions.len())
    } else if e.key_not_in_region.is_some() {
        Expect::KeyNotInRegion
    } else if e.raft_entry_too_large.is_some() {
        Expect::RaftEntryTooLarge
    } else if e.message == "missing epoch!" {
        Expect::MissingEpoch
    } else {
        panic!("unexpected region error {e:?}")
    }
}

fn raw_get(ctx: kvrpcpb::Context, key: &[u8]) -> StoreRequest {
    kvrpcpb::RawGetRequest {
        context: Some(ctx),
        key: key.to_vec().into(),
        cf: String::new(),
    }
    .into()
}

type Mutate = fn(&MockCluster, &mut kvrpcpb::Context, &mut Vec<u8>) -> (u64, Option<StoreRequest>);

/// Three stores, voters on all, leader on store 1; regions split at "m"
/// with raw boundaries. Each case targets the region of key "a" on the
/// store it returns.
fn cases() -> Vec<(&'static str, Mutate, Expect)> {
    vec![
        ("well-formed request", |_, _, _| (1, None), Expect::Ok),
        (
            "cluster id mismatch",
            |_, c, _| {
                c.cluster_id = 12345;
                (1, None)
            },
            Expect::InvalidArgument,
        ),
        (
            "cluster id 0 is not checked",
            |_, c, _| {
                c.cluster_id = 0;
                (1, None)
            },
            Expect::Ok,
        ),
        (
            "peer store differs from receiving store",
            |_, _, _| (2, None),
            Expect::StoreNotMatch,
        ),
        (
            "no peer in context",
            |_, c, _| {
                c.peer = None;
                (1, None)
            },
            Expect::StoreNotMatch,
        ),
        (
            "unknown region id",
            |_, c, _| {
                c.region_id = 9999;
                (1, None)
            },
            Expect::RegionNotFound,
        ),
        (
            "region without a peer on this store",
            |cl, c, _| {
                let r = cl.region_for_user_key(b"a").expect("region");
                cl.remove_peer(r.id, 3).expect("remove peer");
                let mut p = c.peer.expect("peer");
                p.store_id = 3;
                c.peer = Some(p);
                (3, None)
            },
            Expect::RegionNotFound,
        ),
        (
            "peer id differs",
            |_, c, _| {
                if let Some(p) = c.peer.as_mut() {
                    p.id += 1000;
                }
                (1, None)
            },
            Expect::MismatchPeerId,
        ),
        (
            "term two behind",
            |cl, c, _| {
                let r = cl.region_for_user_key(b"a").expect("region");
                cl.transfer_leader(r.id, 2).expect("transfer");
                cl.transfer_leader(r.id, 1).expect("transfer back");
                c.term = r.term;
                (1, None)
            },
            Expect::StaleCommand,
        ),
        (
            "NotLeader is checked before the term",
            |cl, c, _| {
                let r = cl.region_for_user_key(b"a").expect("region");
                cl.transfer_leader(r.id, 2).expect("transfer");
                cl.transfer_leader(r.id, 1).expect("transfer back");
                let now = cl.region(r.id).expect("region");
                *c = peer_ctx(&now, 3);
                c.term = r.term;
                (3, None)
            },
            Expect::NotLeaderWith(1),
        ),
        (
            "term one behind is fine",
            |cl, c, _| {
                let r = cl.region_for_user_key(b"a").expect("region");
                c.term = r.term - 1;
                (1, None)
            },
            Expect::Ok,
        ),
        (
            "follower without replica read",
            |cl, c, _| {
                let r = cl.region_for_user_key(b"a").expect("region");
                *c = peer_ctx(&r, 2);
                (2, None)
            },
            Expect::NotLeaderWith(1),
        ),
        (
            "follower with replica read",
            |cl, c, _| {
                let r = cl.region_for_user_key(b"a").expect("region");
                *c = peer_ctx(&r, 2);
                c.replica_read = true;
                (2, None)
            },
            Expect::Ok,
        ),
        (
            "follower with stale read",
            |cl, c, _| {
                let r = cl.region_for_user_key(b"a").expect("region");
                *c = peer_ctx(&r, 3);
                c.stale_read = true;
                (3, None)
            },
            Expect::Ok,
        ),
        (
            "write on a follower even with replica read",
            |cl, c, k| {
                let r = cl.region_for_user_key(b"a").expect("region");
                *c = peer_ctx(&r, 2);
                c.replica_read = true;
                let req = kvrpcpb::RawPutRequest {
                    context: Some(c.clone()),
                    key: k.clone().into(),
                    value: "v".into(),
                    ..Default::default()
                };
                (2, Some(req.into()))
            },
            Expect::NotLeaderWith(1),
        ),
        (
            "missing epoch",
            |_, c, _| {
                c.region_epoch = None;
                (1, None)
            },
            Expect::MissingEpoch,
        ),
        // The region of "a" is the left-most: no sibling lies to its left
        // (TiKV collects right-derived siblings leftwards).
        (
            "stale version",
            |_, c, _| {
                if let Some(e) = c.region_epoch.as_mut() {
                    e.version -= 1;
                }
                (1, None)
            },
            Expect::EpochNotMatch(1),
        ),
        (
            "stale conf_ver is ignored",
            |_, c, _| {
                if let Some(e) = c.region_epoch.as_mut() {
                    e.conf_ver += 7;
                }
                (1, None)
            },
            Expect::Ok,
        ),
        (
            "key beyond region end",
            |_, _, k| {
                *k = b"z".to_vec();
                (1, None)
            },
            Expect::KeyNotInRegion,
        ),
        (
            "key equal to region end",
            |_, _, k| {
                *k = b"m".to_vec();
                (1, None)
            },
            Expect::KeyNotInRegion,
        ),
        (
            "reverse scan may start at the region end",
            |_, c, _| {
                let req = kvrpcpb::RawScanRequest {
                    context: Some(c.clone()),
                    start_key: "m".into(),
                    limit: 10,
                    reverse: true,
                    ..Default::default()
                };
                (1, Some(req.into()))
            },
            Expect::Ok,
        ),
        (
            "forward scan may not start at the region end",
            |_, c, _| {
                let req = kvrpcpb::RawScanRequest {
                    context: Some(c.clone()),
                    start_key: "m".into(),
                    limit: 10,
                    ..Default::default()
                };
                (1, Some(req.into()))
            },
            Expect::KeyNotInRegion,
        ),
        (
            "batch put with one key outside",
            |_, c, _| {
                let req = kvrpcpb::RawBatchPutRequest {
                    context: Some(c.clone()),
                    pairs: vec![
                        kvrpcpb::KvPair {
                            key: "b".into(),
                            ..Default::default()
                        },
                        kvrpcpb::KvPair {
                            key: "x".into(),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                };
                (1, Some(req.into()))
            },
            Expect::KeyNotInRegion,
        ),
        (
            "write over raft-entry-max-size",
            |_, c, k| {
                let req = kvrpcpb::RawPutRequest {
                    context: Some(c.clone()),
                    key: k.clone().into(),
                    value: vec![0u8; 2048].into(),
                    ..Default::default()
                };
                (1, Some(req.into()))
            },
            Expect::RaftEntryTooLarge,
        ),
        (
            "large read is fine",
            |_, c, _| {
                let req = kvrpcpb::RawBatchGetRequest {
                    context: Some(c.clone()),
                    keys: (0..200u32)
                        .map(|i| format!("a{i:08}").into_bytes())
                        .map(Into::into)
                        .collect(),
                    ..Default::default()
                };
                (1, Some(req.into()))
            },
            Expect::Ok,
        ),
    ]
}

#[tokio::test]
async fn region_check_rules() {
    let mut failures = Vec::new();
    for (name, mutate, expect) in cases() {
        let cluster = MockCluster::builder()
            .stores(3)
            .boundary_encoding(BoundaryEncoding::Raw)
            .split_keys([b"m"])
            .raft_entry_max_size(1024)
            .build();
        let region = cluster.region_for_user_key(b"a").expect("region of a");
        let mut c = peer_ctx(&region, 1);
        let mut key = b"a".to_vec();
        let (store_id, req) = mutate(&cluster, &mut c, &mut key);
        let req = req.unwrap_or_else(|| raw_get(c, &key));
        let store = cluster.store(store_id).expect("store");
        let got = classify(store.handle(req).await);
        if got != expect {
            failures.push(format!("{name}: expected {expect:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn memcomparable_bounds_are_compared_encoded() {
    let cluster = MockCluster::builder().split_keys([b"k5"]).build();
    let left = cluster.region_for_user_key(b"k").expect("left");
    let right = cluster.region_for_user_key(b"k5").expect("right");
    assert_ne!(left.id, right.id);
    assert_eq!(
        right.start_key,
        tikv_tower_mockstore::codec::encode_bytes(b"k5")
    );
    let store = cluster.store(1).expect("store");
    // "k4zzzzzzzzzz" < "k5" raw, so it belongs to the left region.
    let ok = store
        .handle(raw_get(peer_ctx(&left, 1), b"k4zzzzzzzzzz"))
        .await;
    assert_eq!(classify(ok), Expect::Ok);
    let bad = store.handle(raw_get(peer_ctx(&left, 1), b"k5")).await;
    assert_eq!(classify(bad), Expect::KeyNotInRegion);
    let ok = store.handle(raw_get(peer_ctx(&right, 1), b"k5\0")).await;
    assert_eq!(classify(ok), Expect::Ok);
}

#[tokio::test]
async fn stopped_store_is_unavailable_and_restart_keeps_data() {
    let cluster = MockCluster::builder().stores(2).build();
    let region = cluster.region_for_user_key(b"a").expect("region");
    let store = cluster.store(1).expect("store");
    let put = kvrpcpb::RawPutRequest {
        context: Some(peer_ctx(&region, 1)),
        key: "a".into(),
        value: "1".into(),
        ..Default::default()
    };
    assert_eq!(classify(store.handle(put.into()).await), Expect::Ok);
    cluster.stop_store(1).expect("stop");
    let err = store
        .handle(raw_get(peer_ctx(&region, 1), b"a"))
        .await
        .expect_err("stopped");
    assert_eq!(err.code(), tonic::Code::Unavailable);
    cluster.start_store(1).expect("start");
    match store.handle(raw_get(peer_ctx(&region, 1), b"a")).await {
        Ok(StoreResponse::RawGet(r)) => assert_eq!(r.value, "1"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn epoch_not_match_carries_split_siblings() {
    let cluster = MockCluster::builder()
        .boundary_encoding(BoundaryEncoding::Raw)
        .build();
    let before = cluster.region_for_user_key(b"a").expect("region");
    cluster.split_keys([b"c", b"f"]).expect("split");
    let store = cluster.store(1).expect("store");
    // The stale context still names the original id, which now holds
    // ["f", +inf); the key "g" is in it.
    let resp = store
        .handle(raw_get(peer_ctx(&before, 1), b"g"))
        .await
        .expect("ok");
    let e = resp.region_error().cloned().expect("region error");
    let regions = e.epoch_not_match.expect("epoch not match").current_regions;
    let starts: Vec<Vec<u8>> = regions
        .iter()
        .map(|r| r.start_key.clone())
        .map(Into::into)
        .collect();
    assert_eq!(starts, vec![b"f".to_vec(), b"c".to_vec(), b"".to_vec()]);
    assert_eq!(regions[0].id, before.id);
    assert!(regions
        .iter()
        .all(|r| r.region_epoch.as_ref().map(|e| e.version) == Some(before.epoch.version + 2)));
}
