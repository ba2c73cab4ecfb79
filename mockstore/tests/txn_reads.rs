//! Snapshot reads (KvGet / KvBatchGet / KvScan, mockstore-spec §2.3 and
//! §3.3), GC (§3.10) and range deletion.

mod txn_util;

use tikv_tower_proto::kvrpcpb::{self, write_conflict::Reason, IsolationLevel};
use txn_util::*;

fn ctx_with(f: impl FnOnce(&mut kvrpcpb::Context)) -> Option<kvrpcpb::Context> {
    let mut c = kvrpcpb::Context::default();
    f(&mut c);
    Some(c)
}

fn get_with(h: &H, key: &[u8], ts: u64, ctx: Option<kvrpcpb::Context>) -> kvrpcpb::GetResponse {
    h.e.get(
        &h.cm,
        &kvrpcpb::GetRequest {
            context: ctx,
            key: key.to_vec().into(),
            version: ts,
            need_commit_ts: false,
        },
        ALL,
    )
}

#[test]
fn get_raises_max_ts_unless_stale_read() {
    let h = H::new();
    h.must_get(b"k", 100);
    assert_eq!(h.cm.max_ts(), 100);
    get_with(&h, b"k", 200, ctx_with(|c| c.stale_read = true));
    assert_eq!(h.cm.max_ts(), 100);
    h.must_get(b"k", u64::MAX);
    assert_eq!(h.cm.max_ts(), 100, "MAX is ignored");
}

#[test]
fn get_not_found_versus_empty_value_and_commit_ts() {
    let h = H::new();
    h.must_put(b"e", b"", 1, 2);
    let r = h.get_req(b"e", 10);
    assert!(!r.not_found);
    assert_eq!(r.commit_ts, 2);
    let r = h.get_req(b"absent", 10);
    assert!(r.not_found);
    let r = get_with(&h, b"e", 10, None);
    assert_eq!(r.commit_ts, 0, "commit_ts only with need_commit_ts");
}

#[test]
fn visibility_is_newest_put_or_delete_at_or_below_ts() {
    let h = H::new();
    h.must_put(b"k", b"v1", 1, 2);
    h.must_prewrite_lock(b"k", b"k", 3);
    h.must_commit(&[b"k"], 3, 4);
    h.must_rollback(&[b"k"], 5);
    h.must_delete(b"k", 6, 7);
    h.must_put(b"k", b"v2", 8, 9);
    let cases = [
        (1, None),
        (2, Some("v1")),
        (5, Some("v1")),
        (7, None),
        (8, None),
        (9, Some("v2")),
    ];
    for (ts, want) in cases {
        assert_eq!(
            h.must_get(b"k", ts),
            want.map(|s| s.as_bytes().to_vec()),
            "read at {ts}"
        );
    }
}

#[test]
fn lock_check_rules() {
    let h = H::new();
    h.must_prewrite_put(b"put", b"v", b"put", 10);
    h.must_prewrite_lock(b"lock", b"lock", 10);
    h.must_pessimistic_lock(b"pess", b"pess", 10, 10);
    // Lock ts above the read ts: not blocking.
    assert_eq!(h.must_get(b"put", 9), None);
    // Put lock at or below: blocking.
    assert_eq!(h.must_get_locked(b"put", 10).lock_version, 10);
    // Lock and pessimistic locks never block.
    assert_eq!(h.must_get(b"lock", 20), None);
    assert_eq!(h.must_get(b"pess", 20), None);
    // resolved_locks bypass.
    let r = get_with(&h, b"put", 20, ctx_with(|c| c.resolved_locks = vec![10]));
    assert!(r.error.is_none() && r.not_found);
    // committed_locks read through.
    let r = get_with(&h, b"put", 20, ctx_with(|c| c.committed_locks = vec![10]));
    assert!(r.error.is_none());
    assert_eq!(r.value, "v");
}

#[test]
fn lock_with_min_commit_ts_above_read_ts_does_not_block() {
    let h = H::new();
    let mut p = prewrite_req(vec![put(b"k", b"v")], b"k", 10);
    p.min_commit_ts = 30;
    h.must_prewrite(p);
    assert_eq!(h.must_get(b"k", 20), None);
    h.must_get_locked(b"k", 30);
}

#[test]
fn max_ts_point_get_of_primary_is_exempt_except_async_commit() {
    let h = H::new();
    h.must_put(b"p", b"old", 1, 2);
    h.must_prewrite(prewrite_req(
        vec![put(b"p", b"new"), put(b"s", b"new")],
        b"p",
        10,
    ));
    assert_eq!(h.must_get(b"p", u64::MAX), Some(b"old".to_vec()));
    h.must_get_locked(b"s", u64::MAX);
    // Not for replica reads.
    let r = get_with(&h, b"p", u64::MAX, ctx_with(|c| c.replica_read = true));
    assert!(r.error.unwrap().locked.is_some());
    let mut p = prewrite_req(vec![put(b"a", b"new")], b"a", 10);
    p.use_async_commit = true;
    h.must_prewrite(p);
    h.must_get_locked(b"a", u64::MAX);
}

#[test]
fn rc_ignores_locks_and_rc_check_ts_conflicts() {
    let h = H::new();
    h.must_put(b"k", b"v", 1, 2);
    h.must_prewrite_put(b"k", b"w", b"k", 10);
    let rc = ctx_with(|c| c.isolation_level = IsolationLevel::Rc as i32);
    let r = get_with(&h, b"k", 20, rc);
    assert_eq!(r.value, "v");
    let rcts = ctx_with(|c| c.isolation_level = IsolationLevel::RcCheckTs as i32);
    let r = get_with(&h, b"k", 20, rcts.clone());
    assert_eq!(
        r.error.unwrap().conflict.unwrap().reason,
        Reason::RcCheckTs as i32
    );
    // A newer committed version also conflicts.
    h.must_commit(&[b"k"], 10, 30);
    let r = get_with(&h, b"k", 20, rcts.clone());
    let c = r.error.unwrap().conflict.unwrap();
    assert_eq!(
        (c.reason, c.conflict_commit_ts),
        (Reason::RcCheckTs as i32, 30)
    );
    assert_eq!(get_with(&h, b"k", 30, rcts).value, "w");
}

#[test]
fn memory_locks_are_checked_by_reads() {
    // An async-commit lock published in memory is visible to readers of the
    // same store before it is persisted: simulated by a lock whose
    // min_commit_ts <= read ts in the table. Here we check the ordering
    // guarantee instead: a prewrite after a read commits above the read.
    let h = H::new();
    h.must_get(b"k", 500);
    let mut p = prewrite_req(vec![put(b"k", b"v")], b"k", 100);
    p.use_async_commit = true;
    let min = h.must_prewrite(p).min_commit_ts;
    assert!(min > 500);
    assert_eq!(h.must_get(b"k", 500), None);
}

#[test]
fn batch_get_omits_absent_keys_and_reports_locks_as_error_pairs() {
    let h = H::new();
    h.must_put(b"a", b"1", 1, 2);
    h.must_put(b"e", b"", 1, 2);
    h.must_prewrite_put(b"l", b"x", b"l", 5);
    let r = h.e.batch_get(
        &h.cm,
        &kvrpcpb::BatchGetRequest {
            context: None,
            keys: vec!["e".into(), "absent".into(), "a".into(), "l".into()],
            version: 10,
            need_commit_ts: true,
        },
        ALL,
    );
    assert_eq!(r.pairs.len(), 3);
    assert_eq!(
        (r.pairs[0].key.as_ref(), r.pairs[0].value.as_ref()),
        (&b"e"[..], &b""[..])
    );
    assert_eq!(r.pairs[0].commit_ts, 2);
    assert_eq!(r.pairs[1].key, "a");
    assert!(r.pairs[2].error.as_ref().unwrap().locked.is_some());
    assert_eq!(h.cm.max_ts(), 10);
}

fn scan(
    h: &H,
    start: &[u8],
    end: &[u8],
    limit: u32,
    reverse: bool,
    f: impl FnOnce(&mut kvrpcpb::ScanRequest),
) -> kvrpcpb::ScanResponse {
    let mut req = kvrpcpb::ScanRequest {
        context: None,
        start_key: start.to_vec().into(),
        limit,
        version: 100,
        key_only: false,
        reverse,
        end_key: end.to_vec().into(),
        sample_step: 0,
    };
    f(&mut req);
    h.e.scan(&h.cm, &req, ALL)
}

fn keys(r: &kvrpcpb::ScanResponse) -> Vec<String> {
    r.pairs
        .iter()
        .map(|p| {
            if p.error.is_some() {
                "!".into()
            } else {
                String::from_utf8_lossy(&p.key).into_owned()
            }
        })
        .collect()
}

fn setup_scan() -> H {
    let h = H::new();
    for k in ["a", "b", "c", "d", "e"] {
        h.must_put(k.as_bytes(), format!("v{k}").as_bytes(), 1, 2);
    }
    h.must_delete(b"c", 3, 4);
    h
}

#[test]
fn scan_forward_reverse_limit_and_bounds() {
    let h = setup_scan();
    assert_eq!(
        keys(&scan(&h, b"", b"", 10, false, |_| {})),
        ["a", "b", "d", "e"]
    );
    assert_eq!(keys(&scan(&h, b"b", b"e", 10, false, |_| {})), ["b", "d"]);
    assert_eq!(keys(&scan(&h, b"", b"", 2, false, |_| {})), ["a", "b"]);
    // Reverse: [end_key, start_key) descending.
    assert_eq!(keys(&scan(&h, b"e", b"b", 10, true, |_| {})), ["d", "b"]);
    assert_eq!(keys(&scan(&h, b"z", b"", 3, true, |_| {})), ["e", "d", "b"]);
    // An empty upper bound on a reverse scan is not +inf (TiKV).
    assert!(scan(&h, b"", b"", 10, true, |_| {}).pairs.is_empty());
    // Region clamps.
    let r = h.e.scan(
        &h.cm,
        &kvrpcpb::ScanRequest {
            start_key: "".into(),
            limit: 10,
            version: 100,
            ..Default::default()
        },
        (b"b", b"e"),
    );
    assert_eq!(keys(&r), ["b", "d"]);
}

#[test]
fn scan_key_only_and_sample_step() {
    let h = setup_scan();
    let r = scan(&h, b"", b"", 10, false, |r| r.key_only = true);
    assert!(r.pairs.iter().all(|p| p.value.is_empty()));
    let r = scan(&h, b"", b"", 10, false, |r| r.sample_step = 2);
    assert_eq!(keys(&r), ["a", "d"]);
    let r = scan(&h, b"", b"", 10, false, |_| {});
    assert_eq!(r.pairs[0].value, "va");
}

#[test]
fn scan_locks_are_per_pair_errors_counting_toward_limit() {
    let h = setup_scan();
    h.must_prewrite_put(b"b", b"x", b"b", 50);
    let r = scan(&h, b"", b"", 3, false, |_| {});
    assert_eq!(keys(&r), ["a", "!", "d"]);
    assert!(r.error.is_none());
    assert_eq!(
        r.pairs[1]
            .error
            .as_ref()
            .unwrap()
            .locked
            .as_ref()
            .unwrap()
            .key,
        "b"
    );
}

#[test]
fn gc_keeps_newest_put_below_safe_point() {
    let h = H::new();
    h.must_put(b"k", b"v1", 1, 2);
    h.must_put(b"k", b"v2", 3, 4);
    h.must_prewrite_lock(b"k", b"k", 5);
    h.must_commit(&[b"k"], 5, 6);
    h.must_rollback(&[b"k"], 7);
    h.must_put(b"k", b"v3", 8, 9);
    let removed = h.e.gc(7);
    let d = h.data(b"k").unwrap();
    let left: Vec<u64> = d.writes.keys().copied().collect();
    assert_eq!(left, vec![4, 9], "lock/rollback and the older put are gone");
    assert_eq!(removed, 3);
    assert_eq!(h.must_get(b"k", 7), Some(b"v2".to_vec()));
    // A delete at or below the safe point removes the key entirely.
    h.must_delete(b"d", 1, 2);
    h.must_put(b"d2", b"x", 1, 2);
    h.must_delete(b"d2", 3, 4);
    h.e.gc(10);
    assert!(h.data(b"d").is_none());
    assert!(h.data(b"d2").is_none());
    // Locks are untouched.
    h.must_prewrite_put(b"l", b"x", b"l", 5);
    h.e.gc(100);
    h.must_locked(b"l", 5);
}

#[test]
fn delete_range_and_unsafe_destroy_range() {
    let h = setup_scan();
    h.must_prewrite_put(b"b", b"x", b"b", 50);
    let r = h.e.delete_range(
        &kvrpcpb::DeleteRangeRequest {
            start_key: "a".into(),
            end_key: "c".into(),
            ..Default::default()
        },
        ALL,
    );
    assert!(r.error.is_empty());
    assert!(h.data(b"a").is_none() && h.data(b"b").is_none());
    assert!(h.data(b"d").is_some());
    let r =
        h.e.unsafe_destroy_range(&kvrpcpb::UnsafeDestroyRangeRequest {
            start_key: Default::default(),
            end_key: "z".into(),
            ..Default::default()
        });
    assert!(!r.error.is_empty());
    let r =
        h.e.unsafe_destroy_range(&kvrpcpb::UnsafeDestroyRangeRequest {
            start_key: "c".into(),
            end_key: "z".into(),
            ..Default::default()
        });
    assert!(r.error.is_empty());
    assert!(h.e.store().is_empty());
}

#[test]
fn mvcc_get_by_key_and_start_ts() {
    let h = H::new();
    h.must_put(b"k", b"v", 10, 20);
    h.must_prewrite_put(b"k", b"w", b"k", 30);
    let r = h.e.mvcc_get_by_key(
        &kvrpcpb::MvccGetByKeyRequest {
            context: None,
            key: "k".into(),
        },
        ALL,
    );
    let info = r.info.unwrap();
    assert_eq!(info.lock.unwrap().start_ts, 30);
    assert_eq!(info.writes[0].commit_ts, 20);
    let r = h.e.mvcc_get_by_start_ts(
        &kvrpcpb::MvccGetByStartTsRequest {
            context: None,
            start_ts: 10,
        },
        ALL,
    );
    assert_eq!(r.key, "k");
}
