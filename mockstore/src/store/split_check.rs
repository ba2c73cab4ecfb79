//! The split checker: after writes, a region that holds too many keys or
//! bytes is split (TiKV's keys / size split checkers, `region-max-keys` /
//! `region-split-keys`, `region-max-size` / `region-split-size`).
//!
//! The region's live keys (raw and transactional, which share the key space
//! in an API-V1 cluster) are counted in key order; a split key is taken every
//! `split_keys` keys (or every `split_size` bytes), at most
//! [`BATCH_SPLIT_LIMIT`] at once (TiKV `batch-split-limit`). To keep bulk
//! loads linear-ish, a region is re-checked only every few writes.

use std::collections::BTreeMap;

use crate::cluster::MockCluster;
use crate::store::bounds::RawBounds;

/// Most split keys produced by one check (TiKV `batch-split-limit`).
pub const BATCH_SPLIT_LIMIT: usize = 10;

impl MockCluster {
    /// Runs the split checker on `region_id` if its write counter says so.
    pub(crate) fn check_split(&self, region_id: u64) {
        let split = self.config().split;
        if split.max_keys.is_none() && split.max_size.is_none() {
            return;
        }
        let step = split.max_keys.map_or(16, |m| (m / 4).clamp(1, 64));
        {
            let mut counters = self.inner.split_counters.lock();
            let c = counters.entry(region_id).or_insert(0);
            *c += 1;
            if !(*c).is_multiple_of(step) {
                return;
            }
        }
        self.run_split_check(region_id);
    }

    /// Checks `region_id` now and splits it if it is over a threshold;
    /// returns the split keys used (boundary form).
    pub fn run_split_check(&self, region_id: u64) -> Vec<Vec<u8>> {
        let split = self.config().split;
        let Some(region) = self.live_region(region_id) else {
            return Vec::new();
        };
        let enc = self.boundary_encoding();
        let bounds = RawBounds::of(&region, enc);
        let keys = self.region_key_sizes(&bounds);
        let total_keys = keys.len() as u64;
        let total_size: u64 = keys.values().sum();
        let mut split_at: Vec<Vec<u8>> = Vec::new();
        if let Some(max_keys) = split.max_keys.filter(|m| total_keys > *m) {
            let every = split.split_keys.unwrap_or(max_keys * 2 / 3).max(1);
            let every = usize::try_from(every).unwrap_or(usize::MAX);
            split_at = keys
                .keys()
                .enumerate()
                .filter(|(i, _)| *i > 0 && i % every == 0)
                .map(|(_, k)| k.clone())
                .take(BATCH_SPLIT_LIMIT)
                .collect();
        } else if let Some(max_size) = split.max_size.filter(|m| total_size > *m) {
            let every = split.split_size.unwrap_or(max_size * 2 / 3).max(1);
            let mut acc = 0u64;
            for (k, size) in &keys {
                if acc >= every {
                    split_at.push(k.clone());
                    acc = 0;
                    if split_at.len() >= BATCH_SPLIT_LIMIT {
                        break;
                    }
                }
                acc += size;
            }
        }
        let split_at: Vec<Vec<u8>> = split_at
            .iter()
            .map(|k| enc.to_boundary(k))
            .filter(|k| *k != region.start_key)
            .collect();
        if split_at.is_empty() {
            return split_at;
        }
        match self.split_region(region_id, split_at.clone()) {
            Ok(_) => split_at,
            Err(_) => Vec::new(),
        }
    }

    /// Live keys in the region with their approximate sizes (key + value).
    fn region_key_sizes(&self, bounds: &RawBounds) -> BTreeMap<Vec<u8>, u64> {
        let (lo, hi) = bounds.clip(&[], &[]);
        let now = self.clock().now_secs();
        let mut keys: BTreeMap<Vec<u8>, u64> = self
            .raw()
            .keys(lo, hi, now, |k| bounds.contains(k))
            .into_iter()
            .map(|(k, size)| (k.to_vec(), size))
            .collect();
        self.engine()
            .store()
            .for_each_in_range(&bounds.start, &bounds.end, false, |k, d| {
                if bounds.contains(k) {
                    let size = k.len() as u64
                        + d.writes
                            .values()
                            .filter_map(|w| w.value.as_ref())
                            .map(|v| v.len() as u64)
                            .sum::<u64>();
                    *keys.entry(k.to_vec()).or_insert(0) += size;
                }
                true
            });
        keys
    }
}
