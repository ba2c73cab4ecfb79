//! RawKV semantics (spec §2.4): absent vs empty, batch-get omission, scans
//! (forward, reverse, limits, key_only, region clipping), batch scans,
//! delete range, CAS (incl. compare-and-delete), checksum, column families.

use tikv_tower_mockstore::cluster::{ApiVersion, BoundaryEncoding};
use tikv_tower_mockstore::raw::checksum::crc64_pair;
use tikv_tower_mockstore::MockCluster;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};

mod common;

use common::send_to_leader;

/// Sends `req` to the leader of the region holding `key`, with a correct
/// context (API version `api`).
async fn send(cluster: &MockCluster, key: &[u8], api: i32, req: StoreRequest) -> StoreResponse {
    let resp = send_to_leader(cluster, key, api, req).await;
    assert!(
        resp.region_error().is_none(),
        "region error {:?}",
        resp.region_error()
    );
    resp
}

fn v1() -> MockCluster {
    MockCluster::builder()
        .boundary_encoding(BoundaryEncoding::Raw)
        .split_keys([b"m"])
        .build()
}

async fn put(c: &MockCluster, k: &[u8], v: &[u8]) {
    let r = send(
        c,
        k,
        0,
        kvrpcpb::RawPutRequest {
            key: k.to_vec().into(),
            value: v.to_vec().into(),
            ..Default::default()
        }
        .into(),
    )
    .await;
    match r {
        StoreResponse::RawPut(r) => assert_eq!(r.error, ""),
        other => panic!("{other:?}"),
    }
}

async fn get(c: &MockCluster, k: &[u8]) -> kvrpcpb::RawGetResponse {
    match send(
        c,
        k,
        0,
        kvrpcpb::RawGetRequest {
            key: k.to_vec().into(),
            ..Default::default()
        }
        .into(),
    )
    .await
    {
        StoreResponse::RawGet(r) => *r,
        other => panic!("{other:?}"),
    }
}

fn keys(pairs: &[kvrpcpb::KvPair]) -> Vec<&[u8]> {
    pairs.iter().map(|p| p.key.as_ref()).collect()
}

#[tokio::test]
async fn get_tells_absent_from_empty() {
    let c = v1();
    put(&c, b"empty", b"").await;
    let r = get(&c, b"empty").await;
    assert!(!r.not_found);
    assert_eq!(r.value, "");
    let r = get(&c, b"absent").await;
    assert!(r.not_found);
    // The empty key is a valid V1 raw key.
    put(&c, b"", b"e").await;
    assert_eq!(get(&c, b"").await.value, "e");
}

#[tokio::test]
async fn batch_get_omits_missing_keys_in_request_order() {
    let c = v1();
    put(&c, b"b", b"2").await;
    put(&c, b"a", b"1").await;
    let req = kvrpcpb::RawBatchGetRequest {
        keys: vec!["b".into(), "".into(), "absent".into(), "a".into()],
        ..Default::default()
    };
    match send(&c, b"a", 0, req.into()).await {
        StoreResponse::RawBatchGet(r) => {
            assert_eq!(keys(&r.pairs), vec![b"b".as_slice(), b"a".as_slice()]);
            assert_eq!(r.pairs[0].value, "2");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn scans_clip_to_region_and_honour_limit_reverse_key_only() {
    let c = v1();
    for k in [b"a", b"b", b"c", b"n", b"o"] {
        put(&c, k, b"v").await;
    }
    let scan = |start: &[u8], end: &[u8], limit, reverse, key_only| kvrpcpb::RawScanRequest {
        start_key: start.to_vec().into(),
        end_key: end.to_vec().into(),
        limit,
        reverse,
        key_only,
        ..Default::default()
    };
    let run = |req: kvrpcpb::RawScanRequest, at: &'static [u8]| {
        let c = c.clone();
        async move {
            match send(&c, at, 0, req.into()).await {
                StoreResponse::RawScan(r) => r.kvs,
                other => panic!("{other:?}"),
            }
        }
    };
    // Forward with empty end: clipped at the region end "m".
    let kvs = run(scan(b"", b"", 10, false, false), b"a").await;
    assert_eq!(keys(&kvs), vec![b"a".as_slice(), b"b", b"c"]);
    assert_eq!(kvs[0].value, "v");
    // Limit.
    assert_eq!(
        keys(&run(scan(b"a", b"", 2, false, false), b"a").await),
        vec![b"a".as_slice(), b"b"]
    );
    // limit 0 → empty.
    assert!(run(scan(b"a", b"", 0, false, false), b"a").await.is_empty());
    // End bound is exclusive.
    assert_eq!(
        keys(&run(scan(b"a", b"c", 10, false, false), b"a").await),
        vec![b"a".as_slice(), b"b"]
    );
    // Reverse: [end, start) descending, from the region end.
    let kvs = run(scan(b"m", b"b", 10, true, true), b"a").await;
    assert_eq!(keys(&kvs), vec![b"c".as_slice(), b"b"]);
    assert!(kvs.iter().all(|p| p.value.is_empty()), "key_only");
    // Reverse with empty end goes down to the region start.
    assert_eq!(
        keys(&run(scan(b"c", b"", 10, true, false), b"a").await),
        vec![b"b".as_slice(), b"a"]
    );
    // The right region.
    assert_eq!(
        keys(&run(scan(b"m", b"", 10, false, false), b"n").await),
        vec![b"n".as_slice(), b"o"]
    );
}

#[tokio::test]
async fn batch_scan_applies_each_limit_per_range() {
    let c = v1();
    for k in [b"a1", b"a2", b"a3", b"b1", b"b2", b"b3"] {
        put(&c, k, b"v").await;
    }
    let req = kvrpcpb::RawBatchScanRequest {
        ranges: vec![
            kvrpcpb::KeyRange {
                start_key: "a".into(),
                end_key: "b".into(),
            },
            kvrpcpb::KeyRange {
                start_key: "b".into(),
                end_key: "c".into(),
            },
        ],
        each_limit: 2,
        ..Default::default()
    };
    match send(&c, b"a", 0, req.into()).await {
        StoreResponse::RawBatchScan(r) => {
            assert_eq!(keys(&r.kvs), vec![b"a1".as_slice(), b"a2", b"b1", b"b2"]);
        }
        other => panic!("{other:?}"),
    }
    // Out-of-order ranges are refused in one error pair.
    let bad = kvrpcpb::RawBatchScanRequest {
        ranges: vec![kvrpcpb::KeyRange {
            start_key: "b".into(),
            end_key: "a".into(),
        }],
        each_limit: 2,
        ..Default::default()
    };
    match send(&c, b"b", 0, bad.into()).await {
        StoreResponse::RawBatchScan(r) => {
            assert_eq!(r.kvs.len(), 1);
            assert_eq!(
                r.kvs[0].error.as_ref().map(|e| e.abort.as_str()),
                Some("Error(Other(\"Invalid KeyRanges\"))")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn delete_range_and_batch_delete() {
    let c = v1();
    for k in [b"a", b"b", b"c", b"d"] {
        put(&c, k, b"v").await;
    }
    let req = kvrpcpb::RawDeleteRangeRequest {
        start_key: "b".into(),
        end_key: "d".into(),
        ..Default::default()
    };
    match send(&c, b"b", 0, req.into()).await {
        StoreResponse::RawDeleteRange(r) => assert_eq!(r.error, ""),
        other => panic!("{other:?}"),
    }
    assert!(get(&c, b"b").await.not_found);
    assert!(get(&c, b"c").await.not_found);
    assert!(!get(&c, b"d").await.not_found);
    let req = kvrpcpb::RawBatchDeleteRequest {
        keys: vec!["a".into(), "d".into()],
        ..Default::default()
    };
    send(&c, b"a", 0, req.into()).await;
    assert!(get(&c, b"a").await.not_found);
    assert!(get(&c, b"d").await.not_found);
}

async fn cas(c: &MockCluster, req: kvrpcpb::RawCasRequest) -> kvrpcpb::RawCasResponse {
    let key = req.key.clone();
    match send(c, &key, 0, req.into()).await {
        StoreResponse::RawCompareAndSwap(r) => *r,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn compare_and_swap_table() {
    let c = v1();
    // (previous_not_exist, previous_value, value, delete) → (succeed, previous_not_exist, previous_value, after)
    type Row = (
        bool,
        &'static [u8],
        &'static [u8],
        bool,
        bool,
        bool,
        &'static [u8],
        Option<&'static [u8]>,
    );
    let rows: &[Row] = &[
        (true, b"", b"v1", false, true, true, b"", Some(b"v1")), // create when absent
        (true, b"", b"v2", false, false, false, b"v1", Some(b"v1")), // create when present fails
        (false, b"vx", b"v2", false, false, false, b"v1", Some(b"v1")), // wrong expectation
        (false, b"v1", b"v2", false, true, false, b"v1", Some(b"v2")), // swap
        (false, b"v1", b"", true, false, false, b"v2", Some(b"v2")), // compare-and-delete, wrong value
        (false, b"v2", b"", true, true, false, b"v2", None),         // compare-and-delete
        (false, b"", b"v3", false, false, true, b"", None),          // expects "" but absent
    ];
    for (i, (pne, prev, value, delete, succeed, prev_ne, prev_val, after)) in
        rows.iter().enumerate()
    {
        let r = cas(
            &c,
            kvrpcpb::RawCasRequest {
                key: "k".into(),
                value: value.to_vec().into(),
                previous_not_exist: *pne,
                previous_value: prev.to_vec().into(),
                delete: *delete,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(r.error, "", "row {i}");
        assert_eq!(
            (r.succeed, r.previous_not_exist, r.previous_value.as_ref()),
            (*succeed, *prev_ne, *prev_val),
            "row {i}"
        );
        let g = get(&c, b"k").await;
        assert_eq!(
            if g.not_found {
                None
            } else {
                Some(g.value.as_ref())
            },
            *after,
            "row {i}"
        );
    }
}

#[tokio::test]
async fn checksum_is_crc64_xor_over_key_and_value() {
    let c = v1();
    let pairs: &[(&[u8], &[u8])] = &[(b"a", b"1"), (b"b", b"22"), (b"c", b"")];
    for (k, v) in pairs {
        put(&c, k, v).await;
    }
    let req = kvrpcpb::RawChecksumRequest {
        ranges: vec![kvrpcpb::KeyRange {
            start_key: "a".into(),
            end_key: "c".into(),
        }],
        ..Default::default()
    };
    let expected = crc64_pair(b"a", b"1") ^ crc64_pair(b"b", b"22");
    match send(&c, b"a", 0, req.into()).await {
        StoreResponse::RawChecksum(r) => {
            assert_eq!(r.error, "");
            assert_eq!((r.checksum, r.total_kvs, r.total_bytes), (expected, 2, 5));
        }
        other => panic!("{other:?}"),
    }
    let bad = kvrpcpb::RawChecksumRequest {
        algorithm: 7,
        ..Default::default()
    };
    match send(&c, b"a", 0, bad.into()).await {
        StoreResponse::RawChecksum(r) => assert!(
            r.error.contains("unknown checksum algorithm"),
            "{}",
            r.error
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn column_families_are_separate_and_validated() {
    let c = v1();
    let put_cf = |cf: &str| kvrpcpb::RawPutRequest {
        key: "k".into(),
        value: cf.as_bytes().to_vec().into(),
        cf: cf.into(),
        ..Default::default()
    };
    for cf in ["default", "lock", "write"] {
        send(&c, b"k", 0, put_cf(cf).into()).await;
    }
    for cf in ["", "default", "lock", "write"] {
        let r = send(
            &c,
            b"k",
            0,
            kvrpcpb::RawGetRequest {
                key: "k".into(),
                cf: cf.into(),
                ..Default::default()
            }
            .into(),
        )
        .await;
        match r {
            StoreResponse::RawGet(r) => assert_eq!(
                r.value,
                if cf.is_empty() {
                    b"default".to_vec()
                } else {
                    cf.as_bytes().to_vec()
                }
            ),
            other => panic!("{other:?}"),
        }
    }
    match send(&c, b"k", 0, put_cf("bogus").into()).await {
        StoreResponse::RawPut(r) => assert_eq!(r.error, "invalid cf name: bogus"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn key_too_large_and_ttl_not_enabled_in_v1() {
    let c = MockCluster::builder()
        .boundary_encoding(BoundaryEncoding::Raw)
        .build();
    let big = vec![b'k'; 8 * 1024 + 1];
    match send(
        &c,
        &big,
        0,
        kvrpcpb::RawPutRequest {
            key: big.clone().into(),
            ..Default::default()
        }
        .into(),
    )
    .await
    {
        StoreResponse::RawPut(r) => {
            assert_eq!(r.error, "max key size exceeded, size: 8193, limit: 8192")
        }
        other => panic!("{other:?}"),
    }
    match send(
        &c,
        b"k",
        0,
        kvrpcpb::RawPutRequest {
            key: "k".into(),
            ttl: 5,
            ..Default::default()
        }
        .into(),
    )
    .await
    {
        StoreResponse::RawPut(r) => {
            assert_eq!(r.error, "ttl is not enabled, but get put request with ttl")
        }
        other => panic!("{other:?}"),
    }
    match send(
        &c,
        b"k",
        0,
        kvrpcpb::RawGetKeyTtlRequest {
            key: "k".into(),
            ..Default::default()
        }
        .into(),
    )
    .await
    {
        StoreResponse::RawGetKeyTtl(r) => assert_eq!(r.error, "TTL is not enabled"),
        other => panic!("{other:?}"),
    }
    // A V2 request on V1 storage.
    match send(
        &c,
        b"k",
        2,
        kvrpcpb::RawGetRequest {
            key: "k".into(),
            ..Default::default()
        }
        .into(),
    )
    .await
    {
        StoreResponse::RawGet(r) => assert!(
            r.error.starts_with("Api version in request does not match"),
            "{}",
            r.error
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn api_v2_requires_raw_prefix_and_default_cf() {
    let c = MockCluster::builder().api_version(ApiVersion::V2).build();
    let key = b"r\0\0\0hello".to_vec();
    let r = send(
        &c,
        &key,
        2,
        kvrpcpb::RawPutRequest {
            key: key.clone().into(),
            value: "w".into(),
            ttl: 10,
            ..Default::default()
        }
        .into(),
    )
    .await;
    assert!(
        matches!(r, StoreResponse::RawPut(ref p) if p.error.is_empty()),
        "{r:?}"
    );
    // The keyspace boundaries are memcomparable-encoded.
    let region = c.region_for_user_key(&key).expect("region");
    assert_eq!(
        region.start_key,
        tikv_tower_mockstore::codec::encode_bytes(b"r\0\0\0")
    );
    assert_eq!(
        region.end_key,
        tikv_tower_mockstore::codec::encode_bytes(b"r\0\0\x01")
    );
    // Wrong key mode.
    let txn_key = b"x\0\0\0hello".to_vec();
    match send(&c, &txn_key, 2, kvrpcpb::RawGetRequest { key: txn_key.clone().into(), ..Default::default() }.into()).await {
        StoreResponse::RawGet(r) => assert_eq!(
            r.error,
            "Key mode mismatched with the request mode, cmd: raw_get, storage: V2, key: 7800000068656C6C6F"
        ),
        other => panic!("{other:?}"),
    }
    // A V1 request on V2 storage.
    match send(
        &c,
        &key,
        0,
        kvrpcpb::RawGetRequest {
            key: key.clone().into(),
            ..Default::default()
        }
        .into(),
    )
    .await
    {
        StoreResponse::RawGet(r) => assert!(
            r.error.starts_with("Api version in request does not match"),
            "{}",
            r.error
        ),
        other => panic!("{other:?}"),
    }
    // A cf in V2.
    match send(
        &c,
        &key,
        2,
        kvrpcpb::RawGetRequest {
            key: key.clone().into(),
            cf: "default".into(),
            ..Default::default()
        }
        .into(),
    )
    .await
    {
        StoreResponse::RawGet(r) => {
            assert_eq!(r.error, "cf is deprecated in API V2, cf name: default")
        }
        other => panic!("{other:?}"),
    }
    // Scans need both ends in raw mode; the keyspace end "r\0\0\x01" is fine.
    let scan = kvrpcpb::RawScanRequest {
        start_key: (b"r\0\0\0".to_vec()).into(),
        end_key: (b"r\0\0\x01".to_vec()).into(),
        limit: 10,
        ..Default::default()
    };
    match send(&c, &key, 2, scan.into()).await {
        StoreResponse::RawScan(r) => assert_eq!(keys(&r.kvs), vec![key.as_slice()]),
        other => panic!("{other:?}"),
    }
    let open = kvrpcpb::RawScanRequest {
        start_key: (b"r\0\0\0".to_vec()).into(),
        limit: 10,
        ..Default::default()
    };
    match send(&c, &key, 2, open.into()).await {
        StoreResponse::RawScan(r) => {
            let abort = r
                .kvs
                .first()
                .and_then(|p| p.error.as_ref())
                .map(|e| e.abort.clone())
                .unwrap_or_default();
            assert!(abort.starts_with("Error(InvalidKeyRangeMode { cmd: raw_scan, storage_api_version: V2, range: (Some(\"72000000\"), None)"), "{abort}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_cas_increments_are_atomic() {
    let c = v1();
    put(&c, b"ctr", b"0").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            while done < 25 {
                let cur = get(&c, b"ctr").await.value;
                let n: u32 = std::str::from_utf8(&cur)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let r = cas(
                    &c,
                    kvrpcpb::RawCasRequest {
                        key: "ctr".into(),
                        value: ((n + 1).to_string().into_bytes()).into(),
                        previous_value: cur,
                        ..Default::default()
                    },
                )
                .await;
                if r.succeed {
                    done += 1;
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(get(&c, b"ctr").await.value, "200");
}

/// Written from TiKV's atomic raw paths: `KvService` sends `for_cas` writes
/// to `Storage::raw_batch_put_atomic` / `raw_batch_delete_atomic` (put,
/// batch put, delete, batch delete) and CAS to `raw_compare_and_swap_atomic`,
/// none of which calls `check_key_size!`; the non-atomic `raw_put` etc. do.
#[tokio::test]
async fn atomic_writes_skip_the_key_size_check() {
    use tikv_tower_mockstore::raw::error::MAX_KEY_SIZE;
    let c = v1();
    let big = vec![b'a'; MAX_KEY_SIZE + 1];
    let pair = kvrpcpb::KvPair {
        key: big.clone().into(),
        value: b"v".to_vec().into(),
        ..Default::default()
    };
    let writes = |for_cas: bool| -> Vec<StoreRequest> {
        vec![
            kvrpcpb::RawPutRequest {
                key: big.clone().into(),
                value: b"v".to_vec().into(),
                for_cas,
                ..Default::default()
            }
            .into(),
            kvrpcpb::RawBatchPutRequest {
                pairs: vec![pair.clone()],
                for_cas,
                ..Default::default()
            }
            .into(),
            kvrpcpb::RawDeleteRequest {
                key: big.clone().into(),
                for_cas,
                ..Default::default()
            }
            .into(),
            kvrpcpb::RawBatchDeleteRequest {
                keys: vec![big.clone().into()],
                for_cas,
                ..Default::default()
            }
            .into(),
        ]
    };
    fn error_of(resp: &StoreResponse) -> String {
        match resp {
            StoreResponse::RawPut(r) => r.error.clone(),
            StoreResponse::RawBatchPut(r) => r.error.clone(),
            StoreResponse::RawDelete(r) => r.error.clone(),
            StoreResponse::RawBatchDelete(r) => r.error.clone(),
            StoreResponse::RawCompareAndSwap(r) => r.error.clone(),
            other => panic!("{other:?}"),
        }
    }
    for req in writes(true) {
        let resp = send(&c, &big, 0, req).await;
        assert_eq!(error_of(&resp), "", "atomic {resp:?}");
    }
    for req in writes(false) {
        let resp = send(&c, &big, 0, req).await;
        assert!(
            error_of(&resp).contains("max key size exceeded"),
            "{resp:?}"
        );
    }
    let cas = kvrpcpb::RawCasRequest {
        key: big.clone().into(),
        value: b"w".to_vec().into(),
        previous_not_exist: true,
        ..Default::default()
    };
    let resp = send(&c, &big, 0, cas.into()).await;
    assert_eq!(error_of(&resp), "");
    match resp {
        StoreResponse::RawCompareAndSwap(r) => assert!(r.succeed),
        other => panic!("{other:?}"),
    }
    assert_eq!(get(&c, &big).await.value, &b"w"[..]);
}

/// Written from TiKV `Storage::raw_batch_put_atomic`, which runs
/// `check_ttl_valid` like `raw_batch_put` (only `check_key_size!` is
/// skipped): on storage without TTL a non-zero TTL is `TtlNotEnabled` for
/// atomic and non-atomic puts alike, whatever the list's length; a list of
/// zeros of another length passes the check and the pairs are zipped with it
/// (`raw_batch_put_requests_to_modifies`), so only that many are written.
#[tokio::test]
async fn batch_put_ttl_checks_are_the_same_for_atomic_writes() {
    let c = v1();
    let pairs = |tag: &str| -> Vec<kvrpcpb::KvPair> {
        (0..3)
            .map(|i| kvrpcpb::KvPair {
                key: format!("{tag}{i}").into_bytes().into(),
                value: b"v".to_vec().into(),
                ..Default::default()
            })
            .collect()
    };
    let batch_put = |tag: &str, ttls: Vec<u64>, for_cas: bool| -> StoreRequest {
        kvrpcpb::RawBatchPutRequest {
            pairs: pairs(tag),
            ttls,
            for_cas,
            ..Default::default()
        }
        .into()
    };
    let error_of = |resp: StoreResponse| match resp {
        StoreResponse::RawBatchPut(r) => r.error,
        StoreResponse::RawPut(r) => r.error,
        other => panic!("{other:?}"),
    };
    const NOT_ENABLED: &str = "ttl is not enabled, but get put request with ttl";
    for for_cas in [true, false] {
        let tag = if for_cas { "a" } else { "b" };
        for ttls in [vec![5], vec![0, 0, 7], vec![0, 9]] {
            let resp = send(&c, b"a", 0, batch_put(tag, ttls.clone(), for_cas)).await;
            assert_eq!(
                error_of(resp),
                NOT_ENABLED,
                "for_cas {for_cas} ttls {ttls:?}"
            );
        }
        assert!(get(&c, format!("{tag}0").as_bytes()).await.not_found);
        // Zeros of another length: accepted, zipped.
        let resp = send(&c, b"a", 0, batch_put(tag, vec![0, 0], for_cas)).await;
        assert_eq!(error_of(resp), "", "for_cas {for_cas}");
        for (i, written) in [(0, true), (1, true), (2, false)] {
            let found = !get(&c, format!("{tag}{i}").as_bytes()).await.not_found;
            assert_eq!(found, written, "for_cas {for_cas} key {i}");
        }
        // RawPut: the atomic path is `raw_batch_put_atomic` with one TTL.
        let put = kvrpcpb::RawPutRequest {
            key: "p".into(),
            value: "v".into(),
            ttl: 3,
            for_cas,
            ..Default::default()
        };
        assert_eq!(error_of(send(&c, b"p", 0, put.into()).await), NOT_ENABLED);
    }
}
