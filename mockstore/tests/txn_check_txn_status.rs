//! KvCheckTxnStatus: the decision table of mockstore-spec §3.6 and the
//! response table of §2.3 (TiKV `actions/check_txn_status.rs`), one test
//! per row / rule.

mod txn_util;

use tikv_tower_proto::kvrpcpb::{self, Action};
use txn_util::*;

const MAX: u64 = u64::MAX;

fn req(primary: &[u8], lock_ts: u64) -> kvrpcpb::CheckTxnStatusRequest {
    kvrpcpb::CheckTxnStatusRequest {
        primary_key: primary.to_vec().into(),
        lock_ts,
        ..Default::default()
    }
}

fn check(h: &H, r: kvrpcpb::CheckTxnStatusRequest) -> kvrpcpb::CheckTxnStatusResponse {
    h.e.check_txn_status(&h.cm, &r, ALL)
}

/// (lock_ttl, commit_version, action, has lock_info, has error)
fn shape(r: &kvrpcpb::CheckTxnStatusResponse) -> (u64, u64, i32, bool, bool) {
    (
        r.lock_ttl,
        r.commit_version,
        r.action,
        r.lock_info.is_some(),
        r.error.is_some(),
    )
}

#[test]
fn raises_max_ts_to_lock_current_and_caller_ts_ignoring_max() {
    let h = H::new();
    h.check_txn_status(b"k", 10, 30, 20, true);
    assert_eq!(h.cm.max_ts(), 30);
    h.check_txn_status(b"k", 40, MAX, MAX, true);
    assert_eq!(h.cm.max_ts(), 40);
}

#[test]
fn row_committed() {
    let h = H::new();
    h.must_put(b"k", b"v", 10, 20);
    let r = h.check_txn_status(b"k", 10, 0, 0, false);
    assert_eq!(shape(&r), (0, 20, Action::NoAction as i32, false, false));
}

#[test]
fn row_rolled_back_record_found() {
    let h = H::new();
    h.must_rollback(&[b"k"], 10);
    let r = h.check_txn_status(b"k", 10, 0, 0, false);
    assert_eq!(shape(&r), (0, 0, Action::NoAction as i32, false, false));
}

#[test]
fn row_ttl_expired_rolls_back_protected() {
    let h = H::new();
    let start = tso(1000, 0);
    h.must_prewrite_put(b"k", b"v", b"k", start);
    let r = h.check_txn_status(b"k", start, 0, tso(4001, 0), false);
    assert_eq!(
        shape(&r),
        (0, 0, Action::TtlExpireRollback as i32, false, false)
    );
    h.must_unlocked(b"k");
    h.must_rollback_record(b"k", start, true);
}

#[test]
fn row_alive_returns_ttl_and_lock_info() {
    let h = H::new();
    let start = tso(1000, 0);
    h.must_prewrite(prewrite_req(
        vec![put(b"k", b"v"), put(b"s", b"v")],
        b"k",
        start,
    ));
    let r = h.check_txn_status(b"k", start, 0, tso(4000, 0), false);
    assert_eq!(shape(&r), (3000, 0, Action::NoAction as i32, true, false));
    let li = r.lock_info.unwrap();
    assert_eq!(
        (li.key.as_ref(), li.lock_version, li.lock_ttl),
        (&b"k"[..], start, 3000)
    );
    assert_eq!(li.primary_lock, "k");
}

#[test]
fn row_alive_with_caller_max_reports_min_commit_ts_pushed() {
    let h = H::new();
    let start = tso(1000, 0);
    h.must_prewrite_put(b"k", b"v", b"k", start);
    let r = h.check_txn_status(b"k", start, MAX, tso(1000, 5), false);
    assert_eq!(r.action, Action::MinCommitTsPushed as i32);
    assert!(r.lock_info.is_some());
}

#[test]
fn rule_push_min_commit_ts_past_reader() {
    let h = H::new();
    let start = tso(1000, 0);
    let mut p = prewrite_req(vec![put(b"k", b"v")], b"k", start);
    p.min_commit_ts = start + 1;
    h.must_prewrite(p);
    let caller = tso(1500, 0);
    let current = tso(1200, 0);
    let r = h.check_txn_status(b"k", start, caller, current, false);
    assert_eq!(r.action, Action::MinCommitTsPushed as i32);
    assert_eq!(h.must_locked(b"k", start).min_commit_ts, caller + 1);
    assert_eq!(r.lock_info.unwrap().min_commit_ts, caller + 1);
    // current_ts above caller+1 wins.
    let caller2 = tso(1600, 0);
    let current2 = tso(1700, 0);
    h.check_txn_status(b"k", start, caller2, current2, false);
    assert_eq!(h.must_locked(b"k", start).min_commit_ts, current2);
    // A caller below min_commit_ts does not push, and is not "pushed" either
    // unless min_commit_ts > caller.
    let r = h.check_txn_status(b"k", start, tso(1100, 0), current2, false);
    assert_eq!(
        r.action,
        Action::MinCommitTsPushed as i32,
        "min_commit_ts > caller"
    );
    assert_eq!(h.must_locked(b"k", start).min_commit_ts, current2);
}

#[test]
fn rule_no_push_when_lock_min_commit_ts_is_zero() {
    let h = H::new();
    let start = tso(1000, 0);
    h.must_prewrite_put(b"k", b"v", b"k", start);
    let r = h.check_txn_status(b"k", start, tso(1500, 0), tso(1200, 0), false);
    assert_eq!(r.action, Action::NoAction as i32);
    assert_eq!(h.must_locked(b"k", start).min_commit_ts, 0);
}

#[test]
fn rule_async_commit_primary_is_never_rolled_back_or_pushed() {
    let h = H::new();
    let start = tso(1000, 0);
    let mut p = prewrite_req(vec![put(b"k", b"v")], b"k", start);
    p.use_async_commit = true;
    p.secondaries = vec!["s".into()];
    let min = h.must_prewrite(p).min_commit_ts;
    let r = h.check_txn_status(b"k", start, tso(9000, 0), MAX, true);
    assert_eq!(shape(&r), (3000, 0, Action::NoAction as i32, true, false));
    assert_eq!(h.must_locked(b"k", start).min_commit_ts, min);
    assert!(r.lock_info.unwrap().use_async_commit);
    // force_sync_commit treats it as a normal lock → TTL expired.
    let mut q = req(b"k", start);
    q.current_ts = MAX;
    q.force_sync_commit = true;
    let r = check(&h, q);
    assert_eq!(r.action, Action::TtlExpireRollback as i32);
    h.must_unlocked(b"k");
}

#[test]
fn row_pessimistic_primary_expired_rolls_back() {
    let h = H::new();
    let start = tso(1000, 0);
    h.must_pessimistic_lock(b"k", b"k", start, start);
    let r = h.check_txn_status(b"k", start, 0, tso(5000, 0), false);
    assert_eq!(r.action, Action::TtlExpireRollback as i32);
    h.must_rollback_record(b"k", start, true);
}

#[test]
fn row_pessimistic_primary_expired_resolving_removes_without_record() {
    let h = H::new();
    let start = tso(1000, 0);
    h.must_pessimistic_lock(b"k", b"k", start, start);
    let mut q = req(b"k", start);
    q.current_ts = tso(5000, 0);
    q.resolving_pessimistic_lock = true;
    let r = check(&h, q);
    assert_eq!(
        shape(&r),
        (
            0,
            0,
            Action::TtlExpirePessimisticRollback as i32,
            false,
            false
        )
    );
    h.must_unlocked(b"k");
    h.must_no_record(b"k", start);
}

#[test]
fn row_pessimistic_alive_is_uncommitted() {
    let h = H::new();
    let start = tso(1000, 0);
    h.must_pessimistic_lock(b"k", b"k", start, start);
    let r = h.check_txn_status(b"k", start, 0, tso(1001, 0), false);
    assert_eq!(shape(&r), (3000, 0, Action::NoAction as i32, true, false));
}

#[test]
fn row_no_lock_rollback_if_not_exist_writes_protected_rollback() {
    let h = H::new();
    let r = h.check_txn_status(b"k", 10, 0, 0, true);
    assert_eq!(
        shape(&r),
        (0, 0, Action::LockNotExistRollback as i32, false, false)
    );
    h.must_rollback_record(b"k", 10, true);
    // A second call finds the rollback.
    let r = h.check_txn_status(b"k", 10, 0, 0, true);
    assert_eq!(r.action, Action::NoAction as i32);
}

#[test]
fn row_no_lock_resolving_pessimistic_does_nothing() {
    let h = H::new();
    let mut q = req(b"k", 10);
    q.rollback_if_not_exist = true;
    q.resolving_pessimistic_lock = true;
    let r = check(&h, q);
    assert_eq!(
        shape(&r),
        (0, 0, Action::LockNotExistDoNothing as i32, false, false)
    );
    h.must_no_record(b"k", 10);
}

#[test]
fn row_no_lock_without_rollback_is_txn_not_found() {
    let h = H::new();
    let r = h.check_txn_status(b"k", 10, 0, 0, false);
    let nf = r.error.unwrap().txn_not_found.unwrap();
    assert_eq!((nf.start_ts, nf.primary_key.as_ref()), (10, &b"k"[..]));
    // Another txn's lock on the key is the same as no lock.
    h.must_prewrite_put(b"k", b"v", b"k", 20);
    let r = h.check_txn_status(b"k", 10, 0, 0, false);
    assert!(r.error.unwrap().txn_not_found.is_some());
}

#[test]
fn row_verify_is_primary_mismatch() {
    let h = H::new();
    h.must_prewrite(prewrite_req(
        vec![put(b"p", b"v"), put(b"s", b"v")],
        b"p",
        10,
    ));
    let mut q = req(b"s", 10);
    q.verify_is_primary = true;
    let r = check(&h, q);
    let pm = r.error.unwrap().primary_mismatch.unwrap();
    assert_eq!(pm.lock_info.unwrap().primary_lock, "p");
    h.must_locked(b"s", 10);
}

#[test]
fn rule_verify_is_primary_drops_stale_pessimistic_lock() {
    let h = H::new();
    h.must_pessimistic_lock(b"s", b"p", 10, 10);
    let mut q = req(b"s", 10);
    q.verify_is_primary = true;
    q.rollback_if_not_exist = true;
    let r = check(&h, q);
    assert_eq!(r.action, Action::LockNotExistRollback as i32, "{r:?}");
    h.must_unlocked(b"s");
    h.must_rollback_record(b"s", 10, true);
    // Resolving a pessimistic lock keeps the PrimaryMismatch error.
    h.must_pessimistic_lock(b"t", b"p", 11, 11);
    let mut q = req(b"t", 11);
    q.verify_is_primary = true;
    q.resolving_pessimistic_lock = true;
    assert!(check(&h, q).error.unwrap().primary_mismatch.is_some());
}

#[test]
fn rule_no_lock_rollback_marks_async_commit_lock_of_other_txn() {
    let h = H::new();
    let mut p = prewrite_req(vec![put(b"k", b"v")], b"k", 10);
    p.use_async_commit = true;
    h.must_prewrite(p);
    h.check_txn_status(b"k", 50, 0, 0, true);
    assert_eq!(h.must_locked(b"k", 10).rollback_ts, vec![50]);
}

#[test]
fn rule_pessimistic_lock_with_conflict_and_commit_record_is_unlocked() {
    let h = H::new();
    // T10 committed k at 20 through a lock that was later re-acquired "with
    // conflict" by the same txn (a stale force-lock): the record decides.
    h.must_put(b"k", b"v", 10, 20);
    let mut lr = lock_req(&[b"k"], b"k", 10, 15);
    lr.wake_up_mode = kvrpcpb::PessimisticLockWakeUpMode::WakeUpModeForceLock as i32;
    let r = h.pessimistic_lock(lr);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(h.must_locked(b"k", 10).is_locked_with_conflict);
    let r = h.check_txn_status(b"k", 10, 0, 0, false);
    assert_eq!(r.commit_version, 20);
    h.must_unlocked(b"k");
}
