//! Property test: the membuffer against a model made of a plain ordered map and an undo log.
//!
//! The model writes one undo record per value write, `(key, previous value)`; a stage or a
//! checkpoint is a log length; cleanup pops records restoring previous values and, where the
//! previous value was "none", keeps only the persistent flags (dropping the key if none are
//! left), exactly the client-go rule. Flags are never versioned. Snapshot reads at a stage
//! boundary replay the log backwards on a copy of the values.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tikv_tower::txn::unionstore::{
    Checkpoint, FlagsOp, KeyFlags, MemBuffer, MemBufferError, SizeLimits, StagingHandle,
};

const KEYS: &[&[u8]] = &[
    b"",
    b"a",
    b"a\0",
    b"ab",
    b"b",
    b"ba",
    b"c",
    b"prefix12",
    b"prefix12\0",
    b"prefix12a",
    b"prefix12ab",
    b"prefix12b",
    b"prefix13",
    b"z",
    b"zz\xff",
    b"\xff\xff",
];

const OPS: &[FlagsOp] = &[
    FlagsOp::SetPresumeKeyNotExists,
    FlagsOp::DelPresumeKeyNotExists,
    FlagsOp::SetKeyLocked,
    FlagsOp::DelKeyLocked,
    FlagsOp::SetNeedLocked,
    FlagsOp::SetKeyLockedValueExists,
    FlagsOp::SetKeyLockedValueNotExists,
    FlagsOp::SetPrewriteOnly,
    FlagsOp::SetNewlyInserted,
    FlagsOp::SetAssertExist,
    FlagsOp::SetAssertNotExist,
    FlagsOp::SetNeedConstraintCheckInPrewrite,
    FlagsOp::DelNeedConstraintCheckInPrewrite,
    FlagsOp::SetKeyLockedInShareMode,
    FlagsOp::SetPreviousPresumeKNE,
];

#[derive(Clone, Debug)]
enum Op {
    Set(usize, Vec<u8>, Vec<usize>),
    Delete(usize, Vec<usize>),
    UpdateFlags(usize, Vec<usize>),
    Staging,
    Release(usize),
    Cleanup(usize),
    Checkpoint,
    Revert(usize),
    Check(usize, usize),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let key = 0..KEYS.len();
    let ops = proptest::collection::vec(0..OPS.len(), 0..3);
    prop_oneof![
        6 => (key.clone(), proptest::collection::vec(any::<u8>(), 1..5), ops.clone())
            .prop_map(|(k, v, o)| Op::Set(k, v, o)),
        // Values around the inline limit (256 bytes): a key's first value is stored with the
        // key up to it and in the value log past it.
        1 => (key.clone(), 255usize..259, any::<u8>(), ops.clone())
            .prop_map(|(k, n, b, o)| Op::Set(k, vec![b; n], o)),
        2 => (key.clone(), ops.clone()).prop_map(|(k, o)| Op::Delete(k, o)),
        2 => (key.clone(), ops).prop_map(|(k, o)| Op::UpdateFlags(k, o)),
        2 => Just(Op::Staging),
        1 => (1usize..6).prop_map(Op::Release),
        1 => (1usize..6).prop_map(Op::Cleanup),
        1 => Just(Op::Checkpoint),
        1 => (0usize..8).prop_map(Op::Revert),
        1 => (0..KEYS.len(), 0..KEYS.len()).prop_map(|(a, b)| Op::Check(a, b)),
    ]
}

#[derive(Clone, Debug, PartialEq)]
struct MEntry {
    value: Option<Vec<u8>>,
    flags: KeyFlags,
}

#[derive(Default)]
struct Model {
    map: BTreeMap<Vec<u8>, MEntry>,
    log: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    stages: Vec<usize>,
    truncations: Vec<usize>,
    dirty: bool,
}

impl Model {
    fn write(&mut self, key: &[u8], value: Option<&[u8]>, ops: &[FlagsOp]) {
        if self.stages.is_empty() {
            self.dirty = true;
        }
        let e = self.map.entry(key.to_vec()).or_insert(MEntry {
            value: None,
            flags: KeyFlags::EMPTY,
        });
        let mut f = e.flags;
        if value.is_some() {
            f = f.apply_one(FlagsOp::DelNeedConstraintCheckInPrewrite);
        }
        f = f.apply(ops);
        e.flags = f;
        if !f.and_persistent().is_empty() {
            self.dirty = true;
        }
        if let Some(v) = value {
            let prev = e.value.replace(v.to_vec());
            self.log.push((key.to_vec(), prev));
        }
    }

    fn revert_to(&mut self, len: usize) {
        if self.log.len() <= len {
            return;
        }
        while self.log.len() > len {
            let (k, prev) = self.log.pop().expect("non-empty");
            let e = self.map.get_mut(&k).expect("logged key present");
            match prev {
                Some(v) => e.value = Some(v),
                None => {
                    e.value = None;
                    e.flags = e.flags.and_persistent();
                    if e.flags.is_empty() {
                        self.map.remove(&k);
                    }
                }
            }
        }
        self.truncations.push(len);
    }

    fn values_at(&self, len: usize) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let mut vals: BTreeMap<Vec<u8>, Option<Vec<u8>>> = self
            .map
            .iter()
            .map(|(k, e)| (k.clone(), e.value.clone()))
            .collect();
        for (k, prev) in self.log[len..].iter().rev() {
            vals.insert(k.clone(), prev.clone());
        }
        vals.into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect()
    }

    fn size(&self) -> u64 {
        self.map
            .iter()
            .map(|(k, e)| (k.len() + e.value.as_ref().map_or(0, |v| v.len())) as u64)
            .sum()
    }
}

fn in_range(k: &[u8], lo: &[u8], hi: &[u8]) -> bool {
    k >= lo && (hi.is_empty() || k < hi)
}

fn check(buf: &MemBuffer, m: &Model, lo: &[u8], hi: &[u8]) -> Result<(), TestCaseError> {
    prop_assert_eq!(buf.len(), m.map.len());
    prop_assert_eq!(buf.size(), m.size());
    prop_assert_eq!(buf.dirty(), m.dirty);
    prop_assert_eq!(buf.stage_depth(), m.stages.len());
    // Everything, with flags.
    let got: Vec<_> = buf
        .iter_with_flags(b"", b"")
        .map(|e| (e.key.to_vec(), e.value.map(|v| v.to_vec()), e.flags))
        .collect();
    let want: Vec<_> = m
        .map
        .iter()
        .map(|(k, e)| (k.clone(), e.value.clone(), e.flags))
        .collect();
    prop_assert_eq!(&got, &want);
    let mut got_rev: Vec<_> = buf
        .iter_reverse_with_flags(b"", b"")
        .map(|e| (e.key.to_vec(), e.value.map(|v| v.to_vec()), e.flags))
        .collect();
    got_rev.reverse();
    prop_assert_eq!(&got_rev, &want);
    // Point reads.
    for k in KEYS {
        let e = m.map.get(*k);
        prop_assert_eq!(buf.get(k), e.and_then(|e| e.value.as_deref()));
        prop_assert_eq!(buf.get_flags(k), e.map(|e| e.flags));
    }
    // Bounded value iteration, both directions.
    let want_vals: Vec<_> = m
        .map
        .iter()
        .filter(|(k, e)| e.value.is_some() && in_range(k, lo, hi))
        .map(|(k, e)| (k.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    let fwd: Vec<_> = buf
        .iter(lo, hi)
        .map(|e| (e.key.to_vec(), e.value.unwrap_or_default().to_vec()))
        .collect();
    prop_assert_eq!(&fwd, &want_vals);
    let mut rev: Vec<_> = buf
        .iter_reverse(lo, hi)
        .map(|e| (e.key.to_vec(), e.value.unwrap_or_default().to_vec()))
        .collect();
    rev.reverse();
    prop_assert_eq!(&rev, &want_vals);
    // Snapshot reads at the outermost stage boundary, and at every open stage.
    let snap_len = m.stages.first().copied().unwrap_or(m.log.len());
    let snap = m.values_at(snap_len);
    for k in KEYS {
        prop_assert_eq!(buf.snapshot_get(k), snap.get(*k).map(|v| &v[..]));
    }
    let want_snap: Vec<_> = snap
        .iter()
        .filter(|(k, _)| in_range(k, lo, hi))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let got_snap: Vec<_> = buf
        .snapshot_iter(lo, hi)
        .map(|e| (e.key.to_vec(), e.value.unwrap_or_default().to_vec()))
        .collect();
    prop_assert_eq!(&got_snap, &want_snap);
    let mut got_snap_rev: Vec<_> = buf
        .snapshot_iter_reverse(lo, hi)
        .map(|e| (e.key.to_vec(), e.value.unwrap_or_default().to_vec()))
        .collect();
    got_snap_rev.reverse();
    prop_assert_eq!(&got_snap_rev, &want_snap);
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut buf = MemBuffer::with_limits(SizeLimits::UNLIMITED);
    let mut m = Model::default();
    let mut handles: Vec<StagingHandle> = Vec::new();
    let mut cps: Vec<(Checkpoint, usize, usize)> = Vec::new();
    for op in ops {
        match op {
            Op::Set(k, v, o) => {
                let o: Vec<_> = o.iter().map(|i| OPS[*i]).collect();
                buf.set_with_flags(KEYS[k], &v, &o).expect("set");
                m.write(KEYS[k], Some(&v), &o);
            }
            Op::Delete(k, o) => {
                let o: Vec<_> = o.iter().map(|i| OPS[*i]).collect();
                buf.delete_with_flags(KEYS[k], &o).expect("delete");
                m.write(KEYS[k], Some(&[]), &o);
            }
            Op::UpdateFlags(k, o) => {
                let o: Vec<_> = o.iter().map(|i| OPS[*i]).collect();
                buf.update_flags(KEYS[k], &o).expect("update flags");
                m.write(KEYS[k], None, &o);
            }
            Op::Staging => {
                let h = buf.staging();
                m.stages.push(m.log.len());
                prop_assert_eq!(h.depth(), m.stages.len());
                if handles.len() < h.depth() {
                    handles.push(h);
                }
            }
            Op::Release(d) => {
                let Some(&h) = handles.get(d - 1) else {
                    continue;
                };
                let r = buf.release(h);
                if d == m.stages.len() {
                    prop_assert!(r.is_ok());
                    if d == 1 && m.stages[0] != m.log.len() {
                        m.dirty = true;
                    }
                    m.stages.pop();
                } else {
                    let is_err = matches!(r, Err(MemBufferError::NotInnermostStage { .. }));
                    prop_assert!(is_err);
                }
            }
            Op::Cleanup(d) => {
                let Some(&h) = handles.get(d - 1) else {
                    continue;
                };
                let r = buf.cleanup(h);
                if d == m.stages.len() {
                    prop_assert!(r.is_ok());
                    let at = m.stages.pop().expect("stage");
                    m.revert_to(at);
                } else if d > m.stages.len() {
                    prop_assert!(r.is_ok());
                } else {
                    prop_assert!(r.is_err());
                }
            }
            Op::Checkpoint => {
                let cp = buf.checkpoint();
                cps.push((cp, m.log.len(), m.truncations.len()));
            }
            Op::Revert(i) => {
                let Some(&(cp, len, epoch)) = cps.get(i) else {
                    continue;
                };
                let floor = m.stages.last().copied().unwrap_or(0);
                let stale = m.truncations[epoch..].iter().any(|&t| t < len);
                let valid = len <= m.log.len() && len >= floor && !stale;
                let r = buf.revert_to_checkpoint(&cp);
                prop_assert_eq!(r.is_ok(), valid, "checkpoint validity");
                if valid {
                    m.revert_to(len);
                }
            }
            Op::Check(a, b) => {
                let (lo, hi) = (KEYS[a.min(b)], KEYS[a.max(b)]);
                check(&buf, &m, lo, hi)?;
            }
        }
        check(&buf, &m, b"", b"")?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn membuffer_matches_model(ops in proptest::collection::vec(op_strategy(), 1..80)) {
        run(ops)?;
    }
}

/// A long deterministic run with many keys, crossing several arena blocks and tree levels.
#[test]
fn long_run_many_keys() {
    let mut buf = MemBuffer::with_limits(SizeLimits::UNLIMITED);
    let mut m = Model::default();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut hs = Vec::new();
    for round in 0..40 {
        hs.push(buf.staging());
        m.stages.push(m.log.len());
        for _ in 0..500 {
            let k = format!("key{:05}", next() % 3000).into_bytes();
            let v = vec![(next() % 255) as u8 + 1; (next() % 40) as usize + 1];
            buf.set(&k, &v).expect("set");
            m.write(&k, Some(&v), &[]);
        }
        let h = hs.pop().expect("stage");
        if round % 3 == 0 {
            buf.cleanup(h).expect("cleanup");
            let at = m.stages.pop().expect("stage");
            m.revert_to(at);
        } else {
            buf.release(h).expect("release");
            if m.stages.len() == 1 && m.stages[0] != m.log.len() {
                m.dirty = true;
            }
            m.stages.pop();
        }
        check(&buf, &m, b"key01", b"key02").expect("consistent");
    }
}
