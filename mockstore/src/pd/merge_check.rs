//! PD's merge checker (`pkg/schedule/checker/merge_checker.go`): small or
//! empty regions are merged into an adjacent region.
//!
//! Off by default ([`MergeConfig`] in the builder, `--merge` on the command
//! line), so tests that need a fixed layout keep it. When on, every
//! split-check tick (see [`crate::store::split_check`]) also runs the merge
//! checker: a region is merged when
//!
//! - the cluster started, and the region was last split, more than
//!   `split_merge_interval` ago (PD `split-merge-interval`, default 1 h;
//!   "recently-start" / "recently-split");
//! - it holds at most `max_merge_region_size` bytes and
//!   `max_merge_region_keys` keys (PD defaults 20 MiB / 200 000);
//! - an adjacent region (previous or next) qualifies as target: not
//!   recently split, not across an API-V2 keyspace boundary; of two, the
//!   smaller is chosen, as `checkTarget` does.
//!
//! The merge itself follows TiKV's epoch rules (`exec_prepare_merge` bumps
//! the source's version and conf_ver, `exec_commit_merge` sets the target's
//! version to `max(source, target) + 1`); the source disappears, so a client
//! with a stale route gets `RegionNotFound` from it and `EpochNotMatch` from
//! the target.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::cluster::{ApiVersion, MockCluster, Region};

/// PD's merge knobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MergeConfig {
    /// PD `max-merge-region-size` (bytes).
    pub max_merge_region_size: u64,
    /// PD `max-merge-region-keys`.
    pub max_merge_region_keys: u64,
    /// PD `split-merge-interval`: no merge of a region split (or of any
    /// region after start-up) more recently than this, on the cluster clock.
    pub split_merge_interval: Duration,
}

impl Default for MergeConfig {
    /// PD's defaults: 20 MiB, 200 000 keys, 1 h.
    fn default() -> Self {
        MergeConfig {
            max_merge_region_size: 20 * 1024 * 1024,
            max_merge_region_keys: 200_000,
            split_merge_interval: Duration::from_secs(3600),
        }
    }
}

/// When the cluster started and when each region was last split (cluster
/// clock, ms).
#[derive(Debug, Default)]
pub(crate) struct MergeState {
    pub(crate) start_ms: u64,
    pub(crate) split_ms: HashMap<u64, u64>,
}

impl MockCluster {
    /// Notes that `regions` were just produced by a split (PD's
    /// recently-split cache).
    pub(crate) fn note_split(&self, regions: &[Region]) {
        let now = self.clock().now_millis();
        let mut st = self.inner.pd.merge.lock();
        for r in regions {
            st.split_ms.insert(r.id, now);
        }
    }

    /// Runs PD's merge checker once over every region (a no-op unless
    /// merges are configured); returns the `(source, target)` pairs merged.
    pub fn merge_check_tick(&self) -> Vec<(u64, u64)> {
        let Some(cfg) = self.config().merge else {
            return Vec::new();
        };
        let now = self.clock().now_millis();
        let interval = u64::try_from(cfg.split_merge_interval.as_millis()).unwrap_or(u64::MAX);
        let recent = |id: u64| {
            let st = self.inner.pd.merge.lock();
            now < st.start_ms.saturating_add(interval)
                || st
                    .split_ms
                    .get(&id)
                    .is_some_and(|t| now < t.saturating_add(interval))
        };
        let small = |r: &Region| {
            let (size, keys) = self.region_size_and_keys(r);
            size <= cfg.max_merge_region_size && keys <= cfg.max_merge_region_keys
        };
        let mut merged = Vec::new();
        let mut touched: HashSet<u64> = HashSet::new();
        let regions = self.inner.state.read().all_regions();
        for source in regions {
            if touched.contains(&source.id) || recent(source.id) {
                continue;
            }
            let Some(source) = self.live_region(source.id) else {
                continue;
            };
            if !small(&source) {
                continue;
            }
            let neighbours = {
                let state = self.inner.state.read();
                let prev = (!source.start_key.is_empty())
                    .then(|| state.prev_region(&source.start_key).cloned())
                    .flatten();
                let next = (!source.end_key.is_empty())
                    .then(|| state.region_by_key(&source.end_key).cloned())
                    .flatten();
                [prev, next]
            };
            let target = neighbours
                .into_iter()
                .flatten()
                .filter(|t| !touched.contains(&t.id) && !recent(t.id))
                .filter(|t| !self.crosses_keyspace(&source, t))
                .min_by_key(|t| self.region_size_and_keys(t).0);
            let Some(target) = target else {
                continue;
            };
            if self.merge(source.id, target.id).is_ok() {
                touched.insert(source.id);
                touched.insert(target.id);
                merged.push((source.id, target.id));
            }
        }
        merged
    }

    /// Whether merging `a` and `b` would join two API-V2 keyspace ranges
    /// (their shared boundary is a bare `mode + keyspace id` prefix).
    fn crosses_keyspace(&self, a: &Region, b: &Region) -> bool {
        if self.api_version() != ApiVersion::V2 {
            return false;
        }
        let shared = if a.end_key == b.start_key {
            &a.end_key
        } else {
            &a.start_key
        };
        crate::codec::decode_bytes(shared).map_or(true, |k| k.len() <= 4)
    }
}
