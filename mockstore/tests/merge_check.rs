//! PD-style merges (issue 9, divergence 3): small regions merge after
//! split-merge-interval with TiKV's epoch rules; stale routes are refused.

use std::time::Duration;

use tikv_tower_mockstore::pd::merge_check::MergeConfig;
use tikv_tower_mockstore::{Clock, MockCluster};
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::StoreRequest;

mod common;

use common::peer_ctx;

fn cfg() -> MergeConfig {
    MergeConfig {
        max_merge_region_size: 1_000,
        max_merge_region_keys: 10,
        split_merge_interval: Duration::from_secs(60),
    }
}

fn txn_get(ctx: kvrpcpb::Context, key: &[u8]) -> StoreRequest {
    kvrpcpb::GetRequest {
        context: Some(ctx),
        key: key.to_vec().into(),
        version: 10,
        ..Default::default()
    }
    .into()
}

/// Written from PD `MergeChecker::Check` (no merge within
/// `split-merge-interval` of start-up or of a split; sources and targets
/// under `max-merge-region-size` / `max-merge-region-keys`) and TiKV
/// `exec_prepare_merge` (source version + 1) / `exec_commit_merge` (target
/// version = max(source, target) + 1): empty regions merge, a request with a
/// stale route to the source gets `RegionNotFound`, one to the target
/// `EpochNotMatch` carrying the widened target. The old mock never merged.
#[tokio::test]
async fn empty_regions_merge_after_the_interval_with_tikv_epochs() {
    let (clock, manual) = Clock::manual(1_000_000);
    let c = MockCluster::builder()
        .clock(clock)
        .split_keys([b"d", b"m"])
        .merge(cfg())
        .build();
    let before = c.regions();
    assert_eq!(before.len(), 3);
    assert!(c.merge_check_tick().is_empty(), "merged right after start");
    manual.advance(Duration::from_secs(61));
    let merged = c.merge_check_tick();
    assert_eq!(merged.len(), 1, "{merged:?}");
    let (source_id, target_id) = merged[0];
    let source = before.iter().find(|r| r.id == source_id).expect("source");
    let target_before = before.iter().find(|r| r.id == target_id).expect("target");
    let target = c.region(target_id).expect("target now");
    assert_eq!(
        target.epoch.version,
        (source.epoch.version + 1).max(target_before.epoch.version) + 1
    );
    assert_eq!(target.epoch.conf_ver, target_before.epoch.conf_ver);
    assert!(c.region(source_id).is_none());

    let store = c.store(1).expect("store");
    let key_in_source = if source.start_key.is_empty() {
        b"a".to_vec()
    } else {
        b"e".to_vec()
    };
    let resp = store
        .handle(txn_get(peer_ctx(source, 1), &key_in_source))
        .await
        .expect("rpc");
    assert!(
        resp.region_error()
            .is_some_and(|e| e.region_not_found.is_some()),
        "{:?}",
        resp.region_error()
    );
    let resp = store
        .handle(txn_get(peer_ctx(target_before, 1), &key_in_source))
        .await
        .expect("rpc");
    let current = resp
        .region_error()
        .and_then(|e| e.epoch_not_match.clone())
        .expect("EpochNotMatch")
        .current_regions;
    assert_eq!(current.first().map(|r| r.id), Some(target_id));

    // Next tick the remaining pair merges into one region.
    c.merge_check_tick();
    assert_eq!(c.region_count(), 1);
}

/// PD `MergeChecker::Check`: regions above the size threshold and regions
/// split within `split-merge-interval` stay.
#[tokio::test]
async fn big_or_recently_split_regions_stay() {
    let (clock, manual) = Clock::manual(1_000_000);
    let c = MockCluster::builder()
        .clock(clock)
        .split_keys([b"m"])
        .merge(cfg())
        .build();
    let left = c.region_by_key(b"").expect("left");
    let value = vec![b'x'; 2_000];
    let req = kvrpcpb::RawPutRequest {
        context: Some(peer_ctx(&left, 1)),
        key: b"a".to_vec().into(),
        value: value.into(),
        ..Default::default()
    };
    let resp = c
        .store(1)
        .expect("store")
        .handle(req.into())
        .await
        .expect("rpc");
    assert!(resp.region_error().is_none());
    manual.advance(Duration::from_secs(61));
    // The left region is over max-merge-region-size; the right one is split
    // again, so both of its pieces are recently split: nothing merges.
    c.split_keys([b"t"]).expect("split");
    assert_eq!(c.merge_check_tick(), Vec::new());
    assert_eq!(c.region_count(), 3);
}
