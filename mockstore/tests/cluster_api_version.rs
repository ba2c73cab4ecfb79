//! The API-version / key-mode rules of transactional commands (spec §2.6,
//! TiKV `check_api_version`): a refused request gets a `KeyError.abort`,
//! not a region error.

use tikv_tower_mockstore::cluster::ApiVersion;
use tikv_tower_mockstore::MockCluster;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};

mod common;

use common::send_to_leader;

async fn abort_of(
    c: &MockCluster,
    api: i32,
    req: StoreRequest,
    route_key: &[u8],
) -> Option<String> {
    let resp = send_to_leader(c, route_key, api, req).await;
    assert!(resp.region_error().is_none(), "{:?}", resp.region_error());
    match resp {
        StoreResponse::Get(r) => r.error.map(|e| e.abort),
        StoreResponse::Scan(r) => r.error.map(|e| e.abort),
        StoreResponse::Prewrite(r) => r.errors.first().map(|e| e.abort.clone()),
        other => panic!("{other:?}"),
    }
}

fn get(key: &[u8]) -> StoreRequest {
    kvrpcpb::GetRequest {
        key: key.to_vec().into(),
        version: 10,
        ..Default::default()
    }
    .into()
}

#[tokio::test]
async fn txn_api_version_table() {
    // (storage, request api, key, expected abort prefix or None)
    let rows: &[(ApiVersion, i32, &[u8], Option<&str>)] = &[
        (ApiVersion::V1, 0, b"k", None),
        (ApiVersion::V1, 2, b"k", Some("Error(ApiVersionNotMatched { cmd: get, storage_api_version: V1, req_api_version: V2 })")),
        (ApiVersion::V1Ttl, 0, b"k", Some("Error(ApiVersionNotMatched { cmd: get, storage_api_version: V1ttl, req_api_version: V1 })")),
        (ApiVersion::V2, 2, b"x\0\0\0k", None),
        (ApiVersion::V2, 2, b"r\0\0\0k", Some("Error(InvalidKeyMode { cmd: get, storage_api_version: V2, key: \"720000006B\" })")),
        (ApiVersion::V2, 0, b"t\x80k", None),
        (ApiVersion::V2, 0, b"x\0\0\0k", Some("Error(InvalidKeyMode")),
    ];
    for (i, (storage, api, key, want)) in rows.iter().enumerate() {
        let c = MockCluster::builder().api_version(*storage).build();
        let got = abort_of(&c, *api, get(key), key).await;
        match want {
            None => assert_eq!(got, None, "row {i}"),
            Some(prefix) => assert!(
                got.as_deref().is_some_and(|g| g.starts_with(prefix)),
                "row {i}: {got:?}"
            ),
        }
    }
}

#[tokio::test]
async fn v2_scan_needs_a_bounded_txn_range_and_prewrite_checks_every_key() {
    let c = MockCluster::builder().api_version(ApiVersion::V2).build();
    let bounded = kvrpcpb::ScanRequest {
        start_key: (b"x\0\0\0".to_vec()).into(),
        end_key: (b"x\0\0\x01".to_vec()).into(),
        limit: 5,
        version: 10,
        ..Default::default()
    };
    assert_eq!(abort_of(&c, 2, bounded.into(), b"x\0\0\0").await, None);
    let open = kvrpcpb::ScanRequest {
        start_key: (b"x\0\0\0".to_vec()).into(),
        limit: 5,
        version: 10,
        ..Default::default()
    };
    let got = abort_of(&c, 2, open.into(), b"x\0\0\0").await;
    assert!(
        got.as_deref()
            .is_some_and(|g| g.starts_with("Error(InvalidKeyRangeMode")),
        "{got:?}"
    );
    let m = |k: &[u8]| kvrpcpb::Mutation {
        key: k.to_vec().into(),
        value: "v".into(),
        ..Default::default()
    };
    let pw = kvrpcpb::PrewriteRequest {
        mutations: vec![m(b"x\0\0\0a"), m(b"xyz")],
        primary_lock: (b"x\0\0\0a".to_vec()).into(),
        start_version: 10,
        lock_ttl: 1000,
        ..Default::default()
    };
    // "xyz" has the txn mode byte, so both pass the mode check but "xyz" lies
    // outside the DEFAULT keyspace region: KeyNotInRegion comes first.
    let region = c.region_for_user_key(b"x\0\0\0a").expect("region");
    let mut req: StoreRequest = pw.into();
    let ctx = req.context_mut();
    ctx.region_id = region.id;
    ctx.region_epoch = Some(region.epoch.to_pb());
    ctx.peer = region.leader_peer().map(|p| p.to_pb());
    ctx.api_version = 2;
    let resp = c.store(1).expect("store").handle(req).await.expect("rpc");
    assert!(resp
        .region_error()
        .and_then(|e| e.key_not_in_region.as_ref())
        .is_some());
}
