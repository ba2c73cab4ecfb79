//! client-go's `Backoffer`: typed backoff configurations and one sleep budget.
//!
//! Every retry waits according to a typed [`BackoffKind`] (base, cap, [`Jitter`]) that
//! also names what the wait is attributed to ([`BackoffKind::cause`]). A [`Backoffer`]
//! keeps, per kind, the attempt count and last sleep (exponential growth is per kind),
//! and one total sleep budget for the whole logical operation: once the time slept
//! (excluding server-busy waits, up to 10 minutes) reaches the budget, the next backoff
//! fails with [`Error::BackoffExhausted`] carrying the whole [`BackoffHistory`]; the
//! kind that slept longest names the cause ([`BackoffHistory::cause`], client-go's
//! `longestSleepCfg.err`: `ErrRegionUnavailable`, `ErrTiKVServerTimeout`, ...).
//! As in client-go the budget is checked *before* a sleep, so the final sleep may
//! overshoot it by at most one capped sleep. A budget of zero means unlimited.
//!
//! The backoffer lives in [`OpState`](crate::OpState) behind a mutex: every shard of an
//! operation draws from the same budget (client-go forks a copy per goroutine instead,
//! which lets an N-shard operation sleep N times the budget).
//!
//! client-go counterpart: `config/retry/backoff.go` (`Backoffer.BackoffWithCfgAndMaxSleep`)
//! and `config/retry/config.go` (`Bo*` configs, `newBackoffFn`, `expo`).
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use tikv_tower_layers::retry::backoff::{BackoffKind, Backoffer};
//!
//! let mut bo = Backoffer::new(Duration::from_millis(10));
//! // RegionMiss: base 2 ms, cap 500 ms, no jitter: 2, 4, 8 ms ...
//! assert_eq!(bo.next_sleep(BackoffKind::RegionMiss, None, &"epoch not match").unwrap(), Duration::from_millis(2));
//! assert_eq!(bo.next_sleep(BackoffKind::RegionMiss, None, &"epoch not match").unwrap(), Duration::from_millis(4));
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use crate::error::Error;

/// How a sleep is randomized (client-go `NoJitter`, `FullJitter`, `EqualJitter`,
/// `DecorrJitter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Jitter {
    /// `min(cap, base * 2^n)`.
    No,
    /// Uniform in `[0, expo)`.
    Full,
    /// `expo/2 + uniform[0, expo/2)`.
    Equal,
    /// `min(cap, base + uniform[0, 3*last - base))`.
    Decorrelated,
}

/// The typed backoff configurations of client-go (`retry.Bo*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackoffKind {
    /// `BoTiKVRPC`: a send to TiKV failed (100 ms .. 2 s, equal jitter).
    TiKvRpc,
    /// `BoTiFlashRPC`: a send to TiFlash failed.
    TiFlashRpc,
    /// `BoTxnLock`: waiting for a lock to expire / be resolved (100 ms .. 3 s).
    TxnLock,
    /// `BoTxnLockFast`: lock met by a read (2 ms .. 3 s; base configurable).
    TxnLockFast,
    /// `BoPDRPC`: PD request failed (500 ms .. 3 s).
    PdRpc,
    /// `BoRegionMiss`: routing stale, re-locate (2 ms .. 500 ms, no jitter).
    RegionMiss,
    /// `BoRegionScheduling`: leader transfer / merge in progress (2 ms .. 500 ms).
    RegionScheduling,
    /// `BoTiKVServerBusy`: server busy (2 s .. 10 s); excluded from the budget up to 10 min.
    TiKvServerBusy,
    /// `BoTiKVDiskFull` (500 ms .. 5 s, no jitter).
    TiKvDiskFull,
    /// `BoRegionRecoveryInProgress` (100 ms .. 10 s).
    RegionRecoveryInProgress,
    /// `BoTiFlashServerBusy` (2 s .. 10 s).
    TiFlashServerBusy,
    /// `BoTxnNotFound` (2 ms .. 500 ms).
    TxnNotFound,
    /// `BoStaleCmd` (2 ms .. 1 s).
    StaleCmd,
    /// `BoMaxTsNotSynced` (2 ms .. 500 ms).
    MaxTsNotSynced,
    /// `BoCommitTSLag` (2 ms .. 500 ms).
    CommitTsLag,
    /// `BoMaxDataNotReady` (2 ms .. 2 s): stale read data not ready.
    MaxDataNotReady,
    /// `BoMaxRegionNotInitialized` (2 ms .. 1 s).
    MaxRegionNotInitialized,
    /// `BoIsWitness` (1 s .. 10 s).
    IsWitness,
}

/// What a backoff kind's wait is attributed to when the budget runs out (client-go's
/// per-config error: `ErrTiKVServerTimeout`, `ErrResolveLockTimeout`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackoffCause {
    /// `ErrTiKVServerTimeout`.
    TiKvServerTimeout,
    /// `ErrTiFlashServerTimeout`.
    TiFlashServerTimeout,
    /// `ErrResolveLockTimeout`.
    ResolveLockTimeout,
    /// `ErrPDServerTimeout`.
    PdServerTimeout,
    /// `ErrRegionUnavailable`.
    RegionUnavailable,
    /// `ErrTiKVServerBusy`.
    TiKvServerBusy,
    /// `ErrTiKVDiskFull`.
    TiKvDiskFull,
    /// `ErrRegionRecoveryInProgress`.
    RegionRecoveryInProgress,
    /// `ErrTiFlashServerBusy`.
    TiFlashServerBusy,
    /// `ErrTiKVStaleCommand`.
    TiKvStaleCommand,
    /// `ErrTiKVMaxTimestampNotSynced`.
    MaxTimestampNotSynced,
    /// `ErrCommitTSLag`.
    CommitTsLag,
    /// `ErrRegionDataNotReady`.
    RegionDataNotReady,
    /// `ErrRegionNotInitialized`.
    RegionNotInitialized,
    /// `ErrIsWitness`.
    IsWitness,
}

impl BackoffCause {
    /// client-go's message of the error (`tikverr.ErrRegionUnavailable.Error()`, ...).
    pub const fn message(self) -> &'static str {
        use BackoffCause::*;
        match self {
            TiKvServerTimeout => "tikv server timeout",
            TiFlashServerTimeout => "tiflash server timeout",
            ResolveLockTimeout => "resolve lock timeout",
            PdServerTimeout => "pd server timeout",
            RegionUnavailable => "region unavailable",
            TiKvServerBusy => "tikv server is busy",
            TiKvDiskFull => "tikv disk full",
            RegionRecoveryInProgress => "region is in recovery progress",
            TiFlashServerBusy => "tiflash server is busy",
            TiKvStaleCommand => "tikv stale command",
            MaxTimestampNotSynced => "tikv max timestamp is not synced",
            CommitTsLag => "commit ts lag",
            RegionDataNotReady => "region data not ready",
            RegionNotInitialized => "region not initialized",
            IsWitness => "peer is witness",
        }
    }
}

impl fmt::Display for BackoffCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// One typed configuration: base and cap in milliseconds, jitter, attribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// client-go's config name (`"regionMiss"`, ...).
    pub name: &'static str,
    /// First sleep (ms); values below 2 are raised to 2 as in client-go.
    pub base_ms: u64,
    /// Largest sleep (ms).
    pub cap_ms: u64,
    /// Randomization.
    pub jitter: Jitter,
    /// Attribution.
    pub cause: BackoffCause,
}

impl BackoffKind {
    /// Every kind (table-driven tests, metrics).
    pub const ALL: [BackoffKind; 18] = [
        BackoffKind::TiKvRpc,
        BackoffKind::TiFlashRpc,
        BackoffKind::TxnLock,
        BackoffKind::TxnLockFast,
        BackoffKind::PdRpc,
        BackoffKind::RegionMiss,
        BackoffKind::RegionScheduling,
        BackoffKind::TiKvServerBusy,
        BackoffKind::TiKvDiskFull,
        BackoffKind::RegionRecoveryInProgress,
        BackoffKind::TiFlashServerBusy,
        BackoffKind::TxnNotFound,
        BackoffKind::StaleCmd,
        BackoffKind::MaxTsNotSynced,
        BackoffKind::CommitTsLag,
        BackoffKind::MaxDataNotReady,
        BackoffKind::MaxRegionNotInitialized,
        BackoffKind::IsWitness,
    ];

    /// The configuration (client-go `config/retry/config.go` values).
    pub const fn config(self) -> BackoffConfig {
        use BackoffCause as C;
        use BackoffKind::*;
        use Jitter::*;
        let (name, base_ms, cap_ms, jitter, cause) = match self {
            TiKvRpc => ("tikvRPC", 100, 2000, Equal, C::TiKvServerTimeout),
            TiFlashRpc => ("tiflashRPC", 100, 2000, Equal, C::TiFlashServerTimeout),
            TxnLock => ("txnLock", 100, 3000, Equal, C::ResolveLockTimeout),
            TxnLockFast => ("txnLockFast", 2, 3000, Equal, C::ResolveLockTimeout),
            PdRpc => ("pdRPC", 500, 3000, Equal, C::PdServerTimeout),
            RegionMiss => ("regionMiss", 2, 500, No, C::RegionUnavailable),
            RegionScheduling => ("regionScheduling", 2, 500, No, C::RegionUnavailable),
            TiKvServerBusy => ("tikvServerBusy", 2000, 10000, Equal, C::TiKvServerBusy),
            TiKvDiskFull => ("tikvDiskFull", 500, 5000, No, C::TiKvDiskFull),
            RegionRecoveryInProgress => (
                "regionRecoveryInProgress",
                100,
                10000,
                Equal,
                C::RegionRecoveryInProgress,
            ),
            TiFlashServerBusy => (
                "tiflashServerBusy",
                2000,
                10000,
                Equal,
                C::TiFlashServerBusy,
            ),
            TxnNotFound => ("txnNotFound", 2, 500, No, C::ResolveLockTimeout),
            StaleCmd => ("staleCommand", 2, 1000, No, C::TiKvStaleCommand),
            MaxTsNotSynced => ("maxTsNotSynced", 2, 500, No, C::MaxTimestampNotSynced),
            CommitTsLag => ("commitTSLag", 2, 500, No, C::CommitTsLag),
            MaxDataNotReady => ("dataNotReady", 2, 2000, No, C::RegionDataNotReady),
            MaxRegionNotInitialized => {
                ("regionNotInitialized", 2, 1000, No, C::RegionNotInitialized)
            }
            IsWitness => ("isWitness", 1000, 10000, Equal, C::IsWitness),
        };
        BackoffConfig {
            name,
            base_ms,
            cap_ms,
            jitter,
            cause,
        }
    }

    /// client-go's name of the config.
    pub const fn name(self) -> &'static str {
        self.config().name
    }

    /// What the kind's waits are attributed to.
    pub const fn cause(self) -> BackoffCause {
        self.config().cause
    }

    /// Sleep excluded from the budget up to this much (client-go `isSleepExcluded`:
    /// server-busy waits, 10 minutes).
    pub const fn excluded_limit(self) -> Option<Duration> {
        match self {
            BackoffKind::TiKvServerBusy => Some(Duration::from_secs(600)),
            _ => None,
        }
    }
}

impl fmt::Display for BackoffKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone)]
struct KindState {
    kind: BackoffKind,
    attempts: u32,
    last_sleep_ms: u64,
    slept: Duration,
}

/// How many recent errors a backoffer's [`last_errors`](Backoffer::last_errors) returns.
const KEPT_ERRORS: usize = 5;

/// How many backoff events a history keeps (the oldest are dropped and counted).
pub const HISTORY_CAP: usize = 256;

/// One backoff: its kind, how long it slept (zero for the one refused by the budget)
/// and the error that caused it.
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffEvent {
    /// The kind.
    pub kind: BackoffKind,
    /// Time slept.
    pub sleep: Duration,
    /// The error that caused it.
    pub error: String,
}

/// Per-kind totals of a history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindSleep {
    /// The kind.
    pub kind: BackoffKind,
    /// How many times it backed off.
    pub times: u32,
    /// Time slept for it.
    pub slept: Duration,
}

/// Everything a backoffer did for one operation, attached to the exhaustion error
/// (client-go's `Backoffer.String()`: the kinds, the errors, the total sleep).
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffHistory {
    /// Per-kind totals, in order of first use.
    pub kinds: Vec<KindSleep>,
    /// The backoffs in order (the most recent [`HISTORY_CAP`]).
    pub events: Vec<BackoffEvent>,
    /// Older events dropped from `events`.
    pub dropped: usize,
    /// Total time slept.
    pub total_sleep: Duration,
    /// The budget.
    pub budget: Duration,
}

impl BackoffHistory {
    /// The kind that slept longest (client-go `longestSleepCfg`); the first used on ties.
    pub fn longest(&self) -> Option<BackoffKind> {
        let mut best: Option<&KindSleep> = None;
        for k in &self.kinds {
            if best.is_none_or(|b| k.slept > b.slept) {
                best = Some(k);
            }
        }
        best.map(|k| k.kind)
    }

    /// What the exhaustion is attributed to: the longest-sleeping kind's cause.
    pub fn cause(&self) -> BackoffCause {
        self.longest()
            .map_or(BackoffCause::RegionUnavailable, BackoffKind::cause)
    }

    /// The kinds used, in order of first use.
    pub fn kinds_used(&self) -> Vec<BackoffKind> {
        self.kinds.iter().map(|k| k.kind).collect()
    }

    /// The most recent errors (oldest first), at most five.
    pub fn last_errors(&self) -> Vec<String> {
        let from = self.events.len().saturating_sub(KEPT_ERRORS);
        self.events[from..]
            .iter()
            .map(|e| format!("{}: {}", e.kind, e.error))
            .collect()
    }
}

impl fmt::Display for BackoffHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "backoffer.maxSleep {}ms is exceeded after sleeping {}ms (",
            self.budget.as_millis(),
            self.total_sleep.as_millis()
        )?;
        for (i, k) in self.kinds.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{} x{} {}ms", k.kind, k.times, k.slept.as_millis())?;
        }
        write!(f, "); last errors: {:?}", self.last_errors())
    }
}

/// `BoTxnLockFast`'s effective base in milliseconds unless set otherwise (client-go
/// `kv.DefBackoffLockFast`, which `createBackoffFn` puts in place of the config's 2 ms).
pub const DEFAULT_BACKOFF_LOCK_FAST_MS: u64 = 10;

/// How much client-go stretches an operation's nominal budget (`kv.DefBackOffWeight`:
/// `NewBackofferWithVars` multiplies `maxSleep` by it, so rawkv's 20 s budget is 40 s).
pub const DEFAULT_BACKOFF_WEIGHT: u32 = 2;

/// client-go's `Backoffer`: per-kind exponential state plus one total sleep budget.
///
/// It computes sleeps; the caller sleeps ([`OpState::backoff`](crate::OpState::backoff)
/// does both, with tokio's timer).
#[derive(Debug, Clone)]
pub struct Backoffer {
    max_sleep: Duration,
    total_sleep: Duration,
    excluded_sleep: Duration,
    kinds: Vec<KindState>,
    history: VecDeque<BackoffEvent>,
    dropped: usize,
    txn_lock_fast_base_ms: u64,
}

impl Backoffer {
    /// A backoffer with this total budget (`Duration::ZERO` = unlimited).
    pub fn new(max_sleep: Duration) -> Backoffer {
        Backoffer {
            max_sleep,
            total_sleep: Duration::ZERO,
            excluded_sleep: Duration::ZERO,
            kinds: Vec::new(),
            history: VecDeque::new(),
            dropped: 0,
            txn_lock_fast_base_ms: DEFAULT_BACKOFF_LOCK_FAST_MS,
        }
    }

    /// Set `BoTxnLockFast`'s base (client-go `vars.BackoffLockFast`).
    pub fn set_txn_lock_fast_base(&mut self, base: Duration) {
        self.txn_lock_fast_base_ms = base.as_millis() as u64;
    }

    /// The budget.
    pub fn max_sleep(&self) -> Duration {
        self.max_sleep
    }

    /// Time slept so far (all kinds).
    pub fn total_sleep(&self) -> Duration {
        self.total_sleep
    }

    /// How many times `kind` backed off.
    pub fn times(&self, kind: BackoffKind) -> u32 {
        self.kinds
            .iter()
            .find(|k| k.kind == kind)
            .map_or(0, |k| k.attempts)
    }

    /// Time slept for `kind`.
    pub fn slept(&self, kind: BackoffKind) -> Duration {
        self.kinds
            .iter()
            .find(|k| k.kind == kind)
            .map_or(Duration::ZERO, |k| k.slept)
    }

    /// The kinds used, in order of first use.
    pub fn kinds(&self) -> Vec<BackoffKind> {
        self.kinds.iter().map(|k| k.kind).collect()
    }

    /// The most recent errors that caused a backoff (oldest first, at most five).
    pub fn last_errors(&self) -> Vec<String> {
        self.history().last_errors()
    }

    /// Everything slept so far.
    pub fn history(&self) -> BackoffHistory {
        BackoffHistory {
            kinds: self
                .kinds
                .iter()
                .map(|k| KindSleep {
                    kind: k.kind,
                    times: k.attempts,
                    slept: k.slept,
                })
                .collect(),
            events: self.history.iter().cloned().collect(),
            dropped: self.dropped,
            total_sleep: self.total_sleep,
            budget: self.max_sleep,
        }
    }

    fn record(&mut self, kind: BackoffKind, sleep: Duration, cause: &dyn fmt::Display) {
        if self.history.len() == HISTORY_CAP {
            self.history.pop_front();
            self.dropped += 1;
        }
        self.history.push_back(BackoffEvent {
            kind,
            sleep,
            error: cause.to_string(),
        });
    }

    /// Record a backoff of `kind` caused by `cause` and return how long to sleep
    /// (client-go `BackoffWithCfgAndMaxSleep` without the sleep itself).
    ///
    /// Fails when the budget is already spent; the error lists the kinds and last errors,
    /// `cause` included.
    pub fn next_sleep(
        &mut self,
        kind: BackoffKind,
        max_sleep: Option<Duration>,
        cause: &dyn fmt::Display,
    ) -> Result<Duration, Error> {
        let counted = self.total_sleep.saturating_sub(self.excluded_sleep);
        let mut exceeded = counted >= self.max_sleep;
        if let Some(limit) = kind.excluded_limit() {
            exceeded |= self.excluded_sleep >= limit && self.excluded_sleep >= self.max_sleep;
        }
        if !self.max_sleep.is_zero() && exceeded {
            if !self.kinds.iter().any(|k| k.kind == kind) {
                self.kinds.push(KindState {
                    kind,
                    attempts: 0,
                    last_sleep_ms: 0,
                    slept: Duration::ZERO,
                });
            }
            self.record(kind, Duration::ZERO, cause);
            return Err(Error::BackoffExhausted(Box::new(self.history())));
        }
        let cfg = kind.config();
        let base = if kind == BackoffKind::TxnLockFast {
            self.txn_lock_fast_base_ms
        } else {
            cfg.base_ms
        }
        .max(2);
        let cap = cfg.cap_ms.max(base);
        let idx = match self.kinds.iter().position(|k| k.kind == kind) {
            Some(i) => i,
            None => {
                self.kinds.push(KindState {
                    kind,
                    attempts: 0,
                    last_sleep_ms: base,
                    slept: Duration::ZERO,
                });
                self.kinds.len() - 1
            }
        };
        let state = &mut self.kinds[idx];
        let sleep_ms = compute_sleep(cfg.jitter, base, cap, state.attempts, state.last_sleep_ms);
        let mut real = Duration::from_millis(sleep_ms);
        if let Some(max) = max_sleep {
            real = real.min(max);
        }
        state.attempts += 1;
        state.last_sleep_ms = sleep_ms;
        state.slept += real;
        self.total_sleep += real;
        if kind.excluded_limit().is_some() {
            self.excluded_sleep += real;
        }
        self.record(kind, real, cause);
        Ok(real)
    }
}

/// client-go `expo`: `min(cap, base * 2^n)`.
fn expo(base: u64, cap: u64, n: u32) -> u64 {
    base.saturating_mul(1u64.checked_shl(n.min(62)).unwrap_or(u64::MAX))
        .min(cap)
}

fn uniform(below: u64) -> u64 {
    if below == 0 {
        0
    } else {
        rand::random_range(0..below)
    }
}

/// client-go `newBackoffFn`'s sleep formula for one attempt.
fn compute_sleep(jitter: Jitter, base: u64, cap: u64, attempts: u32, last: u64) -> u64 {
    match jitter {
        Jitter::No => expo(base, cap, attempts),
        Jitter::Full => uniform(expo(base, cap, attempts)),
        Jitter::Equal => {
            let v = expo(base, cap, attempts);
            v / 2 + uniform(v / 2)
        }
        Jitter::Decorrelated => {
            (base + uniform((last.saturating_mul(3)).saturating_sub(base))).min(cap)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txn_lock_fast_starts_from_client_go_default_base() {
        // Equal jitter: the first sleep is in [base/2, base]; with client-go's
        // DefBackoffLockFast (10 ms) that is at least 5 ms, never the config's 2 ms.
        for _ in 0..50 {
            let mut bo = Backoffer::new(Duration::from_secs(10));
            let first = bo
                .next_sleep(BackoffKind::TxnLockFast, None, &"lock")
                .expect("budget left");
            assert!(
                first >= Duration::from_millis(5) && first <= Duration::from_millis(10),
                "{first:?}"
            );
        }
    }

    #[test]
    fn configs_match_client_go() {
        // (kind, base, cap, jitter) straight from config/retry/config.go.
        let table = [
            (BackoffKind::TiKvRpc, 100, 2000, Jitter::Equal),
            (BackoffKind::TxnLock, 100, 3000, Jitter::Equal),
            (BackoffKind::TxnLockFast, 2, 3000, Jitter::Equal),
            (BackoffKind::PdRpc, 500, 3000, Jitter::Equal),
            (BackoffKind::RegionMiss, 2, 500, Jitter::No),
            (BackoffKind::RegionScheduling, 2, 500, Jitter::No),
            (BackoffKind::TiKvServerBusy, 2000, 10000, Jitter::Equal),
            (BackoffKind::TiKvDiskFull, 500, 5000, Jitter::No),
            (
                BackoffKind::RegionRecoveryInProgress,
                100,
                10000,
                Jitter::Equal,
            ),
            (BackoffKind::TiFlashServerBusy, 2000, 10000, Jitter::Equal),
            (BackoffKind::TxnNotFound, 2, 500, Jitter::No),
            (BackoffKind::StaleCmd, 2, 1000, Jitter::No),
            (BackoffKind::MaxTsNotSynced, 2, 500, Jitter::No),
            (BackoffKind::MaxRegionNotInitialized, 2, 1000, Jitter::No),
            (BackoffKind::IsWitness, 1000, 10000, Jitter::Equal),
        ];
        for (kind, base, cap, jitter) in table {
            let c = kind.config();
            assert_eq!(
                (c.base_ms, c.cap_ms, c.jitter),
                (base, cap, jitter),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn no_jitter_doubles_until_cap() {
        let mut bo = Backoffer::new(Duration::ZERO);
        let got: Vec<u64> = (0..10)
            .map(|_| {
                bo.next_sleep(BackoffKind::RegionMiss, None, &"x")
                    .unwrap()
                    .as_millis() as u64
            })
            .collect();
        assert_eq!(got, vec![2, 4, 8, 16, 32, 64, 128, 256, 500, 500]);
    }

    #[test]
    fn jittered_sleeps_stay_in_bounds() {
        for jitter in [Jitter::Full, Jitter::Equal, Jitter::Decorrelated] {
            let mut last = 100;
            for n in 0..20 {
                let s = compute_sleep(jitter, 100, 2000, n, last);
                assert!(s <= 2000, "{jitter:?} {s}");
                if jitter == Jitter::Equal {
                    assert!(s >= expo(100, 2000, n) / 2);
                }
                last = s.max(1);
            }
        }
    }

    #[test]
    fn max_sleep_caps_one_sleep() {
        let mut bo = Backoffer::new(Duration::ZERO);
        let s = bo
            .next_sleep(
                BackoffKind::TiKvDiskFull,
                Some(Duration::from_millis(7)),
                &"x",
            )
            .unwrap();
        assert_eq!(s, Duration::from_millis(7));
    }

    #[test]
    fn budget_exhaustion_reports_kinds_and_errors() {
        let mut bo = Backoffer::new(Duration::from_millis(5));
        assert!(bo.next_sleep(BackoffKind::RegionMiss, None, &"e1").is_ok()); // 2
        assert!(bo.next_sleep(BackoffKind::RegionMiss, None, &"e2").is_ok()); // 4 -> 6 total
        let err = bo
            .next_sleep(BackoffKind::StaleCmd, None, &"e3")
            .unwrap_err();
        match err {
            Error::BackoffExhausted(h) => {
                assert_eq!(
                    h.kinds_used(),
                    vec![BackoffKind::RegionMiss, BackoffKind::StaleCmd]
                );
                assert_eq!(h.total_sleep, Duration::from_millis(6));
                assert_eq!(h.longest(), Some(BackoffKind::RegionMiss));
                assert_eq!(h.cause(), BackoffCause::RegionUnavailable);
                let sleeps: Vec<u64> = h
                    .events
                    .iter()
                    .map(|e| e.sleep.as_millis() as u64)
                    .collect();
                assert_eq!(sleeps, vec![2, 4, 0]);
                let last = h.last_errors();
                assert_eq!(last.len(), 3);
                assert!(last[2].contains("e3"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn server_busy_sleep_is_excluded_from_budget() {
        let mut bo = Backoffer::new(Duration::from_millis(100));
        // 2 s+ of server-busy sleep does not consume the 100 ms budget.
        assert!(bo
            .next_sleep(BackoffKind::TiKvServerBusy, None, &"busy")
            .is_ok());
        assert!(bo
            .next_sleep(BackoffKind::RegionMiss, None, &"miss")
            .is_ok());
    }
}
