//! Lock-expiry math (client-go `oracle.Oracle.IsExpired` / `UntilExpired` and the
//! `currentTS` of `getTxnStatusFromLock`).
//!
//! A lock of start ts `S` with TTL `t` ms expires at physical time `physical(S) + t`.
//! "Now" is estimated from the **last TSO fetched plus the local time elapsed since it
//! arrived**: `physical(last) + elapsed`, with a new TSO fetched once the last is older
//! than [`REFRESH`]. The TSO was allocated before it arrived, so the estimate never runs
//! ahead of PD's clock (a lock is never judged expired early); unlike the bare
//! low-resolution timestamp (refreshed every 2 s, and possibly that old when read) it
//! does not lag by up to the refresh period either. The estimate is also what `CheckTxnStatus.current_ts` carries,
//! so the client and TiKV judge expiry from the same clock.
//!
//! Local time is `tokio::time::Instant`, so paused-time tests move it deterministically.

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::pd::tso::{compose_ts, extract_physical};
use crate::pd::{Oracle, TsoError};

/// A timestamp and the local instant it was first seen.
#[derive(Debug, Clone, Copy)]
pub struct TsSample {
    /// The timestamp.
    pub ts: u64,
    /// When it was seen.
    pub at: Instant,
}

impl TsSample {
    /// Estimated physical time (ms) at `now`.
    pub fn physical_at(&self, now: Instant) -> i64 {
        let elapsed = now.saturating_duration_since(self.at).as_millis();
        extract_physical(self.ts).saturating_add(i64::try_from(elapsed).unwrap_or(i64::MAX))
    }
}

/// Milliseconds until a lock of `lock_ts` with `ttl_ms` expires, seen at physical time
/// `now_physical` (negative once expired; client-go `UntilExpired`).
pub fn until_expired_at(now_physical: i64, lock_ts: u64, ttl_ms: u64) -> i64 {
    let ttl = i64::try_from(ttl_ms).unwrap_or(i64::MAX);
    extract_physical(lock_ts)
        .saturating_add(ttl)
        .saturating_sub(now_physical)
}

/// How old the last fetched TSO may be before [`ExpiryClock::current_ts`] fetches
/// another.
pub const REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// The resolver's clock (see the [module docs](self)).
#[derive(Debug)]
pub struct ExpiryClock {
    oracle: Oracle,
    last: Mutex<Option<TsSample>>,
}

impl ExpiryClock {
    /// A clock reading `oracle`.
    pub fn new(oracle: Oracle) -> Self {
        ExpiryClock {
            oracle,
            last: Mutex::new(None),
        }
    }

    /// Records `ts`, fetched just now, if it is newer than the last sample.
    pub fn observe(&self, ts: u64) {
        if ts == 0 {
            return;
        }
        let mut last = self.last.lock();
        if last.is_none_or(|s| ts > s.ts) {
            *last = Some(TsSample {
                ts,
                at: Instant::now(),
            });
        }
    }

    /// The latest sample.
    pub fn sample(&self) -> Option<TsSample> {
        *self.last.lock()
    }

    /// The estimated current timestamp (physical part only). A fresh TSO is fetched when
    /// the last one is older than [`REFRESH`], so the estimate rests on a recent
    /// allocation and the local clock only bridges the gap.
    pub async fn current_ts(&self) -> Result<u64, TsoError> {
        let now = Instant::now();
        let sample = match self.sample() {
            Some(s) if now.saturating_duration_since(s.at) < REFRESH => s,
            _ => {
                let ts = self.oracle.get_timestamp().await?;
                self.observe(ts);
                self.sample().unwrap_or(TsSample {
                    ts,
                    at: Instant::now(),
                })
            }
        };
        let physical = sample.physical_at(Instant::now());
        Ok(compose_ts(physical, 0).max(sample.ts))
    }

    /// Milliseconds until the lock expires (client-go `UntilExpired`); with no timestamp
    /// seen yet the lock is taken as fresh (its whole TTL left).
    pub fn until_expired(&self, lock_ts: u64, ttl_ms: u64) -> i64 {
        match self.sample() {
            Some(s) => until_expired_at(s.physical_at(Instant::now()), lock_ts, ttl_ms),
            None => i64::try_from(ttl_ms).unwrap_or(i64::MAX),
        }
    }

    /// Whether the lock has expired (client-go `IsExpired`); never before a timestamp is
    /// known.
    pub fn is_expired(&self, lock_ts: u64, ttl_ms: u64) -> bool {
        self.until_expired(lock_ts, ttl_ms) <= 0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn expiry_is_measured_from_the_lock_s_physical_time() {
        let lock = compose_ts(10_000, 7);
        assert_eq!(until_expired_at(10_000, lock, 3_000), 3_000);
        assert_eq!(until_expired_at(12_500, lock, 3_000), 500);
        assert_eq!(until_expired_at(13_000, lock, 3_000), 0);
        assert_eq!(until_expired_at(14_000, lock, 3_000), -1_000);
        // Saturating on absurd TTLs.
        assert!(until_expired_at(0, lock, u64::MAX) > 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_estimate_adds_local_elapsed_time_to_the_last_tso() {
        let s = TsSample {
            ts: compose_ts(50_000, 3),
            at: Instant::now(),
        };
        assert_eq!(s.physical_at(Instant::now()), 50_000);
        tokio::time::advance(Duration::from_millis(1_234)).await;
        assert_eq!(s.physical_at(Instant::now()), 51_234);
        let lock = compose_ts(50_000, 0);
        assert_eq!(
            until_expired_at(s.physical_at(Instant::now()), lock, 1_000),
            -234
        );
    }
}
