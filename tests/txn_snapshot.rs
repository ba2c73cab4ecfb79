//! Snapshot reads against the in-process mockstore (client-go txn scenarios:
//! snapshot-read, isolation, scan/iterator): point and batch gets across regions, lazy
//! iterators over 50 regions with a split and a leader transfer mid-scan, commit ts,
//! isolation levels, stale and replica reads, safety checks, the snapshot cache.
#![cfg(feature = "embedded")]

mod txn_common;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use tikv_tower::pd::NULL_KEYSPACE_ID;
use tikv_tower::txn::{IsolationLevel, ReplicaRead, SnapshotOptions};
use tikv_tower::Error;
use txn_common::*;

fn splits_every(n: usize, total: usize) -> Vec<Vec<u8>> {
    (1..total / n)
        .map(|i| format!("k{:03}", i * n).into_bytes())
        .collect()
}

#[tokio::test]
async fn get_and_batch_get_across_regions_with_commit_ts() {
    let c = cluster(3, &splits_every(10, 100));
    let client = client(&c).await;
    let w = Writer::new(&client);
    let ks = keys(100);
    let pairs: Vec<(&[u8], Option<&[u8]>)> = ks
        .iter()
        .map(|k| (k.as_slice(), Some(k.as_slice())))
        .collect();
    let commit_ts = w.put_all(&pairs).await;
    let deleted = w.put_all(&[(b"k005", None)]).await;
    assert!(deleted > commit_ts);

    let snap = client.snapshot_with(
        client.current_timestamp().await.unwrap(),
        SnapshotOptions::default().with_need_commit_ts(true),
    );
    let e = snap.get_entry("k042").await.unwrap().unwrap();
    assert_eq!((e.value.as_ref(), e.commit_ts), (&b"k042"[..], commit_ts));
    assert_eq!(snap.get("k005").await.unwrap(), None);
    assert_eq!(snap.get("nope").await.unwrap(), None);

    let mut wanted: Vec<Vec<u8>> = ks.clone();
    wanted.push(b"absent".to_vec());
    let (got, details) = snap.batch_get_with_details(wanted).await.unwrap();
    assert_eq!(
        got.len(),
        99,
        "99 present keys (k005 deleted, 'absent' never written)"
    );
    for k in ks.iter().filter(|k| k.as_slice() != b"k005") {
        let e = &got[&Bytes::copy_from_slice(k)];
        assert_eq!((e.value.as_ref(), e.commit_ts), (k.as_slice(), commit_ts));
    }
    assert!(
        details[0].exec.shards >= 10,
        "one part per region: {details:?}"
    );

    // An older snapshot still sees k005, and not what was committed after it.
    let old = client.snapshot(commit_ts);
    assert_eq!(
        old.get("k005").await.unwrap().as_deref(),
        Some(&b"k005"[..])
    );
    let before = client.snapshot(commit_ts - 1);
    assert!(before.batch_get(ks.clone()).await.unwrap().is_empty());
}

#[tokio::test]
async fn batch_get_cuts_requests_at_5120_keys() {
    let c = cluster(1, &[]);
    let client = client(&c).await;
    let w = Writer::new(&client);
    let ks: Vec<Vec<u8>> = (0..6000).map(|i| format!("b{i:05}").into_bytes()).collect();
    let pairs: Vec<(&[u8], Option<&[u8]>)> =
        ks.iter().map(|k| (k.as_slice(), Some(&b"v"[..]))).collect();
    w.put_all(&pairs).await;
    let snap = client.snapshot(client.current_timestamp().await.unwrap());
    let (got, details) = snap.batch_get_with_details(ks.clone()).await.unwrap();
    assert_eq!(got.len(), 6000);
    assert_eq!(details.len(), 2, "6000 keys in one region = 5120 + 880");
    // The cache now answers every key: a second batch sends nothing.
    let (again, details) = snap.batch_get_with_details(ks).await.unwrap();
    assert_eq!(again.len(), 6000);
    assert!(details.is_empty());
    assert_eq!(snap.snap_cache_hit_count(), 6000);
}

async fn scan_all_while_topology_changes(reverse: bool) {
    let total = 500;
    let c = cluster(3, &splits_every(10, total));
    assert_eq!(c.region_count(), 50);
    let client = client(&c).await;
    let w = Writer::new(&client);
    let ks = keys(total);
    let mut commits = HashMap::new();
    for chunk in ks.chunks(100) {
        let pairs: Vec<(&[u8], Option<&[u8]>)> = chunk
            .iter()
            .map(|k| (k.as_slice(), Some(k.as_slice())))
            .collect();
        let ts = w.put_all(&pairs).await;
        for k in chunk {
            commits.insert(k.clone(), ts);
        }
    }
    let ts = client.current_timestamp().await.unwrap();
    // Written after the snapshot's ts: invisible to it.
    w.put(b"k250", b"later").await;

    let opts = SnapshotOptions::default()
        .with_scan_batch_size(7)
        .with_need_commit_ts(true);
    let snap = client.snapshot_with(ts, opts);
    let mut scanner = if reverse {
        snap.scanner_reverse(..).unwrap()
    } else {
        snap.scanner(..).unwrap()
    };
    let mut got = Vec::new();
    for _ in 0..30 {
        got.push(scanner.next().await.unwrap().expect("entry"));
    }
    // Mid-scan: split the region the scan is about to enter and move a leader ahead.
    let next_key = if reverse {
        b"k455".to_vec()
    } else {
        b"k045".to_vec()
    };
    c.split_keys([next_key.clone()]).unwrap();
    let ahead = if reverse { b"k300" } else { b"k200" };
    let r = c.region_for_user_key(ahead).unwrap();
    let leader = r.leader_peer().unwrap().store_id;
    let to = r
        .peers
        .iter()
        .map(|p| p.store_id)
        .find(|s| *s != leader)
        .unwrap();
    c.transfer_leader(r.id, to).unwrap();
    assert_eq!(c.region_count(), 51);

    let rest: Vec<_> = scanner.into_stream().try_collect().await.unwrap();
    got.extend(rest);
    let mut expected = ks.clone();
    if reverse {
        expected.reverse();
    }
    let got_keys: Vec<Vec<u8>> = got.iter().map(|e| e.key.to_vec()).collect();
    assert_eq!(got_keys, expected);
    for e in &got {
        assert_eq!(e.value, e.key, "value as of the snapshot ts");
        assert_eq!(e.commit_ts, commits[&e.key.to_vec()]);
    }
}

#[tokio::test]
async fn forward_iterator_over_50_regions_with_split_and_leader_transfer() {
    scan_all_while_topology_changes(false).await;
}

#[tokio::test]
async fn reverse_iterator_over_50_regions_with_split_and_leader_transfer() {
    scan_all_while_topology_changes(true).await;
}

#[tokio::test]
async fn scanner_bounds_key_only_and_sample_step() {
    let c = cluster(3, &splits_every(10, 60));
    let client = client(&c).await;
    let w = Writer::new(&client);
    let ks = keys(60);
    let pairs: Vec<(&[u8], Option<&[u8]>)> =
        ks.iter().map(|k| (k.as_slice(), Some(&b"v"[..]))).collect();
    w.put_all(&pairs).await;
    let ts = client.current_timestamp().await.unwrap();
    let snap = client.snapshot(ts);

    let got = snap
        .scan(&b"k015"[..]..&b"k035"[..], 100, false)
        .await
        .unwrap();
    let got: Vec<_> = got.iter().map(|e| e.key.to_vec()).collect();
    assert_eq!(got, ks[15..35].to_vec());
    let rev = snap
        .scan(&b"k015"[..]..&b"k035"[..], 5, true)
        .await
        .unwrap();
    let rev: Vec<_> = rev.iter().map(|e| e.key.to_vec()).collect();
    assert_eq!(rev, ks[30..35].iter().rev().cloned().collect::<Vec<_>>());

    let key_only = client.snapshot_with(ts, SnapshotOptions::default().with_key_only(true));
    let got = key_only.scan(.., 100, false).await.unwrap();
    assert_eq!(got.len(), 60);
    assert!(got.iter().all(|e| e.value.is_empty()));

    // An inverted range is refused before anything is sent.
    assert!(snap
        .scanner(&b"z"[..]..&b"a"[..])
        .unwrap_err()
        .is_invalid_argument());
}

#[tokio::test]
async fn read_committed_ignores_locks_and_rc_check_ts_refuses_newer_versions() {
    let c = cluster(1, &[]);
    let client = client(&c).await;
    let w = Writer::new(&client);
    w.put(b"a", b"1").await;
    let lock_ts = w.ts().await;
    w.prewrite(&[(b"a", Some(b"2"))], b"a", lock_ts, 60_000)
        .await;
    let ts = client.current_timestamp().await.unwrap();

    // RC: the lock is not looked at; the latest committed value at ts is read.
    let rc = client.snapshot_with(
        ts,
        SnapshotOptions::default().with_isolation_level(IsolationLevel::Rc),
    );
    assert_eq!(rc.get("a").await.unwrap().as_deref(), Some(&b"1"[..]));

    // RCCheckTS: a version committed after the read ts fails the read (the caller
    // retries with a newer ts).
    let old_ts = w.ts().await;
    w.put(b"b", b"1").await;
    let check = client.snapshot_with(
        old_ts,
        SnapshotOptions::default().with_isolation_level(IsolationLevel::RcCheckTs),
    );
    let err = check.get("b").await.unwrap_err();
    assert!(err.is_write_conflict(), "{err:?}");
    let fresh = client.snapshot_with(
        client.current_timestamp().await.unwrap(),
        SnapshotOptions::default().with_isolation_level(IsolationLevel::RcCheckTs),
    );
    assert_eq!(fresh.get("b").await.unwrap().as_deref(), Some(&b"1"[..]));
}

#[tokio::test]
async fn start_ts_below_the_txn_safe_point_is_aborted_by_gc() {
    let c = cluster(1, &[]);
    let client = client(&c).await;
    let w = Writer::new(&client);
    w.put(b"a", b"1").await;
    let old = client.current_timestamp().await.unwrap();
    let safe_point = client.current_timestamp().await.unwrap();
    client
        .store()
        .pd()
        .advance_txn_safe_point(NULL_KEYSPACE_ID, safe_point)
        .await
        .unwrap();
    // A new client loads the safe point from PD's GetGCState when it starts.
    let fresh = txn_common::client(&c).await;
    assert_eq!(fresh.txn_safe_point_cache().get().0, safe_point);
    let err = fresh.snapshot(old).get("a").await.unwrap_err();
    assert!(
        matches!(err, Error::TxnAbortedByGc { start_ts, safe_point: sp } if start_ts == old && sp == safe_point),
        "{err:?}"
    );
    assert!(err.is_txn_aborted_by_gc());
    let err = fresh
        .begin_with(tikv_tower::txn::TxnOptions::optimistic().with_start_ts(old))
        .await
        .unwrap()
        .get("a")
        .await
        .unwrap_err();
    assert!(err.is_txn_aborted_by_gc(), "{err:?}");
    // At or above the safe point the read goes through.
    assert_eq!(
        fresh
            .snapshot(safe_point)
            .get("a")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"1"[..])
    );
    // A cache older than 90 s is not trusted.
    let stale = tokio::time::Instant::now()
        .checked_sub(Duration::from_secs(91))
        .expect("the clock runs for more than 91 s");
    fresh.update_txn_safe_point_cache(safe_point, stale);
    let err = fresh.snapshot(safe_point).get("a").await.unwrap_err();
    assert!(err.is_pd_server_timeout(), "{err:?}");
}

#[tokio::test]
async fn future_read_ts_is_refused() {
    let c = cluster(1, &[]);
    let client = client(&c).await;
    let now = client.current_timestamp().await.unwrap();
    let future = now + (3_600_000 << 18); // an hour ahead
    let err = client.snapshot(future).get("a").await.unwrap_err();
    assert!(
        matches!(err, Error::FutureTsRead { read_ts, current_ts } if read_ts == future && current_ts < future),
        "{err:?}"
    );
    assert!(err.is_future_ts_read());
    let err = client
        .snapshot(future)
        .scanner(..)
        .unwrap()
        .next()
        .await
        .unwrap_err();
    assert!(err.is_future_ts_read(), "{err:?}");
    let err = client.snapshot(future).batch_get(["a"]).await.unwrap_err();
    assert!(err.is_future_ts_read(), "{err:?}");
    // i64::MAX..u64::MAX is no TSO; u64::MAX is the autocommit point get; a stale read
    // at u64::MAX is refused.
    let err = client.snapshot(u64::MAX - 1).get("a").await.unwrap_err();
    assert!(matches!(err, Error::InvalidReadTs(_)), "{err:?}");
    assert_eq!(client.snapshot(u64::MAX).get("a").await.unwrap(), None);
    let stale = client.snapshot_with(u64::MAX, SnapshotOptions::default().with_stale_read(true));
    assert!(matches!(
        stale.get("a").await.unwrap_err(),
        Error::InvalidReadTs(_)
    ));
}

#[tokio::test]
async fn autocommit_point_get_reads_the_latest_and_skips_the_primary_lock() {
    let c = cluster(1, &[]);
    let client = client(&c).await;
    let w = Writer::new(&client);
    w.put(b"a", b"1").await;
    w.put(b"a", b"2").await;
    let snap = client.snapshot(u64::MAX);
    assert_eq!(snap.get("a").await.unwrap().as_deref(), Some(&b"2"[..]));
    // A (non-async-commit) primary lock does not block a point get at u64::MAX (TiKV
    // `check_ts_conflict_si`): the latest committed value is read without waiting.
    let lock_ts = w.ts().await;
    w.prewrite(&[(b"a", Some(b"3"))], b"a", lock_ts, 60_000)
        .await;
    let got = tokio::time::timeout(Duration::from_secs(5), snap.get("a"))
        .await
        .expect("not blocked by the lock")
        .unwrap();
    assert_eq!(got.as_deref(), Some(&b"2"[..]));
}

#[tokio::test]
async fn stale_read_is_served_by_a_follower_and_falls_back_on_data_not_ready() {
    let c = cluster(3, &[]);
    let client = client(&c).await;
    let w = Writer::new(&client);
    w.put(b"a", b"1").await;
    let region = c.region_for_user_key(b"a").unwrap();
    let leader = region.leader_peer().unwrap().store_id;

    // Low-resolution and stale timestamps come from the oracle.
    let now = client.current_timestamp().await.unwrap();
    assert!(client.low_resolution_timestamp().await.unwrap() >= now);
    let stale_ts = client.stale_timestamp(0).await.unwrap();
    assert!(stale_ts <= client.current_timestamp().await.unwrap());
    let an_hour_ago = client.stale_timestamp(3600).await.unwrap();
    assert!(an_hour_ago < now);
    assert!(client
        .stale_timestamp(u64::MAX / 1000)
        .await
        .unwrap_err()
        .is_invalid_argument());

    let opts = SnapshotOptions::default().with_stale_read(true);
    let mut followers = 0;
    for _ in 0..6 {
        let snap = client.snapshot_with(now, opts.clone());
        let (v, d) = snap.get_with_details("a").await.unwrap();
        assert_eq!(v.map(|e| e.value).as_deref(), Some(&b"1"[..]));
        assert_eq!(
            d.exec.attempts, 1,
            "served at once by a replica whose safe ts covers it"
        );
        if d.exec.store_id != Some(leader) {
            followers += 1;
        }
    }
    assert!(
        followers > 0,
        "stale reads go to any replica, followers included"
    );

    // The safe ts lags behind the read ts: DataIsNotReady, then a normal read at the
    // leader (or, when the leader was the replica that answered DataIsNotReady, a
    // follower replica read), as client-go's replica selector does.
    c.set_safe_ts(region.id, Some(now - 1_000));
    let mut at_leader = 0;
    for _ in 0..6 {
        let snap = client.snapshot_with(now, opts.clone());
        let (v, d) = snap.get_with_details("a").await.unwrap();
        assert_eq!(v.map(|e| e.value).as_deref(), Some(&b"1"[..]));
        assert_eq!(
            d.exec.attempts, 2,
            "DataIsNotReady, then the fallback: {d:?}"
        );
        if d.exec.store_id == Some(leader) {
            at_leader += 1;
        }
    }
    assert!(
        at_leader > 0,
        "a failed stale read at a follower falls back to the leader"
    );
}

#[tokio::test]
async fn follower_and_learner_reads() {
    let c = tikv_tower_mockstore::MockCluster::builder()
        .stores(4)
        .replicas(3)
        .learners(1)
        .boundary_encoding(tikv_tower_mockstore::cluster::BoundaryEncoding::Memcomparable)
        .build();
    let client = client(&c).await;
    let w = Writer::new(&client);
    w.put(b"a", b"1").await;
    let region = c.region_for_user_key(b"a").unwrap();
    let leader = region.leader_peer().unwrap().store_id;
    let ts = client.current_timestamp().await.unwrap();
    for (mode, not_leader) in [
        (ReplicaRead::Follower, true),
        (ReplicaRead::Learner, true),
        (ReplicaRead::Leader, false),
        (ReplicaRead::PreferLeader, false),
    ] {
        let snap = client.snapshot_with(ts, SnapshotOptions::default().with_replica_read(mode));
        let (v, d) = snap.get_with_details("a").await.unwrap();
        assert_eq!(v.map(|e| e.value).as_deref(), Some(&b"1"[..]), "{mode:?}");
        assert_eq!(
            d.exec.store_id != Some(leader),
            not_leader,
            "{mode:?}: {d:?}"
        );
    }
    let mixed = client.snapshot_with(
        ts,
        SnapshotOptions::default().with_replica_read(ReplicaRead::Mixed),
    );
    assert_eq!(mixed.batch_get(["a"]).await.unwrap().len(), 1);
}

#[tokio::test]
async fn snapshot_cache_update_and_clean() {
    let c = cluster(1, &[]);
    let client = client(&c).await;
    let w = Writer::new(&client);
    w.put(b"a", b"1").await;
    let snap = client.snapshot(client.current_timestamp().await.unwrap());
    let mut fake = HashMap::new();
    fake.insert(
        Bytes::from_static(b"a"),
        tikv_tower::txn::ValueEntry {
            value: Bytes::from_static(b"cached"),
            commit_ts: 0,
        },
    );
    snap.update_snapshot_cache(["a", "b"], &fake);
    assert_eq!(
        snap.get("a").await.unwrap().as_deref(),
        Some(&b"cached"[..])
    );
    assert_eq!(snap.get("b").await.unwrap(), None, "cached as absent");
    assert_eq!(snap.snap_cache_hit_count(), 2);
    snap.clean_cache(["a"]);
    assert_eq!(snap.get("a").await.unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(snap.snap_cache_len(), 1);
}

#[tokio::test]
async fn reads_meet_locks_of_committed_and_rolled_back_txns() {
    let c = cluster(2, &[b"m".to_vec()]);
    let client = client(&c).await;
    let w = Writer::new(&client);
    // (a) A committed txn whose secondary (in another region) is still locked.
    let start = w.ts().await;
    w.prewrite(
        &[(b"a", Some(b"1")), (b"x", Some(b"2"))],
        b"a",
        start,
        60_000,
    )
    .await;
    let commit = w.ts().await;
    w.commit(&[b"a"], start, commit).await;
    let snap = client.snapshot(client.current_timestamp().await.unwrap());
    assert_eq!(snap.get("x").await.unwrap().as_deref(), Some(&b"2"[..]));
    // (b) A txn whose lock expired (TTL 1 ms): rolled back by CheckTxnStatus.
    let start = w.ts().await;
    w.prewrite(&[(b"b", Some(b"1"))], b"b", start, 1).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let snap = client.snapshot(client.current_timestamp().await.unwrap());
    assert_eq!(snap.get("b").await.unwrap(), None);
    assert!(
        snap.known_locks().0.contains(&start),
        "remembered as resolved"
    );
    // A scan over both regions meets no lock any more.
    let all = snap.scan(.., 10, false).await.unwrap();
    let keys: Vec<_> = all.iter().map(|e| e.key.to_vec()).collect();
    assert_eq!(keys, vec![b"a".to_vec(), b"x".to_vec()]);
}

#[tokio::test]
async fn closed_client_refuses_reads() {
    let c = cluster(1, &[]);
    let client = client(&c).await;
    let snap = client.snapshot(client.current_timestamp().await.unwrap());
    client.close();
    assert!(client.is_closed());
    assert!(matches!(snap.get("a").await.unwrap_err(), Error::Closed));
    assert!(matches!(client.begin().await.unwrap_err(), Error::Closed));
}

#[tokio::test]
async fn stale_read_that_meets_a_lock_reads_from_the_leader() {
    let c = cluster(3, &[]);
    let client = client(&c).await;
    let w = Writer::new(&client);
    let region = c.region_for_user_key(b"a").unwrap();
    let leader = region.leader_peer().unwrap().store_id;
    for i in 0..6u8 {
        let (p, s) = ([b'a', i], [b'b', i]);
        let start = w.ts().await;
        w.prewrite(&[(&p, Some(b"1")), (&s, Some(b"2"))], &p, start, 60_000)
            .await;
        let commit = w.ts().await;
        w.commit(&[&p], start, commit).await;
        let read_ts = w.ts().await;
        // A lagging-free replica: the secondary lock is visible to stale reads.
        c.set_safe_ts(region.id, Some(read_ts));
        let snap = client.snapshot_with(read_ts, SnapshotOptions::default().with_stale_read(true));
        let (v, d) = snap.get_with_details(s.to_vec()).await.unwrap();
        assert_eq!(v.map(|e| e.value).as_deref(), Some(&b"2"[..]));
        assert_eq!(
            d.exec.store_id,
            Some(leader),
            "after the lock: a leader read ({d:?})"
        );
        assert!(snap.known_locks().1.contains(&start), "known committed");
    }
}

#[tokio::test]
async fn min_safe_ts_is_the_smallest_store_safe_ts() {
    let c = cluster(3, &[b"m".to_vec()]);
    let client = client(&c).await;
    let before = client.current_timestamp().await.unwrap();
    let min = client.min_safe_ts().await.unwrap();
    assert!(
        min >= before,
        "no locks: safe ts follows the TSO ({min} < {before})"
    );
    // A lagging region (on every store) holds the minimum down ...
    let r = c.region_for_user_key(b"z").unwrap();
    c.set_safe_ts(r.id, Some(before - 100));
    let w = Writer::new(&client);
    w.put(b"a", b"1").await;
    // ... but a store's safe ts never goes backwards once seen.
    assert_eq!(client.min_safe_ts().await.unwrap(), min);
    // A stale read at the min safe ts is served without DataIsNotReady.
    let fresh = txn_common::client(&c).await;
    let lagging = fresh.min_safe_ts().await.unwrap();
    assert_eq!(lagging, before - 100);
    let snap = fresh.snapshot_with(lagging, SnapshotOptions::default().with_stale_read(true));
    let (_, d) = snap.get_with_details("z").await.unwrap();
    assert_eq!(d.exec.attempts, 1);
}
