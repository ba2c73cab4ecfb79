//! KvPessimisticLock rules 1–7 of mockstore-spec §2.3 (TiKV
//! `actions/acquire_pessimistic_lock.rs`). Waiting (rule 8) is in
//! `txn_lock_wait.rs`.

mod txn_util;

use tikv_tower_mockstore::mvcc::LockType;
use tikv_tower_proto::kvrpcpb::{
    self, write_conflict::Reason, Assertion, PessimisticLockKeyResultType,
    PessimisticLockWakeUpMode,
};
use txn_util::*;

fn force(mut r: kvrpcpb::PessimisticLockRequest) -> kvrpcpb::PessimisticLockRequest {
    r.wake_up_mode = PessimisticLockWakeUpMode::WakeUpModeForceLock as i32;
    r
}

#[test]
fn rule1_lock_only_if_exists_requires_return_values() {
    let h = H::new();
    let mut req = lock_req(&[b"k"], b"k", 10, 10);
    req.lock_only_if_exists = true;
    let r = h.pessimistic_lock(req);
    assert!(r.errors[0].abort.contains("LockIfExistsFailed"));
    h.must_unlocked(b"k");
}

#[test]
fn rule2_value_or_existence_requests_raise_max_ts() {
    let h = H::new();
    h.must_pessimistic_lock(b"a", b"a", 10, 20);
    assert_eq!(h.cm.max_ts(), 0);
    let mut req = lock_req(&[b"b"], b"a", 10, 30);
    req.return_values = true;
    h.pessimistic_lock(req);
    assert_eq!(h.cm.max_ts(), 30);
    let mut req = lock_req(&[b"c"], b"a", 10, 40);
    req.check_existence = true;
    h.pessimistic_lock(req);
    assert_eq!(h.cm.max_ts(), 40);
    let mut req = lock_req(&[b"d"], b"a", 10, 50);
    req.mutations[0].assertion = Assertion::NotExist as i32;
    h.pessimistic_lock(req);
    assert_eq!(h.cm.max_ts(), 50);
}

#[test]
fn rule3_other_txn_lock_is_key_is_locked_without_wait() {
    let h = H::new();
    h.must_prewrite_put(b"k", b"v", b"k", 5);
    let r = h.pessimistic_lock(lock_req(&[b"k"], b"k", 10, 10));
    let l = r.errors[0].locked.as_ref().expect("locked");
    assert_eq!(l.lock_version, 5);
}

#[test]
fn rule3_own_prewrite_lock_is_lock_type_not_match() {
    let h = H::new();
    h.must_prewrite_put(b"k", b"v", b"k", 10);
    let r = h.pessimistic_lock(lock_req(&[b"k"], b"k", 10, 10));
    assert!(r.errors[0].abort.contains("LockTypeNotMatch"));
}

#[test]
fn rule3_own_pessimistic_lock_is_idempotent_and_rewritten_only_forward() {
    let h = H::new();
    h.must_put(b"k", b"v", 1, 2);
    h.must_pessimistic_lock(b"k", b"k", 10, 20);
    // A newer write after the lock would be a conflict for a new lock, but
    // the lock is held: no check.
    let mut req = lock_req(&[b"k"], b"k", 10, 15);
    req.return_values = true;
    let r = h.pessimistic_lock(req);
    assert!(r.errors.is_empty());
    assert_eq!(r.values, vec![b"v".to_vec()]);
    assert_eq!(
        h.must_locked(b"k", 10).for_update_ts,
        20,
        "not rewritten backwards"
    );
    h.must_pessimistic_lock(b"k", b"k", 10, 30);
    assert_eq!(h.must_locked(b"k", 10).for_update_ts, 30);
}

#[test]
fn rule3_own_lock_should_not_exist_rechecks_existence() {
    let h = H::new();
    h.must_put(b"k", b"v", 1, 2);
    h.must_pessimistic_lock(b"k", b"k", 10, 10);
    let mut req = lock_req(&[b"k"], b"k", 10, 10);
    req.mutations[0].assertion = Assertion::NotExist as i32;
    assert!(h.pessimistic_lock(req).errors[0].already_exist.is_some());
}

#[test]
fn rule3_own_lock_force_mode_older_for_update_ts_reports_conflict() {
    let h = H::new();
    h.must_pessimistic_lock(b"k", b"k", 10, 30);
    let r = h.pessimistic_lock(force(lock_req(&[b"k"], b"k", 10, 20)));
    assert!(r.errors.is_empty());
    assert_eq!(
        r.results[0].r#type,
        PessimisticLockKeyResultType::LockResultLockedWithConflict as i32
    );
    assert_eq!(r.results[0].locked_with_conflict_ts, 30);
}

#[test]
fn rule4_newer_write_is_pessimistic_retry_conflict() {
    let h = H::new();
    h.must_put(b"k", b"v", 15, 20);
    let r = h.pessimistic_lock(lock_req(&[b"k"], b"p", 10, 18));
    let c = r.errors[0].conflict.as_ref().expect("conflict");
    assert_eq!(
        (c.start_ts, c.conflict_ts, c.conflict_commit_ts, c.reason),
        (10, 15, 20, Reason::PessimisticRetry as i32)
    );
    assert_eq!(c.primary, "p");
    h.must_unlocked(b"k");
    // Rollback records count too.
    h.must_rollback(&[b"r"], 30);
    let r = h.pessimistic_lock(lock_req(&[b"r"], b"p", 10, 18));
    assert!(r.errors[0].conflict.is_some());
}

#[test]
fn rule4_force_mode_locks_with_conflict() {
    let h = H::new();
    h.must_put(b"k", b"v", 15, 20);
    let r = h.pessimistic_lock(force(lock_req(&[b"k"], b"k", 10, 18)));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let res = &r.results[0];
    assert_eq!(
        res.r#type,
        PessimisticLockKeyResultType::LockResultLockedWithConflict as i32
    );
    assert_eq!(res.locked_with_conflict_ts, 20);
    assert_eq!(res.value, "v");
    assert!(res.existence);
    let l = h.must_locked(b"k", 10);
    assert_eq!(l.for_update_ts, 20);
    assert!(l.is_locked_with_conflict);
}

#[test]
fn rule4_own_rollback_is_pessimistic_lock_rolled_back() {
    let h = H::new();
    h.must_rollback(&[b"k"], 10);
    let r = h.pessimistic_lock(lock_req(&[b"k"], b"k", 10, 10));
    assert!(r.errors[0].abort.contains("PessimisticLockRolledBack"));
    // Also when found below a newer write (seek at start_ts).
    h.must_put(b"k", b"v", 11, 12);
    let r = h.pessimistic_lock(lock_req(&[b"k"], b"k", 10, 15));
    assert!(
        r.errors[0].abort.contains("PessimisticLockRolledBack"),
        "{:?}",
        r.errors
    );
}

#[test]
fn rule4_should_not_exist_on_existing_key_is_already_exist() {
    let h = H::new();
    h.must_put(b"k", b"v", 1, 2);
    h.must_prewrite_lock(b"k", b"k", 3);
    h.must_commit(&[b"k"], 3, 4);
    let mut req = lock_req(&[b"k"], b"k", 10, 10);
    req.mutations[0].assertion = Assertion::NotExist as i32;
    assert!(h.pessimistic_lock(req.clone()).errors[0]
        .already_exist
        .is_some());
    // Locked-with-conflict turns it into a WriteConflict.
    h.must_put(b"k", b"v2", 11, 12);
    let r = h.pessimistic_lock(force(req));
    assert!(r.errors[0].conflict.is_some(), "{:?}", r.errors);
}

#[test]
fn rule4_values_skip_lock_and_rollback_records() {
    let h = H::new();
    h.must_put(b"k", b"v", 1, 2);
    h.must_prewrite_lock(b"k", b"k", 3);
    h.must_commit(&[b"k"], 3, 4);
    h.must_rollback(&[b"k"], 5);
    let mut req = lock_req(&[b"k", b"absent"], b"k", 10, 10);
    req.return_values = true;
    let r = h.pessimistic_lock(req);
    assert!(r.errors.is_empty());
    assert_eq!(r.values, vec![b"v".to_vec(), vec![]]);
    assert_eq!(r.not_founds, vec![false, true]);
}

#[test]
fn rule5_lock_written_with_request_fields() {
    let h = H::new();
    let mut req = lock_req(&[b"k"], b"p", 10, 12);
    req.lock_ttl = 7000;
    req.min_commit_ts = 13;
    assert!(h.pessimistic_lock(req).errors.is_empty());
    let l = h.must_locked(b"k", 10);
    assert_eq!(l.lock_type, LockType::Pessimistic);
    assert_eq!((l.ttl, l.for_update_ts, l.min_commit_ts), (7000, 12, 13));
    assert_eq!(l.primary, b"p");
}

#[test]
fn rule5_lock_only_if_exists_skips_absent_keys() {
    let h = H::new();
    h.must_put(b"e", b"v", 1, 2);
    let mut req = lock_req(&[b"e", b"absent"], b"e", 10, 10);
    req.return_values = true;
    req.lock_only_if_exists = true;
    let r = h.pessimistic_lock(req);
    assert!(r.errors.is_empty());
    h.must_locked(b"e", 10);
    h.must_unlocked(b"absent");
    assert_eq!(r.not_founds, vec![false, true]);
}

#[test]
fn rule6_all_or_nothing_on_error() {
    let h = H::new();
    h.must_put(b"c", b"v", 15, 20);
    let r = h.pessimistic_lock(lock_req(&[b"a", b"b", b"c"], b"a", 10, 12));
    assert_eq!(r.errors.len(), 1);
    h.must_unlocked(b"a");
    h.must_unlocked(b"b");
    // Same with a lock of another txn.
    h.must_prewrite_put(b"z", b"v", b"z", 5);
    let r = h.pessimistic_lock(lock_req(&[b"x", b"z"], b"x", 10, 30));
    assert!(r.errors[0].locked.is_some());
    h.must_unlocked(b"x");
}

#[test]
fn rule7_normal_mode_values_and_not_founds_align() {
    let h = H::new();
    h.must_put(b"a", b"1", 1, 2);
    h.must_put(b"c", b"", 1, 2);
    let mut req = lock_req(&[b"a", b"b", b"c"], b"a", 10, 10);
    req.return_values = true;
    let r = h.pessimistic_lock(req);
    assert_eq!(r.values, vec![b"1".to_vec(), vec![], vec![]]);
    assert_eq!(r.not_founds, vec![false, true, false]);
    // check_existence alone: not_founds only.
    h.must_rollback(&[b"a", b"b", b"c"], 10);
    let mut req = lock_req(&[b"a", b"b", b"c"], b"a", 20, 20);
    req.check_existence = true;
    let r = h.pessimistic_lock(req);
    assert!(r.values.is_empty());
    assert_eq!(r.not_founds, vec![false, true, false]);
    // Neither: both empty.
    let r = h.pessimistic_lock(lock_req(&[b"q"], b"q", 30, 30));
    assert!(r.values.is_empty() && r.not_founds.is_empty());
}

#[test]
fn rule7_force_mode_results_and_failed() {
    let h = H::new();
    h.must_put(b"a", b"1", 1, 2);
    let mut req = force(lock_req(&[b"a"], b"a", 10, 10));
    req.return_values = true;
    let r = h.pessimistic_lock(req);
    assert_eq!(r.results.len(), 1);
    assert_eq!(
        r.results[0].r#type,
        PessimisticLockKeyResultType::LockResultNormal as i32
    );
    assert_eq!(r.results[0].value, "1");
    assert!(r.results[0].existence);
    h.must_prewrite_put(b"b", b"v", b"b", 5);
    let r = h.pessimistic_lock(force(lock_req(&[b"b"], b"b", 10, 10)));
    assert_eq!(
        r.results[0].r#type,
        PessimisticLockKeyResultType::LockResultFailed as i32
    );
    assert!(r.errors[0].locked.is_some());
}
