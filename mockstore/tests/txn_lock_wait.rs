//! Pessimistic lock waiting, wake-up and deadlock detection (mockstore-spec
//! §2.3 KvPessimisticLock rule 8 and §3.8; TiKV `lock_manager`). All tests
//! run on tokio's paused clock, so timeouts are exact and instantaneous.

mod txn_util;

use std::time::Duration;

use tikv_tower_mockstore::mvcc::{deadlock::key_hash, ConcurrencyManager, TxnEngine};
use tikv_tower_proto::kvrpcpb::{
    self, write_conflict::Reason, PessimisticLockKeyResultType, PessimisticLockWakeUpMode,
};
use tokio::time::Instant;
use txn_util::*;

fn waiting_req(key: &[u8], start_ts: u64, wait_timeout: i64) -> kvrpcpb::PessimisticLockRequest {
    let mut r = lock_req(&[key], key, start_ts, start_ts);
    r.wait_timeout = wait_timeout;
    r
}

/// Spawns a lock request; returns its handle once it is waiting on `key`.
async fn spawn_waiter(
    e: &TxnEngine,
    cm: &ConcurrencyManager,
    key: &[u8],
    req: kvrpcpb::PessimisticLockRequest,
) -> tokio::task::JoinHandle<(kvrpcpb::PessimisticLockResponse, Instant)> {
    let before = e.waiter_count(key);
    let (e2, cm2) = (e.clone(), cm.clone());
    let h = tokio::spawn(async move {
        let r = e2.pessimistic_lock(&cm2, &req, ALL).await;
        (r, Instant::now())
    });
    while e.waiter_count(key) == before {
        tokio::task::yield_now().await;
    }
    h
}

async fn lock_async(
    h: &H,
    req: kvrpcpb::PessimisticLockRequest,
) -> kvrpcpb::PessimisticLockResponse {
    h.e.pessimistic_lock(&h.cm, &req, ALL).await
}

#[tokio::test(start_paused = true)]
async fn wait_timeout_is_capped_and_zero_means_ceiling() {
    let h = H::new();
    h.must_prewrite_put(b"k", b"v", b"k", 5);
    for (wait, expect_ms) in [(300i64, 300u64), (0, 1000), (5000, 1000)] {
        let t0 = Instant::now();
        let r = lock_async(&h, waiting_req(b"k", 10, wait)).await;
        assert_eq!(
            t0.elapsed(),
            Duration::from_millis(expect_ms),
            "wait_timeout {wait}"
        );
        assert_eq!(r.errors[0].locked.as_ref().unwrap().lock_version, 5);
        assert_eq!(
            h.e.waiter_count(b"k"),
            0,
            "the waiter is removed on timeout"
        );
    }
    let t0 = Instant::now();
    let r = lock_async(&h, waiting_req(b"k", 10, -1)).await;
    assert_eq!(t0.elapsed(), Duration::ZERO);
    assert!(r.errors[0].locked.is_some());
}

#[tokio::test(start_paused = true)]
async fn commit_wakes_legacy_waiter_with_pessimistic_retry() {
    let h = H::new();
    h.must_prewrite_put(b"k", b"v", b"k", 5);
    let w = spawn_waiter(&h.e, &h.cm, b"k", waiting_req(b"k", 10, 1000)).await;
    let t0 = Instant::now();
    h.must_commit(&[b"k"], 5, 8);
    let (r, at) = w.await.unwrap();
    assert_eq!(at, t0, "the head waiter is woken at once");
    let c = r.errors[0].conflict.as_ref().expect("write conflict");
    assert_eq!(
        (c.start_ts, c.conflict_ts, c.conflict_commit_ts, c.reason),
        (10, 5, 8, Reason::PessimisticRetry as i32)
    );
    h.must_unlocked(b"k");
}

#[tokio::test(start_paused = true)]
async fn every_release_path_wakes_waiters() {
    type Release = fn(&H);
    let releases: [(&str, Release); 5] = [
        ("batch rollback", |h| h.must_rollback(&[b"k"], 5)),
        ("pessimistic rollback", |h| {
            h.e.pessimistic_rollback(
                &h.cm,
                &kvrpcpb::PessimisticRollbackRequest {
                    context: None,
                    start_version: 5,
                    for_update_ts: 5,
                    keys: vec!["k".into()],
                },
                ALL,
            );
        }),
        ("resolve lock", |h| {
            h.e.resolve_lock(
                &h.cm,
                &kvrpcpb::ResolveLockRequest {
                    start_version: 5,
                    ..Default::default()
                },
                ALL,
            );
        }),
        ("check txn status ttl expiry", |h| {
            let r = h.check_txn_status(b"k", 5, 0, u64::MAX, false);
            assert!(r.error.is_none());
        }),
        ("cleanup", |h| {
            h.e.cleanup(
                &h.cm,
                &kvrpcpb::CleanupRequest {
                    context: None,
                    key: "k".into(),
                    start_version: 5,
                    current_ts: 0,
                },
                ALL,
            );
        }),
    ];
    for (name, release) in releases {
        let h = H::new();
        assert!(lock_async(&h, lock_req(&[b"k"], b"k", 5, 5))
            .await
            .errors
            .is_empty());
        let w = spawn_waiter(&h.e, &h.cm, b"k", waiting_req(b"k", 10, 1000)).await;
        let t0 = Instant::now();
        release(&h);
        let (r, at) = w.await.unwrap();
        assert_eq!(at, t0, "{name}: woken at once");
        let c = r.errors[0]
            .conflict
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: {:?}", r.errors));
        assert_eq!((c.conflict_ts, c.conflict_commit_ts), (5, 0), "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn later_waiters_are_woken_after_wake_up_delay() {
    let h = H::new();
    h.must_prewrite_put(b"k", b"v", b"k", 5);
    let w30 = spawn_waiter(&h.e, &h.cm, b"k", waiting_req(b"k", 30, 1000)).await;
    let w20 = spawn_waiter(&h.e, &h.cm, b"k", waiting_req(b"k", 20, 1000)).await;
    let t0 = Instant::now();
    h.must_rollback(&[b"k"], 5);
    let (r20, at20) = w20.await.unwrap();
    let (r30, at30) = w30.await.unwrap();
    assert_eq!(at20, t0, "smallest start_ts first");
    assert_eq!(at30, t0 + Duration::from_millis(20));
    assert!(r20.errors[0].conflict.is_some() && r30.errors[0].conflict.is_some());
}

#[tokio::test(start_paused = true)]
async fn force_lock_waiter_acquires_after_release() {
    let h = H::new();
    h.must_prewrite_put(b"k", b"v", b"k", 5);
    let mut req = waiting_req(b"k", 10, 1000);
    req.wake_up_mode = PessimisticLockWakeUpMode::WakeUpModeForceLock as i32;
    req.return_values = true;
    let w = spawn_waiter(&h.e, &h.cm, b"k", req).await;
    h.must_commit(&[b"k"], 5, 12);
    let (r, _) = w.await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let res = &r.results[0];
    assert_eq!(
        res.r#type,
        PessimisticLockKeyResultType::LockResultLockedWithConflict as i32
    );
    assert_eq!(res.locked_with_conflict_ts, 12);
    assert_eq!(res.value, "v");
    assert_eq!(h.must_locked(b"k", 10).for_update_ts, 12);
}

#[tokio::test(start_paused = true)]
async fn deadlock_is_detected_with_wait_chain() {
    let h = H::new();
    assert!(lock_async(&h, lock_req(&[b"a"], b"a", 10, 10))
        .await
        .errors
        .is_empty());
    assert!(lock_async(&h, lock_req(&[b"b"], b"b", 20, 20))
        .await
        .errors
        .is_empty());
    // T10 waits for T20 on b.
    let mut r10 = lock_req(&[b"b"], b"a", 10, 10);
    r10.wait_timeout = 1000;
    let w10 = spawn_waiter(&h.e, &h.cm, b"b", r10).await;
    // T20 asks for a: waiting would close the cycle.
    let mut r20 = lock_req(&[b"a"], b"b", 20, 20);
    r20.wait_timeout = 1000;
    let t0 = Instant::now();
    let r = lock_async(&h, r20).await;
    assert_eq!(t0.elapsed(), Duration::ZERO);
    let d = r.errors[0].deadlock.as_ref().expect("deadlock");
    assert_eq!((d.lock_ts, d.lock_key.as_ref()), (10, &b"a"[..]));
    assert_eq!(d.deadlock_key_hash, key_hash(b"b"));
    let chain: Vec<_> = d
        .wait_chain
        .iter()
        .map(|e| (e.txn, e.wait_for_txn, e.key.clone()))
        .collect();
    assert_eq!(chain, vec![(10, 20, "b".into()), (20, 10, "a".into())]);
    assert_eq!(h.e.waiter_count(b"a"), 0);
    // T20 rolls back; T10 is woken.
    h.must_rollback(&[b"b"], 20);
    let (r, _) = w10.await.unwrap();
    assert!(r.errors[0].conflict.is_some());
}

#[tokio::test(start_paused = true)]
async fn first_lock_skips_deadlock_detection() {
    let h = H::new();
    assert!(lock_async(&h, lock_req(&[b"a"], b"a", 10, 10))
        .await
        .errors
        .is_empty());
    assert!(lock_async(&h, lock_req(&[b"b"], b"b", 20, 20))
        .await
        .errors
        .is_empty());
    let mut r10 = lock_req(&[b"b"], b"a", 10, 10);
    r10.wait_timeout = 500;
    let w10 = spawn_waiter(&h.e, &h.cm, b"b", r10).await;
    let mut r20 = lock_req(&[b"a"], b"b", 20, 20);
    r20.wait_timeout = 500;
    r20.is_first_lock = true;
    let r = lock_async(&h, r20).await;
    assert!(
        r.errors[0].locked.is_some(),
        "times out instead: {:?}",
        r.errors
    );
    let (r, _) = w10.await.unwrap();
    assert!(r.errors[0].locked.is_some());
}

#[tokio::test(start_paused = true)]
async fn deadlock_edges_expire_after_wait_for_lock_timeout() {
    let d =
        tikv_tower_mockstore::mvcc::deadlock::DeadlockDetector::new(Duration::from_millis(1000));
    assert!(d.detect(1, 2, b"x", b"").is_none());
    assert!(d.detect(2, 1, b"y", b"").is_some());
    tokio::time::advance(Duration::from_millis(1001)).await;
    assert!(d.detect(2, 1, b"y", b"").is_none(), "the 1→2 edge expired");
}

/// Pessimistic counter transactions on real threads: each task increments
/// two counters (in task-dependent order, so deadlocks happen) by locking
/// them with `return_values`, then prewriting and committing. Write
/// conflicts retry the key; deadlocks and lock-wait timeouts roll back and
/// retry the transaction. No increment may
/// be lost and every wait must end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pessimistic_counters_lose_no_update_under_contention() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    let h = Arc::new(H::new());
    let tso = Arc::new(AtomicU64::new(1));
    let tasks = 8u64;
    let per_task = 30u64;
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (h, tso) = (h.clone(), tso.clone());
        handles.push(tokio::spawn(async move {
            let keys: [&[u8]; 2] = if t % 2 == 0 {
                [b"c1", b"c2"]
            } else {
                [b"c2", b"c1"]
            };
            let mut done = 0;
            let mut retries = 0u64;
            while done < per_task {
                let start = tso.fetch_add(1, Ordering::SeqCst);
                let mut values = Vec::new();
                let mut ok = true;
                'keys: for (i, k) in keys.iter().enumerate() {
                    // As client-go: a write conflict retries this key with a
                    // newer for_update_ts; a deadlock or a lock-wait timeout
                    // aborts the attempt.
                    loop {
                        let for_update = tso.fetch_add(1, Ordering::SeqCst);
                        let mut req = lock_req(&[k], keys[0], start, for_update);
                        req.return_values = true;
                        req.wait_timeout = 200;
                        req.is_first_lock = i == 0;
                        let r = h.e.pessimistic_lock(&h.cm, &req, ALL).await;
                        if let Some(e) = r.errors.first() {
                            assert!(
                                e.conflict.is_some() || e.deadlock.is_some() || e.locked.is_some(),
                                "unexpected {e:?}"
                            );
                            if e.conflict.is_some() {
                                retries += 1;
                                continue;
                            }
                            ok = false;
                            break 'keys;
                        }
                        let v = &r.values[0];
                        let n: u64 = if r.not_founds[0] {
                            0
                        } else {
                            String::from_utf8_lossy(v).parse().expect("counter")
                        };
                        values.push((k.to_vec(), n, for_update));
                        break;
                    }
                }
                if !ok {
                    h.rollback(&keys, start);
                    retries += 1;
                    // Back off a little (jittered), as a client does: legacy
                    // wake-ups make every waiter retry at once.
                    let jitter = (start * 7 + t * 13) % 8;
                    tokio::time::sleep(Duration::from_millis(1 + jitter)).await;
                    continue;
                }
                let for_update = values.iter().map(|v| v.2).max().unwrap_or(start);
                let mut p = prewrite_req(
                    values
                        .iter()
                        .map(|(k, n, _)| put(k, (n + 1).to_string().as_bytes()))
                        .collect(),
                    keys[0],
                    start,
                );
                p.for_update_ts = for_update;
                p.pessimistic_actions = vec![
                    kvrpcpb::prewrite_request::PessimisticAction::DoPessimisticCheck
                        as i32;
                    2
                ];
                let r = h.prewrite(p);
                assert!(
                    r.errors.is_empty(),
                    "prewrite of locked keys failed: {:?}",
                    r.errors
                );
                let commit = tso.fetch_add(1, Ordering::SeqCst);
                h.must_commit(&[keys[0]], start, commit);
                h.must_commit(&[keys[1]], start, commit);
                done += 1;
            }
            retries
        }));
    }
    let mut retries = 0;
    for j in handles {
        retries += tokio::time::timeout(Duration::from_secs(60), j)
            .await
            .expect("no task hangs")
            .expect("task");
    }
    let ts = tso.fetch_add(1, Ordering::SeqCst);
    for k in [&b"c1"[..], b"c2"] {
        let v = h.must_get(k, ts).expect("counter");
        assert_eq!(String::from_utf8_lossy(&v), (tasks * per_task).to_string());
    }
    println!("retries: {retries}");
}
