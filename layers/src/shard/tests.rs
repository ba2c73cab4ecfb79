//! What the parts of a split batch carry: exactly their region's items, aligned lists
//! picked alongside, the rest of the request unchanged; also after a stale part is
//! re-split. Parts are recorded between the shard layer and the fake cluster's real
//! retry / route / timeout stack (see `testutil`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::metapb;
use tikv_tower_proto::rpc::StoreRequest;
use tower::{ServiceBuilder, ServiceExt};

use super::kinds::{self, Shardable};
use super::ShardLayer;
use crate::locate::RegionVerId;
use crate::request::{Request, Response, Target};
use crate::testutil::{region, Cluster};

/// Request keys, in scattered order, touching all three regions of [`regions`].
const KEYS: [&str; 12] = [
    "g", "a", "d", "b", "x", "c", "f", "e", "h", "aa", "cz", "fa",
];

/// The truth: `[, c)`, `[c, f)`, `[f, )`, led by stores 1, 2, 3.
fn regions() -> Vec<(metapb::Region, u64)> {
    vec![
        (region(1, "", "c", 2), 1),
        (region(2, "c", "f", 1), 2),
        (region(3, "f", "", 1), 3),
    ]
}

/// A cluster whose cache agrees with the truth, or (`stale`) believes in one region
/// `[, )` at an old epoch, so the first part is re-split.
fn cluster(stale: bool) -> Cluster {
    let c = Cluster::with_regions(regions());
    if stale {
        c.0.lock().cache = vec![(region(1, "", "", 1), 1)];
    }
    c
}

/// Send `req` through the shard layer; return the reply and every part it sent (each
/// with the region it was pinned to), in sending order.
async fn run(c: &Cluster, req: Request) -> (Response, Vec<(RegionVerId, StoreRequest)>) {
    let seen: Arc<Mutex<Vec<(RegionVerId, StoreRequest)>>> = Arc::default();
    let rec = seen.clone();
    let svc = ServiceBuilder::new()
        .layer(ShardLayer::new(Arc::new(c.clone())))
        .map_request(move |part: Request| {
            match &part.target {
                Target::Region(id) => rec.lock().push((*id, part.inner.clone())),
                other => panic!("a part not pinned to a region: {other:?}"),
            }
            part
        })
        .service(crate::tests::lower(c));
    let resp = svc.oneshot(req).await.expect("sharded request");
    let parts = seen.lock().clone();
    (resp, parts)
}

/// Builds one test request.
type Make = fn() -> StoreRequest;

fn key(i: usize) -> Bytes {
    Bytes::from_static(KEYS[i].as_bytes())
}

/// Per-item data derived from the item's request position, so a misplaced item shows.
fn value(i: usize) -> Bytes {
    format!("value-{i}").into()
}

fn ctx() -> Option<kvrpcpb::Context> {
    Some(kvrpcpb::Context {
        request_source: "shard-test".into(),
        ..Default::default()
    })
}

fn raw_batch_put() -> StoreRequest {
    kvrpcpb::RawBatchPutRequest {
        context: ctx(),
        pairs: (0..KEYS.len())
            .map(|i| kvrpcpb::KvPair {
                key: key(i),
                value: value(i),
                ..Default::default()
            })
            .collect(),
        cf: "default".into(),
        ttls: (0..KEYS.len() as u64).map(|i| 100 + i).collect(),
        for_cas: true,
        ..Default::default()
    }
    .into()
}

fn prewrite() -> StoreRequest {
    kvrpcpb::PrewriteRequest {
        context: ctx(),
        mutations: (0..KEYS.len())
            .map(|i| kvrpcpb::Mutation {
                op: kvrpcpb::Op::Put as i32,
                key: key(i),
                value: value(i),
                ..Default::default()
            })
            .collect(),
        primary_lock: key(0),
        start_version: 10,
        lock_ttl: 3000,
        txn_size: KEYS.len() as u64,
        use_async_commit: true,
        secondaries: (1..KEYS.len()).map(key).collect(),
        pessimistic_actions: (0..KEYS.len() as i32).map(|i| i % 3).collect(),
        // Every third mutation has a constraint; its expected ts names its position.
        for_update_ts_constraints: (0..KEYS.len() as u32)
            .filter(|i| i % 3 == 1)
            .map(|i| kvrpcpb::prewrite_request::ForUpdateTsConstraint {
                index: i,
                expected_for_update_ts: 1000 + u64::from(i),
            })
            .collect(),
        ..Default::default()
    }
    .into()
}

fn batch_get() -> StoreRequest {
    kvrpcpb::BatchGetRequest {
        context: ctx(),
        keys: (0..KEYS.len()).map(key).collect(),
        version: 42,
        ..Default::default()
    }
    .into()
}

fn pessimistic_lock() -> StoreRequest {
    kvrpcpb::PessimisticLockRequest {
        context: ctx(),
        mutations: (0..KEYS.len())
            .map(|i| kvrpcpb::Mutation {
                op: kvrpcpb::Op::PessimisticLock as i32,
                key: key(i),
                ..Default::default()
            })
            .collect(),
        primary_lock: key(0),
        start_version: 10,
        for_update_ts: 11,
        return_values: true,
        ..Default::default()
    }
    .into()
}

/// The aligned per-item data of a part agrees with the request positions `pos` of its
/// keys.
fn check_items(part: &StoreRequest, pos: &[usize]) {
    match part {
        StoreRequest::RawBatchPut(r) => {
            let values: Vec<_> = r.pairs.iter().map(|p| p.value.clone()).collect();
            let ttls: Vec<_> = pos.iter().map(|&i| 100 + i as u64).collect();
            assert_eq!(values, pos.iter().map(|&i| value(i)).collect::<Vec<_>>());
            assert_eq!(r.ttls, ttls, "ttls follow their pairs");
        }
        StoreRequest::Prewrite(r) => {
            let values: Vec<_> = r.mutations.iter().map(|m| m.value.clone()).collect();
            assert_eq!(values, pos.iter().map(|&i| value(i)).collect::<Vec<_>>());
            let actions: Vec<_> = pos.iter().map(|&i| i as i32 % 3).collect();
            assert_eq!(r.pessimistic_actions, actions, "actions follow mutations");
            // Exactly the part's constrained mutations, renumbered to part positions.
            let want: Vec<_> = pos
                .iter()
                .enumerate()
                .filter(|(_, &i)| i % 3 == 1)
                .map(|(new, &i)| (new as u32, 1000 + i as u64))
                .collect();
            let got: Vec<_> = r
                .for_update_ts_constraints
                .iter()
                .map(|c| (c.index, c.expected_for_update_ts))
                .collect();
            assert_eq!(got, want, "constraints follow their mutations");
        }
        _ => {}
    }
}

/// Every final part holds exactly the request items inside its region, in request
/// order, with their own aligned data and the request's other fields; no part holds
/// another region's key; every item is sent exactly once.
fn check_parts(orig: &StoreRequest, parts: &[(RegionVerId, StoreRequest)]) {
    let truth: HashMap<u64, metapb::Region> =
        regions().into_iter().map(|(r, _)| (r.id, r)).collect();
    let orig_keys = kinds::keys(orig).expect("a batch kind");
    let position: HashMap<&[u8], usize> =
        orig_keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    let want_header = kinds::header(&mut orig.clone());
    // Parts pinned to a region at its current epoch (a stale part is re-split).
    let current: Vec<_> = parts
        .iter()
        .filter(|(id, _)| truth.get(&id.id).map(RegionVerId::of) == Some(*id))
        .collect();
    let mut regions_seen = BTreeSet::new();
    let mut sent = Vec::new();
    for (id, part) in &current {
        assert!(regions_seen.insert(id.id), "region {} got two parts", id.id);
        let r = &truth[&id.id];
        let keys = kinds::keys(part).expect("a batch kind");
        let pos: Vec<usize> = keys.iter().map(|k| position[k]).collect();
        let mut want: Vec<usize> = (0..orig_keys.len())
            .filter(|&i| {
                let k = orig_keys[i];
                k >= r.start_key.as_ref() && (r.end_key.is_empty() || k < r.end_key.as_ref())
            })
            .collect();
        want.sort_unstable();
        assert_eq!(
            pos, want,
            "region {}: its own items, in request order",
            id.id
        );
        check_items(part, &pos);
        assert_eq!(
            kinds::header(&mut (*part).clone()),
            want_header,
            "region {}: the request's other fields",
            id.id
        );
        sent.extend(pos);
    }
    sent.sort_unstable();
    assert_eq!(sent, (0..orig_keys.len()).collect::<Vec<_>>());
    assert_eq!(regions_seen.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn every_part_holds_exactly_its_regions_items() {
    let cases: [(&str, Make); 4] = [
        ("raw batch put", raw_batch_put),
        ("prewrite", prewrite),
        ("batch get", batch_get),
        ("pessimistic lock", pessimistic_lock),
    ];
    for (name, make) in cases {
        for stale in [false, true] {
            let c = cluster(stale);
            let orig = make();
            let (resp, parts) = run(&c, Request::new(orig.clone())).await;
            assert_eq!(resp.details.shards, 3, "{name} stale={stale}");
            // In sync: one part per region; stale: one stale part first, then three.
            assert_eq!(
                parts.len(),
                if stale { 4 } else { 3 },
                "{name} stale={stale}"
            );
            if stale {
                let (id, first) = &parts[0];
                assert_eq!((id.id, id.ver), (1, 1), "{name}: the stale part");
                assert_eq!(kinds::keys(first).map(|k| k.len()), Some(KEYS.len()));
            }
            check_parts(&orig, &parts);
        }
    }
}

#[test]
fn header_leaves_the_request_whole_and_copies_no_items() {
    let cases: [Make; 4] = [raw_batch_put, prewrite, batch_get, pessimistic_lock];
    for make in cases {
        let orig = make();
        let mut req = orig.clone();
        let header = kinds::header(&mut req).expect("a batch kind");
        assert_eq!(req, orig, "{}: the lists are put back", orig.kind());
        assert_eq!(kinds::keys(&header).map(|k| k.len()), Some(0));
        // The header with all items selected is the request again.
        let all: Vec<usize> = (0..KEYS.len()).collect();
        assert_eq!(kinds::select(&req, &header, &all), Some(orig.clone()));
    }
}

#[test]
fn select_keeps_unaligned_lists_whole() {
    // One TTL for many pairs, and no per-mutation actions: carried as they were.
    let mut put = kvrpcpb::RawBatchPutRequest {
        pairs: (0..3)
            .map(|i| kvrpcpb::KvPair {
                key: key(i),
                ..Default::default()
            })
            .collect(),
        ttls: vec![7],
        ..Default::default()
    };
    let header = put.header().unwrap();
    let part = put.select(&header, &[2]).unwrap();
    assert_eq!((part.pairs.len(), part.ttls), (1, vec![7]));

    let mut pw = kvrpcpb::PrewriteRequest {
        mutations: (0..3)
            .map(|i| kvrpcpb::Mutation {
                key: key(i),
                ..Default::default()
            })
            .collect(),
        pessimistic_actions: vec![1],
        ..Default::default()
    };
    let header = pw.header().unwrap();
    let part = pw.select(&header, &[0, 1]).unwrap();
    assert_eq!(part.pessimistic_actions, vec![1]);
}

#[test]
fn select_needs_a_header_of_the_same_kind() {
    let req = batch_get();
    let other = kinds::header(&mut raw_batch_put()).unwrap();
    assert_eq!(kinds::select(&req, &other, &[0]), None);
    assert_eq!(
        kinds::header(&mut kvrpcpb::GetRequest::default().into()),
        None
    );
}
