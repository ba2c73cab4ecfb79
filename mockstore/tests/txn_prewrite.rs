//! KvPrewrite and KvFlush: one test (at least) per numbered rule of
//! mockstore-spec §2.3 "KvPrewrite" (TiKV `actions/prewrite.rs`).

mod txn_util;

use tikv_tower_mockstore::mvcc::{LockType, WriteType};
use tikv_tower_proto::kvrpcpb::{
    self, prewrite_request::PessimisticAction, write_conflict::Reason, Assertion, AssertionLevel,
};
use txn_util::*;

const SKIP: PessimisticAction = PessimisticAction::SkipPessimisticCheck;
const DO_CHECK: PessimisticAction = PessimisticAction::DoPessimisticCheck;
const CONSTRAINT: PessimisticAction = PessimisticAction::DoConstraintCheck;

fn first_err(r: &kvrpcpb::PrewriteResponse) -> &kvrpcpb::KeyError {
    r.errors.first().expect("an error")
}

#[test]
fn rule1_insert_and_check_not_exists_raise_max_ts() {
    let h = H::new();
    h.must_prewrite(prewrite_req(vec![insert(b"k", b"v")], b"k", 50));
    assert_eq!(h.cm.max_ts(), 50);
    h.must_prewrite(prewrite_req(vec![check_not_exists(b"x")], b"x", 70));
    assert_eq!(h.cm.max_ts(), 70);
    // A plain Put does not.
    h.must_prewrite_put(b"p", b"v", b"p", 90);
    assert_eq!(h.cm.max_ts(), 70);
}

#[test]
fn rule1_check_not_exists_in_pessimistic_prewrite_aborts() {
    let h = H::new();
    let r = h.pessimistic_prewrite(check_not_exists(b"k"), b"k", 10, 10, SKIP);
    assert!(!first_err(&r).abort.is_empty());
}

#[test]
fn rule2_other_txn_lock_gives_key_is_locked_with_ttl() {
    let h = H::new();
    h.must_prewrite_put(b"k", b"v", b"k", 10);
    let r = h.prewrite(prewrite_req(vec![put(b"k", b"w")], b"k", 20));
    let l = first_err(&r).locked.as_ref().expect("locked");
    assert_eq!(l.lock_version, 10);
    assert_eq!(l.lock_ttl, 3000);
    assert_eq!(l.key, "k");
}

#[test]
fn rule2_other_txn_lock_in_pessimistic_txn_has_ttl_zero() {
    let h = H::new();
    h.must_prewrite_put(b"k", b"v", b"k", 10);
    let r = h.pessimistic_prewrite(put(b"k", b"w"), b"k", 20, 20, SKIP);
    let l = first_err(&r).locked.as_ref().expect("locked");
    assert_eq!(l.lock_ttl, 0);
}

#[test]
fn rule2_other_txn_lock_with_do_pessimistic_check_is_lock_not_found() {
    let h = H::new();
    h.must_prewrite_put(b"k", b"v", b"k", 10);
    let r = h.pessimistic_prewrite(put(b"k", b"w"), b"k", 20, 20, DO_CHECK);
    let e = first_err(&r);
    assert!(e.locked.is_none());
    assert!(e.abort.contains("PessimisticLockNotFound"), "{e:?}");
}

#[test]
fn rule2_own_pessimistic_lock_in_optimistic_txn_is_lock_type_not_match() {
    let h = H::new();
    h.must_pessimistic_lock(b"k", b"k", 10, 10);
    let r = h.prewrite(prewrite_req(vec![put(b"k", b"v")], b"k", 10));
    assert!(first_err(&r).abort.contains("LockTypeNotMatch"));
}

#[test]
fn rule2_for_update_ts_constraint_mismatch_is_lock_not_found() {
    let h = H::new();
    h.must_pessimistic_lock(b"k", b"k", 10, 15);
    let mut req = prewrite_req(vec![put(b"k", b"v")], b"k", 10);
    req.for_update_ts = 20;
    req.pessimistic_actions = vec![DO_CHECK as i32];
    req.for_update_ts_constraints = vec![kvrpcpb::prewrite_request::ForUpdateTsConstraint {
        index: 0,
        expected_for_update_ts: 16,
    }];
    let r = h.prewrite(req.clone());
    assert!(first_err(&r).abort.contains("PessimisticLockNotFound"));
    req.for_update_ts_constraints[0].expected_for_update_ts = 15;
    h.must_prewrite(req);
}

#[test]
fn rule2_own_pessimistic_lock_is_upgraded_with_max_fields() {
    let h = H::new();
    let mut lr = lock_req(&[b"k"], b"k", 10, 25);
    lr.lock_ttl = 9000;
    lr.min_commit_ts = 40;
    assert!(h.pessimistic_lock(lr).errors.is_empty());
    let r = h.pessimistic_prewrite(put(b"k", b"v"), b"k", 10, 20, DO_CHECK);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let l = h.must_locked(b"k", 10);
    assert_eq!(l.lock_type, LockType::Put);
    assert_eq!(l.ttl, 9000, "ttl = max(req, lock)");
    assert_eq!(l.min_commit_ts, 40, "min_commit_ts = max(req, lock)");
    assert_eq!(l.for_update_ts, 25, "for_update_ts = max(req, lock)");
    assert_eq!(l.value.as_deref(), Some(&b"v"[..]));
}

#[test]
fn rule2_duplicate_prewrite_is_noop_and_reports_async_min_commit_ts() {
    let h = H::new();
    h.must_prewrite_put(b"k", b"v", b"k", 10);
    let before = h.must_locked(b"k", 10);
    let r = h.must_prewrite(prewrite_req(vec![put(b"k", b"other")], b"k", 10));
    assert_eq!(r.min_commit_ts, 0);
    assert_eq!(h.must_locked(b"k", 10), before);

    let mut req = prewrite_req(vec![put(b"a", b"v")], b"a", 30);
    req.use_async_commit = true;
    req.secondaries = vec![];
    h.cm.update_max_ts(35);
    let first = h.must_prewrite(req.clone());
    assert_eq!(first.min_commit_ts, 36);
    h.cm.update_max_ts(100);
    let again = h.must_prewrite(req);
    assert_eq!(
        again.min_commit_ts, 36,
        "duplicate reports the lock's min_commit_ts"
    );
}

#[test]
fn rule3_missing_pessimistic_lock_is_amended() {
    let h = H::new();
    h.must_put(b"k", b"old", 1, 2);
    let r = h.pessimistic_prewrite(put(b"k", b"v"), b"k", 10, 10, DO_CHECK);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let l = h.must_locked(b"k", 10);
    assert_eq!(l.for_update_ts, 10);
}

#[test]
fn rule3_amend_fails_when_newer_write_exists() {
    let h = H::new();
    h.must_put(b"k", b"new", 11, 12);
    let r = h.pessimistic_prewrite(put(b"k", b"v"), b"k", 10, 20, DO_CHECK);
    assert!(first_err(&r).abort.contains("PessimisticLockNotFound"));
    h.must_unlocked(b"k");
}

#[test]
fn rule4_optimistic_newer_write_is_write_conflict() {
    let h = H::new();
    h.must_put(b"k", b"v", 15, 20);
    let r = h.prewrite(prewrite_req(vec![put(b"k", b"w")], b"p", 10));
    let c = first_err(&r).conflict.as_ref().expect("conflict");
    assert_eq!(
        (c.start_ts, c.conflict_ts, c.conflict_commit_ts, c.reason),
        (10, 15, 20, Reason::Optimistic as i32)
    );
    assert_eq!(c.primary, "p");
    assert!(!first_err(&r).retryable.is_empty());
}

#[test]
fn rule4_optimistic_newer_rollback_is_write_conflict() {
    let h = H::new();
    h.must_rollback(&[b"k"], 20);
    let r = h.prewrite(prewrite_req(vec![put(b"k", b"w")], b"k", 10));
    assert!(first_err(&r).conflict.is_some());
}

#[test]
fn rule4_own_rollback_is_self_rolled_back() {
    let h = H::new();
    h.must_rollback(&[b"k"], 10);
    let r = h.prewrite(prewrite_req(vec![put(b"k", b"w")], b"k", 10));
    let c = first_err(&r).conflict.as_ref().expect("conflict");
    assert_eq!(c.reason, Reason::SelfRolledBack as i32);
}

#[test]
fn rule4_skip_constraint_check_skips_conflicts() {
    let h = H::new();
    h.must_put(b"k", b"v", 15, 20);
    let mut req = prewrite_req(vec![put(b"k", b"w")], b"k", 10);
    req.skip_constraint_check = true;
    h.must_prewrite(req);
}

#[test]
fn rule4_pessimistic_skip_check_only_checked_on_retry() {
    let h = H::new();
    h.must_put(b"k", b"v", 15, 20);
    // Not a retry: no check.
    let r = h.pessimistic_prewrite(put(b"k", b"w"), b"k", 10, 12, SKIP);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    h.must_rollback(&[b"k"], 10);
    // A retry: a newer non-rollback write than for_update_ts → PessimisticLockNotFound.
    let mut req = prewrite_req(vec![put(b"k", b"w")], b"k", 11);
    req.for_update_ts = 12;
    req.pessimistic_actions = vec![SKIP as i32];
    req.context.as_mut().unwrap().is_retry_request = true;
    let r = h.prewrite(req);
    assert!(
        first_err(&r).abort.contains("NonLockKeyConflict"),
        "{:?}",
        r.errors
    );
}

#[test]
fn rule4_pessimistic_retry_skips_newer_rollbacks() {
    let h = H::new();
    h.must_put(b"k", b"v", 1, 2);
    h.must_rollback(&[b"k"], 30);
    let mut req = prewrite_req(vec![put(b"k", b"w")], b"k", 10);
    req.for_update_ts = 12;
    req.pessimistic_actions = vec![SKIP as i32];
    req.context.as_mut().unwrap().is_retry_request = true;
    h.must_prewrite(req);
}

#[test]
fn rule4_do_constraint_check_applies_lazy_uniqueness() {
    let h = H::new();
    h.must_put(b"k", b"v", 11, 12);
    let r = h.pessimistic_prewrite(put(b"k", b"w"), b"k", 10, 20, CONSTRAINT);
    let c = first_err(&r).conflict.as_ref().expect("conflict");
    assert_eq!(c.reason, Reason::LazyUniquenessCheck as i32);
    // Newer than for_update_ts as well: still the lazy-uniqueness conflict first.
    let h = H::new();
    h.must_put(b"k", b"v", 1, 2);
    let r = h.pessimistic_prewrite(insert(b"k", b"w"), b"k", 10, 20, CONSTRAINT);
    assert!(first_err(&r).already_exist.is_some());
}

#[test]
fn rule4_insert_over_existing_is_already_exist() {
    let h = H::new();
    h.must_put(b"k", b"v", 1, 2);
    let r = h.prewrite(prewrite_req(vec![insert(b"k", b"w")], b"k", 10));
    assert_eq!(first_err(&r).already_exist.as_ref().unwrap().key, "k");
    // A Lock record over the Put still counts as existing.
    h.must_prewrite_lock(b"k", b"k", 3);
    h.must_commit(&[b"k"], 3, 4);
    let r = h.prewrite(prewrite_req(vec![check_not_exists(b"k")], b"k", 10));
    assert!(first_err(&r).already_exist.is_some());
    // After a delete it does not exist.
    h.must_delete(b"k", 5, 6);
    h.must_prewrite(prewrite_req(vec![insert(b"k", b"w")], b"k", 10));
}

fn with_assertion(mut m: kvrpcpb::Mutation, a: Assertion) -> kvrpcpb::Mutation {
    m.assertion = a as i32;
    m
}

#[test]
fn rule5_assertion_exist_fails_on_absent_or_deleted() {
    let h = H::new();
    let mut req = prewrite_req(
        vec![with_assertion(put(b"k", b"v"), Assertion::Exist)],
        b"k",
        10,
    );
    req.assertion_level = AssertionLevel::Strict as i32;
    let r = h.prewrite(req.clone());
    let a = first_err(&r).assertion_failed.as_ref().expect("assertion");
    assert_eq!((a.existing_start_ts, a.existing_commit_ts), (0, 0));
    h.must_put(b"k", b"v", 1, 2);
    h.must_prewrite(req.clone());
    h.must_rollback(&[b"k"], 10);
    h.must_delete(b"k", 11, 12);
    req.start_version = 13;
    let r = h.prewrite(req);
    assert!(first_err(&r).assertion_failed.is_some());
}

#[test]
fn rule5_assertion_not_exist_fails_on_put() {
    let h = H::new();
    h.must_put(b"k", b"v", 1, 2);
    let mut req = prewrite_req(
        vec![with_assertion(put(b"k", b"w"), Assertion::NotExist)],
        b"k",
        10,
    );
    req.assertion_level = AssertionLevel::Fast as i32;
    let r = h.prewrite(req);
    let a = first_err(&r).assertion_failed.as_ref().expect("assertion");
    assert_eq!((a.existing_start_ts, a.existing_commit_ts), (1, 2));
    assert_eq!(a.assertion, Assertion::NotExist as i32);
}

#[test]
fn rule5_assertion_off_or_fast_without_loaded_write_is_skipped() {
    let h = H::new();
    h.must_put(b"k", b"v", 1, 2);
    let mut req = prewrite_req(
        vec![with_assertion(put(b"k", b"w"), Assertion::NotExist)],
        b"k",
        10,
    );
    req.assertion_level = AssertionLevel::Off as i32;
    h.must_prewrite(req.clone());
    h.must_rollback(&[b"k"], 10);
    // Fast + skip_constraint_check: the write is never loaded → not checked.
    req.start_version = 11;
    req.assertion_level = AssertionLevel::Fast as i32;
    req.skip_constraint_check = true;
    h.must_prewrite(req.clone());
    h.must_rollback(&[b"k"], 11);
    // Strict loads it.
    req.start_version = 12;
    req.assertion_level = AssertionLevel::Strict as i32;
    assert!(first_err(&h.prewrite(req)).assertion_failed.is_some());
}

#[test]
fn rule5_assertion_failure_reported_only_without_other_errors() {
    let h = H::new();
    h.must_put(b"k", b"v", 1, 2);
    h.must_put(b"c", b"v", 15, 20);
    let mut req = prewrite_req(
        vec![
            with_assertion(put(b"k", b"w"), Assertion::NotExist),
            put(b"c", b"w"),
        ],
        b"k",
        10,
    );
    req.assertion_level = AssertionLevel::Strict as i32;
    let r = h.prewrite(req);
    assert_eq!(r.errors.len(), 1);
    assert!(
        r.errors[0].conflict.is_some(),
        "the write conflict wins: {:?}",
        r.errors
    );
}

#[test]
fn rule6_check_not_exists_writes_nothing() {
    let h = H::new();
    h.must_prewrite(prewrite_req(
        vec![check_not_exists(b"k"), put(b"p", b"v")],
        b"p",
        10,
    ));
    h.must_unlocked(b"k");
    h.must_locked(b"p", 10);
}

#[test]
fn rule7_lock_fields_and_secondaries_only_on_primary() {
    let h = H::new();
    let mut req = prewrite_req(vec![put(b"a", b"1"), del(b"b"), lock_m(b"c")], b"a", 10);
    req.min_commit_ts = 11;
    req.txn_size = 3;
    h.must_prewrite(req);
    for (k, t) in [
        (b"a", LockType::Put),
        (b"b", LockType::Delete),
        (b"c", LockType::Lock),
    ] {
        let l = h.must_locked(k, 10);
        assert_eq!(l.lock_type, t);
        assert_eq!(l.min_commit_ts, 11, "min_commit_ts on every key");
        assert_eq!(l.txn_size, 3);
        assert_eq!(l.ttl, 3000);
        assert_eq!(l.primary, b"a");
    }
    let mut req = prewrite_req(vec![put(b"x", b"1"), put(b"y", b"2")], b"x", 20);
    req.use_async_commit = true;
    req.secondaries = vec!["y".into()];
    h.must_prewrite(req);
    let px = h.must_locked(b"x", 20);
    let py = h.must_locked(b"y", 20);
    assert!(px.use_async_commit && py.use_async_commit);
    assert_eq!(px.secondaries, vec![b"y".to_vec()]);
    assert!(py.secondaries.is_empty());
}

#[test]
fn rule8_async_min_commit_ts_is_max_of_max_ts_start_for_update_plus_one() {
    let h = H::new();
    h.cm.update_max_ts(100);
    let mut req = prewrite_req(vec![put(b"x", b"1"), put(b"y", b"2")], b"x", 50);
    req.use_async_commit = true;
    req.secondaries = vec!["y".into()];
    let r = h.must_prewrite(req);
    assert_eq!(r.min_commit_ts, 101);
    assert_eq!(h.must_locked(b"y", 50).min_commit_ts, 101);
    // The request's min_commit_ts is a floor; for_update_ts counts too.
    h.must_pessimistic_lock(b"z", b"z", 60, 200);
    let mut req = prewrite_req(vec![put(b"z", b"1")], b"z", 60);
    req.for_update_ts = 200;
    req.pessimistic_actions = vec![DO_CHECK as i32];
    req.use_async_commit = true;
    req.min_commit_ts = 150;
    let r = h.must_prewrite(req);
    assert_eq!(r.min_commit_ts, 201);
    let mut req = prewrite_req(vec![put(b"w", b"1")], b"w", 70);
    req.use_async_commit = true;
    req.min_commit_ts = 500;
    assert_eq!(h.must_prewrite(req).min_commit_ts, 500);
}

#[test]
fn rule8_max_commit_ts_exceeded_falls_back_to_2pc() {
    let h = H::new();
    h.cm.update_max_ts(100);
    let mut req = prewrite_req(vec![put(b"x", b"1"), put(b"y", b"2")], b"x", 50);
    req.use_async_commit = true;
    req.secondaries = vec!["y".into()];
    req.max_commit_ts = 80;
    let r = h.must_prewrite(req);
    assert_eq!((r.min_commit_ts, r.one_pc_commit_ts), (0, 0));
    assert!(!h.must_locked(b"x", 50).use_async_commit);
    assert!(!h.must_locked(b"y", 50).use_async_commit);
    // 1PC falls back to 2PC locks too.
    let mut req = prewrite_req(vec![put(b"o", b"1")], b"o", 60);
    req.try_one_pc = true;
    req.max_commit_ts = 80;
    let r = h.must_prewrite(req);
    assert_eq!(r.one_pc_commit_ts, 0);
    h.must_locked(b"o", 60);
}

#[test]
fn rule9_key_is_locked_errors_are_collected_and_nothing_written() {
    let h = H::new();
    h.must_prewrite_put(b"a", b"v", b"a", 5);
    h.must_prewrite_put(b"c", b"v", b"c", 6);
    let r = h.prewrite(prewrite_req(
        vec![put(b"a", b"1"), put(b"b", b"2"), put(b"c", b"3")],
        b"a",
        10,
    ));
    assert_eq!(r.errors.len(), 2);
    assert!(r.errors.iter().all(|e| e.locked.is_some()));
    h.must_unlocked(b"b");
}

#[test]
fn rule9_other_error_stops_with_single_error() {
    let h = H::new();
    h.must_put(b"a", b"v", 15, 20);
    h.must_put(b"b", b"v", 15, 20);
    let r = h.prewrite(prewrite_req(
        vec![put(b"a", b"1"), put(b"b", b"2"), put(b"c", b"3")],
        b"a",
        10,
    ));
    assert_eq!(r.errors.len(), 1);
    h.must_unlocked(b"c");
}

#[test]
fn rule9_retry_of_committed_txn_succeeds() {
    let h = H::new();
    let mut req = prewrite_req(vec![put(b"x", b"1")], b"x", 10);
    req.use_async_commit = true;
    let r = h.must_prewrite(req.clone());
    h.must_commit(&[b"x"], 10, r.min_commit_ts);
    // Another txn wrote a newer version; the stale retry must not conflict.
    h.must_put(b"x", b"2", 30, 40);
    let again = h.prewrite(req.clone());
    assert!(again.errors.is_empty(), "{:?}", again.errors);
    assert_eq!(again.min_commit_ts, r.min_commit_ts);
    h.must_unlocked(b"x");
    // Same for a lock from another txn.
    h.must_prewrite_put(b"x", b"3", b"x", 50);
    let again = h.prewrite(req);
    assert!(again.errors.is_empty());
    h.must_locked(b"x", 50);
}

#[test]
fn rule10_one_pc_commits_directly_and_removes_pessimistic_locks() {
    let h = H::new();
    h.cm.update_max_ts(100);
    h.must_pessimistic_lock(b"a", b"a", 50, 50);
    let mut req = prewrite_req(vec![put(b"a", b"1"), del(b"b"), lock_m(b"c")], b"a", 50);
    req.for_update_ts = 50;
    req.pessimistic_actions = vec![DO_CHECK as i32, SKIP as i32, SKIP as i32];
    req.try_one_pc = true;
    let r = h.must_prewrite(req);
    assert_eq!(r.one_pc_commit_ts, 101);
    assert_eq!(r.min_commit_ts, 0);
    for k in [&b"a"[..], b"b", b"c"] {
        h.must_unlocked(k);
    }
    assert_eq!(h.write_at(b"a", 101).unwrap().write_type, WriteType::Put);
    assert_eq!(h.write_at(b"b", 101).unwrap().write_type, WriteType::Delete);
    assert_eq!(h.write_at(b"c", 101).unwrap().write_type, WriteType::Lock);
    assert_eq!(h.must_get(b"a", 200), Some(b"1".to_vec()));
}

#[test]
fn rule11_shared_lock_ops_are_rejected() {
    let h = H::new();
    let r = h.prewrite(prewrite_req(
        vec![mutation(kvrpcpb::Op::SharedLock, b"k", b"")],
        b"k",
        10,
    ));
    assert!(!first_err(&r).abort.is_empty());
}

fn flush_req(
    muts: Vec<kvrpcpb::Mutation>,
    start_ts: u64,
    generation: u64,
) -> kvrpcpb::FlushRequest {
    kvrpcpb::FlushRequest {
        context: Some(kvrpcpb::Context::default()),
        mutations: muts,
        primary_key: "p".into(),
        start_ts,
        generation,
        lock_ttl: 3000,
        ..Default::default()
    }
}

#[test]
fn flush_generation_zero_is_an_error() {
    let h = H::new();
    let r =
        h.e.flush(&h.cm, &flush_req(vec![put(b"k", b"v")], 10, 0), ALL);
    assert!(!r.errors[0].abort.is_empty());
}

#[test]
fn flush_writes_generation_locks_and_overwrites_older_generation() {
    let h = H::new();
    let r =
        h.e.flush(&h.cm, &flush_req(vec![put(b"k", b"v1")], 10, 1), ALL);
    assert!(r.errors.is_empty());
    let l = h.must_locked(b"k", 10);
    assert_eq!(
        (l.generation, l.txn_size, l.min_commit_ts),
        (1, u64::MAX, 11)
    );
    let r =
        h.e.flush(&h.cm, &flush_req(vec![put(b"k", b"v2")], 10, 2), ALL);
    assert!(r.errors.is_empty());
    assert_eq!(h.must_locked(b"k", 10).value.as_deref(), Some(&b"v2"[..]));
    // An out-of-order (older) flush is ignored.
    let r =
        h.e.flush(&h.cm, &flush_req(vec![put(b"k", b"old")], 10, 1), ALL);
    assert!(r.errors.is_empty());
    assert_eq!(h.must_locked(b"k", 10).generation, 2);
    // Insert over an own earlier-generation Put → AlreadyExist.
    let r =
        h.e.flush(&h.cm, &flush_req(vec![insert(b"k", b"x")], 10, 3), ALL);
    assert!(r.errors[0].already_exist.is_some());
    // BufferBatchGet sees own flushed data only.
    h.e.flush(&h.cm, &flush_req(vec![del(b"d")], 10, 4), ALL);
    let bg = h.e.buffer_batch_get(
        &kvrpcpb::BufferBatchGetRequest {
            context: None,
            keys: vec!["k".into(), "d".into(), "none".into()],
            version: 10,
        },
        ALL,
    );
    let got: Vec<_> = bg
        .pairs
        .iter()
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect();
    assert_eq!(
        got,
        vec![("k".into(), "v2".into()), ("d".into(), Default::default())]
    );
    // Rolling back a pipelined lock is protected.
    h.must_rollback(&[b"k"], 10);
    h.must_rollback_record(b"k", 10, true);
}

#[test]
fn rule4_self_rolled_back_in_pessimistic_skip_only_on_retry() {
    let h = H::new();
    h.must_rollback(&[b"k"], 10);
    // Not a retry: the constraint check is skipped, the prewrite succeeds.
    let r = h.pessimistic_prewrite(put(b"k", b"w"), b"k", 10, 12, SKIP);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    h.must_rollback(&[b"k"], 10);
    let mut req = prewrite_req(vec![put(b"k", b"w")], b"k", 10);
    req.for_update_ts = 12;
    req.pessimistic_actions = vec![SKIP as i32];
    req.context.as_mut().unwrap().is_retry_request = true;
    let r = h.prewrite(req);
    assert_eq!(
        first_err(&r).conflict.as_ref().unwrap().reason,
        Reason::SelfRolledBack as i32
    );
}
