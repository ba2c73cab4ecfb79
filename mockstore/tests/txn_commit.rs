//! KvCommit, KvCleanup, KvBatchRollback, KvTxnHeartBeat: one test per rule
//! of mockstore-spec §2.3 and §3.2 (TiKV `actions/{commit,cleanup}.rs`).

mod txn_util;

use tikv_tower_mockstore::mvcc::WriteType;
use tikv_tower_proto::kvrpcpb;
use txn_util::*;

#[test]
fn commit_ts_not_above_start_ts_is_invalid_txn_tso() {
    let h = H::new();
    h.must_prewrite_put(b"k", b"v", b"k", 10);
    let r = h.commit(&[b"k"], 10, 10);
    assert!(r.error.unwrap().abort.contains("InvalidTxnTso"));
    h.must_locked(b"k", 10);
}

#[test]
fn commit_below_min_commit_ts_is_commit_ts_expired() {
    let h = H::new();
    let mut req = prewrite_req(vec![put(b"k", b"v")], b"k", 10);
    req.min_commit_ts = 30;
    h.must_prewrite(req);
    let r = h.commit(&[b"k"], 10, 20);
    let e = r
        .error
        .unwrap()
        .commit_ts_expired
        .expect("commit_ts_expired");
    assert_eq!(
        (e.start_ts, e.attempted_commit_ts, e.min_commit_ts),
        (10, 20, 30)
    );
    assert_eq!(e.key, "k");
    assert_eq!(r.commit_version, 0);
    h.must_commit(&[b"k"], 10, 30);
}

#[test]
fn commit_of_own_pessimistic_lock_just_unlocks() {
    let h = H::new();
    h.must_pessimistic_lock(b"k", b"k", 10, 10);
    h.must_commit(&[b"k"], 10, 20);
    h.must_unlocked(b"k");
    h.must_no_record(b"k", 20);
}

#[test]
fn commit_writes_records_of_each_lock_type_and_unlocks() {
    let h = H::new();
    h.must_put(b"old", b"x", 1, 2);
    h.must_prewrite(prewrite_req(
        vec![put(b"a", b"1"), lock_m(b"b"), del(b"old")],
        b"a",
        10,
    ));
    h.must_commit(&[b"a", b"b", b"old"], 10, 20);
    let a = h.write_at(b"a", 20).unwrap();
    assert_eq!(
        (a.write_type, a.start_ts, a.value.as_deref()),
        (WriteType::Put, 10, Some(&b"1"[..]))
    );
    assert_eq!(h.write_at(b"b", 20).unwrap().write_type, WriteType::Lock);
    assert_eq!(
        h.write_at(b"old", 20).unwrap().write_type,
        WriteType::Delete
    );
    for k in [&b"a"[..], b"b", b"old"] {
        h.must_unlocked(k);
    }
    assert_eq!(h.must_get(b"a", 20), Some(b"1".to_vec()));
    assert_eq!(h.must_get(b"a", 19), None);
    assert_eq!(h.must_get(b"old", 25), None);
    assert_eq!(h.must_get(b"old", 15), Some(b"x".to_vec()));
}

#[test]
fn commit_at_a_rolled_back_ts_sets_overlapped_rollback() {
    let h = H::new();
    let mut req = prewrite_req(vec![put(b"k", b"v")], b"k", 10);
    req.use_async_commit = true;
    h.must_prewrite(req);
    // Another txn (start_ts 20) is rolled back (protected) on k while the
    // async-commit lock is there: the ts is recorded on the lock.
    let r = h.check_txn_status(b"k", 20, 0, 0, true);
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(h.must_locked(b"k", 10).rollback_ts, vec![20]);
    h.must_commit(&[b"k"], 10, 20);
    let w = h.write_at(b"k", 20).unwrap();
    assert_eq!(w.start_ts, 10);
    assert!(w.has_overlapped_rollback);
}

#[test]
fn commit_is_idempotent() {
    let h = H::new();
    h.must_put(b"k", b"v", 10, 20);
    h.must_commit(&[b"k"], 10, 20);
    // Even with another txn's lock on the key now.
    h.must_prewrite_put(b"k", b"w", b"k", 30);
    h.must_commit(&[b"k"], 10, 20);
}

#[test]
fn commit_without_lock_is_txn_lock_not_found() {
    let h = H::new();
    let r = h.commit(&[b"k"], 10, 20);
    let e = r.error.unwrap();
    assert_eq!(e.txn_lock_not_found.unwrap().key, "k");
    assert!(!e.retryable.is_empty());
    assert!(e.abort.is_empty());
    // Rolled back: also TxnLockNotFound.
    h.must_rollback(&[b"r"], 10);
    assert!(h
        .commit(&[b"r"], 10, 20)
        .error
        .unwrap()
        .txn_lock_not_found
        .is_some());
}

#[test]
fn commit_failure_writes_nothing() {
    let h = H::new();
    h.must_prewrite_put(b"a", b"v", b"a", 10);
    let r = h.commit(&[b"a", b"missing"], 10, 20);
    assert!(r.error.is_some());
    h.must_locked(b"a", 10);
}

fn cleanup(h: &H, key: &[u8], start_ts: u64, current_ts: u64) -> kvrpcpb::CleanupResponse {
    h.e.cleanup(
        &h.cm,
        &kvrpcpb::CleanupRequest {
            context: None,
            key: key.to_vec().into(),
            start_version: start_ts,
            current_ts,
        },
        ALL,
    )
}

#[test]
fn cleanup_of_live_lock_is_key_is_locked() {
    let h = H::new();
    let start = tso(1000, 0);
    h.must_prewrite_put(b"k", b"v", b"k", start);
    let r = cleanup(&h, b"k", start, tso(1000 + 3000, 0));
    assert!(
        r.error.unwrap().locked.is_some(),
        "ttl 3000 not yet expired"
    );
    h.must_locked(b"k", start);
    let r = cleanup(&h, b"k", start, tso(1000 + 3001, 0));
    assert!(r.error.is_none());
    h.must_unlocked(b"k");
    h.must_rollback_record(b"k", start, true);
}

#[test]
fn cleanup_with_zero_current_ts_rolls_back_secondary_unprotected() {
    let h = H::new();
    h.must_prewrite_put(b"s", b"v", b"p", 10);
    assert!(cleanup(&h, b"s", 10, 0).error.is_none());
    h.must_rollback_record(b"s", 10, false);
}

#[test]
fn cleanup_of_committed_returns_commit_version() {
    let h = H::new();
    h.must_put(b"k", b"v", 10, 20);
    let r = cleanup(&h, b"k", 10, 0);
    assert!(r.error.is_none());
    assert_eq!(r.commit_version, 20);
}

#[test]
fn cleanup_without_record_writes_protected_rollback() {
    let h = H::new();
    assert!(cleanup(&h, b"k", 10, 0).error.is_none());
    h.must_rollback_record(b"k", 10, true);
    // Rolled back already: OK.
    assert!(cleanup(&h, b"k", 10, 0).error.is_none());
}

#[test]
fn batch_rollback_protects_primary_not_secondaries() {
    let h = H::new();
    h.must_prewrite(prewrite_req(
        vec![put(b"p", b"1"), put(b"s", b"2")],
        b"p",
        10,
    ));
    h.must_rollback(&[b"p", b"s"], 10);
    h.must_unlocked(b"p");
    h.must_unlocked(b"s");
    h.must_rollback_record(b"p", 10, true);
    h.must_rollback_record(b"s", 10, false);
    assert_eq!(h.must_get(b"p", 100), None);
}

#[test]
fn batch_rollback_of_pessimistic_lock() {
    let h = H::new();
    h.must_pessimistic_lock(b"k", b"k", 10, 12);
    h.must_rollback(&[b"k"], 10);
    h.must_unlocked(b"k");
    h.must_rollback_record(b"k", 10, true);
}

#[test]
fn batch_rollback_of_committed_is_abort() {
    let h = H::new();
    h.must_put(b"k", b"v", 10, 20);
    let e = h.rollback(&[b"k"], 10).error.unwrap();
    assert!(e.abort.contains("already committed"), "{e:?}");
}

#[test]
fn batch_rollback_without_lock_writes_unprotected_and_collapses() {
    let h = H::new();
    h.must_rollback(&[b"k"], 10);
    h.must_rollback_record(b"k", 10, false);
    h.must_rollback(&[b"k"], 20);
    h.must_rollback_record(b"k", 20, false);
    h.must_no_record(b"k", 10);
}

#[test]
fn batch_rollback_keeps_protected_rollbacks() {
    let h = H::new();
    assert!(cleanup(&h, b"k", 10, 0).error.is_none());
    h.must_rollback(&[b"k"], 20);
    h.must_rollback_record(b"k", 10, true);
    h.must_rollback_record(b"k", 20, false);
}

#[test]
fn batch_rollback_over_other_commit_at_same_ts_writes_nothing_unprotected() {
    let h = H::new();
    h.must_put(b"k", b"v", 5, 10);
    h.must_rollback(&[b"k"], 10);
    let w = h.write_at(b"k", 10).unwrap();
    assert_eq!(
        (w.write_type, w.has_overlapped_rollback),
        (WriteType::Put, false)
    );
    // A protected one flags the record instead.
    assert!(cleanup(&h, b"k", 10, 0).error.is_none());
    let w = h.write_at(b"k", 10).unwrap();
    assert_eq!(
        (w.write_type, w.start_ts, w.has_overlapped_rollback),
        (WriteType::Put, 5, true)
    );
    assert_eq!(h.must_get(b"k", 10), Some(b"v".to_vec()));
}

fn heart_beat(h: &H, key: &[u8], start_ts: u64, ttl: u64) -> kvrpcpb::TxnHeartBeatResponse {
    h.e.txn_heart_beat(
        &h.cm,
        &kvrpcpb::TxnHeartBeatRequest {
            primary_lock: key.to_vec().into(),
            start_version: start_ts,
            advise_lock_ttl: ttl,
            ..Default::default()
        },
        ALL,
    )
}

#[test]
fn heart_beat_raises_ttl_only_upwards() {
    let h = H::new();
    h.must_prewrite_put(b"k", b"v", b"k", 10);
    assert_eq!(heart_beat(&h, b"k", 10, 5000).lock_ttl, 5000);
    assert_eq!(heart_beat(&h, b"k", 10, 100).lock_ttl, 5000);
    assert_eq!(h.must_locked(b"k", 10).ttl, 5000);
}

#[test]
fn heart_beat_without_lock_is_txn_not_found() {
    let h = H::new();
    let e = heart_beat(&h, b"k", 10, 5000).error.unwrap();
    let nf = e.txn_not_found.unwrap();
    assert_eq!((nf.start_ts, nf.primary_key.as_ref()), (10, &b"k"[..]));
}

#[test]
fn pessimistic_rollback_removes_only_matching_pessimistic_locks() {
    let h = H::new();
    h.must_pessimistic_lock(b"a", b"a", 10, 15);
    h.must_pessimistic_lock(b"b", b"a", 10, 25);
    h.must_prewrite_put(b"c", b"v", b"c", 10);
    let req = kvrpcpb::PessimisticRollbackRequest {
        context: None,
        start_version: 10,
        for_update_ts: 20,
        keys: vec!["a".into(), "b".into(), "c".into()],
    };
    let r = h.e.pessimistic_rollback(&h.cm, &req, ALL);
    assert!(r.errors.is_empty());
    h.must_unlocked(b"a");
    h.must_locked(b"b", 10);
    h.must_locked(b"c", 10);
    h.must_no_record(b"a", 10);
    // Empty keys: the whole region.
    let req = kvrpcpb::PessimisticRollbackRequest {
        context: None,
        start_version: 10,
        for_update_ts: 30,
        keys: vec![],
    };
    h.e.pessimistic_rollback(&h.cm, &req, ALL);
    h.must_unlocked(b"b");
    h.must_locked(b"c", 10);
}
