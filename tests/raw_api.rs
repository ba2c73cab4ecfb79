//! Every RawKV call end to end against the in-process mockstore, across many regions.
#![cfg(feature = "embedded")]

mod raw_common;

use bytes::Bytes;
use raw_common::*;
use tikv_tower::config::{ApiVersion, Config};
use tikv_tower::raw::{ColumnFamily, KeyRange, KvPair, RawOptions};
use tikv_tower::Error;

#[tokio::test]
async fn get_put_delete_and_absent_vs_empty() {
    let (_c, client) = many_regions().await;
    assert_eq!(client.get("a1").await.unwrap(), None);
    client.put("a1", "v1").await.unwrap();
    client.put("m-empty", "").await.unwrap();
    assert_eq!(client.get("a1").await.unwrap(), Some("v1".into()));
    assert_eq!(
        client.get("m-empty").await.unwrap(),
        Some(Default::default()),
        "empty value is not absent"
    );
    client.put("a1", "v2").await.unwrap();
    assert_eq!(client.get("a1").await.unwrap(), Some("v2".into()));
    client.delete("a1").await.unwrap();
    assert_eq!(client.get("a1").await.unwrap(), None);
    client.delete("never-written").await.unwrap();
    assert!(client.cluster_id() > 0);
}

#[tokio::test]
async fn batch_calls_across_regions_keep_request_order() {
    let (c, client) = many_regions().await;
    assert!(c.region_count() >= 12, "{} regions", c.region_count());
    let keys = spread_keys(300);
    let pairs: Vec<KvPair> = keys
        .iter()
        .map(|k| KvPair::new(k.clone(), [b"v-".as_slice(), k].concat()))
        .collect();
    client.batch_put(pairs.clone()).await.unwrap();

    // Request order, absent keys and an empty value, duplicates, across regions.
    client.put("k-empty", "").await.unwrap();
    let mut ask: Vec<Vec<u8>> = keys.iter().rev().cloned().collect();
    ask.insert(7, b"zz-absent".to_vec());
    ask.insert(0, b"k-empty".to_vec());
    ask.push(keys[3].clone());
    let got = client.batch_get(ask.clone()).await.unwrap();
    assert_eq!(got.len(), ask.len());
    for (k, v) in ask.iter().zip(&got) {
        let want = match k.as_slice() {
            b"zz-absent" => None,
            b"k-empty" => Some(vec![]),
            _ => Some([b"v-".as_slice(), k].concat()),
        };
        assert_eq!(
            v.as_deref(),
            want.as_deref(),
            "key {:?}",
            String::from_utf8_lossy(k)
        );
    }

    // More keys than one RPC takes (batch-pair-count 512).
    let big: Vec<Vec<u8>> = (0..1500)
        .map(|i| format!("{}big{i:05}", (b'a' + (i % 26) as u8) as char).into_bytes())
        .collect();
    client
        .batch_put(big.iter().map(|k| (k.clone(), k.clone())))
        .await
        .unwrap();
    let got = client.batch_get(big.clone()).await.unwrap();
    assert!(got
        .iter()
        .zip(&big)
        .all(|(v, k)| v.as_deref() == Some(k.as_slice())));

    client
        .batch_delete(keys.iter().step_by(2).cloned())
        .await
        .unwrap();
    let got = client.batch_get(keys.clone()).await.unwrap();
    for (i, v) in got.iter().enumerate() {
        assert_eq!(v.is_some(), i % 2 == 1, "key {i}");
    }
    assert_eq!(
        client.batch_get(Vec::<Vec<u8>>::new()).await.unwrap(),
        Vec::<Option<Bytes>>::new()
    );
}

#[tokio::test]
async fn batch_put_last_value_wins() {
    let (_c, client) = many_regions().await;
    client
        .batch_put([("dup", "1"), ("other", "x"), ("dup", "2")])
        .await
        .unwrap();
    assert_eq!(client.get("dup").await.unwrap(), Some("2".into()));
}

#[tokio::test]
async fn scan_and_reverse_scan_across_regions() {
    let (_c, client) = many_regions().await;
    let keys: Vec<Vec<u8>> = (b'a'..=b'z')
        .flat_map(|c| (0..3).map(move |i| vec![c, b'0' + i]))
        .collect();
    client
        .batch_put(keys.iter().map(|k| (k.clone(), k.clone())))
        .await
        .unwrap();
    let mut sorted = keys.clone();
    sorted.sort();

    let all = client.scan(.., 1000).await.unwrap();
    assert_eq!(
        all.iter().map(|p| p.key.clone()).collect::<Vec<_>>(),
        sorted
    );
    assert!(all.iter().all(|p| p.key == p.value));

    // Limits cut across region boundaries.
    let first = client.scan("a".."z", 10).await.unwrap();
    assert_eq!(
        first.iter().map(|p| p.key.clone()).collect::<Vec<_>>(),
        sorted[..10].to_vec()
    );
    let mid = client.scan("c1"..="f0", 100).await.unwrap();
    let want: Vec<Vec<u8>> = sorted
        .iter()
        .filter(|k| k.as_slice() >= &b"c1"[..] && k.as_slice() <= &b"f0"[..])
        .cloned()
        .collect();
    assert_eq!(mid.iter().map(|p| p.key.clone()).collect::<Vec<_>>(), want);

    // Reverse: from the end downwards.
    let rev = client.reverse_scan(.., 5).await.unwrap();
    let want: Vec<Vec<u8>> = sorted.iter().rev().take(5).cloned().collect();
    assert_eq!(rev.iter().map(|p| p.key.clone()).collect::<Vec<_>>(), want);
    let rev = client.reverse_scan("b".."e", 100).await.unwrap();
    let want: Vec<Vec<u8>> = sorted
        .iter()
        .rev()
        .filter(|k| k.as_slice() >= &b"b"[..] && k.as_slice() < &b"e"[..])
        .cloned()
        .collect();
    assert_eq!(rev.iter().map(|p| p.key.clone()).collect::<Vec<_>>(), want);

    // Key-only.
    let ko = client.scan_keys("a".."c", 100).await.unwrap();
    assert_eq!(ko.len(), 6);
    let ko = client
        .with_options(RawOptions::scan_key_only())
        .scan("a".."c", 100)
        .await
        .unwrap();
    assert!(ko.iter().all(|p| p.value.is_empty()));
    let rk = client.reverse_scan_keys("x".., 2).await.unwrap();
    assert_eq!(rk, vec![b"z2".to_vec(), b"z1".to_vec()]);

    // Empty range and zero limit.
    assert!(client.scan("c".."c", 10).await.unwrap().is_empty());
    assert!(client.scan(.., 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn delete_range_across_regions() {
    let (_c, client) = many_regions().await;
    let keys: Vec<Vec<u8>> = (b'a'..=b'z').map(|c| vec![c, b'k']).collect();
    client
        .batch_put(keys.iter().map(|k| (k.clone(), b"v".to_vec())))
        .await
        .unwrap();
    client.delete_range("c".."p").await.unwrap();
    let left: Vec<Bytes> = client.scan_keys(.., 100).await.unwrap();
    let want: Vec<Vec<u8>> = keys
        .iter()
        .filter(|k| k[0] < b'c' || k[0] >= b'p')
        .cloned()
        .collect();
    assert_eq!(left, want);
    client.delete_range(..).await.unwrap();
    assert!(client.scan_keys(.., 100).await.unwrap().is_empty());
}

#[tokio::test]
async fn ttl_put_and_get_key_ttl() {
    let (_c, client) = many_regions().await;
    client.put_with_ttl("t1", "v", 100).await.unwrap();
    client.put("t2", "v").await.unwrap();
    let ttl = client.get_key_ttl("t1").await.unwrap().expect("key exists");
    assert!(ttl > 0 && ttl <= 100, "ttl {ttl}");
    assert_eq!(client.get_key_ttl("t2").await.unwrap(), Some(0), "no TTL");
    assert_eq!(client.get_key_ttl("t3").await.unwrap(), None, "absent");

    client
        .batch_put_with_ttl([("b1", "v"), ("n1", "v"), ("y1", "v")], [10, 0, 30])
        .await
        .unwrap();
    let t = |k: &'static str| {
        let c = client.clone();
        async move { c.get_key_ttl(k).await.unwrap() }
    };
    assert!(matches!(t("b1").await, Some(x) if x > 0 && x <= 10));
    assert_eq!(t("n1").await, Some(0));
    assert!(matches!(t("y1").await, Some(x) if x > 10 && x <= 30));
}

#[tokio::test]
async fn compare_and_swap_and_delete_in_atomic_mode() {
    let (_c, client) = many_regions().await;
    let err = client
        .compare_and_swap("cas", None, "v1")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AtomicModeRequired), "{err:?}");

    let atomic = client.with_atomic_for_cas(true);
    assert_eq!(
        atomic.compare_and_swap("cas", None, "v1").await.unwrap(),
        (None, true)
    );
    assert_eq!(
        atomic.compare_and_swap("cas", None, "v2").await.unwrap(),
        (Some("v1".into()), false)
    );
    assert_eq!(
        atomic
            .compare_and_swap("cas", Some(b"v0".to_vec()), "v2")
            .await
            .unwrap(),
        (Some("v1".into()), false)
    );
    assert_eq!(
        atomic
            .compare_and_swap("cas", Some(b"v1".to_vec()), "v2")
            .await
            .unwrap(),
        (Some("v1".into()), true)
    );
    assert_eq!(atomic.get("cas").await.unwrap(), Some("v2".into()));

    assert_eq!(
        atomic
            .compare_and_delete("cas", Some(b"nope".to_vec()))
            .await
            .unwrap(),
        (Some("v2".into()), false)
    );
    assert_eq!(
        atomic
            .compare_and_delete("cas", Some(b"v2".to_vec()))
            .await
            .unwrap(),
        (Some("v2".into()), true)
    );
    assert_eq!(atomic.get("cas").await.unwrap(), None);

    // Writes in atomic mode go through the CAS path and stay visible to CAS.
    atomic.put("cas2", "x").await.unwrap();
    atomic.batch_put([("cas3", "y")]).await.unwrap();
    let (_, swapped) = atomic
        .compare_and_swap("cas2", Some(b"x".to_vec()), "z")
        .await
        .unwrap();
    assert!(swapped);
    atomic.delete("cas2").await.unwrap();
    atomic.batch_delete(["cas3"]).await.unwrap();
    assert_eq!(
        atomic.batch_get(["cas2", "cas3"]).await.unwrap(),
        vec![None, None]
    );
}

#[tokio::test]
async fn checksum_is_sum_of_parts() {
    let (_c, client) = many_regions().await;
    let keys: Vec<Vec<u8>> = (b'a'..=b'z').map(|c| vec![c, b'c']).collect();
    client
        .batch_put(keys.iter().map(|k| (k.clone(), b"value".to_vec())))
        .await
        .unwrap();
    let all = client.checksum(..).await.unwrap();
    assert_eq!(all.total_kvs, 26);
    assert_eq!(all.total_bytes, 26 * (2 + 5));
    assert_ne!(all.crc64_xor, 0);
    let mut parts = client.checksum(.."m").await.unwrap();
    parts.merge(client.checksum("m"..).await.unwrap());
    assert_eq!(parts, all);
    assert_eq!(client.checksum("zz"..).await.unwrap().total_kvs, 0);
}

#[tokio::test]
async fn column_families_are_separate() {
    let (_c, client) = many_regions().await;
    client.put("cfk", "default").await.unwrap();
    let write = client.with_cf(ColumnFamily::Write);
    write.put("cfk", "write").await.unwrap();
    assert_eq!(client.get("cfk").await.unwrap(), Some("default".into()));
    assert_eq!(write.get("cfk").await.unwrap(), Some("write".into()));
    assert_eq!(
        client
            .with_options(RawOptions::set_column_family(ColumnFamily::Lock))
            .get("cfk")
            .await
            .unwrap(),
        None
    );
    write.delete("cfk").await.unwrap();
    assert_eq!(client.get("cfk").await.unwrap(), Some("default".into()));
}

#[tokio::test]
async fn api_v2_keyspaces_are_isolated() {
    let c = MockClusterBuilderExt::v2_with_keyspaces();
    let cfg = |ks: &str| Config::default().with_keyspace(ks);
    let a = client(&c, cfg("ks_a")).await;
    let b = client(&c, cfg("ks_b")).await;
    assert_eq!(a.api_version(), ApiVersion::V2);
    assert_ne!(a.keyspace_id(), b.keyspace_id());
    a.batch_put([("k1", "a1"), ("k2", "a2"), ("m", "a3")])
        .await
        .unwrap();
    b.put("k1", "b1").await.unwrap();
    assert_eq!(a.get("k1").await.unwrap(), Some("a1".into()));
    assert_eq!(b.get("k1").await.unwrap(), Some("b1".into()));
    assert_eq!(b.get("k2").await.unwrap(), None);
    // Unbounded scans stay inside the keyspace and strip the prefix.
    let keys = a.scan_keys(.., 100).await.unwrap();
    assert_eq!(keys, vec![b"k1".to_vec(), b"k2".to_vec(), b"m".to_vec()]);
    let rev = b.reverse_scan(.., 100).await.unwrap();
    assert_eq!(rev, vec![KvPair::new("k1", "b1")]);
    assert_eq!(a.checksum(..).await.unwrap().total_kvs, 3);
    a.delete_range(..).await.unwrap();
    assert!(a.scan_keys(.., 100).await.unwrap().is_empty());
    assert_eq!(
        b.get("k1").await.unwrap(),
        Some("b1".into()),
        "other keyspace untouched"
    );
    // An unknown keyspace is a typed error.
    let err = tikv_tower::RawClient::with_mock_cluster(c.clone(), cfg("nope"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::KeyspaceNotFound(_) | Error::Pd(_)),
        "{err:?}"
    );
}

struct MockClusterBuilderExt;
impl MockClusterBuilderExt {
    fn v2_with_keyspaces() -> tikv_tower_mockstore::MockCluster {
        let b = tikv_tower_mockstore::MockCluster::builder()
            .stores(3)
            .api_version(tikv_tower_mockstore::cluster::ApiVersion::V2)
            .keyspace("ks_a", 7)
            .keyspace("ks_b", 8);
        tikv_tower::presets::embedded_boundaries(b, ApiVersion::V2).build()
    }
}

#[tokio::test]
async fn close_rejects_later_calls() {
    let (_c, client) = many_regions().await;
    let clone = client.clone();
    client.close();
    client.close();
    assert!(matches!(clone.get("k").await, Err(Error::Closed)));
    assert!(matches!(clone.scan(.., 1).await, Err(Error::Closed)));
    assert!(clone.is_closed());
}

#[tokio::test]
async fn embedded_one_liner() {
    let client = tikv_tower::RawClient::embedded().await.unwrap();
    client.put("hello", "world").await.unwrap();
    assert_eq!(client.get("hello").await.unwrap(), Some("world".into()));
    let client = tikv_tower::RawClient::connect(Vec::<String>::new())
        .await
        .unwrap();
    assert_eq!(
        client.get("hello").await.unwrap(),
        None,
        "a fresh cluster each time"
    );
}

#[tokio::test]
async fn key_range_forms() {
    let (_c, client) = many_regions().await;
    client
        .batch_put([("a", "1"), ("b", "2"), ("c", "3")])
        .await
        .unwrap();
    let n = |r: KeyRange| {
        let c = client.clone();
        async move { c.scan(r, 10).await.unwrap().len() }
    };
    assert_eq!(n(("a", "c").into()).await, 2);
    assert_eq!(n(("b", "").into()).await, 2);
    assert_eq!(n(("a"..="c").into()).await, 3);
    assert_eq!(n((.."b").into()).await, 1);
}

#[tokio::test]
async fn builder_user_layer_interceptor_and_tags() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let c = cluster(ApiVersion::V1Ttl, 3, split_keys());
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let client = tikv_tower::RawClient::builder()
        .config(Config::default().with_api_version(ApiVersion::V1Ttl))
        .mock_cluster(c.clone())
        .production()
        .request_source("raw-test")
        .layer(tower::layer::layer_fn(move |inner| {
            let counter = counter.clone();
            tower::util::MapRequest::new(inner, move |req: tikv_tower_layers::Request| {
                counter.fetch_add(1, Ordering::Relaxed);
                req
            })
        }))
        .operation_interceptor(tikv_tower_layers::intercept::before_fn(
            "no-forbidden",
            |req| match &req.inner {
                tikv_tower_proto::rpc::StoreRequest::RawPut(p)
                    if p.key.starts_with(b"forbidden") =>
                {
                    Err("forbidden prefix".into())
                }
                _ => Ok(()),
            },
        ))
        .build()
        .await
        .unwrap();

    client.put("ok", "1").await.unwrap();
    client.batch_get(spread_keys(50)).await.unwrap();
    let err = client.put("forbidden-key", "x").await.unwrap_err();
    assert!(
        matches!(err, Error::Intercepted { ref name, .. } if name == "no-forbidden"),
        "{err:?}"
    );
    assert_eq!(
        client.get("forbidden-key").await.unwrap(),
        None,
        "refused before sending"
    );
    // One logical operation = one pass through the user layer, whatever the region count.
    assert_eq!(calls.load(Ordering::Relaxed), 4);
}
