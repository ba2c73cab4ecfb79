//! The cluster's clock: wall clock by default, or a manual clock for tests.
//!
//! mockstore reads time in three places: the TSO physical part (PD), raw-KV
//! TTL expiry (seconds, TiKV `ttl_current_ts`), and the expiry of injected
//! delays. Over gRPC the clock MUST be the wall clock, because clients compare
//! TSO physical time with their own clocks (lock TTLs, heartbeats). In-process
//! tests may use a [`ManualClock`] and move it with [`ManualClock::advance`]
//! to expire raw TTLs deterministically.
//!
//! ```
//! use std::time::Duration;
//! use tikv_tower_mockstore::{Clock, ManualClock};
//! let manual = ManualClock::new(1_000_000);
//! let clock = Clock::Manual(manual.clone());
//! manual.advance(Duration::from_secs(2));
//! assert_eq!(clock.now_millis(), 1_002_000);
//! assert_eq!(clock.now_secs(), 1_002);
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time in milliseconds since the Unix epoch.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The system wall clock (the default; required when served over gRPC).
    #[default]
    System,
    /// A clock that only moves when the test moves it.
    Manual(ManualClock),
}

impl Clock {
    /// A new manual clock starting at `start_ms` (milliseconds since the Unix
    /// epoch), returned with a handle to move it.
    pub fn manual(start_ms: u64) -> (Clock, ManualClock) {
        let manual = ManualClock::new(start_ms);
        (Clock::Manual(manual.clone()), manual)
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_millis(&self) -> u64 {
        match self {
            Clock::System => system_millis(),
            Clock::Manual(m) => m.now_millis(),
        }
    }

    /// Whole seconds since the Unix epoch (the unit of raw-KV TTLs).
    pub fn now_secs(&self) -> u64 {
        self.now_millis() / 1000
    }
}

/// A manually driven clock; clones share the same time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    millis: Arc<AtomicU64>,
}

impl ManualClock {
    /// A manual clock reading `start_ms` milliseconds since the Unix epoch.
    pub fn new(start_ms: u64) -> Self {
        ManualClock {
            millis: Arc::new(AtomicU64::new(start_ms)),
        }
    }

    /// A manual clock starting at the current wall-clock time.
    pub fn starting_now() -> Self {
        Self::new(system_millis())
    }

    /// The current reading in milliseconds since the Unix epoch.
    pub fn now_millis(&self) -> u64 {
        self.millis.load(Ordering::SeqCst)
    }

    /// Moves the clock forward by `d` (saturating).
    pub fn advance(&self, d: Duration) {
        let add = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let _ = self
            .millis
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
                Some(v.saturating_add(add))
            });
    }

    /// Sets the clock to `ms` milliseconds since the Unix epoch (it may go
    /// backwards: that is the test's choice).
    pub fn set_millis(&self, ms: u64) {
        self.millis.store(ms, Ordering::SeqCst);
    }
}

fn system_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_advances_and_is_shared() {
        let (clock, handle) = Clock::manual(5_500);
        assert_eq!(clock.now_secs(), 5);
        handle.advance(Duration::from_millis(600));
        assert_eq!(clock.now_millis(), 6_100);
        assert_eq!(clock.now_secs(), 6);
        handle.set_millis(10);
        assert_eq!(clock.now_millis(), 10);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(Clock::System.now_millis() > 1_577_836_800_000);
    }
}
