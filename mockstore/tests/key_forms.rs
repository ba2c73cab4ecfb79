//! Region-boundary key form belongs to the request (issue 9, divergence 1).
//!
//! TiKV compares an API-V1 raw key with region boundaries unencoded and a
//! transactional key (or any API-V2 key) memcomparable-encoded; a client
//! looks PD up with the key in the same form, so PD and the store agree for
//! both kinds of request in one cluster.

use tikv_tower_mockstore::cluster::{ApiVersion, BoundaryEncoding, Region};
use tikv_tower_mockstore::codec::encode_bytes;
use tikv_tower_mockstore::MockCluster;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};

mod common;

/// Sends `req` to the leader of `region` (API V1 context).
async fn send_to(cluster: &MockCluster, region: &Region, req: StoreRequest) -> StoreResponse {
    common::send_to_region(cluster, region, 0, req).await
}

fn raw_put(key: &[u8]) -> StoreRequest {
    kvrpcpb::RawPutRequest {
        key: key.to_vec().into(),
        value: b"v".to_vec().into(),
        ..Default::default()
    }
    .into()
}

fn txn_get(key: &[u8]) -> StoreRequest {
    kvrpcpb::GetRequest {
        key: key.to_vec().into(),
        version: 10,
        ..Default::default()
    }
    .into()
}

/// Written from TiKV `ApiV1::encode_raw_key` (`Key::from_encoded_slice`: a V1
/// raw key is compared unencoded) and `Key::from_raw` for transactional keys
/// (`check_key_in_region` compares the encoded key): with the default split
/// key `b` (a transactional boundary), a V1 raw client that PD sends to
/// `["", enc(b))` for `b` and `b\0` is served there, and so is a
/// transactional client looking up `enc(key)`. The old mock encoded raw keys
/// and answered `KeyNotInRegion`.
#[tokio::test]
async fn v1_raw_and_txn_keys_route_and_check_in_their_own_form() {
    let cluster = MockCluster::builder().split_keys([b"b"]).build();
    for key in [&b"a"[..], b"b", b"b\0", b"bz", b"c"] {
        let region = cluster.region_by_key(key).expect("raw route");
        let resp = send_to(&cluster, &region, raw_put(key)).await;
        assert!(
            resp.region_error().is_none(),
            "raw {key:?} in {region:?}: {:?}",
            resp.region_error()
        );
        let region = cluster
            .region_by_key(&encode_bytes(key))
            .expect("txn route");
        let resp = send_to(&cluster, &region, txn_get(key)).await;
        assert!(
            resp.region_error().is_none(),
            "txn {key:?} in {region:?}: {:?}",
            resp.region_error()
        );
    }
    // The raw key `b` sorts before the transactional boundary enc(b).
    let left = cluster.region_by_key(b"").expect("left");
    assert!(left.contains(b"b"));
    assert_eq!(
        cluster.region_for_request_key(b"b", true).map(|r| r.id),
        Some(left.id)
    );
    assert_ne!(
        cluster.region_for_request_key(b"b", false).map(|r| r.id),
        Some(left.id)
    );
}

/// A raw boundary in a V1 cluster: the transactional key `m` (encoded, after
/// the raw boundary `m`) and the raw key `l\xff` (before it) are served
/// where PD sends them, while a raw key sent to the wrong side is refused
/// (TiKV `check_key_in_region` with `encode_raw_key`).
#[tokio::test]
async fn v1_raw_boundary_serves_both_forms() {
    let cluster = MockCluster::builder()
        .boundary_split_keys([BoundaryEncoding::Raw.to_boundary(b"m")])
        .build();
    let right = cluster.region_by_key(b"m").expect("right");
    let left = cluster.region_by_key(b"l\xff").expect("left");
    assert_ne!(left.id, right.id);
    let resp = send_to(&cluster, &left, raw_put(b"l\xff")).await;
    assert!(resp.region_error().is_none(), "{:?}", resp.region_error());
    let resp = send_to(&cluster, &right, txn_get(b"m")).await;
    assert!(resp.region_error().is_none(), "{:?}", resp.region_error());
    let resp = send_to(&cluster, &left, raw_put(b"m")).await;
    assert!(resp
        .region_error()
        .is_some_and(|e| e.key_not_in_region.is_some()));
}

/// TiKV `KvService::split_region`: `is_raw_kv` keys go through
/// `encode_raw_key` (unencoded under V1), other keys through `Key::from_raw`.
#[tokio::test]
async fn split_region_honours_is_raw_kv() {
    for (is_raw_kv, api, expected) in [
        (true, ApiVersion::V1, b"k".to_vec()),
        (false, ApiVersion::V1, encode_bytes(b"k")),
        (true, ApiVersion::V2, encode_bytes(b"rk")),
    ] {
        let cluster = MockCluster::builder().api_version(api).build();
        let key = if api == ApiVersion::V2 {
            b"rk".to_vec()
        } else {
            b"k".to_vec()
        };
        let region = cluster.region_by_key(&expected).expect("region");
        let req = kvrpcpb::SplitRegionRequest {
            split_keys: vec![key.into()],
            is_raw_kv,
            ..Default::default()
        };
        let resp = send_to(&cluster, &region, req.into()).await;
        assert!(resp.region_error().is_none(), "{:?}", resp.region_error());
        let right = cluster.region_by_key(&expected).expect("right");
        assert_eq!(right.start_key, expected, "is_raw_kv={is_raw_kv} {api:?}");
    }
}
