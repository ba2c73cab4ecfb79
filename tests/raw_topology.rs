//! Topology changes and injected faults while RawKV operations run (in-process mockstore,
//! tokio's paused clock: every delay below is virtual, the tests are deterministic).
#![cfg(feature = "embedded")]

mod raw_common;

use std::time::Duration;

use raw_common::*;
use tikv_tower::config::{ApiVersion, Config, RawConfig};
use tikv_tower_mockstore::fault::{FaultRule, InjectedError};
use tikv_tower_mockstore::MockCluster;
use tikv_tower_proto::rpc::RpcKind;

fn leader_store(c: &MockCluster, key: &[u8]) -> (u64, u64) {
    let r = c.region_for_user_key(key).expect("region");
    (r.id, r.leader_peer().expect("leader").store_id)
}

fn other_store(c: &MockCluster, region_id: u64, not: u64) -> u64 {
    let r = c.region(region_id).expect("region");
    r.peers
        .iter()
        .map(|p| p.store_id)
        .find(|s| *s != not)
        .expect("another peer")
}

#[tokio::test(start_paused = true)]
async fn split_and_leader_transfer_in_the_middle_of_a_batch() {
    let c = cluster(ApiVersion::V1Ttl, 3, vec![b"m".to_vec()]);
    let client = client(&c, Config::default().with_api_version(ApiVersion::V1Ttl)).await;
    let keys = spread_keys(200);
    client
        .batch_put(keys.iter().map(|k| (k.clone(), k.clone())))
        .await
        .unwrap();
    let regions_before = c.region_count();

    // The first RawBatchGet part stalls in the store; meanwhile the cluster splits its
    // regions and moves a leader, so the in-flight parts carry stale epochs / leaders.
    let stall = c.faults().inject(
        FaultRule::delay(Duration::from_millis(100))
            .for_kind(RpcKind::RawBatchGet)
            .once(),
    );
    let task = {
        let (client, keys) = (client.clone(), keys.clone());
        tokio::spawn(async move { client.batch_get(keys).await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    c.split_keys([b"d".to_vec(), b"h".to_vec(), b"q".to_vec(), b"u".to_vec()])
        .unwrap();
    let (rid, leader) = leader_store(&c, b"x");
    c.transfer_leader(rid, other_store(&c, rid, leader))
        .unwrap();

    let got = task.await.unwrap().unwrap();
    assert_eq!(c.faults().fired(stall), 1);
    assert!(c.region_count() >= regions_before + 4);
    assert_eq!(got.len(), keys.len());
    for (k, v) in keys.iter().zip(&got) {
        assert_eq!(v.as_deref(), Some(k.as_slice()));
    }

    // Writes and scans keep working across the new layout.
    let (rid, leader) = leader_store(&c, b"b");
    c.transfer_leader(rid, other_store(&c, rid, leader))
        .unwrap();
    c.split_keys([b"b5".to_vec()]).unwrap();
    client
        .batch_delete(keys.iter().take(50).cloned())
        .await
        .unwrap();
    assert_eq!(client.scan_keys(.., 1000).await.unwrap().len(), 150);
    assert_eq!(client.checksum(..).await.unwrap().total_kvs, 150);
}

#[tokio::test(start_paused = true)]
async fn store_stopped_while_requests_run_fails_over_then_recovers() {
    let c = cluster(ApiVersion::V1Ttl, 3, split_keys());
    let client = client(&c, Config::default().with_api_version(ApiVersion::V1Ttl)).await;
    let keys = spread_keys(100);
    client
        .batch_put(keys.iter().map(|k| (k.clone(), k.clone())))
        .await
        .unwrap();
    let (rid, victim) = leader_store(&c, b"a0000");

    // Requests in flight when the store dies: each stalls 50ms inside the store.
    let stall = c.faults().inject(
        FaultRule::delay(Duration::from_millis(50))
            .on_store(victim)
            .times(10),
    );
    let tasks: Vec<_> = keys
        .iter()
        .cloned()
        .map(|k| {
            let client = client.clone();
            tokio::spawn(async move {
                let v = client.get(k.clone()).await?;
                client.put(k.clone(), [k.as_slice(), b"!"].concat()).await?;
                Ok::<_, tikv_tower::Error>((k, v))
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(10)).await;
    c.stop_store(victim).unwrap();
    // The cluster elects new leaders for every region the stopped store led.
    for r in c.regions() {
        if r.leader_peer().is_some_and(|p| p.store_id == victim) {
            c.transfer_leader(r.id, other_store(&c, r.id, victim))
                .unwrap();
        }
    }
    assert!(
        c.faults().fired(stall) >= 1,
        "requests were in flight at the stopped store"
    );
    for t in tasks {
        let (k, v) = t
            .await
            .unwrap()
            .expect("operation survives the store failure");
        assert_eq!(v.as_deref(), Some(k.as_slice()));
    }
    let got = client.batch_get(keys.clone()).await.unwrap();
    assert!(got
        .iter()
        .zip(&keys)
        .all(|(v, k)| v.as_deref() == Some([k.as_slice(), b"!"].concat().as_slice())));

    // The store comes back and takes leadership again: NotLeader leads the client back.
    c.start_store(victim).unwrap();
    c.transfer_leader(rid, victim).unwrap();
    client.put("a0000", "back").await.unwrap();
    assert_eq!(client.get("a0000").await.unwrap(), Some("back".into()));
    assert_eq!(leader_store(&c, b"a0000").1, victim);
}

#[tokio::test(start_paused = true)]
async fn server_busy_and_max_ts_not_synced_are_answered_with_backoff() {
    let c = cluster(ApiVersion::V1Ttl, 3, split_keys());
    let client = client(&c, Config::default().with_api_version(ApiVersion::V1Ttl)).await;
    client.put("busy", "v").await.unwrap();

    let busy = c.faults().inject(
        FaultRule::region_error(InjectedError::ServerIsBusy {
            reason: "test".into(),
            backoff_ms: 0,
        })
        .for_kind(RpcKind::RawGet)
        .times(3),
    );
    let start = tokio::time::Instant::now();
    assert_eq!(client.get("busy").await.unwrap(), Some("v".into()));
    assert_eq!(c.faults().fired(busy), 3);
    assert!(
        start.elapsed() >= Duration::from_millis(100),
        "backed off {:?}",
        start.elapsed()
    );

    let not_synced = c.faults().inject(
        FaultRule::region_error(InjectedError::MaxTimestampNotSynced)
            .for_kind(RpcKind::RawPut)
            .times(2),
    );
    let start = tokio::time::Instant::now();
    client.put("busy", "w").await.unwrap();
    assert_eq!(c.faults().fired(not_synced), 2);
    assert!(
        start.elapsed() > Duration::ZERO,
        "backed off {:?}",
        start.elapsed()
    );
    assert_eq!(client.get("busy").await.unwrap(), Some("w".into()));

    // Batches: one busy region does not fail the others; everything lands.
    let keys = spread_keys(60);
    let busy_batch = c.faults().inject(
        FaultRule::region_error(InjectedError::ServerIsBusy {
            reason: "batch".into(),
            backoff_ms: 0,
        })
        .for_kind(RpcKind::RawBatchPut)
        .times(2),
    );
    client
        .batch_put(keys.iter().map(|k| (k.clone(), b"b".to_vec())))
        .await
        .unwrap();
    assert_eq!(c.faults().fired(busy_batch), 2);
    assert!(client
        .batch_get(keys)
        .await
        .unwrap()
        .iter()
        .all(|v| v.as_deref() == Some(&b"b"[..])));
}

#[tokio::test(start_paused = true)]
async fn backoff_budget_runs_out_with_a_typed_error() {
    let c = cluster(ApiVersion::V1Ttl, 1, vec![]);
    let raw = RawConfig {
        max_backoff: Duration::from_secs(2),
        ..RawConfig::default()
    };
    let client = client(
        &c,
        Config::default()
            .with_api_version(ApiVersion::V1Ttl)
            .with_raw(raw),
    )
    .await;
    c.faults().inject(
        FaultRule::region_error(InjectedError::ServerIsBusy {
            reason: "forever".into(),
            backoff_ms: 0,
        })
        .for_kind(RpcKind::RawGet),
    );
    let err = client.get("k").await.unwrap_err();
    assert!(
        err.is_backoff_exhausted() || err.is_server_busy(),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert!(
        err.to_string().to_lowercase().contains("busy"),
        "names the cause: {err}"
    );

    // UndeterminedResult is never retried.
    let und = c.faults().inject(
        FaultRule::region_error(InjectedError::UndeterminedResult)
            .for_kind(RpcKind::RawPut)
            .once(),
    );
    let err = client.put("k", "v").await.unwrap_err();
    assert!(err.is_undetermined(), "{err:?}");
    assert_eq!(c.faults().fired(und), 1);
}

#[tokio::test(start_paused = true)]
async fn operation_timeout_is_typed() {
    let c = cluster(ApiVersion::V1Ttl, 1, vec![]);
    let client = client(&c, Config::default().with_api_version(ApiVersion::V1Ttl)).await;
    c.faults()
        .inject(FaultRule::delay(Duration::from_secs(60)).for_kind(RpcKind::RawGet));
    let err = client
        .with_timeout(Duration::from_secs(1))
        .get("k")
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}

/// client-go `OnBucketVersionNotMatch` + the coprocessor client's `BoRegionMiss` retry:
/// the region cache keeps the buckets PD returns with a region (client-go loads every
/// region `WithBuckets`) and records the newer ones a `BucketVersionNotMatch` names; the
/// operation is retried after a RegionMiss backoff and succeeds.
#[tokio::test(start_paused = true)]
async fn bucket_version_not_match_updates_the_cached_buckets_and_retries() {
    let b = MockCluster::builder()
        .api_version(tikv_tower_mockstore::cluster::ApiVersion::V1Ttl)
        .split_keys([b"m"])
        .region_buckets(true);
    let c = tikv_tower::presets::embedded_boundaries(b, ApiVersion::V1Ttl).build();
    let cl = client(&c, Config::default().with_api_version(ApiVersion::V1Ttl)).await;
    cl.put("k", "v").await.unwrap();
    let region = c.region_for_user_key(b"k").expect("region");
    let cache = cl.store().expect("store core").region_cache().clone();
    let loaded = cache.buckets(region.id).expect("buckets from PD");
    let pd_buckets = c.region_buckets(&region).expect("mock buckets");
    assert_eq!(loaded.version, pd_buckets.version);
    assert_eq!(
        (&loaded.keys[0][..], &loaded.keys[1][..]),
        (&b""[..], &b"m"[..])
    );
    // TiKV reports newer buckets than the cache holds.
    let newer = c.refresh_buckets(region.id).expect("refreshed");
    let fault = c.faults().inject(
        FaultRule::region_error(InjectedError::BucketVersionNotMatch)
            .for_kind(RpcKind::RawGet)
            .once(),
    );
    assert_eq!(cl.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(c.faults().fired(fault), 1);
    assert_eq!(cache.buckets(region.id).map(|b| b.version), Some(newer));
}
