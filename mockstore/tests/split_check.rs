//! Automatic splits count what TiKV counts (issue 9, divergence 2).

use std::time::Duration;

use tikv_tower_mockstore::cluster::{ApiVersion, SplitThresholds};
use tikv_tower_mockstore::codec::decode_bytes;
use tikv_tower_mockstore::{Clock, MockCluster};
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};

mod common;

/// Sends `req` to the leader of the region PD gives for `key` in the form a
/// raw (`is_raw`) or transactional client looks it up; a region error
/// panics.
async fn send(c: &MockCluster, key: &[u8], is_raw: bool, req: StoreRequest) -> StoreResponse {
    let region = c.region_for_request_key(key, is_raw).expect("region");
    let resp = common::send_to_region(c, &region, c.api_version().as_i32(), req).await;
    assert!(
        resp.region_error().is_none(),
        "{key:?}: {:?}",
        resp.region_error()
    );
    resp
}

async fn raw_put(c: &MockCluster, key: &[u8], value: &[u8]) {
    let req = kvrpcpb::RawPutRequest {
        key: key.to_vec().into(),
        value: value.to_vec().into(),
        ..Default::default()
    };
    send(c, key, true, req.into()).await;
}

async fn prewrite(c: &MockCluster, key: &[u8], start_ts: u64) {
    let req = common::put_prewrite(Default::default(), start_ts, key);
    send(c, key, false, req.into()).await;
}

async fn commit(c: &MockCluster, key: &[u8], start_ts: u64) {
    let req = kvrpcpb::CommitRequest {
        keys: vec![key.to_vec().into()],
        start_version: start_ts,
        commit_version: start_ts + 1,
        ..Default::default()
    };
    match send(c, key, false, req.into()).await {
        StoreResponse::Commit(r) => assert!(r.error.is_none(), "{r:?}"),
        other => panic!("{other:?}"),
    }
}

fn every_write(
    max_keys: Option<u64>,
    split_keys: Option<u64>,
    max_size: Option<u64>,
) -> SplitThresholds {
    SplitThresholds {
        max_keys,
        split_keys,
        max_size,
        split_size: max_size.map(|m| m / 2),
        check_interval: Some(Duration::ZERO),
    }
}

/// Written from TiKV `split_check/keys.rs` `Checker::on_kv` (only
/// `is_commit_version()` entries, i.e. CF_WRITE, count) and tikv/tikv#14503
/// (RawKV data in CF_DEFAULT never triggers a key-count split): the issue's
/// scenario, 100 raw puts over keyspace 0 with `--auto-split-keys 40`, keeps
/// `[r\0\0\0, r\0\0\1)` one region and a reverse scan up to `r\0\0\1` is
/// answered. The old mock counted raw keys and made 4 regions.
#[tokio::test]
async fn raw_data_never_splits_by_key_count() {
    let c = MockCluster::builder()
        .api_version(ApiVersion::V2)
        .split_thresholds(every_write(Some(40), None, None))
        .build();
    let before = c.region_count();
    for i in 0..100u8 {
        raw_put(&c, &[b'r', 0, 0, 0, i.wrapping_mul(37)], b"v").await;
    }
    c.split_check_tick();
    assert_eq!(c.region_count(), before);
    let req = kvrpcpb::RawScanRequest {
        start_key: b"r\0\0\x01".to_vec().into(),
        end_key: b"r\0\0\0".to_vec().into(),
        limit: 1000,
        reverse: true,
        ..Default::default()
    };
    match send(&c, b"r\0\0\0", true, req.into()).await {
        StoreResponse::RawScan(r) => assert_eq!(r.kvs.len(), 100, "{:?}", r.kvs.first()),
        other => panic!("{other:?}"),
    }
}

/// TiKV `split_check/keys.rs`: prewrite locks (CF_LOCK) do not count, each
/// committed version (CF_WRITE record) does; split keys are memcomparable
/// transactional keys. The old mock counted locked keys.
#[tokio::test]
async fn only_committed_versions_count_toward_key_splits() {
    let c = MockCluster::builder()
        .split_thresholds(every_write(Some(10), Some(5), None))
        .build();
    let keys: Vec<Vec<u8>> = (0..30u64)
        .map(|i| format!("t{i:03}").into_bytes())
        .collect();
    for (i, k) in keys.iter().enumerate() {
        prewrite(&c, k, 100 + 10 * i as u64).await;
    }
    c.split_check_tick();
    assert_eq!(c.region_count(), 1, "locks alone split the region");
    for (i, k) in keys.iter().enumerate() {
        commit(&c, k, 100 + 10 * i as u64).await;
    }
    c.split_check_tick();
    assert!(c.region_count() >= 4, "{} regions", c.region_count());
    for r in c.regions().iter().skip(1) {
        assert!(decode_bytes(&r.start_key).is_ok(), "{:?}", r.start_key);
    }
}

/// TiKV `split_check/size.rs` `Checker::on_kv`: raw data splits by size, at
/// raw keys in the raw form under API V1 (`ApiV1::encode_raw_key`); raw
/// clients keep being routed and served across the new boundaries.
#[tokio::test]
async fn raw_data_splits_by_size_at_raw_keys() {
    let c = MockCluster::builder()
        .split_thresholds(every_write(None, None, Some(2_000)))
        .build();
    let value = vec![b'x'; 100];
    for i in 0..60u32 {
        raw_put(&c, format!("k{i:03}").as_bytes(), &value).await;
    }
    assert!(c.region_count() >= 3, "{} regions", c.region_count());
    for r in c.regions().iter().skip(1) {
        assert!(
            r.start_key.starts_with(b"k") && r.start_key.len() == 4,
            "{:?}",
            r.start_key
        );
    }
    for i in 0..60u32 {
        raw_put(&c, format!("k{i:03}").as_bytes(), b"again").await;
    }
}

/// TiKV runs the split check on `split-region-check-tick-interval` (default
/// 10 s) and cuts a region into as many parts as it needs, up to
/// `batch-split-limit` (10) keys per check (`Checker::on_kv`'s
/// `over_limit`). The old mock checked every `max_keys / 4` writes and cut
/// one piece at a time.
#[tokio::test]
async fn split_check_runs_on_the_tick_and_cuts_many_parts() {
    let (clock, manual) = Clock::manual(1_000_000);
    let c = MockCluster::builder()
        .clock(clock)
        .region_max_keys(10, 5)
        .build();
    for i in 0..61u64 {
        let k = format!("t{i:03}").into_bytes();
        prewrite(&c, &k, 100 + 10 * i).await;
        commit(&c, &k, 100 + 10 * i).await;
    }
    assert_eq!(c.region_count(), 1, "split before the tick");
    manual.advance(Duration::from_secs(10));
    prewrite(&c, b"u", 5000).await;
    assert_eq!(
        c.region_count(),
        11,
        "one check makes batch-split-limit + 1 parts"
    );
}
