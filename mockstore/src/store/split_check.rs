//! The split checker: a region that holds too many committed versions or
//! too many bytes is split, as TiKV's keys and size split checkers do.
//!
//! * **Keys** (`region-max-keys` / `region-split-keys`): only committed
//!   transaction versions count, one per CF_WRITE record (TiKV
//!   `split_check/keys.rs` `Checker::on_kv` skips entries that are not
//!   `is_commit_version()`; `get_range_approximate_keys` reads CF_WRITE).
//!   Locks and RawKV data (CF_DEFAULT) never trigger a key-count split
//!   (tikv/tikv#14503).
//! * **Size** (`region-max-size` / `region-split-size`, TiKV default 256 MiB,
//!   max 1.5×): every entry counts its key + value, raw and transactional.
//!
//! Like TiKV, the check runs on a tick (`split-region-check-tick-interval`,
//! default 10 s, measured on the cluster clock) over the regions written
//! since the last tick, not after every write; one check may cut a region
//! into as many parts as its keys / size need, at most
//! [`BATCH_SPLIT_LIMIT`] split keys (TiKV `batch-split-limit`); the parts
//! are checked again on the next tick. Simplification: a key's versions are
//! never separated (TiKV may pick a split key between two versions and then
//! truncate it to the user key).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::cluster::{MockCluster, Region};
use crate::store::bounds::RawBounds;

/// Most split keys produced by one check (TiKV `batch-split-limit`).
pub const BATCH_SPLIT_LIMIT: usize = 10;

/// TiKV's default `split-region-check-tick-interval`.
pub const DEFAULT_SPLIT_CHECK_TICK: Duration = Duration::from_secs(10);

/// The split checker's bookkeeping: regions written since the last tick and
/// when that tick ran (cluster clock, ms).
#[derive(Debug, Default)]
pub(crate) struct SplitCheckState {
    dirty: BTreeSet<u64>,
    last_tick_ms: u64,
}

/// What the checker sees of one key: its committed versions and its size.
#[derive(Debug, Default, Clone, Copy)]
struct KeyStats {
    versions: u64,
    size: u64,
}

impl MockCluster {
    /// Notes a write on `region_id` and runs a split-check tick if one is
    /// due.
    pub(crate) fn check_split(&self, region_id: u64) {
        let split = self.config().split;
        let split_on = split.max_keys.is_some() || split.max_size.is_some();
        let merge_on = self.config().merge.is_some();
        if !split_on && !merge_on {
            return;
        }
        let interval = split.check_interval.unwrap_or(DEFAULT_SPLIT_CHECK_TICK);
        let interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
        let due = {
            let mut st = self.inner.split_check.lock();
            st.dirty.insert(region_id);
            let now = self.clock().now_millis();
            if now >= st.last_tick_ms.saturating_add(interval_ms) {
                st.last_tick_ms = now;
                true
            } else {
                false
            }
        };
        if due {
            if split_on {
                self.split_check_tick();
            }
            if merge_on {
                self.merge_check_tick();
            }
        }
    }

    /// One split-check tick: checks every region written since the last
    /// tick (and the parts of regions split by the last tick); returns the
    /// number of regions split.
    pub fn split_check_tick(&self) -> usize {
        let dirty = std::mem::take(&mut self.inner.split_check.lock().dirty);
        let mut split = 0;
        for id in dirty {
            if !self.run_split_check(id).is_empty() {
                split += 1;
            }
        }
        split
    }

    /// Checks `region_id` now and splits it if it is over a threshold;
    /// returns the split keys used (boundary form).
    pub fn run_split_check(&self, region_id: u64) -> Vec<Vec<u8>> {
        let split = self.config().split;
        let Some(region) = self.live_region(region_id) else {
            return Vec::new();
        };
        let keys = self.region_key_stats(&region);
        let total_versions: u64 = keys.values().map(|s| s.versions).sum();
        let total_size: u64 = keys.values().map(|s| s.size).sum();
        let mut split_at = if let Some(max) = split.max_keys.filter(|m| total_versions > *m) {
            let every = split.split_keys.unwrap_or(max * 2 / 3).max(1);
            pick_split_keys(
                keys.iter()
                    .filter(|(_, s)| s.versions > 0)
                    .map(|(k, s)| (k, s.versions)),
                every,
                max,
            )
        } else if let Some(max) = split.max_size.filter(|m| total_size > *m) {
            let every = split.split_size.unwrap_or(max * 2 / 3).max(1);
            pick_split_keys(keys.iter().map(|(k, s)| (k, s.size)), every, max)
        } else {
            Vec::new()
        };
        split_at.retain(|k| *k != region.start_key);
        if split_at.is_empty() {
            return split_at;
        }
        match self.split_region(region_id, split_at.clone()) {
            Ok(parts) => {
                // The parts are checked again on the next tick (a region may
                // need more than `BATCH_SPLIT_LIMIT` cuts).
                self.inner
                    .split_check
                    .lock()
                    .dirty
                    .extend(parts.iter().map(|r| r.id));
                split_at
            }
            Err(_) => Vec::new(),
        }
    }

    /// The region's approximate size (bytes) and keys (raw keys plus
    /// committed versions), as reported to PD in heartbeats.
    pub(crate) fn region_size_and_keys(&self, region: &Region) -> (u64, u64) {
        self.region_key_stats(region)
            .values()
            .fold((0, 0), |(size, keys), s| {
                (size + s.size, keys + s.versions.max(1))
            })
    }

    /// The key in the middle of the region's data by size (boundary form),
    /// for PD's `approximate` split policy; `None` when it holds no data.
    pub fn middle_key(&self, region: &Region) -> Option<Vec<u8>> {
        let keys = self.region_key_stats(region);
        let total: u64 = keys.values().map(|s| s.size).sum();
        let mut acc = 0u64;
        for (k, s) in &keys {
            acc += s.size;
            if acc * 2 >= total && *k != region.start_key {
                return Some(k.clone());
            }
        }
        None
    }

    /// Every key in the region with its committed versions (CF_WRITE
    /// records; raw keys have none) and its size (key + value of every
    /// entry), keyed in boundary form: raw keys in the raw form,
    /// transactional keys memcomparable
    /// ([`ApiVersion::key_form`](crate::cluster::ApiVersion::key_form)), as
    /// TiKV stores them side by side.
    fn region_key_stats(&self, region: &Region) -> BTreeMap<Vec<u8>, KeyStats> {
        let api = self.api_version();
        let raw_form = api.key_form(true);
        let bounds = RawBounds::of(region, raw_form);
        let (lo, hi) = bounds.clip(&[], &[]);
        let now = self.clock().now_secs();
        let mut keys: BTreeMap<Vec<u8>, KeyStats> = self
            .raw()
            .keys(lo, hi, now, |k| bounds.contains(k))
            .into_iter()
            .map(|(k, size)| (raw_form.to_boundary(&k), KeyStats { versions: 0, size }))
            .collect();
        let txn_form = api.key_form(false);
        let bounds = RawBounds::of(region, txn_form);
        self.engine()
            .store()
            .for_each_in_range(&bounds.start, &bounds.end, false, |k, d| {
                if bounds.contains(k) {
                    let key_len = k.len() as u64;
                    let versions = d.writes.len() as u64;
                    let size = d
                        .writes
                        .values()
                        .map(|w| key_len + w.value.as_ref().map_or(0, |v| v.len() as u64))
                        .sum::<u64>()
                        + d.lock.as_ref().map_or(0, |_| key_len);
                    let e = keys.entry(txn_form.to_boundary(k)).or_default();
                    e.versions += versions;
                    e.size += size;
                }
                true
            });
        keys
    }
}

/// Picks split keys from `(key, weight)` in key order, as TiKV's keys and
/// size checkers do (`Checker::on_kv` / `Checker::split_keys`): a key whose
/// weight takes the running total over `split` starts a new part; at most
/// [`BATCH_SPLIT_LIMIT`] keys; the last cut is dropped when the part after
/// it would stay under `max - split`.
fn pick_split_keys<'a>(
    items: impl Iterator<Item = (&'a Vec<u8>, u64)>,
    split: u64,
    max: u64,
) -> Vec<Vec<u8>> {
    let mut current = 0u64;
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for (key, weight) in items {
        current = current.saturating_add(weight);
        let over_limit = keys.len() >= BATCH_SPLIT_LIMIT;
        if current > split && !over_limit {
            keys.push(key.clone());
            current = weight;
        }
        if keys.len() >= BATCH_SPLIT_LIMIT && current.saturating_add(split) >= max {
            break;
        }
    }
    if current.saturating_add(split) < max {
        keys.pop();
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("k{i:03}").into_bytes()).collect()
    }

    #[test]
    fn picks_a_key_every_split_and_keeps_the_last_part_big_enough() {
        let ks = keys(20);
        // split 5, max 8: parts of 5; the tail must reach 8 - 5 = 3.
        let got = pick_split_keys(ks.iter().map(|k| (k, 1)), 5, 8);
        assert_eq!(got, vec![ks[5].clone(), ks[10].clone(), ks[15].clone()]);
        let ks = keys(17);
        let got = pick_split_keys(ks.iter().map(|k| (k, 1)), 5, 8);
        assert_eq!(got, vec![ks[5].clone(), ks[10].clone()]);
    }

    #[test]
    fn at_most_batch_split_limit_keys() {
        let ks = keys(500);
        let got = pick_split_keys(ks.iter().map(|k| (k, 1)), 2, 3);
        assert_eq!(got.len(), BATCH_SPLIT_LIMIT);
    }
}
