//! A raw client holding stale routes across PD-style merges in mockstore (issue 9,
//! divergence 3): the merged-away source answers `RegionNotFound`, the widened target
//! `EpochNotMatch`, and the client reroutes.
#![cfg(feature = "embedded")]

mod raw_common;

use std::time::Duration;

use raw_common::client;
use tikv_tower::config::{ApiVersion, Config};
use tikv_tower::presets::embedded_boundaries;
use tikv_tower_mockstore::pd::merge_check::MergeConfig;
use tikv_tower_mockstore::{Clock, MockCluster};

/// Written from PD `MergeChecker::Check` and TiKV `exec_commit_merge`: after the
/// merges, every key is still read through routes the client cached before them.
#[tokio::test]
async fn client_with_stale_routes_reads_through_merges() {
    let (clock, manual) = Clock::manual(1_700_000_000_000);
    let b = MockCluster::builder()
        .clock(clock)
        .split_keys([b"c", b"f", b"k", b"p"])
        .merge(MergeConfig {
            max_merge_region_size: 1 << 20,
            max_merge_region_keys: 1_000,
            split_merge_interval: Duration::from_secs(60),
        });
    let cluster = embedded_boundaries(b, ApiVersion::V1).build();
    assert_eq!(cluster.region_count(), 5);
    let raw = client(&cluster, Config::default()).await;
    let keys: Vec<&str> = vec!["a", "d", "g", "m", "q"];
    for k in &keys {
        raw.put(*k, *k).await.expect("put");
    }
    manual.advance(Duration::from_secs(61));
    while !cluster.merge_check_tick().is_empty() {}
    assert_eq!(cluster.region_count(), 1);

    cluster.recorder().start();
    for k in &keys {
        assert_eq!(
            raw.get(*k).await.expect("get").as_deref(),
            Some(k.as_bytes())
        );
    }
    let seen = cluster.recorder().take();
    let stale = seen
        .iter()
        .filter_map(|r| r.response.as_ref().ok().and_then(|x| x.region_error()))
        .filter(|e| e.region_not_found.is_some() || e.epoch_not_match.is_some())
        .count();
    assert!(stale > 0, "no stale route was exercised: {seen:?}");
    let all = raw.scan(.., 100).await.expect("scan");
    assert_eq!(all.len(), keys.len());
}
