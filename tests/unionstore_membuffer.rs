//! Unit tests of the membuffer: operations, flag rules, limits, staging trees, checkpoints,
//! snapshot reads, the footprint hook.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tikv_tower::txn::unionstore::{
    FlagsOp, KeyFlags, MemBuffer, MemBufferError, SizeLimits, DEFAULT_ENTRY_SIZE_LIMIT,
    DEFAULT_TOTAL_SIZE_LIMIT, MAX_KEY_LEN,
};

fn kv(buf: &MemBuffer) -> Vec<(Vec<u8>, Vec<u8>)> {
    buf.iter(b"", b"")
        .map(|e| (e.key.to_vec(), e.value.unwrap_or_default().to_vec()))
        .collect()
}

#[test]
fn get_set_delete_len_size() {
    let mut b = MemBuffer::new();
    assert!(b.is_empty());
    assert_eq!(b.get(b"k"), None);
    b.set(b"k", b"v1").unwrap();
    assert_eq!(b.get(b"k"), Some(&b"v1"[..]));
    assert_eq!((b.len(), b.size()), (1, 3));
    b.set(b"k", b"value2").unwrap();
    assert_eq!(b.get(b"k"), Some(&b"value2"[..]));
    assert_eq!((b.len(), b.size()), (1, 7));
    b.delete(b"k").unwrap();
    assert_eq!(b.get(b"k"), Some(&b""[..]), "a delete is a tombstone");
    assert_eq!((b.len(), b.size()), (1, 1));
    b.delete(b"other").unwrap();
    assert_eq!((b.len(), b.size()), (2, 6));
    assert_eq!(b.set(b"k", b""), Err(MemBufferError::EmptyValue));
    assert_eq!(
        b.set_with_flags(b"k", b"", &[FlagsOp::SetKeyLocked]),
        Err(MemBufferError::EmptyValue)
    );
    assert!(b.dirty());
}

#[test]
fn same_length_overwrite_in_place_outside_stage_keeps_reads_right() {
    let mut b = MemBuffer::new();
    for i in 0..100u8 {
        b.set(b"k", &[i; 8]).unwrap();
    }
    assert_eq!(b.get(b"k"), Some(&[99u8; 8][..]));
    assert_eq!(b.size(), 9);
}

#[test]
fn flags_only_entries() {
    let mut b = MemBuffer::new();
    b.update_flags(b"f", &[FlagsOp::SetKeyLocked]).unwrap();
    assert_eq!(b.get(b"f"), None, "no value");
    assert!(b.get_flags(b"f").unwrap().has_locked());
    assert_eq!((b.len(), b.size()), (1, 1));
    assert!(
        b.iter(b"", b"").next().is_none(),
        "value iterators skip flags-only entries"
    );
    let e = b.iter_with_flags(b"", b"").next().unwrap();
    assert_eq!((e.key, e.value), (&b"f"[..], None));
    // A later value write makes it a normal entry without double counting.
    b.set(b"f", b"v").unwrap();
    assert_eq!((b.len(), b.size()), (1, 2));
    assert!(b.get_flags(b"f").unwrap().has_locked());
    assert_eq!(b.get_flags(b"nope"), None);
}

#[test]
fn value_write_clears_need_constraint_check_but_flag_update_does_not() {
    let mut b = MemBuffer::new();
    b.update_flags(b"k", &[FlagsOp::SetNeedConstraintCheckInPrewrite])
        .unwrap();
    b.update_flags(b"k", &[FlagsOp::SetNeedLocked]).unwrap();
    assert!(b
        .get_flags(b"k")
        .unwrap()
        .has_need_constraint_check_in_prewrite());
    b.set(b"k", b"v").unwrap();
    assert!(!b
        .get_flags(b"k")
        .unwrap()
        .has_need_constraint_check_in_prewrite());
    // ... unless the write sets it again.
    b.set_with_flags(b"k", b"v", &[FlagsOp::SetNeedConstraintCheckInPrewrite])
        .unwrap();
    assert!(b
        .get_flags(b"k")
        .unwrap()
        .has_need_constraint_check_in_prewrite());
    b.delete(b"k").unwrap();
    assert!(!b
        .get_flags(b"k")
        .unwrap()
        .has_need_constraint_check_in_prewrite());
    assert!(b.get_flags(b"k").unwrap().has_need_locked());
}

#[test]
fn set_with_flags_and_delete_with_flags_apply_ops_in_order() {
    let mut b = MemBuffer::new();
    b.set_with_flags(
        b"k",
        b"v",
        &[
            FlagsOp::SetAssertExist,
            FlagsOp::SetAssertNotExist,
            FlagsOp::SetPresumeKeyNotExists,
        ],
    )
    .unwrap();
    let f = b.get_flags(b"k").unwrap();
    assert!(
        f.has_assert_not_exist() && f.has_presume_key_not_exists() && f.has_need_check_exists()
    );
    b.delete_with_flags(
        b"k",
        &[FlagsOp::DelPresumeKeyNotExists, FlagsOp::SetNewlyInserted],
    )
    .unwrap();
    let f = b.get_flags(b"k").unwrap();
    assert!(!f.has_presume_key_not_exists() && !f.has_need_check_exists());
    assert!(f.has_newly_inserted() && f.has_assert_not_exist());
}

#[test]
fn remove_from_buffer() {
    let mut b = MemBuffer::new();
    b.set(b"a", b"1").unwrap();
    b.set(b"b", b"22").unwrap();
    b.remove_from_buffer(b"b");
    b.remove_from_buffer(b"missing");
    assert_eq!(b.get(b"b"), None);
    assert_eq!(b.get_flags(b"b"), None);
    assert_eq!((b.len(), b.size()), (1, 2));
    b.set(b"b", b"3").unwrap();
    assert_eq!((b.len(), b.size()), (2, 4));
    // Not staged: a cleanup does not resurrect what was written before the removal.
    let h = b.staging();
    b.set(b"a", b"x").unwrap();
    b.remove_from_buffer(b"a");
    b.cleanup(h).unwrap();
    assert_eq!(b.get(b"a"), None);
    assert_eq!((b.len(), b.size()), (1, 2));
}

#[test]
fn iterators_bounds_and_directions() {
    let mut b = MemBuffer::new();
    for k in ["b", "a", "d", "c", "e", "ca"] {
        b.set(k.as_bytes(), k.as_bytes()).unwrap();
    }
    b.delete(b"c").unwrap();
    let cases: &[(&str, &str, &[&str])] = &[
        ("", "", &["a", "b", "c", "ca", "d", "e"]),
        ("b", "d", &["b", "c", "ca"]),
        ("bb", "ca", &["c"]),
        ("c", "c", &[]),
        ("d", "b", &[]),
        ("e", "", &["e"]),
        ("f", "", &[]),
        ("", "a", &[]),
        ("", "a\0", &["a"]),
    ];
    for (lo, hi, want) in cases {
        let want: Vec<Vec<u8>> = want.iter().map(|s| s.as_bytes().to_vec()).collect();
        let fwd: Vec<_> = b
            .iter(lo.as_bytes(), hi.as_bytes())
            .map(|e| e.key.to_vec())
            .collect();
        assert_eq!(fwd, want, "[{lo}, {hi})");
        let mut rev: Vec<_> = b
            .iter_reverse(lo.as_bytes(), hi.as_bytes())
            .map(|e| e.key.to_vec())
            .collect();
        rev.reverse();
        assert_eq!(rev, want, "reverse [{lo}, {hi})");
    }
    let c = b.iter(b"c", b"ca").next().unwrap();
    assert!(c.is_tombstone());
}

#[test]
fn keys_sharing_long_prefixes_order_correctly() {
    let mut b = MemBuffer::new();
    let mut want = Vec::new();
    for i in 0..3000u32 {
        let mut k = b"t\x80\x00\x00\x00\x00\x00\x00\x2a_r".to_vec();
        k.extend_from_slice(&(i.wrapping_mul(7919) % 3000).to_be_bytes());
        b.set(&k, b"v").unwrap();
        want.push(k);
    }
    b.set(b"t\x80\x00\x00\x00\x00\x00\x00", b"short").unwrap();
    want.push(b"t\x80\x00\x00\x00\x00\x00\x00".to_vec());
    want.sort();
    let got: Vec<_> = b.iter(b"", b"").map(|e| e.key.to_vec()).collect();
    assert_eq!(got, want);
}

#[test]
fn size_limits() {
    let d = SizeLimits::default();
    assert_eq!((d.entry, d.total), (6 << 20, 100 << 20));
    assert_eq!(
        (DEFAULT_ENTRY_SIZE_LIMIT, DEFAULT_TOTAL_SIZE_LIMIT),
        (d.entry, d.total)
    );
    assert_eq!(SizeLimits::new(0, 0), SizeLimits::UNLIMITED);

    let mut b = MemBuffer::with_limits(SizeLimits::new(10, 25));
    assert_eq!(
        b.set(b"key", b"12345678"),
        Err(MemBufferError::EntryTooLarge {
            size: 11,
            limit: 10
        })
    );
    assert_eq!(b.len(), 0, "nothing written");
    b.set(b"k1", b"12345678").unwrap();
    b.set(b"k2", b"12345678").unwrap();
    let err = b.set(b"k3", b"12345678").unwrap_err();
    assert_eq!(
        err,
        MemBufferError::TxnTooLarge {
            size: 30,
            limit: 25
        }
    );
    assert_eq!(
        b.get(b"k3"),
        Some(&b"12345678"[..]),
        "client-go applies the write"
    );
    // Deletes are entries too; flag updates are not size-checked per entry.
    assert!(matches!(
        b.delete(&[0u8; 11]),
        Err(MemBufferError::EntryTooLarge { .. })
    ));
    let long = vec![1u8; MAX_KEY_LEN + 1];
    assert!(matches!(
        b.update_flags(&long, &[FlagsOp::SetKeyLocked]),
        Err(MemBufferError::KeyTooLarge { .. })
    ));
    b.set_limits(SizeLimits::UNLIMITED);
    b.set(b"k4", &[7u8; 100]).unwrap();
    assert_eq!(b.limits(), SizeLimits::UNLIMITED);
}

#[test]
fn large_values_and_many_blocks() {
    let mut b = MemBuffer::with_limits(SizeLimits::UNLIMITED);
    let big = vec![9u8; 3 << 20];
    b.set(b"big", &big).unwrap();
    for i in 0..10_000u32 {
        b.set(&i.to_be_bytes(), &[1u8; 50]).unwrap();
    }
    assert_eq!(b.get(b"big").map(|v| v.len()), Some(3 << 20));
    assert_eq!(b.len(), 10_001);
    assert!(b.mem() >= b.size());
}

// ---- staging ----

#[test]
fn cleanup_reverts_values_and_release_merges() {
    let mut b = MemBuffer::new();
    b.set(b"a", b"1").unwrap();
    let h1 = b.staging();
    b.set(b"a", b"2").unwrap();
    b.set(b"b", b"2").unwrap();
    let h2 = b.staging();
    b.set(b"a", b"3").unwrap();
    b.delete(b"b").unwrap();
    b.set(b"c", b"3").unwrap();
    assert_eq!(b.stage_depth(), 2);
    b.cleanup(h2).unwrap();
    assert_eq!(
        kv(&b),
        vec![
            (b"a".to_vec(), b"2".to_vec()),
            (b"b".to_vec(), b"2".to_vec())
        ]
    );
    assert_eq!(b.len(), 2);
    b.release(h1).unwrap();
    assert!(!b.is_staging());
    assert_eq!(
        kv(&b),
        vec![
            (b"a".to_vec(), b"2".to_vec()),
            (b"b".to_vec(), b"2".to_vec())
        ]
    );
    assert_eq!(b.size(), 4);
}

#[test]
fn staging_misuse_is_a_typed_error() {
    let mut b = MemBuffer::new();
    let h1 = b.staging();
    let h2 = b.staging();
    assert_eq!(
        b.release(h1),
        Err(MemBufferError::NotInnermostStage {
            handle: 1,
            depth: 2
        })
    );
    assert_eq!(
        b.cleanup(h1),
        Err(MemBufferError::NotInnermostStage {
            handle: 1,
            depth: 2
        })
    );
    b.release(h2).unwrap();
    assert!(b.release(h2).is_err(), "already released");
    b.cleanup(h1).unwrap();
    // Cleanup of a stage discarded with its parent is a no-op (client-go).
    b.cleanup(h2).unwrap();
    assert_eq!(b.stage_depth(), 0);
}

/// Every order of finishing three nested stages (release or cleanup at each level), checked
/// against the expected visible state.
#[test]
fn three_level_trees_in_every_order() {
    for mask in 0..8u32 {
        let mut b = MemBuffer::new();
        b.set(b"base", b"0").unwrap();
        let mut hs = Vec::new();
        for lvl in 1..=3u8 {
            hs.push(b.staging());
            b.set(b"base", &[b'0' + lvl]).unwrap();
            b.set(&[b'k', lvl], &[lvl]).unwrap();
        }
        // Finish innermost first; bit i set = cleanup level 3 - i.
        let mut expect_base = b'3';
        let mut live = [true; 3];
        for i in 0..3 {
            let lvl = 3 - i;
            let h = hs.pop().unwrap();
            if mask & (1 << i) != 0 {
                b.cleanup(h).unwrap();
                // Everything written at this level and above (still pending) is gone.
                for l in lvl..=3 {
                    live[(l - 1) as usize] = false;
                }
                expect_base = b'0' + (lvl as u8 - 1);
            } else {
                b.release(h).unwrap();
            }
        }
        assert_eq!(b.get(b"base"), Some(&[expect_base][..]), "mask {mask:03b}");
        for lvl in 1..=3u8 {
            let v = [lvl];
            let want = live[(lvl - 1) as usize].then_some(&v[..]);
            assert_eq!(b.get(&[b'k', lvl]), want, "mask {mask:03b} level {lvl}");
        }
        assert_eq!(b.len(), 1 + live.iter().filter(|x| **x).count());
    }
}

#[test]
fn cleanup_keeps_only_persistent_flags_of_new_keys_and_all_flags_of_old_ones() {
    let mut b = MemBuffer::new();
    b.set(b"old", b"v").unwrap();
    let h = b.staging();
    // New key with a persistent and a non-persistent flag.
    b.set_with_flags(
        b"locked",
        b"v",
        &[
            FlagsOp::SetKeyLocked,
            FlagsOp::SetPresumeKeyNotExists,
            FlagsOp::SetKeyLockedValueExists,
        ],
    )
    .unwrap();
    // New key with only non-persistent flags.
    b.set_with_flags(b"plain", b"v", &[FlagsOp::SetPresumeKeyNotExists])
        .unwrap();
    // Old key: flags set in the stage are not rolled back.
    b.set_with_flags(b"old", b"w", &[FlagsOp::SetAssertExist])
        .unwrap();
    // Flags-only change of a new key: nothing to revert, the entry stays.
    b.update_flags(b"flagsonly", &[FlagsOp::SetNeedLocked])
        .unwrap();
    b.cleanup(h).unwrap();

    let f = b
        .get_flags(b"locked")
        .expect("kept for its persistent flags");
    assert!(f.has_locked() && f.has_locked_value_exists());
    assert!(!f.has_presume_key_not_exists());
    assert_eq!(b.get(b"locked"), None);
    assert_eq!(b.get_flags(b"plain"), None);
    assert_eq!(b.get(b"old"), Some(&b"v"[..]));
    assert!(b.get_flags(b"old").unwrap().has_assert_exist());
    assert!(b.get_flags(b"flagsonly").unwrap().has_need_locked());
    assert_eq!(b.len(), 3);
    assert_eq!(
        b.size(),
        ("old".len() + 1 + "locked".len() + "flagsonly".len()) as u64
    );
}

#[test]
fn each_persistent_flag_survives_cleanup_and_others_do_not() {
    let table: &[(FlagsOp, bool)] = &[
        (FlagsOp::SetKeyLocked, true),
        (FlagsOp::SetKeyLockedValueExists, true),
        (FlagsOp::SetNeedConstraintCheckInPrewrite, true),
        (FlagsOp::SetKeyLockedInShareMode, true),
        (FlagsOp::SetPresumeKeyNotExists, false),
        (FlagsOp::SetNeedLocked, false),
        (FlagsOp::SetPrewriteOnly, false),
        (FlagsOp::SetIgnoredIn2PC, false),
        (FlagsOp::SetReadable, false),
        (FlagsOp::SetNewlyInserted, false),
        (FlagsOp::SetAssertExist, false),
        (FlagsOp::SetAssertNotExist, false),
        (FlagsOp::SetAssertUnknown, false),
        (FlagsOp::SetPreviousPresumeKNE, false),
    ];
    for &(op, survives) in table {
        let mut b = MemBuffer::new();
        let h = b.staging();
        b.set_with_flags(b"k", b"v", &[op]).unwrap();
        b.cleanup(h).unwrap();
        assert_eq!(b.get_flags(b"k").is_some(), survives, "{op:?}");
        assert_eq!(b.len(), survives as usize, "{op:?}");
    }
}

#[test]
fn dirty_rules() {
    // Writes inside a stage are not dirty until the outermost stage is released.
    let mut b = MemBuffer::new();
    let h = b.staging();
    b.set(b"k", b"v").unwrap();
    assert!(!b.dirty());
    b.release(h).unwrap();
    assert!(b.dirty());
    // A cleaned-up stage leaves the buffer clean.
    let mut b = MemBuffer::new();
    let h = b.staging();
    b.set(b"k", b"v").unwrap();
    b.cleanup(h).unwrap();
    assert!(!b.dirty());
    // Releasing an empty stage does not dirty.
    let h = b.staging();
    b.release(h).unwrap();
    assert!(!b.dirty());
    // A persistent flag dirties even inside a stage.
    let h = b.staging();
    b.update_flags(b"k", &[FlagsOp::SetKeyLocked]).unwrap();
    assert!(b.dirty());
    b.cleanup(h).unwrap();
    // Any write outside a stage.
    let mut b = MemBuffer::new();
    b.update_flags(b"k", &[FlagsOp::SetReadable]).unwrap();
    assert!(b.dirty());
}

// ---- checkpoints ----

#[test]
fn checkpoints_revert_and_validity() {
    let mut b = MemBuffer::new();
    b.set(b"a", b"1").unwrap();
    let cp1 = b.checkpoint();
    b.set(b"a", b"2").unwrap();
    b.set(b"b", b"2").unwrap();
    let cp2 = b.checkpoint();
    b.set(b"a", b"3").unwrap();
    b.revert_to_checkpoint(&cp2).unwrap();
    assert_eq!(b.get(b"a"), Some(&b"2"[..]));
    b.revert_to_checkpoint(&cp2).unwrap();
    b.revert_to_checkpoint(&cp1).unwrap();
    assert_eq!(b.get(b"a"), Some(&b"1"[..]));
    assert_eq!(b.get(b"b"), None);
    // cp2's writes were discarded: stale even after new writes grow the log past it.
    b.set(b"c", b"3").unwrap();
    b.set(b"d", b"4").unwrap();
    assert_eq!(
        b.revert_to_checkpoint(&cp2),
        Err(MemBufferError::InvalidCheckpoint)
    );
    // A checkpoint before the innermost stage is refused.
    b.set(b"e", b"5").unwrap();
    let h = b.staging();
    b.set(b"f", b"6").unwrap();
    assert_eq!(
        b.revert_to_checkpoint(&cp1),
        Err(MemBufferError::InvalidCheckpoint)
    );
    let cp3 = b.checkpoint();
    b.set(b"f", b"7").unwrap();
    b.revert_to_checkpoint(&cp3).unwrap();
    assert_eq!(b.get(b"f"), Some(&b"6"[..]));
    b.cleanup(h).unwrap();
    assert_eq!(b.get(b"f"), None);
    assert_eq!(b.get(b"e"), Some(&b"5"[..]));
}

#[test]
fn same_length_overwrite_after_checkpoint_is_revertible() {
    let mut b = MemBuffer::new();
    b.set(b"k", b"aaaa").unwrap();
    let cp = b.checkpoint();
    b.set(b"k", b"bbbb").unwrap();
    b.set(b"k", b"cccc").unwrap();
    b.revert_to_checkpoint(&cp).unwrap();
    assert_eq!(b.get(b"k"), Some(&b"aaaa"[..]));
}

// ---- snapshot reads ----

#[test]
fn snapshot_reads_at_stage_boundaries() {
    let mut b = MemBuffer::new();
    b.set(b"a", b"0").unwrap();
    b.set(b"b", b"0").unwrap();
    // No stage: the snapshot is the current state.
    assert_eq!(b.snapshot_get(b"a"), Some(&b"0"[..]));
    let h1 = b.staging();
    b.set(b"a", b"1").unwrap();
    b.set(b"c", b"1").unwrap();
    let h2 = b.staging();
    b.delete(b"b").unwrap();
    b.set(b"d", b"2").unwrap();
    b.set(b"a", b"2").unwrap();

    assert_eq!(b.snapshot_get(b"a"), Some(&b"0"[..]));
    assert_eq!(b.snapshot_get(b"c"), None);
    let s1: Vec<_> = b
        .snapshot_iter(b"", b"")
        .map(|e| (e.key.to_vec(), e.value.unwrap().to_vec()))
        .collect();
    assert_eq!(
        s1,
        vec![
            (b"a".to_vec(), b"0".to_vec()),
            (b"b".to_vec(), b"0".to_vec())
        ]
    );
    let s2 = b.snapshot_at(h2).unwrap();
    assert_eq!(s2.get(b"a"), Some(&b"1"[..]));
    assert_eq!(s2.get(b"b"), Some(&b"0"[..]));
    assert_eq!(s2.get(b"c"), Some(&b"1"[..]));
    assert_eq!(s2.get(b"d"), None);
    let rev: Vec<_> = s2
        .iter_reverse(b"a", b"d")
        .map(|e| e.key.to_vec())
        .collect();
    assert_eq!(rev, vec![b"c".to_vec(), b"b".to_vec(), b"a".to_vec()]);
    // The current view sees the tombstone.
    assert_eq!(b.get(b"b"), Some(&b""[..]));
    b.cleanup(h2).unwrap();
    assert!(b.snapshot_at(h2).is_none());
    assert_eq!(b.snapshot_get(b"a"), Some(&b"0"[..]));
    b.release(h1).unwrap();
    assert_eq!(b.snapshot_get(b"a"), Some(&b"1"[..]));
}

#[test]
fn inspect_stage_and_value_history() {
    let mut b = MemBuffer::new();
    b.set(b"a", b"1").unwrap();
    let h = b.staging();
    b.set(b"a", b"2").unwrap();
    b.set(b"b", b"1").unwrap();
    b.set(b"a", b"33").unwrap();
    let mut seen = Vec::new();
    b.inspect_stage(h, |k, _, v| seen.push((k.to_vec(), v.to_vec())));
    assert_eq!(
        seen,
        vec![
            (b"a".to_vec(), b"33".to_vec()),
            (b"b".to_vec(), b"1".to_vec())
        ]
    );
    assert_eq!(
        b.select_value_history(b"a", |v| v == b"1"),
        Ok(Some(&b"1"[..]))
    );
    assert_eq!(
        b.select_value_history(b"a", |v| v.len() == 1),
        Ok(Some(&b"2"[..]))
    );
    assert_eq!(b.select_value_history(b"a", |_| false), Ok(None));
    assert_eq!(b.select_value_history(b"zz", |_| true), Err(()));
}

// ---- footprint hook ----

#[test]
fn footprint_hook_reports_growth_and_shrink() {
    let mut b = MemBuffer::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let last = Arc::new(AtomicU64::new(0));
    let (c2, l2) = (calls.clone(), last.clone());
    b.set_memory_footprint_hook(move |m| {
        c2.fetch_add(1, Ordering::SeqCst);
        l2.store(m, Ordering::SeqCst);
    });
    assert!(b.memory_hook_set());
    b.set(b"k", b"v").unwrap();
    let after_first = calls.load(Ordering::SeqCst);
    assert!(after_first >= 1, "first write allocates");
    assert_eq!(last.load(Ordering::SeqCst), b.mem());
    b.set(b"k2", b"v").unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        after_first,
        "no growth, no call"
    );
    for i in 0..5000u32 {
        b.set(&i.to_be_bytes(), &[0u8; 100]).unwrap();
    }
    let before = last.load(Ordering::SeqCst);
    assert!(before > 500_000, "5000 keys with their first values");
    let h = b.staging();
    for i in 0..5000u32 {
        b.set(&i.to_be_bytes(), &[1u8; 101]).unwrap();
    }
    let grown = last.load(Ordering::SeqCst);
    assert!(grown > before + 500_000, "overwrites go to the value log");
    b.cleanup(h).unwrap();
    assert!(
        last.load(Ordering::SeqCst) < grown,
        "cleanup frees value-log blocks"
    );
    assert_eq!(b.get(&7u32.to_be_bytes()), Some(&[0u8; 100][..]));
    assert_eq!(last.load(Ordering::SeqCst), b.mem());
    b.reset();
    assert_eq!(b.len(), 0);
    assert_eq!(last.load(Ordering::SeqCst), 0);
}

#[test]
fn a_small_buffer_stays_small() {
    let mut b = MemBuffer::new();
    assert_eq!(b.mem(), 0);
    b.set(b"k", b"v").unwrap();
    assert!(b.mem() <= 8 << 10, "one key reserves {} bytes", b.mem());
    for i in 0..100u32 {
        b.set(&i.to_be_bytes(), b"value").unwrap();
    }
    assert!(b.mem() <= 16 << 10, "100 keys reserve {} bytes", b.mem());
}

#[test]
fn key_flags_debug_and_bits() {
    let f = KeyFlags::EMPTY.apply(&[FlagsOp::SetKeyLocked, FlagsOp::SetAssertUnknown]);
    assert!(f.has_assert_unknown());
    assert_eq!(KeyFlags::from_bits(f.bits()), f);
}
