//! Raw TTL (spec §3.11) driven by a manual clock: expiry hides a key from
//! every read, `RawGetKeyTTL` reports the seconds left, batch puts take
//! per-key TTLs.

use std::time::Duration;

use tikv_tower_mockstore::cluster::ApiVersion;
use tikv_tower_mockstore::{Clock, ManualClock, MockCluster};
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};

mod common;

use common::send_to_leader;

fn cluster() -> (MockCluster, ManualClock) {
    let (clock, manual) = Clock::manual(1_700_000_000_000);
    let c = MockCluster::builder()
        .api_version(ApiVersion::V2)
        .clock(clock)
        .build();
    (c, manual)
}

fn k(s: &str) -> Vec<u8> {
    let mut key = b"r\0\0\0".to_vec();
    key.extend_from_slice(s.as_bytes());
    key
}

async fn send(c: &MockCluster, req: StoreRequest) -> StoreResponse {
    send_to_leader(c, &k("a"), 2, req).await
}

async fn ttl_of(c: &MockCluster, key: &str) -> kvrpcpb::RawGetKeyTtlResponse {
    match send(
        c,
        kvrpcpb::RawGetKeyTtlRequest {
            key: k(key).into(),
            ..Default::default()
        }
        .into(),
    )
    .await
    {
        StoreResponse::RawGetKeyTtl(r) => *r,
        other => panic!("{other:?}"),
    }
}

async fn visible(c: &MockCluster, key: &str) -> bool {
    match send(
        c,
        kvrpcpb::RawGetRequest {
            key: k(key).into(),
            ..Default::default()
        }
        .into(),
    )
    .await
    {
        StoreResponse::RawGet(r) => !r.not_found,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn ttl_expires_with_the_clock() {
    let (c, clock) = cluster();
    send(
        &c,
        kvrpcpb::RawPutRequest {
            key: k("t").into(),
            value: "v".into(),
            ttl: 10,
            ..Default::default()
        }
        .into(),
    )
    .await;
    send(
        &c,
        kvrpcpb::RawPutRequest {
            key: k("forever").into(),
            value: "v".into(),
            ..Default::default()
        }
        .into(),
    )
    .await;
    assert_eq!(ttl_of(&c, "t").await.ttl, 10);
    assert_eq!(ttl_of(&c, "forever").await.ttl, 0);
    assert!(!ttl_of(&c, "forever").await.not_found);
    clock.advance(Duration::from_secs(4));
    assert_eq!(ttl_of(&c, "t").await.ttl, 6);
    assert!(visible(&c, "t").await);
    clock.advance(Duration::from_secs(6));
    // expire_ts <= now: gone for get, TTL, scan, batch get and CAS.
    assert!(!visible(&c, "t").await);
    assert!(ttl_of(&c, "t").await.not_found);
    match send(
        &c,
        kvrpcpb::RawScanRequest {
            start_key: k("").into(),
            end_key: (b"r\0\0\x01".to_vec()).into(),
            limit: 10,
            ..Default::default()
        }
        .into(),
    )
    .await
    {
        StoreResponse::RawScan(r) => assert_eq!(r.kvs.len(), 1, "only the key without TTL"),
        other => panic!("{other:?}"),
    }
    match send(
        &c,
        kvrpcpb::RawBatchGetRequest {
            keys: vec![k("t").into(), k("forever").into()],
            ..Default::default()
        }
        .into(),
    )
    .await
    {
        StoreResponse::RawBatchGet(r) => assert_eq!(r.pairs.len(), 1),
        other => panic!("{other:?}"),
    }
    match send(
        &c,
        kvrpcpb::RawCasRequest {
            key: k("t").into(),
            value: "new".into(),
            previous_not_exist: true,
            ..Default::default()
        }
        .into(),
    )
    .await
    {
        StoreResponse::RawCompareAndSwap(r) => assert!(r.succeed && r.previous_not_exist),
        other => panic!("{other:?}"),
    }
    assert!(visible(&c, "t").await);
    assert!(visible(&c, "forever").await);
}

#[tokio::test]
async fn batch_put_ttls() {
    let (c, clock) = cluster();
    let pairs = |n: usize| -> Vec<kvrpcpb::KvPair> {
        (0..n)
            .map(|i| kvrpcpb::KvPair {
                key: k(&format!("b{i}")).into(),
                value: "v".into(),
                ..Default::default()
            })
            .collect()
    };
    // One TTL applies to every pair.
    send(
        &c,
        kvrpcpb::RawBatchPutRequest {
            pairs: pairs(2),
            ttls: vec![5],
            ..Default::default()
        }
        .into(),
    )
    .await;
    assert_eq!(ttl_of(&c, "b1").await.ttl, 5);
    // One per pair.
    send(
        &c,
        kvrpcpb::RawBatchPutRequest {
            pairs: pairs(3),
            ttls: vec![1, 0, 9],
            ..Default::default()
        }
        .into(),
    )
    .await;
    assert_eq!(
        (
            ttl_of(&c, "b0").await.ttl,
            ttl_of(&c, "b1").await.ttl,
            ttl_of(&c, "b2").await.ttl
        ),
        (1, 0, 9)
    );
    // A mismatched length is refused and writes nothing.
    match send(
        &c,
        kvrpcpb::RawBatchPutRequest {
            pairs: pairs(3),
            ttls: vec![1, 2],
            ..Default::default()
        }
        .into(),
    )
    .await
    {
        StoreResponse::RawBatchPut(r) => assert_eq!(
            r.error,
            "The length of ttls does not equal to the length of pairs"
        ),
        other => panic!("{other:?}"),
    }
    clock.advance(Duration::from_secs(1));
    assert!(!visible(&c, "b0").await);
    assert!(visible(&c, "b1").await);
}

/// Written from TiKV `Storage::raw_batch_put_atomic` (a `for_cas` batch put):
/// it runs `check_ttl_valid` like `raw_batch_put`, so with TTL enabled the
/// TTLs apply per pair and a list of another length is
/// `TtlLenNotEqualsToPairs`.
#[tokio::test]
async fn atomic_batch_put_takes_ttls_and_checks_their_count() {
    let (c, clock) = cluster();
    let pairs: Vec<kvrpcpb::KvPair> = (0..3)
        .map(|i| kvrpcpb::KvPair {
            key: k(&format!("c{i}")).into(),
            value: "v".into(),
            ..Default::default()
        })
        .collect();
    let put = |ttls: Vec<u64>| -> StoreRequest {
        kvrpcpb::RawBatchPutRequest {
            pairs: pairs.clone(),
            ttls,
            for_cas: true,
            ..Default::default()
        }
        .into()
    };
    match send(&c, put(vec![1, 2])).await {
        StoreResponse::RawBatchPut(r) => assert_eq!(
            r.error,
            "The length of ttls does not equal to the length of pairs"
        ),
        other => panic!("{other:?}"),
    }
    assert!(!visible(&c, "c0").await);
    match send(&c, put(vec![1, 0, 9])).await {
        StoreResponse::RawBatchPut(r) => assert_eq!(r.error, ""),
        other => panic!("{other:?}"),
    }
    assert_eq!(ttl_of(&c, "c2").await.ttl, 9);
    clock.advance(Duration::from_secs(1));
    assert!(!visible(&c, "c0").await);
    assert!(visible(&c, "c1").await && visible(&c, "c2").await);
}
