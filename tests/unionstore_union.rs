//! The union view over a backing snapshot, and the lowering of the buffer into prewrite
//! mutations.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::executor::block_on;
use tikv_tower::txn::unionstore::{
    lower_mutations, AssertionConflict, FlagsOp, KeyFlags, KvFilter, KvPair, LowerError,
    LoweringOptions, MemBuffer, SnapshotSource, UnionStore,
};
use tikv_tower_proto::kvrpcpb::{
    prewrite_request::PessimisticAction, Assertion, AssertionLevel, Op,
};

/// A snapshot that counts its calls.
struct Counting {
    data: BTreeMap<Vec<u8>, Vec<u8>>,
    scans: AtomicUsize,
    gets: AtomicUsize,
}

impl Counting {
    fn new(pairs: &[(&str, &str)]) -> Self {
        Counting {
            data: pairs
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
            scans: AtomicUsize::new(0),
            gets: AtomicUsize::new(0),
        }
    }
}

impl SnapshotSource for Counting {
    type Error = std::convert::Infallible;
    fn get(&self, key: &[u8]) -> impl Future<Output = Result<Option<Vec<u8>>, Self::Error>> + Send {
        self.gets.fetch_add(1, Ordering::SeqCst);
        SnapshotSource::get(&self.data, key)
    }
    fn scan(
        &self,
        lower: &[u8],
        upper: &[u8],
        limit: usize,
        reverse: bool,
    ) -> impl Future<Output = Result<Vec<KvPair>, Self::Error>> + Send {
        self.scans.fetch_add(1, Ordering::SeqCst);
        self.data.scan(lower, upper, limit, reverse)
    }
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn union_get_buffer_first_and_deletes_hide() {
    let snap = Counting::new(&[("a", "snap-a"), ("b", "snap-b"), ("c", "snap-c")]);
    let mut buf = MemBuffer::new();
    buf.set(b"a", b"buf-a").unwrap();
    buf.delete(b"b").unwrap();
    buf.update_flags(b"c", &[FlagsOp::SetPresumeKeyNotExists])
        .unwrap();
    let u = UnionStore::new(&buf, &snap);
    block_on(async {
        assert_eq!(u.get(b"a").await.unwrap().as_deref(), Some(&b"buf-a"[..]));
        assert_eq!(u.get(b"b").await.unwrap(), None);
        assert_eq!(snap.gets.load(Ordering::SeqCst), 0, "buffer answered");
        // Flags-only entries fall through to the snapshot.
        assert_eq!(u.get(b"c").await.unwrap().as_deref(), Some(&b"snap-c"[..]));
        assert_eq!(u.get(b"zz").await.unwrap(), None);
        assert_eq!(snap.gets.load(Ordering::SeqCst), 2);
    });
    assert!(u.has_presume_key_not_exists(b"c"));
    assert!(!u.has_presume_key_not_exists(b"a"));
}

fn expected(
    buf: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    snap: &BTreeMap<Vec<u8>, Vec<u8>>,
    lo: &[u8],
    hi: &[u8],
) -> Vec<(String, String)> {
    let mut m: BTreeMap<Vec<u8>, Vec<u8>> = snap.clone();
    for (k, v) in buf {
        match v {
            Some(v) => m.insert(k.clone(), v.clone()),
            None => m.remove(k),
        };
    }
    m.into_iter()
        .filter(|(k, _)| &k[..] >= lo && (hi.is_empty() || &k[..] < hi))
        .map(|(k, v)| (s(&k), s(&v)))
        .collect()
}

#[test]
fn union_iter_matches_overlay_in_both_directions_for_every_batch_size() {
    let mut x: u32 = 12345;
    let mut rnd = move || {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        (x >> 8) % 1000
    };
    let mut snap = BTreeMap::new();
    for _ in 0..120 {
        let k = format!("k{:03}", rnd() % 200);
        snap.insert(k.into_bytes(), format!("s{}", rnd()).into_bytes());
    }
    let mut buf = MemBuffer::new();
    let mut model: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    for _ in 0..80 {
        let k = format!("k{:03}", rnd() % 200).into_bytes();
        if rnd() % 3 == 0 {
            buf.delete(&k).unwrap();
            model.insert(k, None);
        } else {
            let v = format!("b{}", rnd()).into_bytes();
            buf.set(&k, &v).unwrap();
            model.insert(k, Some(v));
        }
    }
    let bounds: &[(&[u8], &[u8])] = &[
        (b"", b""),
        (b"k050", b"k150"),
        (b"k0", b"k1"),
        (b"k199", b""),
        (b"k300", b""),
        (b"", b"k000"),
    ];
    for batch in [1usize, 2, 3, 7, 256] {
        for (lo, hi) in bounds {
            let want = expected(&model, &snap, lo, hi);
            let u = UnionStore::new(&buf, &snap);
            let fwd = block_on(u.iter(lo, hi).with_batch_size(batch).collect_all()).unwrap();
            let fwd: Vec<_> = fwd.iter().map(|(k, v)| (s(k), s(v))).collect();
            assert_eq!(fwd, want, "forward batch {batch} [{}, {})", s(lo), s(hi));
            let rev =
                block_on(u.iter_reverse(lo, hi).with_batch_size(batch).collect_all()).unwrap();
            let mut rev: Vec<_> = rev.iter().map(|(k, v)| (s(k), s(v))).collect();
            rev.reverse();
            assert_eq!(rev, want, "reverse batch {batch} [{}, {})", s(lo), s(hi));
        }
    }
}

#[test]
fn union_iter_is_lazy() {
    let pairs: Vec<(String, String)> = (0..1000)
        .map(|i| (format!("k{i:04}"), format!("v{i}")))
        .collect();
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (&k[..], &v[..])).collect();
    let snap = Counting::new(&refs);
    let mut buf = MemBuffer::new();
    buf.delete(b"k0000").unwrap();
    buf.set(b"k0001", b"mine").unwrap();
    let u = UnionStore::new(&buf, &snap);
    block_on(async {
        let mut it = u.iter(b"", b"").with_batch_size(10);
        let (k, v) = it.next().await.unwrap().unwrap();
        assert_eq!((s(&k), s(&v)), ("k0001".into(), "mine".into()));
        assert_eq!(snap.scans.load(Ordering::SeqCst), 1);
        for _ in 0..9 {
            it.next().await.unwrap().unwrap();
        }
        // 10 results consumed 11 snapshot pairs (one hidden by the delete): two batches.
        assert_eq!(snap.scans.load(Ordering::SeqCst), 2);
        let mut rit = u.iter_reverse(b"", b"").with_batch_size(10);
        let (k, _) = rit.next().await.unwrap().unwrap();
        assert_eq!(s(&k), "k0999");
        assert_eq!(snap.scans.load(Ordering::SeqCst), 3);
    });
}

/// A source that ignores the bounds it is given must not make the merge loop or disorder.
struct Broken;

impl SnapshotSource for Broken {
    type Error = std::convert::Infallible;
    fn get(&self, _: &[u8]) -> impl Future<Output = Result<Option<Vec<u8>>, Self::Error>> + Send {
        std::future::ready(Ok(None))
    }
    fn scan(
        &self,
        _: &[u8],
        _: &[u8],
        limit: usize,
        _: bool,
    ) -> impl Future<Output = Result<Vec<KvPair>, Self::Error>> + Send {
        let v = (0..limit)
            .map(|i| (vec![b'a' + (i % 3) as u8], b"x".to_vec()))
            .collect();
        std::future::ready(Ok(v))
    }
}

#[test]
fn misbehaving_snapshot_terminates() {
    let buf = MemBuffer::new();
    let u = UnionStore::new(&buf, &Broken);
    let fwd = block_on(u.iter(b"", b"").with_batch_size(3).collect_all()).unwrap();
    assert!(fwd.len() <= 3);
    let rev = block_on(u.iter_reverse(b"", b"").with_batch_size(3).collect_all()).unwrap();
    assert!(rev.len() <= 3);
}

// ---- mutation lowering ----

#[derive(Clone, Copy, Debug)]
enum V {
    FlagsOnly,
    Value,
    Tombstone,
}

/// One row: entry shape, flags ops, pessimistic?, expected op (None = skipped), expected
/// pessimistic action.
#[test]
fn lowering_table() {
    use FlagsOp::*;
    #[allow(clippy::type_complexity)]
    let rows: &[(V, &[FlagsOp], bool, Option<Op>, PessimisticAction)] = &[
        (
            V::FlagsOnly,
            &[SetNeedLocked],
            false,
            None,
            PessimisticAction::SkipPessimisticCheck,
        ),
        (
            V::FlagsOnly,
            &[SetKeyLocked],
            true,
            Some(Op::Lock),
            PessimisticAction::DoPessimisticCheck,
        ),
        (
            V::FlagsOnly,
            &[SetKeyLocked, SetKeyLockedInShareMode],
            true,
            Some(Op::SharedLock),
            PessimisticAction::DoPessimisticCheck,
        ),
        (
            V::Value,
            &[],
            false,
            Some(Op::Put),
            PessimisticAction::SkipPessimisticCheck,
        ),
        (
            V::Value,
            &[SetPresumeKeyNotExists],
            false,
            Some(Op::Insert),
            PessimisticAction::SkipPessimisticCheck,
        ),
        (
            V::Value,
            &[SetPreviousPresumeKNE],
            true,
            Some(Op::Insert),
            PessimisticAction::SkipPessimisticCheck,
        ),
        (
            V::Value,
            &[SetKeyLocked],
            true,
            Some(Op::Put),
            PessimisticAction::DoPessimisticCheck,
        ),
        // A locked key in an optimistic transaction is not a pessimistic lock.
        (
            V::Value,
            &[SetKeyLocked],
            false,
            Some(Op::Put),
            PessimisticAction::SkipPessimisticCheck,
        ),
        (
            V::Value,
            &[SetNeedConstraintCheckInPrewrite],
            true,
            Some(Op::Put),
            PessimisticAction::DoConstraintCheck,
        ),
        (
            V::Tombstone,
            &[],
            true,
            Some(Op::Del),
            PessimisticAction::SkipPessimisticCheck,
        ),
        (
            V::Tombstone,
            &[SetPresumeKeyNotExists],
            false,
            Some(Op::CheckNotExists),
            PessimisticAction::SkipPessimisticCheck,
        ),
        // Pessimistic: presume-not-exists deletes are plain deletes.
        (
            V::Tombstone,
            &[SetPresumeKeyNotExists],
            true,
            Some(Op::Del),
            PessimisticAction::SkipPessimisticCheck,
        ),
        (
            V::Tombstone,
            &[SetNewlyInserted],
            true,
            None,
            PessimisticAction::SkipPessimisticCheck,
        ),
        (
            V::Tombstone,
            &[SetNewlyInserted, SetKeyLocked],
            true,
            Some(Op::Lock),
            PessimisticAction::DoPessimisticCheck,
        ),
    ];
    for (i, (shape, ops, pessimistic, want_op, want_action)) in rows.iter().enumerate() {
        let mut buf = MemBuffer::new();
        // A plain put first so a primary always exists.
        buf.set(b"0primary", b"p").unwrap();
        match shape {
            V::FlagsOnly => buf.update_flags(b"k", ops).unwrap(),
            V::Value => buf.set_with_flags(b"k", b"v", ops).unwrap(),
            // Set the ops after the delete so the delete does not clear them.
            V::Tombstone => {
                buf.delete(b"k").unwrap();
                buf.update_flags(b"k", ops).unwrap();
            }
        }
        let opts = LoweringOptions {
            pessimistic: *pessimistic,
            ..Default::default()
        };
        let plan = lower_mutations(&mut buf, &opts, None).unwrap();
        assert_eq!(plan.primary, Some(0), "row {i}");
        let got = plan.mutations.iter().find(|m| m.key == "k");
        assert_eq!(got.map(|m| m.op), *want_op, "row {i}: {shape:?} {ops:?}");
        if let Some(m) = got {
            assert_eq!(m.pessimistic_action, *want_action, "row {i}");
            let want_value: &[u8] = if matches!(m.op, Op::Put | Op::Insert) {
                b"v"
            } else {
                b""
            };
            assert_eq!(m.value, want_value, "row {i}");
            let (proto, action) = m.clone().into_proto();
            assert_eq!((proto.op, action), (m.op as i32, *want_action));
        }
        if *want_op == Some(Op::CheckNotExists) {
            assert!(buf.get_flags(b"k").unwrap().has_prewrite_only(), "row {i}");
            assert!(got.unwrap().flags.has_prewrite_only());
        }
    }
}

#[test]
fn assertions_follow_flags_and_level() {
    use FlagsOp::*;
    let rows: &[(&[FlagsOp], AssertionLevel, Assertion)] = &[
        (&[], AssertionLevel::Strict, Assertion::None),
        (&[SetAssertExist], AssertionLevel::Strict, Assertion::Exist),
        (
            &[SetAssertNotExist],
            AssertionLevel::Fast,
            Assertion::NotExist,
        ),
        (&[SetAssertUnknown], AssertionLevel::Strict, Assertion::None),
        (&[SetAssertExist], AssertionLevel::Off, Assertion::None),
        (&[SetAssertNotExist], AssertionLevel::Off, Assertion::None),
    ];
    for (ops, level, want) in rows {
        let mut buf = MemBuffer::new();
        buf.set_with_flags(b"k", b"v", ops).unwrap();
        let opts = LoweringOptions {
            assertion_level: *level,
            ..Default::default()
        };
        let plan = lower_mutations(&mut buf, &opts, None).unwrap();
        assert_eq!(plan.mutations[0].assertion, *want, "{ops:?} {level:?}");
        assert_eq!(plan.mutations[0].to_proto().assertion, *want as i32);
    }
}

#[test]
fn assertion_checked_against_pessimistic_lock_results() {
    use FlagsOp::*;
    let rows: &[(&[FlagsOp], Option<Assertion>)] = &[
        (
            &[SetKeyLocked, SetKeyLockedValueExists, SetAssertNotExist],
            Some(Assertion::NotExist),
        ),
        (
            &[SetKeyLocked, SetKeyLockedValueNotExists, SetAssertExist],
            Some(Assertion::Exist),
        ),
        (
            &[SetKeyLocked, SetKeyLockedValueExists, SetAssertExist],
            None,
        ),
        (&[SetKeyLocked, SetAssertNotExist], None),
        // Not locked: nothing to compare with.
        (&[SetAssertExist], None),
    ];
    for (ops, want) in rows {
        let mut buf = MemBuffer::new();
        buf.set_with_flags(b"k", b"v", ops).unwrap();
        let opts = LoweringOptions {
            pessimistic: true,
            assertion_level: AssertionLevel::Strict,
            ..Default::default()
        };
        let plan = lower_mutations(&mut buf, &opts, None).unwrap();
        let want = want.map(|assertion| AssertionConflict {
            key: b"k".to_vec(),
            assertion,
        });
        assert_eq!(plan.assertion_conflict, want, "{ops:?}");
        // With assertions off there is nothing to contradict.
        let off = LoweringOptions {
            pessimistic: true,
            ..Default::default()
        };
        assert_eq!(
            lower_mutations(&mut buf, &off, None)
                .unwrap()
                .assertion_conflict,
            None
        );
    }
}

#[test]
fn primary_selection_and_shared_lock_rules() {
    // CheckNotExists and shared locks are skipped when choosing the primary.
    let mut buf = MemBuffer::new();
    buf.delete_with_flags(b"a", &[FlagsOp::SetPresumeKeyNotExists])
        .unwrap();
    buf.update_flags(
        b"b",
        &[FlagsOp::SetKeyLocked, FlagsOp::SetKeyLockedInShareMode],
    )
    .unwrap();
    buf.set(b"c", b"v").unwrap();
    let plan = lower_mutations(&mut buf, &LoweringOptions::default(), None).unwrap();
    assert_eq!(plan.primary, Some(2));
    assert_eq!(plan.counts.check, 1);
    assert_eq!(plan.counts.shared_lock, 1);
    assert_eq!(plan.counts.lock, 1);
    assert_eq!(plan.counts.put, 1);
    assert_eq!(plan.size, 1 + 1 + 2);

    // Only shared locks: no primary possible.
    let mut buf = MemBuffer::new();
    buf.update_flags(
        b"b",
        &[FlagsOp::SetKeyLocked, FlagsOp::SetKeyLockedInShareMode],
    )
    .unwrap();
    let err = lower_mutations(&mut buf, &LoweringOptions::default(), None).unwrap_err();
    assert!(matches!(err, LowerError::SharedLockPrimary));

    // A given primary that is a shared lock is refused.
    let mut buf = MemBuffer::new();
    buf.update_flags(
        b"b",
        &[FlagsOp::SetKeyLocked, FlagsOp::SetKeyLockedInShareMode],
    )
    .unwrap();
    buf.set(b"c", b"v").unwrap();
    let opts = LoweringOptions {
        primary_key: Some(b"b"),
        ..Default::default()
    };
    assert!(matches!(
        lower_mutations(&mut buf, &opts, None),
        Err(LowerError::SharedLockPrimary)
    ));

    // Only CheckNotExists: allowed, no primary chosen (the committer falls back to the first key).
    let mut buf = MemBuffer::new();
    buf.delete_with_flags(b"a", &[FlagsOp::SetPresumeKeyNotExists])
        .unwrap();
    let plan = lower_mutations(&mut buf, &LoweringOptions::default(), None).unwrap();
    assert_eq!((plan.mutations.len(), plan.primary), (1, None));

    // Empty buffer.
    let mut buf = MemBuffer::new();
    let plan = lower_mutations(&mut buf, &LoweringOptions::default(), None).unwrap();
    assert!(plan.mutations.is_empty());
}

struct DropValuesStartingWithX;

impl KvFilter for DropValuesStartingWithX {
    fn is_unnecessary(
        &self,
        key: &[u8],
        value: &[u8],
        _: KeyFlags,
    ) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
        if key == b"boom" {
            return Err("filter failed".into());
        }
        Ok(value.first() == Some(&b'x') || key == b"gone")
    }
}

#[test]
fn kv_filter_rules() {
    let mut buf = MemBuffer::new();
    buf.set(b"a", b"keep").unwrap();
    buf.set(b"b", b"xdrop").unwrap();
    buf.set_with_flags(b"c", b"xlocked", &[FlagsOp::SetKeyLocked])
        .unwrap();
    buf.delete(b"gone").unwrap();
    let opts = LoweringOptions {
        pessimistic: true,
        ..Default::default()
    };
    let plan = lower_mutations(&mut buf, &opts, Some(&DropValuesStartingWithX)).unwrap();
    let got: Vec<_> = plan.mutations.iter().map(|m| (s(&m.key), m.op)).collect();
    assert_eq!(
        got,
        vec![("a".to_string(), Op::Put), ("c".to_string(), Op::Lock)]
    );
    buf.set(b"boom", b"v").unwrap();
    assert!(matches!(
        lower_mutations(&mut buf, &opts, Some(&DropValuesStartingWithX)),
        Err(LowerError::Filter(_))
    ));
}
