//! KvCheckSecondaryLocks, KvResolveLock and KvScanLock rules of
//! mockstore-spec §2.3 and §3.7 (TiKV `commands/{check_secondary_locks,
//! resolve_lock,resolve_lock_lite}.rs`).

mod txn_util;

use tikv_tower_mockstore::mvcc::WriteType;
use tikv_tower_proto::kvrpcpb::{self, write_conflict::Reason};
use txn_util::*;

fn check_secondaries(h: &H, keys: &[&[u8]], start_ts: u64) -> kvrpcpb::CheckSecondaryLocksResponse {
    h.e.check_secondary_locks(
        &h.cm,
        &kvrpcpb::CheckSecondaryLocksRequest {
            context: None,
            keys: keys.iter().map(|k| k.to_vec()).map(Into::into).collect(),
            start_version: start_ts,
        },
        ALL,
    )
}

fn async_prewrite(h: &H, keys: &[&[u8]], start_ts: u64) -> u64 {
    let mut p = prewrite_req(
        keys.iter().map(|k| put(k, b"v")).collect(),
        keys[0],
        start_ts,
    );
    p.use_async_commit = true;
    p.secondaries = keys[1..]
        .iter()
        .map(|k| k.to_vec())
        .map(Into::into)
        .collect();
    h.must_prewrite(p).min_commit_ts
}

#[test]
fn secondary_raises_max_ts() {
    let h = H::new();
    check_secondaries(&h, &[b"x"], 77);
    assert_eq!(h.cm.max_ts(), 77);
}

#[test]
fn secondary_all_locked_returns_lock_infos() {
    let h = H::new();
    let min = async_prewrite(&h, &[b"p", b"s1", b"s2"], 10);
    let r = check_secondaries(&h, &[b"s1", b"s2"], 10);
    assert_eq!(r.commit_ts, 0);
    assert_eq!(r.locks.len(), 2);
    assert!(r
        .locks
        .iter()
        .all(|l| l.use_async_commit && l.min_commit_ts == min));
}

#[test]
fn secondary_missing_key_writes_protected_rollback_and_late_prewrite_fails() {
    let h = H::new();
    async_prewrite(&h, &[b"p", b"s1"], 10);
    let r = check_secondaries(&h, &[b"s1", b"s2"], 10);
    assert!(r.locks.is_empty());
    assert_eq!(r.commit_ts, 0);
    h.must_rollback_record(b"s2", 10, true);
    // A late prewrite of s2 fails (invariant i).
    let r = h.prewrite(prewrite_req(vec![put(b"s2", b"v")], b"p", 10));
    assert_eq!(
        r.errors[0].conflict.as_ref().unwrap().reason,
        Reason::SelfRolledBack as i32
    );
    // The rollback is never collapsed by later rollbacks.
    h.must_rollback(&[b"s2"], 20);
    h.must_rollback_record(b"s2", 10, true);
}

#[test]
fn secondary_committed_returns_commit_ts() {
    let h = H::new();
    let min = async_prewrite(&h, &[b"p", b"s1"], 10);
    h.must_commit(&[b"s1"], 10, min);
    let r = check_secondaries(&h, &[b"p", b"s1"], 10);
    assert_eq!(r.commit_ts, min);
    assert!(r.locks.is_empty());
}

#[test]
fn secondary_own_pessimistic_lock_is_rolled_back_protected() {
    let h = H::new();
    h.must_pessimistic_lock(b"s", b"p", 10, 10);
    let r = check_secondaries(&h, &[b"s"], 10);
    assert!(r.locks.is_empty() && r.commit_ts == 0);
    h.must_unlocked(b"s");
    h.must_rollback_record(b"s", 10, true);
}

#[test]
fn secondary_rolled_back_record_stops() {
    let h = H::new();
    async_prewrite(&h, &[b"p", b"s1"], 10);
    h.must_rollback(&[b"s1"], 10);
    let r = check_secondaries(&h, &[b"s1", b"p"], 10);
    assert!(r.locks.is_empty() && r.commit_ts == 0);
    h.must_locked(b"p", 10);
}

fn resolve(
    h: &H,
    req: kvrpcpb::ResolveLockRequest,
    region: (&[u8], &[u8]),
) -> kvrpcpb::ResolveLockResponse {
    h.e.resolve_lock(&h.cm, &req, region)
}

#[test]
fn resolve_single_txn_commits_all_its_locks_in_region_only() {
    let h = H::new();
    h.must_prewrite(prewrite_req(
        vec![put(b"a", b"1"), put(b"b", b"2"), put(b"z", b"3")],
        b"a",
        10,
    ));
    h.must_prewrite_put(b"c", b"x", b"c", 11);
    let r = resolve(
        &h,
        kvrpcpb::ResolveLockRequest {
            start_version: 10,
            commit_version: 20,
            ..Default::default()
        },
        (b"", b"m"),
    );
    assert!(r.error.is_none(), "{:?}", r.error);
    h.must_unlocked(b"a");
    h.must_unlocked(b"b");
    h.must_locked(b"z", 10);
    h.must_locked(b"c", 11);
    assert_eq!(h.write_at(b"b", 20).unwrap().write_type, WriteType::Put);
}

#[test]
fn resolve_single_txn_rollback() {
    let h = H::new();
    h.must_prewrite(prewrite_req(
        vec![put(b"a", b"1"), put(b"b", b"2")],
        b"a",
        10,
    ));
    let r = resolve(
        &h,
        kvrpcpb::ResolveLockRequest {
            start_version: 10,
            ..Default::default()
        },
        ALL,
    );
    assert!(r.error.is_none());
    h.must_rollback_record(b"a", 10, true);
    h.must_rollback_record(b"b", 10, false);
}

#[test]
fn resolve_batch_txn_infos() {
    let h = H::new();
    h.must_prewrite_put(b"a", b"1", b"a", 10);
    h.must_prewrite_put(b"b", b"1", b"b", 11);
    h.must_prewrite_put(b"c", b"1", b"c", 12);
    let r = resolve(
        &h,
        kvrpcpb::ResolveLockRequest {
            txn_infos: vec![
                kvrpcpb::TxnInfo {
                    txn: 10,
                    status: 15,
                    ..Default::default()
                },
                kvrpcpb::TxnInfo {
                    txn: 11,
                    status: 0,
                    ..Default::default()
                },
            ],
            ..Default::default()
        },
        ALL,
    );
    assert!(r.error.is_none());
    assert_eq!(h.must_get(b"a", 20), Some(b"1".to_vec()));
    h.must_rollback_record(b"b", 11, true);
    h.must_locked(b"c", 12);
}

#[test]
fn resolve_lite_only_given_keys() {
    let h = H::new();
    h.must_prewrite(prewrite_req(
        vec![put(b"a", b"1"), put(b"b", b"2")],
        b"a",
        10,
    ));
    let r = resolve(
        &h,
        kvrpcpb::ResolveLockRequest {
            start_version: 10,
            commit_version: 20,
            keys: vec!["b".into()],
            ..Default::default()
        },
        ALL,
    );
    assert!(r.error.is_none());
    h.must_unlocked(b"b");
    h.must_locked(b"a", 10);
}

#[test]
fn resolve_below_min_commit_ts_is_commit_ts_expired() {
    let h = H::new();
    let mut p = prewrite_req(vec![put(b"a", b"1")], b"a", 10);
    p.min_commit_ts = 30;
    h.must_prewrite(p);
    let r = resolve(
        &h,
        kvrpcpb::ResolveLockRequest {
            start_version: 10,
            commit_version: 20,
            ..Default::default()
        },
        ALL,
    );
    assert!(r.error.unwrap().commit_ts_expired.is_some());
    h.must_locked(b"a", 10);
}

#[test]
fn resolve_commit_ts_not_above_lock_ts_is_invalid() {
    let h = H::new();
    h.must_prewrite_put(b"a", b"1", b"a", 10);
    let r = resolve(
        &h,
        kvrpcpb::ResolveLockRequest {
            txn_infos: vec![kvrpcpb::TxnInfo {
                txn: 10,
                status: 5,
                ..Default::default()
            }],
            ..Default::default()
        },
        ALL,
    );
    assert!(r.error.unwrap().abort.contains("InvalidTxnTso"));
}

#[test]
fn resolve_commit_of_pessimistic_lock_just_unlocks() {
    let h = H::new();
    h.must_pessimistic_lock(b"a", b"a", 10, 10);
    let r = resolve(
        &h,
        kvrpcpb::ResolveLockRequest {
            start_version: 10,
            commit_version: 20,
            ..Default::default()
        },
        ALL,
    );
    assert!(r.error.is_none());
    h.must_unlocked(b"a");
    h.must_no_record(b"a", 20);
}

fn scan_lock(
    h: &H,
    max: u64,
    start: &[u8],
    end: &[u8],
    limit: u32,
    region: (&[u8], &[u8]),
) -> Vec<(Vec<u8>, u64)> {
    let r = h.e.scan_lock(
        &h.cm,
        &kvrpcpb::ScanLockRequest {
            context: None,
            max_version: max,
            start_key: start.to_vec().into(),
            limit,
            end_key: end.to_vec().into(),
        },
        region,
    );
    assert!(r.error.is_none());
    r.locks
        .into_iter()
        .map(|l| (l.key.into(), l.lock_version))
        .collect()
}

#[test]
fn scan_lock_filters_by_version_range_limit_and_region() {
    let h = H::new();
    for (k, ts) in [(&b"a"[..], 10), (b"b", 20), (b"c", 30), (b"d", 15)] {
        h.must_prewrite_put(k, b"v", k, ts);
    }
    assert_eq!(
        scan_lock(&h, 20, b"", b"", 0, ALL).len(),
        3,
        "limit 0 = unlimited"
    );
    assert_eq!(h.cm.max_ts(), 20);
    assert_eq!(
        scan_lock(&h, 100, b"b", b"", 2, ALL),
        vec![(b"b".to_vec(), 20), (b"c".to_vec(), 30)]
    );
    assert_eq!(scan_lock(&h, 100, b"", b"c", 0, ALL).len(), 2);
    assert_eq!(scan_lock(&h, 100, b"", b"", 0, (b"b", b"d")).len(), 2);
}

#[test]
fn scan_lock_reports_full_lock_info() {
    let h = H::new();
    async_prewrite(&h, &[b"p", b"s"], 10);
    let r = h.e.scan_lock(
        &h.cm,
        &kvrpcpb::ScanLockRequest {
            max_version: 100,
            ..Default::default()
        },
        ALL,
    );
    let p = &r.locks[0];
    assert_eq!(p.key, "p");
    assert!(p.use_async_commit);
    assert_eq!(p.secondaries, vec![b"s".to_vec()]);
    assert_eq!(p.lock_type, kvrpcpb::Op::Put as i32);
}
