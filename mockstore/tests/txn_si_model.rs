//! Snapshot isolation against a model.
//!
//! Random transactions (reads, buffered writes, then 2PC, async commit or
//! 1PC, or an abort) run against the engine, interleaved step by step by a
//! random schedule (proptest) or truly concurrently on threads (stress
//! test), with timestamps from one counter (the TSO). From the recorded
//! history we check:
//! - consistent snapshot / no dirty read: every successful read at
//!   `start_ts` returns the value of the committed write with the greatest
//!   `commit_ts <= start_ts` (aborted and unfinished writes are never seen);
//! - no lost update: two committed transactions that wrote a common key do
//!   not overlap (`a.commit <= b.start || b.commit <= a.start`);
//! - the final state equals the model's, and no lock is left behind.
//!
//! A read that meets a lock aborts its transaction (the model client does
//! not resolve locks), so every transaction finishes.

mod txn_util;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use proptest::prelude::*;
use tikv_tower_mockstore::mvcc::{ConcurrencyManager, TxnEngine};
use tikv_tower_proto::kvrpcpb;
use txn_util::{prewrite_req, put, ALL};

const KEYS: [&[u8]; 4] = [b"k0", b"k1", b"k2", b"k3"];

#[derive(Clone, Copy, Debug)]
enum TxnOp {
    Read(usize),
    Write(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    TwoPc,
    Async,
    OnePc,
}

#[derive(Clone, Debug)]
struct TxnSpec {
    ops: Vec<TxnOp>,
    mode: Mode,
    abort: bool,
}

/// What a transaction did, for the checks.
#[derive(Clone, Debug, Default)]
struct Record {
    start_ts: u64,
    commit_ts: Option<u64>,
    writes: Vec<(usize, Vec<u8>)>,
    reads: Vec<(usize, Option<Vec<u8>>)>,
}

#[derive(Default)]
struct TxnState {
    step: usize,
    done: bool,
    aborted: bool,
    prewritten: bool,
    async_commit_ts: u64,
    rec: Record,
}

struct World {
    e: TxnEngine,
    cm: ConcurrencyManager,
    tso: Arc<AtomicU64>,
}

impl World {
    fn new() -> World {
        World {
            e: TxnEngine::default(),
            cm: ConcurrencyManager::new(),
            tso: Arc::new(AtomicU64::new(0)),
        }
    }

    fn tso(&self) -> u64 {
        self.tso.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn write_keys(st: &TxnState) -> Vec<Vec<u8>> {
        st.rec
            .writes
            .iter()
            .map(|(k, _)| KEYS[*k].to_vec())
            .collect()
    }

    fn rollback(&self, st: &mut TxnState) {
        let keys = Self::write_keys(st);
        if !keys.is_empty() {
            let r = self.e.batch_rollback(
                &self.cm,
                &kvrpcpb::BatchRollbackRequest {
                    context: None,
                    start_version: st.rec.start_ts,
                    keys: keys.into_iter().map(Into::into).collect(),
                    ..Default::default()
                },
                ALL,
            );
            assert!(r.error.is_none(), "rollback failed: {:?}", r.error);
        }
        st.aborted = true;
        st.done = true;
    }

    /// Advances transaction `id` by one step.
    fn step(&self, id: usize, spec: &TxnSpec, st: &mut TxnState) {
        if st.done {
            return;
        }
        let n = spec.ops.len();
        let s = st.step;
        st.step += 1;
        if s == 0 {
            st.rec.start_ts = self.tso();
        } else if s <= n {
            match spec.ops[s - 1] {
                TxnOp::Read(k) => {
                    let r = self.e.get(
                        &self.cm,
                        &kvrpcpb::GetRequest {
                            context: None,
                            key: KEYS[k].to_vec().into(),
                            version: st.rec.start_ts,
                            need_commit_ts: false,
                        },
                        ALL,
                    );
                    match r.error {
                        Some(e) => {
                            assert!(e.locked.is_some(), "unexpected read error {e:?}");
                            self.rollback(st);
                        }
                        None => st.rec.reads.push((
                            k,
                            if r.not_found {
                                None
                            } else {
                                Some(r.value.into())
                            },
                        )),
                    }
                }
                TxnOp::Write(k) => {
                    let v = format!("t{id}-k{k}-s{s}").into_bytes();
                    st.rec.writes.retain(|(kk, _)| *kk != k);
                    st.rec.writes.push((k, v));
                }
            }
        } else if s == n + 1 {
            if st.rec.writes.is_empty() {
                st.done = true;
                return;
            }
            let muts = st
                .rec
                .writes
                .iter()
                .map(|(k, v)| put(KEYS[*k], v))
                .collect();
            let primary = KEYS[st.rec.writes[0].0];
            let mut req = prewrite_req(muts, primary, st.rec.start_ts);
            match spec.mode {
                Mode::TwoPc => {}
                Mode::Async => {
                    req.use_async_commit = true;
                    req.secondaries = st.rec.writes[1..]
                        .iter()
                        .map(|(k, _)| KEYS[*k].to_vec())
                        .map(Into::into)
                        .collect();
                }
                Mode::OnePc => req.try_one_pc = true,
            }
            let r = self.e.prewrite(&self.cm, &req, ALL);
            if !r.errors.is_empty() {
                for e in &r.errors {
                    assert!(
                        e.locked.is_some() || e.conflict.is_some(),
                        "unexpected prewrite error {e:?}"
                    );
                }
                self.rollback(st);
                return;
            }
            st.prewritten = true;
            if r.one_pc_commit_ts != 0 {
                st.rec.commit_ts = Some(r.one_pc_commit_ts);
                st.done = true;
            }
            st.async_commit_ts = r.min_commit_ts;
        } else {
            if spec.abort {
                self.rollback(st);
                return;
            }
            let commit_ts = if st.async_commit_ts != 0 {
                st.async_commit_ts
            } else {
                self.tso()
            };
            let keys = Self::write_keys(st);
            // Primary first, then the secondaries.
            for chunk in [&keys[..1], &keys[1..]] {
                if chunk.is_empty() {
                    continue;
                }
                let r = self.e.commit(
                    &self.cm,
                    &kvrpcpb::CommitRequest {
                        context: None,
                        start_version: st.rec.start_ts,
                        keys: chunk.iter().cloned().map(Into::into).collect(),
                        commit_version: commit_ts,
                        ..Default::default()
                    },
                    ALL,
                );
                assert!(r.error.is_none(), "commit failed: {:?}", r.error);
            }
            st.rec.commit_ts = Some(commit_ts);
            st.done = true;
        }
    }

    /// Runs the checks over finished records.
    fn check(&self, records: &[Record]) {
        let committed: Vec<&Record> = records.iter().filter(|r| r.commit_ts.is_some()).collect();
        // Consistent snapshots, no dirty reads.
        for r in records {
            for (k, got) in &r.reads {
                let want = committed
                    .iter()
                    .filter(|c| c.commit_ts.unwrap() <= r.start_ts)
                    .filter_map(|c| {
                        c.writes
                            .iter()
                            .find(|(kk, _)| kk == k)
                            .map(|(_, v)| (c.commit_ts.unwrap(), v.clone()))
                    })
                    .max_by_key(|(ts, _)| *ts)
                    .map(|(_, v)| v);
                assert_eq!(
                    got, &want,
                    "read of k{k} at {} (records {records:?})",
                    r.start_ts
                );
            }
        }
        // No lost updates.
        for (i, a) in committed.iter().enumerate() {
            for b in &committed[i + 1..] {
                let common = a
                    .writes
                    .iter()
                    .any(|(k, _)| b.writes.iter().any(|(kk, _)| kk == k));
                if common {
                    let (ac, bc) = (a.commit_ts.unwrap(), b.commit_ts.unwrap());
                    assert!(
                        ac <= b.start_ts || bc <= a.start_ts,
                        "overlapping committed writers {a:?} {b:?}"
                    );
                }
            }
        }
        // Final state and no leftover locks.
        let ts = self.tso() + 1_000;
        let mut last: HashMap<usize, (u64, Vec<u8>)> = HashMap::new();
        for c in &committed {
            for (k, v) in &c.writes {
                let ct = c.commit_ts.unwrap();
                if last.get(k).is_none_or(|(t, _)| *t < ct) {
                    last.insert(*k, (ct, v.clone()));
                }
            }
        }
        for (k, key) in KEYS.iter().enumerate() {
            assert!(
                self.e.store().load_lock(key).is_none(),
                "leftover lock on k{k}"
            );
            let r = self.e.get(
                &self.cm,
                &kvrpcpb::GetRequest {
                    context: None,
                    key: key.to_vec().into(),
                    version: ts,
                    need_commit_ts: false,
                },
                ALL,
            );
            let got = if r.not_found { None } else { Some(r.value) };
            assert_eq!(
                got,
                last.get(&k).map(|(_, v)| v.clone().into()),
                "final value of k{k}"
            );
        }
    }
}

fn txn_spec() -> impl Strategy<Value = TxnSpec> {
    let op = prop_oneof![
        (0..KEYS.len()).prop_map(TxnOp::Read),
        (0..KEYS.len()).prop_map(TxnOp::Write)
    ];
    (
        proptest::collection::vec(op, 0..5),
        prop_oneof![Just(Mode::TwoPc), Just(Mode::Async), Just(Mode::OnePc)],
        proptest::bool::weighted(0.15),
    )
        .prop_map(|(ops, mode, abort)| TxnSpec { ops, mode, abort })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn interleaved_histories_are_snapshot_isolated(
        specs in proptest::collection::vec(txn_spec(), 2..6),
        schedule in proptest::collection::vec(0usize..6, 0..60),
    ) {
        let w = World::new();
        let mut states: Vec<TxnState> = specs.iter().map(|_| TxnState::default()).collect();
        for id in schedule {
            let id = id % specs.len();
            w.step(id, &specs[id], &mut states[id]);
        }
        // Finish everyone, in order.
        for (id, spec) in specs.iter().enumerate() {
            while !states[id].done {
                w.step(id, spec, &mut states[id]);
            }
        }
        let records: Vec<Record> = states.into_iter().map(|s| s.rec).collect();
        w.check(&records);
    }
}

/// Threads run random transactions concurrently; the history must still be
/// snapshot-isolated (exercises latches and the async-commit memory locks).
#[test]
fn concurrent_threads_are_snapshot_isolated() {
    let w = Arc::new(World::new());
    let threads = 4;
    let per_thread = 150;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let w = w.clone();
            std::thread::spawn(move || {
                let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ (t as u64 + 1);
                let mut rnd = move |n: usize| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed % n as u64) as usize
                };
                let mut out = Vec::new();
                for i in 0..per_thread {
                    let ops = (0..rnd(5))
                        .map(|_| {
                            if rnd(2) == 0 {
                                TxnOp::Read(rnd(KEYS.len()))
                            } else {
                                TxnOp::Write(rnd(KEYS.len()))
                            }
                        })
                        .collect();
                    let mode = [Mode::TwoPc, Mode::Async, Mode::OnePc][rnd(3)];
                    let spec = TxnSpec {
                        ops,
                        mode,
                        abort: rnd(8) == 0,
                    };
                    let mut st = TxnState::default();
                    while !st.done {
                        w.step(t * 10_000 + i, &spec, &mut st);
                    }
                    out.push(st.rec);
                }
                out
            })
        })
        .collect();
    let mut records = Vec::new();
    for h in handles {
        records.extend(h.join().expect("thread"));
    }
    let committed = records.iter().filter(|r| r.commit_ts.is_some()).count();
    assert!(committed > 0);
    w.check(&records);
}
