//! RawKV over real gRPC: mockstore served on 127.0.0.1 (ports from :0), the client
//! connecting through PD like to a real cluster.
#![cfg(feature = "embedded")]

mod raw_common;

use raw_common::*;
use tikv_tower::config::{ApiVersion, Config};
use tikv_tower::raw::KvPair;
use tikv_tower::RawClient;
use tikv_tower_mockstore::server::ServeOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_over_grpc_with_failover() {
    let c = cluster(ApiVersion::V1Ttl, 3, split_keys());
    let served = c.serve_grpc(ServeOptions::default()).await.expect("serve");
    let cfg = Config::default().with_api_version(ApiVersion::V1Ttl);
    let client = RawClient::connect_with_config([served.pd_addr().to_string()], cfg)
        .await
        .expect("connect");
    assert_eq!(client.cluster_id(), c.cluster_id());

    client.put("g1", "v1").await.unwrap();
    client.put("g-empty", "").await.unwrap();
    assert_eq!(client.get("g1").await.unwrap(), Some("v1".into()));
    assert_eq!(
        client.get("g-empty").await.unwrap(),
        Some(Default::default())
    );
    assert_eq!(client.get("g-none").await.unwrap(), None);

    let keys = spread_keys(200);
    client
        .batch_put(keys.iter().map(|k| KvPair::new(k.clone(), k.clone())))
        .await
        .unwrap();
    let mut ask = keys.clone();
    ask.reverse();
    ask.insert(3, b"nope".to_vec());
    let got = client.batch_get(ask.clone()).await.unwrap();
    for (k, v) in ask.iter().zip(&got) {
        assert_eq!(
            v.as_deref(),
            (k.as_slice() != b"nope").then_some(k.as_slice())
        );
    }
    let mut sorted = keys.clone();
    sorted.extend([b"g1".to_vec(), b"g-empty".to_vec()]);
    sorted.sort();
    let scanned = client.scan_keys("a".., 150).await.unwrap();
    assert_eq!(scanned, sorted[..150].to_vec());
    let rev = client.reverse_scan_keys(.."z", 3).await.unwrap();
    let want: Vec<Vec<u8>> = sorted
        .iter()
        .rev()
        .filter(|k| k.as_slice() < &b"z"[..])
        .take(3)
        .cloned()
        .collect();
    assert_eq!(rev, want);

    client.put_with_ttl("ttl", "v", 50).await.unwrap();
    assert!(matches!(client.get_key_ttl("ttl").await.unwrap(), Some(t) if t > 0 && t <= 50));
    let atomic = client.with_atomic_for_cas(true);
    assert_eq!(
        atomic.compare_and_swap("cas", None, "1").await.unwrap(),
        (None, true)
    );
    assert_eq!(
        atomic
            .compare_and_delete("cas", Some(b"1".to_vec()))
            .await
            .unwrap(),
        (Some("1".into()), true)
    );

    let sum = client.checksum(..).await.unwrap();
    assert_eq!(sum.total_kvs, 200 + 3);
    client
        .batch_delete(keys.iter().take(100).cloned())
        .await
        .unwrap();
    client.delete_range("a".."m").await.unwrap();
    let left = client.scan_keys(.., 1000).await.unwrap();
    assert!(
        left.iter()
            .all(|k| k.as_ref() >= &b"m"[..] || k.starts_with(b"g")),
        "{left:?}"
    );

    // A store's server goes away; leadership moves; the client fails over over gRPC.
    let region = c.region_for_user_key(b"x0001").expect("region");
    let victim = region.leader_peer().expect("leader").store_id;
    served.stop_store(victim).await.expect("stop");
    for r in c.regions() {
        if r.leader_peer().is_some_and(|p| p.store_id == victim) {
            let to = r
                .peers
                .iter()
                .map(|p| p.store_id)
                .find(|s| *s != victim)
                .expect("peer");
            c.transfer_leader(r.id, to).unwrap();
        }
    }
    client.put("x0001", "after-failover").await.unwrap();
    assert_eq!(
        client.get("x0001").await.unwrap(),
        Some("after-failover".into())
    );
    let all = client.scan_keys(.., 1000).await.unwrap();
    assert!(!all.is_empty());

    // The store returns and leads again.
    served.start_store(victim).await.expect("start");
    c.transfer_leader(region.id, victim).unwrap();
    assert_eq!(
        client.get("x0001").await.unwrap(),
        Some("after-failover".into())
    );

    client.close();
    served.shutdown().await;
}
