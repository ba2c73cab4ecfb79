//! Transaction status: `CheckTxnStatus` on the primary (client-go `TxnStatus`,
//! `LockResolver.getTxnStatus`, `getTxnStatusFromLock`, `GetTxnStatus`).
//!
//! The primary lock decides a transaction's fate. `CheckTxnStatus` carries every field
//! TiKV reads: the caller's start ts (a live lock's `min_commit_ts` is pushed past it, so
//! the reader need not wait), the current ts (expiry judged by the
//! [`ExpiryClock`](super::expiry::ExpiryClock)), `rollback_if_not_exist` (only once the
//! lock met has expired: a missing primary may simply not be prewritten yet),
//! `force_sync_commit` (async-commit fallback), `resolving_pessimistic_lock`,
//! `verify_is_primary` (always) and `is_txn_file`.
//!
//! A lock with TTL 0 is resolved at once (TiKV's "resolve now" protocol): current ts =
//! `u64::MAX`. `TxnNotFound` is retried with `BoTxnNotFound` until the lock met expires,
//! then asked again with `rollback_if_not_exist`. `PrimaryMismatch` for a pessimistic
//! lock means the lock is stale (its primary moved): it is reported as
//! [`StatusError::PrimaryMismatch`] and the caller rolls the lock back.
//!
//! Determined statuses go to the [`StatusCache`](super::cache::StatusCache); identical
//! concurrent checks are collapsed by the [`Flight`](super::flight::Flight).

use std::sync::Arc;

use bytes::Bytes;
use tikv_tower_layers::typed::{send, SendOptions};
use tikv_tower_layers::{BackoffKind, Error as LError, OpState};
use tikv_tower_proto::kvrpcpb::{self, Action};

use super::lock::Lock;
use super::Inner;

/// A transaction's status as `CheckTxnStatus` reported it (client-go `txnlock.TxnStatus`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TxnStatus {
    ttl: u64,
    commit_ts: u64,
    action: Action,
    primary_lock: Option<kvrpcpb::LockInfo>,
}

impl TxnStatus {
    /// Committed at `commit_ts`.
    pub fn committed(commit_ts: u64) -> Self {
        TxnStatus {
            commit_ts,
            ..TxnStatus::default()
        }
    }

    /// Rolled back.
    pub fn rolled_back() -> Self {
        TxnStatus::default()
    }

    /// Alive with `ttl` ms, after `action`.
    pub fn alive(ttl: u64, action: Action) -> Self {
        TxnStatus {
            ttl,
            action,
            ..TxnStatus::default()
        }
    }

    /// The status a `CheckTxnStatus` reply reports.
    pub fn from_reply(resp: &kvrpcpb::CheckTxnStatusResponse) -> Self {
        TxnStatus {
            ttl: resp.lock_ttl,
            commit_ts: if resp.lock_ttl == 0 {
                resp.commit_version
            } else {
                0
            },
            action: Action::try_from(resp.action).unwrap_or(Action::NoAction),
            primary_lock: resp.lock_info.clone(),
        }
    }

    /// Committed (client-go `IsCommitted`).
    pub fn is_committed(&self) -> bool {
        self.commit_ts > 0
    }

    /// Rolled back (client-go `IsRolledBack`): no TTL, no commit ts, and an action that
    /// rolled back or found it rolled back.
    pub fn is_rolled_back(&self) -> bool {
        self.ttl == 0
            && self.commit_ts == 0
            && matches!(
                self.action,
                Action::NoAction | Action::LockNotExistRollback | Action::TtlExpireRollback
            )
    }

    /// Committed or rolled back (client-go `IsStatusDetermined`).
    pub fn is_determined(&self) -> bool {
        self.is_committed() || self.is_rolled_back()
    }

    /// Both determined the same way (client-go `HasSameDeterminedStatus`).
    pub fn same_determined_status(&self, other: &TxnStatus) -> bool {
        (self.is_committed() && other.is_committed() && self.commit_ts == other.commit_ts)
            || (self.is_rolled_back() && other.is_rolled_back())
    }

    /// The commit ts (valid when committed).
    pub fn commit_ts(&self) -> u64 {
        self.commit_ts
    }

    /// The primary lock's TTL while the transaction is alive (0 once determined).
    pub fn ttl(&self) -> u64 {
        self.ttl
    }

    /// What `CheckTxnStatus` did.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The primary lock, when it still exists (async-commit secondaries live here).
    pub fn primary_lock(&self) -> Option<&kvrpcpb::LockInfo> {
        self.primary_lock.as_ref()
    }

    pub(crate) fn set_determined(&mut self, commit_ts: u64) {
        self.ttl = 0;
        self.commit_ts = commit_ts;
    }
}

/// Why a status check failed.
#[derive(Debug, Clone)]
pub enum StatusError {
    /// The primary has no lock and no record (not prewritten yet, or cleaned up).
    TxnNotFound(Box<kvrpcpb::KeyError>),
    /// The primary is locked by the transaction with another primary: the lock checked is
    /// a stale pessimistic lock.
    PrimaryMismatch(Box<kvrpcpb::KeyError>),
    /// Anything else (RPC failures, exhausted budget, other key errors).
    Other(LError),
}

impl From<LError> for StatusError {
    fn from(e: LError) -> Self {
        StatusError::Other(e)
    }
}

impl From<StatusError> for LError {
    fn from(e: StatusError) -> Self {
        match e {
            StatusError::TxnNotFound(k) | StatusError::PrimaryMismatch(k) => LError::Key(k),
            StatusError::Other(e) => e,
        }
    }
}

/// Every field of one `CheckTxnStatus` (client-go `getTxnStatus`'s parameters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CheckTxnStatus {
    /// The transaction's start ts.
    pub txn_id: u64,
    /// Its primary key.
    pub primary: Bytes,
    /// The checking transaction's start ts (0: none; `u64::MAX`: autocommit point read).
    pub caller_start_ts: u64,
    /// The current ts expiry is judged by (`u64::MAX`: expire now).
    pub current_ts: u64,
    /// Write a rollback record if the primary has no lock and no record.
    pub rollback_if_not_exist: bool,
    /// Treat an async-commit primary as a 2PC one (roll back / push it).
    pub force_sync_commit: bool,
    /// The lock met is pessimistic (a pessimistic primary is only pessimistically rolled
    /// back, and a `PrimaryMismatch` is reported).
    pub resolving_pessimistic_lock: bool,
    /// The transaction is a txn-file (pipelined) one.
    pub is_txn_file: bool,
}

impl CheckTxnStatus {
    fn request(&self) -> kvrpcpb::CheckTxnStatusRequest {
        kvrpcpb::CheckTxnStatusRequest {
            primary_key: self.primary.clone(),
            lock_ts: self.txn_id,
            caller_start_ts: self.caller_start_ts,
            current_ts: self.current_ts,
            rollback_if_not_exist: self.rollback_if_not_exist,
            force_sync_commit: self.force_sync_commit,
            resolving_pessimistic_lock: self.resolving_pessimistic_lock,
            verify_is_primary: true,
            is_txn_file: self.is_txn_file,
            ..Default::default()
        }
    }

    /// The single-flight key: everything but the caller's start ts (the rank) and the
    /// exact current ts (a check at an older current ts only judges a lock alive longer).
    /// An autocommit point read (`u64::MAX`) keys apart: TiKV reports its live locks as
    /// pushed without pushing them, an answer that must not reach other readers.
    fn flight_key(&self) -> CheckTxnStatus {
        CheckTxnStatus {
            caller_start_ts: if self.caller_start_ts == u64::MAX {
                u64::MAX
            } else {
                0
            },
            current_ts: u64::from(self.current_ts == u64::MAX),
            ..self.clone()
        }
    }
}

impl Inner {
    /// client-go `getTxnStatus`: the cached final status, or one `CheckTxnStatus`
    /// (collapsed with identical concurrent ones).
    pub(crate) async fn txn_status(
        self: &Arc<Self>,
        op: &Arc<OpState>,
        check: CheckTxnStatus,
    ) -> Result<TxnStatus, StatusError> {
        if let Some(s) = self.statuses.get(check.txn_id) {
            return Ok(s);
        }
        let rank = check.caller_start_ts;
        let key = check.flight_key();
        let this = self.clone();
        self.status_flight
            .run(key, rank, || {
                let (this, op, check) = (this.clone(), op.clone(), check.clone());
                async move { this.send_check_txn_status(&op, &check).await }
            })
            .await
            .map_err(|e| match e {
                LError::Key(k) if k.txn_not_found.is_some() => StatusError::TxnNotFound(k),
                LError::Key(k) if k.primary_mismatch.is_some() => StatusError::PrimaryMismatch(k),
                other => StatusError::Other(other),
            })
    }

    async fn send_check_txn_status(
        &self,
        op: &Arc<OpState>,
        check: &CheckTxnStatus,
    ) -> Result<TxnStatus, LError> {
        self.counters.check_txn_status();
        let resp = send(
            self.stack.clone(),
            check.request(),
            SendOptions::op(op.clone()),
        )
        .await?;
        if let Some(err) = resp.error {
            if err.txn_not_found.is_some()
                || (err.primary_mismatch.is_some() && check.resolving_pessimistic_lock)
            {
                return Err(LError::Key(Box::new(err)));
            }
            tracing::warn!(txn = check.txn_id, ?err, "CheckTxnStatus failed");
            return Err(LError::Key(Box::new(err)));
        }
        let status = TxnStatus::from_reply(&resp);
        if status.ttl == 0 && status.is_determined() {
            self.statuses.put(check.txn_id, status.clone());
        }
        Ok(status)
    }

    /// client-go `getTxnStatusFromLock`: the status of the transaction that left `lock`,
    /// retrying `TxnNotFound` with `BoTxnNotFound` until the lock expires, then asking
    /// with `rollback_if_not_exist`.
    pub(crate) async fn status_from_lock(
        self: &Arc<Self>,
        op: &Arc<OpState>,
        lock: &Lock,
        caller_start_ts: u64,
        force_sync_commit: bool,
    ) -> Result<TxnStatus, StatusError> {
        let current_ts = if lock.ttl == 0 {
            u64::MAX
        } else {
            self.clock
                .current_ts()
                .await
                .map_err(|e| StatusError::Other(tso_error(e)))?
        };
        let mut check = CheckTxnStatus {
            txn_id: lock.txn_id,
            primary: lock.primary.clone(),
            caller_start_ts,
            current_ts,
            rollback_if_not_exist: false,
            force_sync_commit,
            resolving_pessimistic_lock: lock.is_pessimistic(),
            is_txn_file: lock.is_txn_file,
        };
        loop {
            match self.txn_status(op, check.clone()).await {
                Err(StatusError::TxnNotFound(k)) => {
                    if !check.rollback_if_not_exist
                        && self.clock.until_expired(lock.txn_id, lock.ttl) <= 0
                    {
                        // The lock met has expired: the primary will never show up.
                        check.rollback_if_not_exist = true;
                        if check.current_ts != u64::MAX {
                            check.current_ts = self
                                .clock
                                .current_ts()
                                .await
                                .map_err(|e| StatusError::Other(tso_error(e)))?;
                        }
                        continue;
                    }
                    if lock.is_pessimistic() && !check.rollback_if_not_exist {
                        // A user rollback may have removed the primary: let the caller
                        // wait out the lock's TTL instead of spinning.
                        return Ok(TxnStatus::alive(lock.ttl, Action::NoAction));
                    }
                    let cause = format!("txn {} not found: {:?}", lock.txn_id, k.txn_not_found);
                    op.backoff(BackoffKind::TxnNotFound, &cause).await?;
                }
                other => return other,
            }
        }
    }
}

/// A TSO failure as a layers error (the PD could not be reached).
pub(crate) fn tso_error(e: crate::pd::TsoError) -> LError {
    LError::Locate(tikv_tower_layers::LocateError::Pd(format!("TSO: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_classify_as_client_go_does() {
        let alive = TxnStatus::alive(3000, Action::MinCommitTsPushed);
        assert!(!alive.is_determined());
        assert!(TxnStatus::committed(9).is_committed());
        assert!(TxnStatus::rolled_back().is_rolled_back());
        let pessimistic = TxnStatus::alive(0, Action::TtlExpirePessimisticRollback);
        assert!(!pessimistic.is_rolled_back() && !pessimistic.is_determined());
        let reply = kvrpcpb::CheckTxnStatusResponse {
            lock_ttl: 0,
            commit_version: 0,
            action: Action::LockNotExistRollback as i32,
            ..Default::default()
        };
        assert!(TxnStatus::from_reply(&reply).is_rolled_back());
        assert!(TxnStatus::committed(5).same_determined_status(&TxnStatus::committed(5)));
        assert!(!TxnStatus::committed(5).same_determined_status(&TxnStatus::rolled_back()));
    }

    #[test]
    fn the_flight_key_ignores_the_rank_and_the_exact_current_ts() {
        let a = CheckTxnStatus {
            txn_id: 1,
            primary: Bytes::from_static(b"p"),
            caller_start_ts: 10,
            current_ts: 100,
            ..Default::default()
        };
        let b = CheckTxnStatus {
            caller_start_ts: 20,
            current_ts: 120,
            ..a.clone()
        };
        assert_eq!(a.flight_key(), b.flight_key());
        let now = CheckTxnStatus {
            current_ts: u64::MAX,
            ..a.clone()
        };
        assert_ne!(a.flight_key(), now.flight_key());
        let point_get = CheckTxnStatus {
            caller_start_ts: u64::MAX,
            ..a.clone()
        };
        assert_ne!(a.flight_key(), point_get.flight_key());
        let req = a.request();
        assert!(req.verify_is_primary);
        assert_eq!(
            (req.lock_ts, req.caller_start_ts, req.current_ts),
            (1, 10, 100)
        );
    }
}
