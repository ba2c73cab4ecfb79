//! `KvPessimisticLock` and `KVPessimisticRollback` (TiKV
//! `src/storage/txn/actions/acquire_pessimistic_lock.rs`,
//! `src/storage/txn/commands/{acquire_pessimistic_lock,pessimistic_rollback}.rs`,
//! `src/storage/lock_manager`).
//!
//! Locking is all-or-nothing per request and checked against
//! `for_update_ts`: a newer record fails with `WriteConflict(PessimisticRetry)`
//! (or, in `WakeUpModeForceLock`, locks anyway "with conflict"). Another
//! transaction's lock makes the request wait (see [`super::lock_wait`]) for
//! up to `min(wait_timeout, wait_for_lock_timeout)` (0 = the ceiling, < 0 =
//! no wait), after running deadlock detection unless `is_first_lock`. A
//! timeout answers `KeyIsLocked`; a release answers
//! `WriteConflict(PessimisticRetry)` in legacy mode and retries the
//! acquisition in force-lock mode.

use bytes::Bytes;
use tikv_tower_proto::kvrpcpb::{
    self, Assertion, Op, PessimisticLockKeyResultType, PessimisticLockWakeUpMode,
};

use super::errors::{TxnError, TxnResult};
use super::txn::MvccTxn;
use super::types::{Lock, LockType, Ts, Write, WriteType};
use super::{ConcurrencyManager, RegionRange, TxnEngine};

/// The outcome of locking one key (TiKV `PessimisticLockKeyResult`).
#[derive(Clone, Debug, Default)]
struct KeyResult {
    /// The key's value if it exists (empty when the value was not loaded).
    value: Option<Vec<u8>>,
    /// Set when locked with conflict at this ts.
    conflict_ts: Option<Ts>,
}

struct LockParams<'a> {
    start_ts: Ts,
    primary: &'a [u8],
    ttl: u64,
    for_update_ts: Ts,
    min_commit_ts: Ts,
    need_value: bool,
    need_check_existence: bool,
    lock_only_if_exists: bool,
    allow_lock_with_conflict: bool,
}

fn write_conflict(p: &LockParams<'_>, key: &[u8], start: Ts, commit: Ts) -> TxnError {
    TxnError::WriteConflict {
        start_ts: p.start_ts,
        conflict_start_ts: start,
        conflict_commit_ts: commit,
        key: key.to_vec(),
        primary: p.primary.to_vec(),
        reason: kvrpcpb::write_conflict::Reason::PessimisticRetry,
    }
}

/// The newest Put/Delete at or below `ts`, as a value (`None` if absent).
fn value_at(txn: &MvccTxn<'_>, key: &[u8], ts: Ts) -> Option<(Ts, Write)> {
    txn.store().with_key(key, |d| {
        d.and_then(|d| {
            d.writes_from(ts)
                .find(|(_, w)| w.is_data())
                .filter(|(_, w)| w.write_type == WriteType::Put)
                .map(|(c, w)| (c, w.clone()))
        })
    })
}

fn new_pessimistic_lock(p: &LockParams<'_>, for_update_ts: Ts, with_conflict: bool) -> Lock {
    let mut l = Lock::new(LockType::Pessimistic, p.primary.to_vec(), p.start_ts, p.ttl);
    l.for_update_ts = for_update_ts;
    l.min_commit_ts = p.min_commit_ts;
    l.is_locked_with_conflict = with_conflict;
    l
}

/// TiKV `handle_existing_exclusive_lock` (our own pessimistic lock).
fn handle_own_lock(
    txn: &mut MvccTxn<'_>,
    key: &[u8],
    p: &LockParams<'_>,
    should_not_exist: bool,
    lock: Lock,
) -> TxnResult<KeyResult> {
    if !lock.is_pessimistic_lock() {
        return Err(TxnError::LockTypeNotMatch {
            start_ts: p.start_ts,
            key: key.to_vec(),
            pessimistic: false,
        });
    }
    let mut for_update_ts = p.for_update_ts;
    let conflict_ts = if p.allow_lock_with_conflict && for_update_ts < lock.for_update_ts {
        for_update_ts = lock.for_update_ts;
        Some(lock.for_update_ts)
    } else {
        None
    };
    let mut value = None;
    if p.need_value || p.need_check_existence || should_not_exist || conflict_ts.is_some() {
        if let Some((commit_ts, w)) = value_at(txn, key, for_update_ts) {
            if should_not_exist {
                if commit_ts > p.for_update_ts {
                    return Err(write_conflict(p, key, w.start_ts, commit_ts));
                }
                return Err(TxnError::AlreadyExist { key: key.to_vec() });
            }
            value = Some(w.value.unwrap_or_default());
        }
    }
    if for_update_ts > lock.for_update_ts {
        let l = new_pessimistic_lock(p, for_update_ts, lock.is_locked_with_conflict);
        txn.put_lock(key, l);
    }
    Ok(KeyResult { value, conflict_ts })
}

/// Locks one key (TiKV `acquire_pessimistic_lock`).
fn acquire_key(
    txn: &mut MvccTxn<'_>,
    cm: &ConcurrencyManager,
    key: &[u8],
    p: &LockParams<'_>,
    should_not_exist: bool,
) -> TxnResult<KeyResult> {
    if p.lock_only_if_exists && !p.need_value {
        return Err(TxnError::Other(format!(
            "LockIfExistsFailed {{ start_ts: {}, key: {:?} }}",
            p.start_ts, key
        )));
    }
    if should_not_exist || p.need_value || p.need_check_existence {
        cm.update_max_ts(p.for_update_ts);
    }
    if let Some(lock) = txn.load_lock(key) {
        if lock.ts != p.start_ts {
            return Err(TxnError::locked(lock.lock_info(key)));
        }
        return handle_own_lock(txn, key, p, should_not_exist, lock);
    }
    let mut for_update_ts = p.for_update_ts;
    let mut conflict: Option<(Ts, Ts)> = None;
    let mut value = None;
    if let Some((commit_ts, w)) = txn.seek_write(key, u64::MAX) {
        if commit_ts > for_update_ts {
            if p.allow_lock_with_conflict {
                conflict = Some((w.start_ts, commit_ts));
                for_update_ts = commit_ts;
            } else {
                return Err(write_conflict(p, key, w.start_ts, commit_ts));
            }
        }
        let rolled_back = |c: Ts, w: &Write| {
            c == p.start_ts && (w.write_type == WriteType::Rollback || w.has_overlapped_rollback)
        };
        if rolled_back(commit_ts, &w) {
            return Err(TxnError::PessimisticLockRolledBack {
                start_ts: p.start_ts,
                key: key.to_vec(),
            });
        }
        if commit_ts > p.start_ts {
            if let Some((c, older)) = txn.seek_write(key, p.start_ts) {
                if rolled_back(c, &older) {
                    return Err(TxnError::PessimisticLockRolledBack {
                        start_ts: p.start_ts,
                        key: key.to_vec(),
                    });
                }
            }
        }
        // The value / existence as of the newest record.
        value = match w.write_type {
            WriteType::Put => Some(w.value.clone().unwrap_or_default()),
            WriteType::Delete => None,
            WriteType::Lock | WriteType::Rollback => {
                value_at(txn, key, commit_ts - 1).map(|(_, w)| w.value.unwrap_or_default())
            }
        };
        if should_not_exist && value.is_some() {
            if let Some((s, c)) = conflict {
                return Err(write_conflict(p, key, s, c));
            }
            return Err(TxnError::AlreadyExist { key: key.to_vec() });
        }
    }
    if !p.lock_only_if_exists || value.is_some() {
        txn.put_lock(
            key,
            new_pessimistic_lock(p, for_update_ts, conflict.is_some()),
        );
    } else if let Some((s, c)) = conflict {
        return Err(write_conflict(p, key, s, c));
    }
    Ok(KeyResult {
        value,
        conflict_ts: conflict.map(|(_, c)| c),
    })
}

/// Why one acquisition attempt failed.
enum Failure {
    /// Another transaction's lock; a waiter is registered if waiting is on.
    Locked {
        info: Box<kvrpcpb::LockInfo>,
        key: Vec<u8>,
        waiter: Option<(
            u64,
            tokio::sync::oneshot::Receiver<super::lock_wait::WakeUp>,
        )>,
    },
    /// Any other error.
    Err(TxnError),
}

impl TxnEngine {
    /// One all-or-nothing attempt under the latches of the request's keys.
    fn try_acquire(
        &self,
        cm: &ConcurrencyManager,
        req: &kvrpcpb::PessimisticLockRequest,
        p: &LockParams<'_>,
        register_wait: bool,
    ) -> Result<Vec<KeyResult>, Failure> {
        let inner = &*self.inner;
        let keys = req.mutations.iter().map(|m| m.key.as_ref());
        let _latch = inner.latches.acquire(keys);
        let mut txn = MvccTxn::new(&inner.store, req.start_version);
        let mut results = Vec::with_capacity(req.mutations.len());
        for m in &req.mutations {
            let op = Op::try_from(m.op).unwrap_or(Op::PessimisticLock);
            if op != Op::PessimisticLock {
                return Err(Failure::Err(TxnError::Other(format!(
                    "unsupported op {op:?} in pessimistic lock request"
                ))));
            }
            let should_not_exist = m.assertion == Assertion::NotExist as i32;
            match acquire_key(&mut txn, cm, &m.key, p, should_not_exist) {
                Ok(r) => results.push(r),
                Err(TxnError::KeyIsLocked(info)) => {
                    let waiter =
                        register_wait.then(|| inner.waits.register(&m.key, req.start_version));
                    return Err(Failure::Locked {
                        info,
                        key: m.key.to_vec(),
                        waiter,
                    });
                }
                Err(e) => return Err(Failure::Err(e)),
            }
        }
        self.finish(cm, txn);
        Ok(results)
    }

    /// `KvPessimisticLock` (TiKV `commands::AcquirePessimisticLock` plus the
    /// lock manager's waiting and deadlock detection). Waits use tokio time.
    pub async fn pessimistic_lock(
        &self,
        cm: &ConcurrencyManager,
        req: &kvrpcpb::PessimisticLockRequest,
        _region: RegionRange<'_>,
    ) -> kvrpcpb::PessimisticLockResponse {
        let force = req.wake_up_mode == PessimisticLockWakeUpMode::WakeUpModeForceLock as i32;
        let p = LockParams {
            start_ts: req.start_version,
            primary: &req.primary_lock,
            ttl: req.lock_ttl,
            for_update_ts: req.for_update_ts,
            min_commit_ts: req.min_commit_ts,
            need_value: req.return_values,
            need_check_existence: req.check_existence,
            lock_only_if_exists: req.lock_only_if_exists,
            allow_lock_with_conflict: force,
        };
        let ceiling = self.inner.config.wait_for_lock_timeout;
        let timeout = match req.wait_timeout {
            t if t < 0 => None,
            0 => Some(ceiling),
            t => Some(std::time::Duration::from_millis(t as u64).min(ceiling)),
        };
        let deadline = tokio::time::Instant::now() + timeout.unwrap_or_default();
        let tag = req
            .context
            .as_ref()
            .map(|c| c.resource_group_tag.clone())
            .unwrap_or_default();
        loop {
            let failure = match self.try_acquire(cm, req, &p, timeout.is_some()) {
                Ok(results) => return lock_response(req, force, Ok(results)),
                Err(Failure::Err(e)) => return lock_response(req, force, Err(e)),
                Err(Failure::Locked { info, key, waiter }) => (info, key, waiter),
            };
            let (info, key, waiter) = failure;
            let Some((id, rx)) = waiter else {
                return lock_response(req, force, Err(TxnError::KeyIsLocked(info)));
            };
            let lock_ts = info.lock_version;
            if !req.is_first_lock {
                if let Some((hash, chain)) =
                    self.inner
                        .detector
                        .detect(req.start_version, lock_ts, &key, &tag)
                {
                    self.inner.waits.remove(&key, id);
                    return lock_response(
                        req,
                        force,
                        Err(TxnError::Deadlock {
                            lock_ts,
                            lock_key: key,
                            deadlock_key_hash: hash,
                            wait_chain: chain,
                        }),
                    );
                }
            }
            let woken = tokio::time::timeout_at(deadline, rx).await;
            self.inner
                .detector
                .clean_up_wait_for(req.start_version, lock_ts, &key);
            match woken {
                Ok(Ok(w)) => {
                    if !w.delay.is_zero() {
                        tokio::time::sleep(w.delay).await;
                    }
                    if force {
                        continue;
                    }
                    return lock_response(
                        req,
                        force,
                        Err(write_conflict(
                            &p,
                            &key,
                            w.conflict_start_ts,
                            w.conflict_commit_ts,
                        )),
                    );
                }
                _ => {
                    self.inner.waits.remove(&key, id);
                    return lock_response(req, force, Err(TxnError::KeyIsLocked(info)));
                }
            }
        }
    }

    /// The number of pessimistic-lock requests waiting on `key`.
    pub fn waiter_count(&self, key: &[u8]) -> usize {
        self.inner.waits.waiter_count(key)
    }

    /// `KVPessimisticRollback` (TiKV `commands::PessimisticRollback`):
    /// removes this transaction's pessimistic locks with
    /// `for_update_ts <= req.for_update_ts` on `keys`, or on the whole
    /// region when `keys` is empty. No rollback records are written.
    pub fn pessimistic_rollback(
        &self,
        cm: &ConcurrencyManager,
        req: &kvrpcpb::PessimisticRollbackRequest,
        region: RegionRange<'_>,
    ) -> kvrpcpb::PessimisticRollbackResponse {
        let matches = |l: &Lock| {
            l.is_pessimistic_lock()
                && l.ts == req.start_version
                && l.for_update_ts <= req.for_update_ts
        };
        let keys: Vec<Bytes> = if req.keys.is_empty() {
            self.scan_locks(region.0, region.1, 0, matches)
                .into_iter()
                .map(|(k, _)| Bytes::from(k))
                .collect()
        } else {
            req.keys.clone()
        };
        let mut resp = kvrpcpb::PessimisticRollbackResponse::default();
        let res = self.run_write(cm, &keys, req.start_version, |txn| {
            for k in &keys {
                if txn.load_lock(k).is_some_and(|l| matches(&l)) {
                    txn.unlock_key(k, 0);
                }
            }
            Ok(())
        });
        if let Err(e) = res {
            resp.errors = vec![e.to_key_error()];
        }
        resp
    }
}

/// Builds the response (TiKV `kv.rs` `future_acquire_pessimistic_lock`).
fn lock_response(
    req: &kvrpcpb::PessimisticLockRequest,
    force: bool,
    res: TxnResult<Vec<KeyResult>>,
) -> kvrpcpb::PessimisticLockResponse {
    let mut resp = kvrpcpb::PessimisticLockResponse::default();
    match res {
        Ok(results) if force => {
            resp.results = results
                .into_iter()
                .map(|r| {
                    let existence = r.value.is_some();
                    kvrpcpb::PessimisticLockKeyResult {
                        r#type: if r.conflict_ts.is_some() {
                            PessimisticLockKeyResultType::LockResultLockedWithConflict as i32
                        } else {
                            PessimisticLockKeyResultType::LockResultNormal as i32
                        },
                        value: if req.return_values || r.conflict_ts.is_some() {
                            r.value.unwrap_or_default().into()
                        } else {
                            Bytes::new()
                        },
                        existence: existence
                            && (req.return_values
                                || req.check_existence
                                || r.conflict_ts.is_some()),
                        locked_with_conflict_ts: r.conflict_ts.unwrap_or(0),
                        ..Default::default()
                    }
                })
                .collect();
        }
        Ok(results) => {
            if req.return_values {
                for r in results {
                    resp.not_founds.push(r.value.is_none());
                    resp.values.push(r.value.unwrap_or_default().into());
                }
            } else if req.check_existence {
                resp.not_founds = results.iter().map(|r| r.value.is_none()).collect();
            }
        }
        Err(e) => {
            if force {
                resp.results = req
                    .mutations
                    .iter()
                    .map(|_| kvrpcpb::PessimisticLockKeyResult {
                        r#type: PessimisticLockKeyResultType::LockResultFailed as i32,
                        ..Default::default()
                    })
                    .collect();
            }
            resp.errors = vec![e.to_key_error()];
        }
    }
    resp
}
