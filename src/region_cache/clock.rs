//! The cache's clock for region TTLs: a coarse time kept by a background ticker, so a hit
//! on a fresh entry reads one shared atomic instead of the system clock.
//!
//! A region expires `ttl` (+ jitter) after its last use, and a hit extends the TTL once
//! less than `ttl` is left (client-go `checkRegionCacheTTL`). Most hits land on entries
//! with more than `ttl` left (the jitter part), where nothing has to be decided precisely:
//! the coarse time plus its worst staleness ([`SLACK`]) bounds the true time from above,
//! and if even that bound leaves more than `ttl`, the entry is valid and needs no
//! extension. Only otherwise is the precise (tokio, so pausable) clock read. While no
//! ticker runs (no tokio runtime at construction, or the runtime shut down) every check is
//! precise, so the TTL semantics never depend on the ticker.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};

/// Period of the ticker.
const TICK: Duration = Duration::from_millis(250);
/// How far behind the true time the coarse time may be while the ticker runs (several
/// ticks, for scheduling delays).
const SLACK: u64 = 2_000;

/// What a lookup concluded about an entry's TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// Invalidated or expired.
    Stale,
    /// Valid, and far enough from expiry that the TTL need not be extended.
    Fresh,
    /// Valid; the TTL is extended to the given expiry (client-go `checkRegionCacheTTL`).
    Extend(u64),
}

/// Milliseconds since the cache was created: precise on demand, coarse on hits.
#[derive(Debug)]
pub(crate) struct TtlClock {
    base: Instant,
    /// The latest precise reading (the ticker's or a lookup's).
    coarse_ms: AtomicU64,
    /// Whether a ticker keeps `coarse_ms` within [`SLACK`] of the true time.
    ticking: AtomicBool,
}

/// Clears [`TtlClock::ticking`] when the ticker task ends, however it ends.
struct TickerGuard(Weak<TtlClock>);

impl Drop for TickerGuard {
    fn drop(&mut self) {
        if let Some(clock) = self.0.upgrade() {
            clock.ticking.store(false, Ordering::Release);
        }
    }
}

impl TtlClock {
    /// A clock starting now, with a ticker on the current tokio runtime if there is one.
    /// The ticker ends when the clock is dropped.
    pub(crate) fn start() -> Arc<TtlClock> {
        let clock = Self::without_ticker();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            clock.ticking.store(true, Ordering::Release);
            let guard = TickerGuard(Arc::downgrade(&clock));
            rt.spawn(async move {
                let mut tick = tokio::time::interval(TICK);
                tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    match guard.0.upgrade() {
                        Some(clock) => {
                            clock.now_ms();
                        }
                        None => break,
                    }
                }
            });
        }
        clock
    }

    /// A clock starting now whose every check is precise.
    fn without_ticker() -> Arc<TtlClock> {
        Arc::new(TtlClock {
            base: Instant::now(),
            coarse_ms: AtomicU64::new(0),
            ticking: AtomicBool::new(false),
        })
    }

    /// The precise time (and refreshes the coarse one).
    pub(crate) fn now_ms(&self) -> u64 {
        let now = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.coarse_ms.fetch_max(now, Ordering::AcqRel);
        now
    }

    /// An upper bound of the true time without reading the system clock, while the ticker
    /// runs.
    fn upper_bound_ms(&self) -> Option<u64> {
        self.ticking
            .load(Ordering::Acquire)
            .then(|| self.coarse_ms.load(Ordering::Acquire).saturating_add(SLACK))
    }

    /// The verdict on an entry expiring at `expires_at_ms` (0 = invalidated) for a hit
    /// now. `next_ttl(now)` draws the extended expiry (with jitter).
    pub(crate) fn check(
        &self,
        expires_at_ms: u64,
        ttl_ms: u64,
        next_ttl: impl FnOnce(u64) -> u64,
    ) -> Freshness {
        if expires_at_ms == 0 {
            return Freshness::Stale;
        }
        if self
            .upper_bound_ms()
            .is_some_and(|bound| bound.saturating_add(ttl_ms) <= expires_at_ms)
        {
            return Freshness::Fresh;
        }
        let now = self.now_ms();
        if now >= expires_at_ms {
            Freshness::Stale
        } else if expires_at_ms < now.saturating_add(ttl_ms) {
            Freshness::Extend(next_ttl(now))
        } else {
            Freshness::Fresh
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a ticker every check reads the precise clock: expiry and extension are
    /// exact under paused time.
    #[tokio::test(start_paused = true)]
    async fn without_ticker_checks_are_precise() {
        let clock = TtlClock::without_ticker();
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(clock.check(4_000, 10_000, |n| n + 10_000), Freshness::Stale);
        assert_eq!(
            clock.check(6_000, 10_000, |n| n + 10_000),
            Freshness::Extend(15_000)
        );
        assert_eq!(clock.check(20_000, 10_000, |_| 0), Freshness::Fresh);
        assert_eq!(clock.check(0, 10_000, |_| 0), Freshness::Stale);
    }

    /// With the ticker, an entry with more than `ttl` + slack left is fresh without a
    /// clock read; one near expiry is still decided precisely.
    #[tokio::test(start_paused = true)]
    async fn ticker_keeps_the_coarse_time() {
        let clock = TtlClock::start();
        tokio::time::sleep(Duration::from_secs(3)).await;
        // The ticker ran during the sleep (auto-advanced in 250 ms steps).
        let coarse = clock.coarse_ms.load(Ordering::Acquire);
        assert!((2_750..=3_000).contains(&coarse), "{coarse}");
        assert!(clock.ticking.load(Ordering::Acquire));
        assert_eq!(clock.check(100_000, 10_000, |_| 0), Freshness::Fresh);
        assert_eq!(clock.check(2_900, 10_000, |_| 0), Freshness::Stale);
        let metrics = tokio::runtime::Handle::current().metrics();
        assert_eq!(metrics.num_alive_tasks(), 1, "the ticker");
        drop(clock);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            metrics.num_alive_tasks(),
            0,
            "the ticker ends with its clock"
        );
    }
}
