//! Unit tests of the PD client and the TSO dispatcher against [`FakePd`].

use std::time::Duration;

use tikv_tower_proto::{metapb, pdpb};

use super::fake::FakePd;
use super::*;

fn region(id: u64, start: &[u8], end: &[u8], ver: u64) -> (metapb::Region, Option<metapb::Peer>) {
    let peer = metapb::Peer {
        id: id * 100,
        store_id: 1,
        ..Default::default()
    };
    (
        metapb::Region {
            id,
            start_key: start.to_vec().into(),
            end_key: end.to_vec().into(),
            region_epoch: Some(metapb::RegionEpoch {
                conf_ver: 1,
                version: ver,
            }),
            peers: vec![peer],
            ..Default::default()
        },
        Some(peer),
    )
}

fn config(endpoints: &[&str]) -> PdConfig {
    PdConfig {
        endpoints: endpoints.iter().map(|s| s.to_string()).collect(),
        ..PdConfig::default()
    }
}

/// `err` is a cluster-id mismatch between `expected` and `got`.
fn assert_mismatch(err: PdError, expected: u64, got: u64) {
    assert!(
        matches!(err, PdError::ClusterIdMismatch { expected: e, got: g } if e == expected && g == got),
        "{err:?}"
    );
}

/// The ids of the regions `batch_scan_regions` returns for `ranges` (no limit).
async fn scanned_ids(c: &PdClient, ranges: &[(Vec<u8>, Vec<u8>)]) -> Vec<u64> {
    c.batch_scan_regions(ranges, 0)
        .await
        .unwrap()
        .iter()
        .map(|r| r.region.id)
        .collect()
}

async fn client(pd: &FakePd, endpoints: &[&str]) -> PdClient {
    PdClient::connect(pd.connector(), config(endpoints))
        .await
        .expect("connect")
}

#[tokio::test(start_paused = true)]
async fn follows_leader_change() {
    let pd = FakePd::new(7, &["http://a", "http://b", "http://c"]);
    pd.state.lock().regions.push(region(1, b"", b"", 1));
    let c = client(&pd, &["a"]).await;
    assert_eq!(c.cluster_id(), 7);
    assert_eq!(c.leader_url().as_deref(), Some("http://a"));
    assert!(c.get_region(b"k").await.unwrap().is_some());

    // The leader moves to b: a answers "not leader", the client re-discovers and retries.
    pd.state.lock().leader = 1;
    let r = c.get_region(b"k").await.unwrap().unwrap();
    assert_eq!(r.region.id, 1);
    assert_eq!(c.leader_url().as_deref(), Some("http://b"));

    // The old leader goes away entirely and c leads: discovery goes through b.
    {
        let mut st = pd.state.lock();
        st.unreachable.insert("http://a".into());
        st.leader = 2;
    }
    assert!(c.get_region(b"k").await.unwrap().is_some());
    assert_eq!(c.leader_url().as_deref(), Some("http://c"));
}

#[tokio::test(start_paused = true)]
async fn bootstrap_rejects_endpoints_of_different_clusters() {
    let pd = FakePd::new(7, &["http://a", "http://b"]);
    pd.state.lock().member_cluster.insert("http://b".into(), 8);
    let err = PdClient::connect(pd.connector(), config(&["a", "b"]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            PdError::ClusterIdMismatch {
                expected: 7,
                got: 8
            }
        ),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn response_with_foreign_cluster_id_is_rejected_without_retry() {
    let pd = FakePd::new(7, &["http://a"]);
    pd.state.lock().regions.push(region(1, b"", b"", 1));
    let c = client(&pd, &["a"]).await;
    pd.state.lock().member_cluster.insert("http://a".into(), 9);
    let before = pd.calls("get_region");
    assert_mismatch(c.get_region(b"k").await.unwrap_err(), 7, 9);
    assert_eq!(pd.calls("get_region"), before + 1);
}

#[tokio::test(start_paused = true)]
async fn unreachable_cluster_exhausts_retries() {
    let pd = FakePd::new(7, &["http://a"]);
    let c = client(&pd, &["a"]).await;
    pd.state.lock().unreachable.insert("http://a".into());
    let err = c.get_store(1).await.unwrap_err();
    assert!(
        matches!(err, PdError::RetriesExhausted { attempts: 10, .. }),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn batch_scan_falls_back_to_scan_regions() {
    let pd = FakePd::new(7, &["http://a"]);
    {
        let mut st = pd.state.lock();
        st.regions = vec![
            region(1, b"", b"g", 1),
            region(2, b"g", b"p", 1),
            region(3, b"p", b"", 1),
        ];
        st.batch_scan_unimplemented = true;
    }
    let c = client(&pd, &["a"]).await;
    let ranges = vec![(b"a".to_vec(), b"h".to_vec()), (b"q".to_vec(), Vec::new())];
    let ids = scanned_ids(&c, &ranges).await;
    assert_eq!(ids, vec![1, 2, 3]);
    let again = scanned_ids(&c, &ranges).await;
    assert_eq!(again, ids);
    assert_eq!(
        pd.calls("batch_scan_regions"),
        1,
        "unimplemented is remembered"
    );
    assert_eq!(pd.calls("scan_regions"), 4);
    pd.state.lock().batch_scan_unimplemented = false;
}

/// The ScanRegions fallback keeps each region once, however the ranges overlap or repeat.
#[tokio::test(start_paused = true)]
async fn batch_scan_fallback_keeps_each_region_once() {
    let pd = FakePd::new(7, &["http://a"]);
    {
        let mut st = pd.state.lock();
        st.regions = (0..200u64)
            .map(|i| {
                let start = if i == 0 {
                    Vec::new()
                } else {
                    format!("k{i:03}").into_bytes()
                };
                let end = if i == 199 {
                    Vec::new()
                } else {
                    format!("k{:03}", i + 1).into_bytes()
                };
                region(i + 1, &start, &end, 1)
            })
            .collect();
        st.batch_scan_unimplemented = true;
    }
    let c = client(&pd, &["a"]).await;
    let ranges = vec![
        (b"k150".to_vec(), Vec::new()),
        (b"k010".to_vec(), b"k020".to_vec()),
        (Vec::new(), Vec::new()),
        (b"k015".to_vec(), b"k160".to_vec()),
    ];
    let ids = scanned_ids(&c, &ranges).await;
    let mut expected: Vec<u64> = (151..=200).collect();
    expected.extend(11..=20);
    expected.extend((1..=10).chain(21..=150));
    assert_eq!(ids, expected, "first sighting order, no repeats");
    // The limit counts distinct regions.
    let limited = c.batch_scan_regions(&ranges, 55).await.unwrap();
    assert_eq!(limited.len(), 55);
}

#[tokio::test(start_paused = true)]
async fn txn_codec_decodes_region_bounds() {
    let pd = FakePd::new(7, &["http://a"]);
    pd.state.lock().regions = vec![
        region(1, b"", &codec::encode_bytes(b"m"), 1),
        region(2, &codec::encode_bytes(b"m"), b"", 1),
    ];
    let c = client(&pd, &["a"]).await.with_codec(ApiCodec::v1_txn());
    let r = c.get_region(b"zz").await.unwrap().unwrap();
    assert_eq!(
        (
            r.region.id,
            r.region.start_key.as_ref(),
            r.region.end_key.as_ref()
        ),
        (2, &b"m"[..], &b""[..])
    );
    let r = c.get_region(b"a").await.unwrap().unwrap();
    assert_eq!(r.region.end_key, b"m".to_vec());
}

async fn tso_client(pd: &FakePd) -> TsoClient {
    TsoClient::new(client(pd, &["a"]).await, TsoConfig::default())
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn tso_batches_concurrent_requests() {
    let pd = FakePd::new(7, &["http://a"]);
    let tso = tso_client(&pd).await;
    let handles: Vec<_> = (0..200)
        .map(|_| {
            let t = tso.clone();
            tokio::spawn(async move { t.get_ts().await })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.push(h.await.unwrap().unwrap());
    }
    assert!(
        tso.request_count() <= 4,
        "200 callers took {} TSO RPCs",
        tso.request_count()
    );
    let mut sorted = all.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 200, "timestamps are unique");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn tso_is_monotonic_across_reconnects() {
    let pd = FakePd::new(7, &["http://a"]);
    pd.state.lock().tso_fail_after = Some(3);
    let tso = tso_client(&pd).await;
    let mut last = 0;
    for round in 0..20 {
        let futs: Vec<_> = (0..5).map(|_| tso.get_ts_async()).collect();
        for f in futs {
            let ts = f.await.unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert!(ts > last, "{ts} after {last}");
            last = ts;
        }
    }
    assert!(
        tso.stream_count() >= 5,
        "streams reopened: {}",
        tso.stream_count()
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn tso_reply_going_backwards_is_not_handed_out() {
    let pd = FakePd::new(7, &["http://a"]);
    let tso = tso_client(&pd).await;
    let first = tso.get_ts().await.unwrap();
    pd.state.lock().physical -= 10; // PD clock rolled back
    let mut cfg_tso = tso.get_ts_async();
    // The dispatcher retries; as the fake's logical part keeps moving but physical stays
    // behind, every reply is rejected until retries run out.
    let res = (&mut cfg_tso).await;
    assert!(matches!(res, Err(TsoError::Stream { .. })), "{res:?}");
    pd.state.lock().physical += 20;
    assert!(tso.get_ts().await.unwrap() > first);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn tso_close_fails_waiters() {
    let pd = FakePd::new(7, &["http://a"]);
    let tso = tso_client(&pd).await;
    tso.get_ts().await.unwrap();
    tso.close();
    tokio::task::yield_now().await;
    assert!(matches!(tso.get_ts().await, Err(TsoError::Closed)));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn oracle_low_resolution_and_expiry() {
    let pd = FakePd::new(7, &["http://a"]);
    let oracle = Oracle::new(client(&pd, &["a"]).await, OracleConfig::default());
    let ts = oracle.get_timestamp().await.unwrap();
    assert!(oracle.get_low_resolution_ts() >= ts);
    let lock_ts = tso::compose_ts(tso::extract_physical(ts) - 100, 0);
    assert!(oracle.is_expired(lock_ts, 50));
    assert!(!oracle.is_expired(lock_ts, 500));
    let low = tso::extract_physical(oracle.get_low_resolution_ts());
    assert_eq!(
        oracle.until_expired(lock_ts, 500),
        tso::extract_physical(lock_ts) + 500 - low
    );
    // The background updater refreshes the cached timestamp.
    pd.state.lock().physical += 5_000;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        tso::extract_physical(oracle.get_low_resolution_ts()) >= tso::extract_physical(ts) + 5_000
    );
    assert!(oracle.get_stale_timestamp(1).unwrap() < oracle.get_low_resolution_ts());
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn tso_follows_the_pd_leader() {
    let pd = FakePd::new(7, &["http://a", "http://b"]);
    pd.state.lock().tso_fail_after = Some(2);
    let c = client(&pd, &["a", "b"]).await;
    let tso = TsoClient::new(c.clone(), TsoConfig::default());
    let t1 = tso.get_ts().await.unwrap();
    // The leader moves; the stream to a breaks and reopening there says "not leader".
    pd.state.lock().leader = 1;
    let mut last = t1;
    for _ in 0..6 {
        let ts = tso.get_ts().await.unwrap();
        assert!(ts > last);
        last = ts;
    }
    assert_eq!(c.leader_url().as_deref(), Some("http://b"));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn tso_batch_wait_collects_stragglers() {
    let pd = FakePd::new(7, &["http://a"]);
    let cfg = TsoConfig {
        max_batch_wait: Duration::from_millis(10),
        ..TsoConfig::default()
    };
    let tso = TsoClient::new(client(&pd, &["a"]).await, cfg);
    // Callers arrive 1 ms apart (each alone, without a wait): with a 10 ms wait about ten
    // share each request.
    let mut handles = Vec::new();
    for _ in 0..50 {
        let t = tso.clone();
        handles.push(tokio::spawn(async move { t.get_ts().await }));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for h in handles {
        h.await.unwrap().unwrap();
    }
    assert!(tso.request_count() <= 8, "{} requests", tso.request_count());
}

fn bad_header(cluster_id: u64, error: Option<&str>) -> Option<pdpb::ResponseHeader> {
    Some(pdpb::ResponseHeader {
        cluster_id,
        error: error.map(|m| pdpb::Error {
            r#type: pdpb::ErrorType::Unknown as i32,
            message: m.into(),
        }),
    })
}

#[tokio::test(start_paused = true)]
async fn bootstrap_skips_endpoints_without_header_or_with_a_header_error() {
    let pd = FakePd::new(7, &["http://a", "http://b", "http://c"]);
    {
        let mut st = pd.state.lock();
        st.member_header.insert("http://a".into(), None);
        st.member_header
            .insert("http://b".into(), bad_header(7, Some("not bootstrapped")));
        st.leader = 2;
    }
    let c = client(&pd, &["a", "b", "c"]).await;
    assert_eq!(c.cluster_id(), 7);
    assert_eq!(c.leader_url().as_deref(), Some("http://c"));

    // Alone, each bad answer is the typed bootstrap error.
    let err = PdClient::connect(pd.connector(), config(&["a"]))
        .await
        .unwrap_err();
    assert!(matches!(err, PdError::MissingHeader), "{err:?}");
    let err = PdClient::connect(pd.connector(), config(&["b"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PdError::Server { message, .. } if message == "not bootstrapped"),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn cluster_id_zero_is_never_pinned() {
    let pd = FakePd::new(7, &["http://a", "http://b"]);
    pd.state.lock().member_cluster.insert("http://a".into(), 0);
    let err = PdClient::connect(pd.connector(), config(&["a"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PdError::InvalidClusterId { url } if url == "http://a"),
        "{err:?}"
    );

    // With a healthy endpoint too, its id is pinned and the zero-id member's later replies
    // fail the header check.
    pd.state.lock().regions.push(region(1, b"", b"", 1));
    let c = client(&pd, &["a", "b"]).await;
    assert_eq!(c.cluster_id(), 7);
    assert_mismatch(c.get_region(b"k").await.unwrap_err(), 7, 0);
}

#[tokio::test(start_paused = true)]
async fn prev_region_must_end_at_or_before_the_key() {
    let pd = FakePd::new(7, &["http://a"]);
    {
        let mut st = pd.state.lock();
        st.regions.push(region(1, b"", b"m", 1));
        st.regions.push(region(2, b"m", b"", 1));
    }
    let c = client(&pd, &["a"]).await;
    assert_eq!(c.get_prev_region(b"m").await.unwrap().unwrap().region.id, 1);
    // A PD answering with the region that contains the key, or one after it.
    for bad in [region(2, b"m", b"", 1), region(3, b"a", b"n", 1)] {
        pd.state.lock().prev_region_override = Some(bad);
        let err = c.get_prev_region(b"m").await.unwrap_err();
        assert!(
            matches!(&err, PdError::UnexpectedRegion { rpc: "GetPrevRegion", key, .. } if key == b"m"),
            "{err:?}"
        );
        assert!(matches!(
            tikv_tower_layers::locate::LocateError::from(err),
            tikv_tower_layers::locate::LocateError::Invalid(_)
        ));
    }
}

#[tokio::test(start_paused = true)]
async fn empty_store_address_is_a_typed_error_at_once() {
    let pd = FakePd::new(7, &["http://a"]);
    pd.state.lock().stores.insert(
        4,
        metapb::Store {
            id: 4,
            address: String::new(),
            ..Default::default()
        },
    );
    let c = client(&pd, &["a"]).await;
    let err = c.get_store(4).await.unwrap_err();
    assert!(
        matches!(err, PdError::EmptyStoreAddress { store_id: 4 }),
        "{err:?}"
    );
    assert_eq!(pd.calls("get_store"), 1, "not retried");
}

#[tokio::test(start_paused = true)]
async fn keyspace_ids_wider_than_24_bits_are_refused() {
    use tikv_tower_proto::keyspacepb;
    let pd = FakePd::new(7, &["http://a"]);
    for (name, id) in [("ok", 0x00FF_FFFF), ("wide", 0x0100_0001)] {
        pd.state.lock().keyspaces.insert(
            name.into(),
            keyspacepb::KeyspaceMeta {
                name: name.into(),
                keyspace: Some(keyspacepb::keyspace_meta::Keyspace::Id(id)),
                ..Default::default()
            },
        );
    }
    let c = client(&pd, &["a"]).await;
    assert!(c.load_keyspace("ok").await.is_ok());
    let err = c.load_keyspace("wide").await.unwrap_err();
    assert!(
        matches!(err, PdError::InvalidKeyspaceId(0x0100_0001)),
        "{err:?}"
    );
}
