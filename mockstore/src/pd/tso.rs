//! The timestamp oracle: hybrid timestamps `physical_ms << 18 | logical`.
//!
//! Mirrors PD's TSO allocator (`pkg/tso`): the physical part follows the cluster clock in
//! milliseconds and never goes back; each request for `count` timestamps takes the next
//! `count` logical values and answers with the *last* one of the batch; when the 18
//! logical bits would overflow, the physical part moves one millisecond ahead.

use parking_lot::Mutex;
use tikv_tower_proto::pdpb;

/// Number of logical bits in a TSO timestamp.
pub const LOGICAL_BITS: u32 = 18;
/// One more than the largest logical value.
pub const MAX_LOGICAL: i64 = 1 << LOGICAL_BITS;

/// Why a TSO request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TsoError {
    /// `count == 0` (PD: "tso count should be positive").
    #[error("tso count should be positive")]
    ZeroCount,
    /// `count` does not fit in the logical bits of one millisecond.
    #[error("tso count {0} is too large")]
    TooLarge(u32),
}

/// Hands out strictly increasing hybrid timestamps.
#[derive(Debug, Default)]
pub struct TsoAllocator {
    /// Last handed out `(physical_ms, logical)`.
    last: Mutex<(i64, i64)>,
}

impl TsoAllocator {
    /// Allocates `count` consecutive timestamps at wall time `now_ms` and returns the
    /// last of them.
    pub fn allocate(&self, now_ms: u64, count: u32) -> Result<pdpb::Timestamp, TsoError> {
        if count == 0 {
            return Err(TsoError::ZeroCount);
        }
        let count = i64::from(count);
        if count >= MAX_LOGICAL {
            return Err(TsoError::TooLarge(count as u32));
        }
        let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
        let mut last = self.last.lock();
        let (mut physical, mut logical) = *last;
        if now > physical {
            physical = now;
            logical = 0;
        }
        if logical + count >= MAX_LOGICAL {
            physical += 1;
            logical = 0;
        }
        logical += count;
        *last = (physical, logical);
        Ok(pdpb::Timestamp {
            physical,
            logical,
            suffix_bits: 0,
        })
    }

    /// The last handed out timestamp as a `u64` version (0 before the first).
    pub fn last_version(&self) -> u64 {
        let (p, l) = *self.last.lock();
        compose(p, l)
    }
}

/// `physical << 18 | logical` as a `u64` version.
pub fn compose(physical: i64, logical: i64) -> u64 {
    (u64::try_from(physical).unwrap_or(0) << LOGICAL_BITS) | u64::try_from(logical).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(ts: &pdpb::Timestamp) -> u64 {
        compose(ts.physical, ts.logical)
    }

    #[test]
    fn batches_are_disjoint_and_increasing() {
        let tso = TsoAllocator::default();
        let a = tso.allocate(1_000, 10).unwrap();
        assert_eq!((a.physical, a.logical), (1_000, 10));
        let b = tso.allocate(1_000, 5).unwrap();
        assert_eq!((b.physical, b.logical), (1_000, 15));
        // First of batch b (logical 11) is after last of batch a.
        assert!(v(&b) - 5 + 1 > v(&a));
        // Clock going back does not move physical back.
        let c = tso.allocate(900, 1).unwrap();
        assert_eq!((c.physical, c.logical), (1_000, 16));
        // Clock moving forward resets logical.
        let d = tso.allocate(2_000, 3).unwrap();
        assert_eq!((d.physical, d.logical), (2_000, 3));
        assert_eq!(tso.last_version(), v(&d));
    }

    #[test]
    fn logical_overflow_advances_physical() {
        let tso = TsoAllocator::default();
        let a = tso.allocate(5, (MAX_LOGICAL - 2) as u32).unwrap();
        assert_eq!((a.physical, a.logical), (5, MAX_LOGICAL - 2));
        let b = tso.allocate(5, 2).unwrap();
        assert_eq!((b.physical, b.logical), (6, 2));
        assert!(v(&b) - 1 > v(&a));
    }

    #[test]
    fn invalid_counts() {
        let tso = TsoAllocator::default();
        assert_eq!(tso.allocate(1, 0), Err(TsoError::ZeroCount));
        assert_eq!(tso.allocate(1, 1 << 18), Err(TsoError::TooLarge(1 << 18)));
    }
}
