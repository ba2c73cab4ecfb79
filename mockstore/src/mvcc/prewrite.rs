//! `KvPrewrite` and `KvFlush` (TiKV `src/storage/txn/actions/prewrite.rs`,
//! `src/storage/txn/commands/{prewrite,flush}.rs`).
//!
//! Per mutation (`prewrite_key`, TiKV `prewrite_with_generation`): check
//! the present lock (another txn's → `KeyIsLocked`, or
//! `PessimisticLockNotFound` under `DO_PESSIMISTIC_CHECK`; our own
//! pessimistic lock is upgraded; our own prewrite lock is a duplicate),
//! amend a missing pessimistic lock, check newer versions / constraints,
//! check the assertion, then write the lock, computing async-commit / 1PC
//! timestamps against `max_ts` under the in-memory lock table.
//!
//! Per request: `KeyIsLocked` errors are collected for all keys and nothing
//! is written if any; other errors stop the request; a conflict on a key the
//! transaction already committed turns the request into a success
//! (`check_committed_record_on_err`); `CommitTsTooLarge` falls back to 2PC.

use bytes::Bytes;
use tikv_tower_proto::kvrpcpb::{
    self, prewrite_request::PessimisticAction, Assertion, AssertionLevel, Op,
};

use super::errors::{TxnError, TxnResult};
use super::txn::MvccTxn;
use super::types::{Lock, LockType, Ts, Write, WriteType};
use super::{ConcurrencyManager, RegionRange, TxnEngine};

/// How the transaction commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CommitKind {
    TwoPc,
    Async(Ts),
    OnePc(Ts),
}

/// Request-wide properties (TiKV `TransactionProperties`).
struct Props<'a> {
    start_ts: Ts,
    /// 0 for optimistic transactions.
    for_update_ts: Ts,
    pessimistic: bool,
    skip_constraint_check: bool,
    commit_kind: CommitKind,
    primary: &'a [u8],
    txn_size: u64,
    lock_ttl: u64,
    min_commit_ts: Ts,
    is_retry_request: bool,
    assertion_level: AssertionLevel,
    generation: u64,
}

enum LockStatus {
    Locked(Ts),
    Pessimistic(Ts),
    None,
}

/// A 1PC lock kept in memory until the request commits it directly.
struct OnePcLock {
    key: Vec<u8>,
    lock: Lock,
    had_pessimistic: bool,
}

struct Mut<'a> {
    key: &'a [u8],
    value: Option<Vec<u8>>,
    lock_type: Option<LockType>,
    should_not_exist: bool,
    should_not_write: bool,
    assertion: Assertion,
    action: PessimisticAction,
    lock_ttl: u64,
    min_commit_ts: Ts,
}

fn pessimistic_lock_not_found(start_ts: Ts, key: &[u8], reason: &'static str) -> TxnError {
    TxnError::PessimisticLockNotFound {
        start_ts,
        key: key.to_vec(),
        reason,
    }
}

impl Mut<'_> {
    fn skip_constraint_check(&self, p: &Props<'_>) -> bool {
        if !p.pessimistic {
            return p.skip_constraint_check;
        }
        match self.action {
            PessimisticAction::DoPessimisticCheck => true,
            PessimisticAction::SkipPessimisticCheck => !p.is_retry_request,
            PessimisticAction::DoConstraintCheck => false,
        }
    }

    fn write_conflict(
        &self,
        p: &Props<'_>,
        w: &Write,
        commit_ts: Ts,
        reason: kvrpcpb::write_conflict::Reason,
    ) -> TxnError {
        TxnError::WriteConflict {
            start_ts: p.start_ts,
            conflict_start_ts: w.start_ts,
            conflict_commit_ts: commit_ts,
            key: self.key.to_vec(),
            primary: p.primary.to_vec(),
            reason,
        }
    }

    /// TiKV `PrewriteMutation::check_lock`.
    fn check_lock(
        &mut self,
        p: &Props<'_>,
        lock: Lock,
        expected: Option<Ts>,
    ) -> TxnResult<LockStatus> {
        if lock.ts != p.start_ts {
            if self.action == PessimisticAction::DoPessimisticCheck {
                return Err(pessimistic_lock_not_found(
                    p.start_ts,
                    self.key,
                    "LockTsMismatch",
                ));
            }
            let mut info = lock.lock_info(self.key);
            if p.pessimistic {
                info.lock_ttl = 0;
            }
            return Err(TxnError::locked(info));
        }
        if lock.is_pessimistic_lock() {
            if !p.pessimistic {
                return Err(TxnError::LockTypeNotMatch {
                    start_ts: p.start_ts,
                    key: self.key.to_vec(),
                    pessimistic: true,
                });
            }
            if let Some(ts) = expected {
                if lock.for_update_ts != ts {
                    return Err(pessimistic_lock_not_found(
                        p.start_ts,
                        self.key,
                        "LockForUpdateTsMismatch",
                    ));
                }
            }
            self.lock_ttl = self.lock_ttl.max(lock.ttl);
            self.min_commit_ts = self.min_commit_ts.max(lock.min_commit_ts);
            return Ok(LockStatus::Pessimistic(lock.for_update_ts));
        }
        if p.generation > 0 && lock.generation >= p.generation {
            return Err(TxnError::GenerationOutOfOrder {
                generation: p.generation,
                key: self.key.to_vec(),
                lock_generation: lock.generation,
            });
        }
        if lock.generation > 0 && self.should_not_exist && lock.lock_type == LockType::Put {
            return Err(TxnError::AlreadyExist {
                key: self.key.to_vec(),
            });
        }
        Ok(LockStatus::Locked(if lock.use_async_commit {
            lock.min_commit_ts
        } else {
            0
        }))
    }

    /// TiKV `check_for_newer_version` (+ `check_data_constraint`).
    fn check_for_newer_version(
        &self,
        txn: &MvccTxn<'_>,
        p: &Props<'_>,
    ) -> TxnResult<Option<(Ts, Write)>> {
        use kvrpcpb::write_conflict::Reason;
        let mut seek_ts = u64::MAX;
        while let Some((commit_ts, w)) = txn.seek_write(self.key, seek_ts) {
            if commit_ts == p.start_ts
                && (w.write_type == WriteType::Rollback || w.has_overlapped_rollback)
            {
                return Err(self.write_conflict(p, &w, commit_ts, Reason::SelfRolledBack));
            }
            if !p.pessimistic {
                if commit_ts > p.start_ts {
                    return Err(self.write_conflict(p, &w, commit_ts, Reason::Optimistic));
                }
            } else {
                if self.action == PessimisticAction::DoConstraintCheck && commit_ts > p.start_ts {
                    return Err(self.write_conflict(p, &w, commit_ts, Reason::LazyUniquenessCheck));
                }
                if commit_ts > p.for_update_ts {
                    if w.write_type == WriteType::Rollback {
                        seek_ts = commit_ts - 1;
                        continue;
                    }
                    return Err(pessimistic_lock_not_found(
                        p.start_ts,
                        self.key,
                        "NonLockKeyConflict",
                    ));
                }
            }
            self.check_data_constraint(txn, &w, commit_ts)?;
            return Ok(Some((commit_ts, w)));
        }
        Ok(None)
    }

    /// TiKV `check_data_constraint`.
    fn check_data_constraint(&self, txn: &MvccTxn<'_>, w: &Write, commit_ts: Ts) -> TxnResult<()> {
        if !self.should_not_exist || w.write_type == WriteType::Delete {
            return Ok(());
        }
        let exists = match w.write_type {
            WriteType::Put => true,
            _ => newest_data(txn, self.key, commit_ts.saturating_sub(1))
                .is_some_and(|(_, w)| w.write_type == WriteType::Put),
        };
        if exists {
            return Err(TxnError::AlreadyExist {
                key: self.key.to_vec(),
            });
        }
        Ok(())
    }

    /// TiKV `check_assertion`.
    fn check_assertion(
        &self,
        txn: &MvccTxn<'_>,
        p: &Props<'_>,
        prev: &Option<(Ts, Write)>,
        loaded: bool,
    ) -> TxnResult<()> {
        if self.assertion == Assertion::None || p.assertion_level == AssertionLevel::Off {
            return Ok(());
        }
        if p.assertion_level != AssertionLevel::Strict && !loaded {
            return Ok(());
        }
        let need_reload = !loaded || prev.as_ref().is_some_and(|(_, w)| !w.is_data());
        let data = if need_reload {
            let ts = prev.as_ref().map_or(u64::MAX, |(c, _)| *c);
            newest_data(txn, self.key, ts).filter(|(_, w)| w.write_type == WriteType::Put)
        } else {
            prev.clone()
        };
        let fail = |s: Ts, c: Ts| TxnError::AssertionFailed {
            start_ts: p.start_ts,
            key: self.key.to_vec(),
            assertion: self.assertion,
            existing_start_ts: s,
            existing_commit_ts: c,
        };
        let err = match (self.assertion, &data) {
            (Assertion::Exist, None) => Some(fail(0, 0)),
            (Assertion::Exist, Some((c, w))) if w.write_type == WriteType::Delete => {
                Some(fail(w.start_ts, *c))
            }
            (Assertion::NotExist, Some((c, w))) if w.write_type == WriteType::Put => {
                Some(fail(w.start_ts, *c))
            }
            _ => None,
        };
        if let Some(e) = err {
            if self.skip_constraint_check(p) {
                self.check_for_newer_version(txn, p)?;
            }
            return Err(e);
        }
        Ok(())
    }
}

/// The newest Put/Delete record at or below `ts`.
fn newest_data(txn: &MvccTxn<'_>, key: &[u8], ts: Ts) -> Option<(Ts, Write)> {
    txn.store().with_key(key, |d| {
        d.and_then(|d| {
            d.writes_from(ts)
                .find(|(_, w)| w.is_data())
                .map(|(c, w)| (c, w.clone()))
        })
    })
}

/// Prewrites one mutation (TiKV `prewrite_with_generation`). Returns the
/// key's min_commit_ts for async commit / 1PC (0 otherwise).
#[allow(clippy::too_many_arguments)]
fn prewrite_key(
    txn: &mut MvccTxn<'_>,
    cm: &ConcurrencyManager,
    p: &Props<'_>,
    m: &kvrpcpb::Mutation,
    secondaries: Option<&[Bytes]>,
    action: PessimisticAction,
    expected_for_update_ts: Option<Ts>,
    one_pc_locks: &mut Vec<OnePcLock>,
) -> TxnResult<Ts> {
    let op = Op::try_from(m.op).map_err(|_| TxnError::Other(format!("invalid op {}", m.op)))?;
    let (lock_type, should_not_exist, should_not_write) = match op {
        Op::Put => (Some(LockType::Put), false, false),
        Op::Insert => (Some(LockType::Put), true, false),
        Op::Del => (Some(LockType::Delete), false, false),
        Op::Lock => (Some(LockType::Lock), false, false),
        Op::CheckNotExists => (None, true, true),
        other => {
            return Err(TxnError::Other(format!(
                "unsupported mutation op {other:?} in prewrite"
            )))
        }
    };
    if p.pessimistic && should_not_write {
        return Err(TxnError::Other(
            "cannot handle checkNotExists in pessimistic prewrite".into(),
        ));
    }
    let mut mu = Mut {
        key: &m.key,
        value: (lock_type == Some(LockType::Put)).then(|| m.value.to_vec()),
        lock_type,
        should_not_exist,
        should_not_write,
        assertion: Assertion::try_from(m.assertion).unwrap_or(Assertion::None),
        action,
        lock_ttl: p.lock_ttl,
        min_commit_ts: p.min_commit_ts,
    };
    if should_not_exist {
        cm.update_max_ts(p.start_ts);
    }
    let mut lock_amended = false;
    let status = match txn.load_lock(&m.key) {
        Some(lock) => mu.check_lock(p, lock, expected_for_update_ts)?,
        None if action == PessimisticAction::DoPessimisticCheck => {
            // TiKV `amend_pessimistic_lock`.
            if let Some((commit_ts, _)) = txn.seek_write(&m.key, u64::MAX) {
                if commit_ts >= p.start_ts {
                    return Err(pessimistic_lock_not_found(
                        p.start_ts,
                        &m.key,
                        "LockMissingAmendFail",
                    ));
                }
            }
            lock_amended = true;
            LockStatus::None
        }
        None => LockStatus::None,
    };
    if p.generation == 0 {
        if let LockStatus::Locked(ts) = status {
            return Ok(ts);
        }
    }
    let (prev, loaded) = if !mu.skip_constraint_check(p) {
        (mu.check_for_newer_version(txn, p)?, true)
    } else {
        (None, false)
    };
    let subsequent_flush = p.generation > 0 && matches!(status, LockStatus::Locked(_));
    if !lock_amended && !subsequent_flush {
        mu.check_assertion(txn, p, &prev, loaded)?;
    }
    let need_min_commit_ts = matches!(p.commit_kind, CommitKind::Async(_) | CommitKind::OnePc(_));
    if mu.should_not_write {
        cm.update_max_ts(p.start_ts);
        return Ok(if need_min_commit_ts {
            p.min_commit_ts.max(p.start_ts + 1)
        } else {
            0
        });
    }
    write_lock(txn, cm, p, mu, status, secondaries, one_pc_locks)
}

/// TiKV `PrewriteMutation::write_lock` + `async_commit_timestamps`.
fn write_lock(
    txn: &mut MvccTxn<'_>,
    cm: &ConcurrencyManager,
    p: &Props<'_>,
    mu: Mut<'_>,
    status: LockStatus,
    secondaries: Option<&[Bytes]>,
    one_pc_locks: &mut Vec<OnePcLock>,
) -> TxnResult<Ts> {
    let mut try_one_pc = matches!(p.commit_kind, CommitKind::OnePc(_));
    let had_pessimistic = matches!(status, LockStatus::Pessimistic(_));
    let for_update_ts = match status {
        LockStatus::Pessimistic(l) => p.for_update_ts.max(l),
        _ => p.for_update_ts,
    };
    let Some(lock_type) = mu.lock_type else {
        return Ok(0);
    };
    let mut lock = Lock::new(lock_type, p.primary.to_vec(), p.start_ts, mu.lock_ttl);
    lock.value = mu.value;
    lock.for_update_ts = for_update_ts;
    lock.txn_size = p.txn_size;
    lock.min_commit_ts = mu.min_commit_ts;
    lock.generation = p.generation;
    if let Some(s) = secondaries {
        lock.use_async_commit = true;
        lock.secondaries = s.to_vec();
    } else if try_one_pc {
        lock.use_one_pc = true;
    }
    let res = if lock.use_async_commit || try_one_pc {
        let max_commit_ts = match p.commit_kind {
            CommitKind::Async(t) | CommitKind::OnePc(t) => t,
            CommitKind::TwoPc => 0,
        };
        let res = cm.lock_key_with(mu.key, |max_ts| {
            let min = max_ts.max(p.start_ts).max(p.for_update_ts) + 1;
            let min = min.max(lock.min_commit_ts);
            if max_commit_ts != 0 && min > max_commit_ts {
                return (None, Err(TxnError::CommitTsTooLarge { min_commit_ts: min }));
            }
            lock.min_commit_ts = min;
            (Some(lock.clone()), Ok(min))
        });
        match &res {
            Ok(_) => txn.mem_lock_keys.push(mu.key.to_vec()),
            Err(_) => {
                try_one_pc = false;
                lock.use_one_pc = false;
                lock.use_async_commit = false;
                lock.secondaries = Vec::new();
            }
        }
        res
    } else {
        Ok(0)
    };
    if try_one_pc {
        one_pc_locks.push(OnePcLock {
            key: mu.key.to_vec(),
            lock,
            had_pessimistic,
        });
    } else {
        txn.put_lock(mu.key, lock);
    }
    res
}

/// Turns kept 1PC locks into ordinary locks (TiKV `fallback_1pc_locks`).
fn fallback_1pc_locks(txn: &mut MvccTxn<'_>, locks: &mut Vec<OnePcLock>) {
    for mut l in locks.drain(..) {
        l.lock.use_one_pc = false;
        txn.put_lock(&l.key, l.lock);
    }
}

/// If the transaction already committed `key`, the failed prewrite is a
/// stale retry: succeed with that commit_ts (TiKV
/// `check_committed_record_on_err`).
fn check_committed_record_on_err(
    txn: &mut MvccTxn<'_>,
    key: &[u8],
    err: TxnError,
) -> TxnResult<Ts> {
    match txn.commit_record(key).committed_ts() {
        Some(commit_ts) => {
            txn.clear();
            Ok(commit_ts)
        }
        None => Err(err),
    }
}

enum Outcome {
    /// Written (or already committed); the final min_commit_ts.
    Done(Ts),
    /// Some keys are locked: nothing is written.
    Locked(Vec<TxnError>),
}

impl TxnEngine {
    /// `KvPrewrite` (TiKV `commands::Prewrite` / `PrewritePessimistic`).
    pub fn prewrite(
        &self,
        cm: &ConcurrencyManager,
        req: &kvrpcpb::PrewriteRequest,
        _region: RegionRange<'_>,
    ) -> kvrpcpb::PrewriteResponse {
        let ctx = req.context.clone().unwrap_or_default();
        let pessimistic = req.for_update_ts != 0;
        let mut secondary_keys: Option<&[Bytes]> =
            req.use_async_commit.then_some(&req.secondaries[..]);
        let mut try_one_pc = req.try_one_pc;
        let mut props = Props {
            start_ts: req.start_version,
            for_update_ts: req.for_update_ts,
            pessimistic,
            skip_constraint_check: req.skip_constraint_check,
            commit_kind: match (secondary_keys.is_some(), try_one_pc) {
                (_, true) => CommitKind::OnePc(req.max_commit_ts),
                (true, false) => CommitKind::Async(req.max_commit_ts),
                (false, false) => CommitKind::TwoPc,
            },
            primary: &req.primary_lock,
            txn_size: req.txn_size,
            lock_ttl: req.lock_ttl,
            min_commit_ts: req.min_commit_ts,
            is_retry_request: ctx.is_retry_request,
            assertion_level: AssertionLevel::try_from(req.assertion_level).unwrap_or_default(),
            generation: 0,
        };
        let keys: Vec<&[u8]> = req.mutations.iter().map(|m| m.key.as_ref()).collect();
        let mut resp = kvrpcpb::PrewriteResponse::default();
        let res = self.run_write(cm, &keys, req.start_version, |txn| {
            let mut async_pk = secondary_keys
                .filter(|s| !s.is_empty())
                .map(|_| req.primary_lock.as_ref());
            let mut final_ts: Ts = 0;
            let mut locks = Vec::new();
            let mut assertion_failure = None;
            let mut one_pc_locks = Vec::new();
            for (i, m) in req.mutations.iter().enumerate() {
                let action = req
                    .pessimistic_actions
                    .get(i)
                    .and_then(|a| PessimisticAction::try_from(*a).ok())
                    .unwrap_or(PessimisticAction::SkipPessimisticCheck);
                let expected = req
                    .for_update_ts_constraints
                    .iter()
                    .find(|c| c.index as usize == i)
                    .map(|c| c.expected_for_update_ts);
                let secondaries: Option<&[Bytes]> = secondary_keys.map(|s| {
                    if Some(m.key.as_ref()) == async_pk {
                        s
                    } else {
                        &[][..]
                    }
                });
                let need_min = secondaries.is_some() || try_one_pc;
                let r = prewrite_key(
                    txn,
                    cm,
                    &props,
                    m,
                    secondaries,
                    action,
                    expected,
                    &mut one_pc_locks,
                );
                let fallback = |props: &mut Props<'_>,
                                txn: &mut MvccTxn<'_>,
                                one_pc_locks: &mut Vec<OnePcLock>| {
                    props.commit_kind = CommitKind::TwoPc;
                    fallback_1pc_locks(txn, one_pc_locks);
                };
                match r {
                    Ok(ts) if !(need_min && ts == 0) => {
                        if need_min && final_ts < ts {
                            final_ts = ts;
                        }
                    }
                    Ok(_) => {
                        fallback(&mut props, txn, &mut one_pc_locks);
                        async_pk = None;
                        secondary_keys = None;
                        try_one_pc = false;
                        final_ts = 0;
                    }
                    Err(e @ TxnError::WriteConflict { .. })
                        if matches!(&e, TxnError::WriteConflict { start_ts, conflict_commit_ts, .. } if conflict_commit_ts > start_ts) =>
                    {
                        return check_committed_record_on_err(txn, &m.key, e).map(|ts| {
                            one_pc_locks.clear();
                            Outcome::Done(ts)
                        });
                    }
                    Err(e @ TxnError::PessimisticLockNotFound { .. }) => {
                        return check_committed_record_on_err(txn, &m.key, e).map(|ts| {
                            one_pc_locks.clear();
                            Outcome::Done(ts)
                        });
                    }
                    Err(e @ TxnError::CommitTsTooLarge { .. }) => {
                        if let Ok(ts) = check_committed_record_on_err(txn, &m.key, e) {
                            return Ok(Outcome::Done(ts));
                        }
                        fallback(&mut props, txn, &mut one_pc_locks);
                        async_pk = None;
                        secondary_keys = None;
                        try_one_pc = false;
                        final_ts = 0;
                    }
                    Err(e @ TxnError::KeyIsLocked(_)) => {
                        match check_committed_record_on_err(txn, &m.key, e) {
                            Ok(ts) => return Ok(Outcome::Done(ts)),
                            Err(e) => locks.push(e),
                        }
                    }
                    Err(e @ TxnError::AssertionFailed { .. }) => {
                        if assertion_failure.is_none() {
                            assertion_failure = Some(e);
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            if let Some(e) = assertion_failure {
                return Err(e);
            }
            if !locks.is_empty() {
                txn.clear();
                return Ok(Outcome::Locked(locks));
            }
            if try_one_pc {
                // TiKV `one_pc_commit`: write every 1PC lock as a record.
                for l in one_pc_locks.drain(..) {
                    if let Some(wt) = WriteType::from_lock_type(l.lock.lock_type) {
                        txn.put_write(&l.key, final_ts, Write::new(wt, l.lock.ts, l.lock.value.clone()));
                    }
                    if l.had_pessimistic {
                        txn.unlock_key(&l.key, final_ts);
                    }
                }
            }
            Ok(Outcome::Done(final_ts))
        });
        match res {
            Ok(Outcome::Done(ts)) => {
                if secondary_keys.is_some() {
                    resp.min_commit_ts = ts;
                }
                if try_one_pc {
                    resp.one_pc_commit_ts = ts;
                }
            }
            Ok(Outcome::Locked(locks)) => {
                resp.errors = locks.iter().map(TxnError::to_key_error).collect();
            }
            Err(e) => resp.errors = vec![e.to_key_error()],
        }
        resp
    }

    /// `KvFlush` (pipelined DML; TiKV `commands::Flush`): an optimistic
    /// prewrite of generation `generation` with `txn_size = MAX` and
    /// `min_commit_ts = start_ts + 1`. Unlike prewrite, keys that are not
    /// locked by others are written even when some keys are, and a flush
    /// older than the present lock's generation is ignored.
    pub fn flush(
        &self,
        cm: &ConcurrencyManager,
        req: &kvrpcpb::FlushRequest,
        _region: RegionRange<'_>,
    ) -> kvrpcpb::FlushResponse {
        let mut resp = kvrpcpb::FlushResponse::default();
        if req.generation == 0 {
            resp.errors = vec![TxnError::Other(
                "generation should be greater than 0 for Flush requests".into(),
            )
            .to_key_error()];
            return resp;
        }
        let ctx = req.context.clone().unwrap_or_default();
        let props = Props {
            start_ts: req.start_ts,
            for_update_ts: 0,
            pessimistic: false,
            skip_constraint_check: false,
            commit_kind: CommitKind::TwoPc,
            primary: &req.primary_key,
            txn_size: u64::MAX,
            lock_ttl: req.lock_ttl,
            min_commit_ts: req.start_ts + 1,
            is_retry_request: ctx.is_retry_request,
            assertion_level: AssertionLevel::try_from(req.assertion_level).unwrap_or_default(),
            generation: req.generation,
        };
        let keys: Vec<&[u8]> = req.mutations.iter().map(|m| m.key.as_ref()).collect();
        let res = self.run_write(cm, &keys, req.start_ts, |txn| {
            let mut locks = Vec::new();
            let mut assertion_failure = None;
            let mut none = Vec::new();
            for m in &req.mutations {
                let r = prewrite_key(
                    txn,
                    cm,
                    &props,
                    m,
                    None,
                    PessimisticAction::SkipPessimisticCheck,
                    None,
                    &mut none,
                );
                match r {
                    Ok(_) => {}
                    Err(e @ TxnError::WriteConflict { .. })
                        if matches!(&e, TxnError::WriteConflict { start_ts, conflict_commit_ts, .. } if conflict_commit_ts > start_ts) =>
                    {
                        return check_committed_record_on_err(txn, &m.key, e).map(|_| Vec::new());
                    }
                    Err(e @ TxnError::KeyIsLocked(_)) => {
                        match check_committed_record_on_err(txn, &m.key, e) {
                            Ok(_) => return Ok(Vec::new()),
                            Err(e) => locks.push(e),
                        }
                    }
                    Err(e @ TxnError::AssertionFailed { .. }) => {
                        if assertion_failure.is_none() {
                            assertion_failure = Some(e);
                        }
                    }
                    Err(TxnError::GenerationOutOfOrder { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            if let Some(e) = assertion_failure {
                return Err(e);
            }
            Ok(locks)
        });
        match res {
            Ok(locks) => resp.errors = locks.iter().map(TxnError::to_key_error).collect(),
            Err(e) => resp.errors = vec![e.to_key_error()],
        }
        resp
    }
}
