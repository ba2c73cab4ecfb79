//! Version GC and range deletion (TiKV `src/storage/txn/actions/gc.rs`,
//! `commands::DeleteRange`, `Storage::unsafe_destroy_range`).
//!
//! GC at a safe point keeps, per key, every record newer than the safe
//! point and the newest Put at or below it; Lock and Rollback records down to
//! the first Put/Delete are removed, a Delete is removed together with
//! everything older. Locks are never touched (clients resolve them first).

use tikv_tower_proto::kvrpcpb;

use super::types::{Ts, WriteType};
use super::{clamp_range, RegionRange, TxnEngine};

impl TxnEngine {
    /// Removes versions invisible to every snapshot at or after
    /// `safe_point`. Returns the number of records removed.
    pub fn gc(&self, safe_point: Ts) -> usize {
        self.gc_keys(safe_point, |_| true)
    }

    /// [`gc`](Self::gc) of the keys `pick` selects only.
    pub fn gc_keys(&self, safe_point: Ts, pick: impl Fn(&[u8]) -> bool) -> usize {
        let mut removed = 0;
        self.inner.store.retain_mut(|key, d| {
            if !pick(key) {
                return;
            }
            let mut drop = Vec::new();
            let mut remove_all = false;
            for (&commit_ts, w) in d.writes.range(..=safe_point).rev() {
                if remove_all {
                    drop.push(commit_ts);
                    continue;
                }
                match w.write_type {
                    WriteType::Put => remove_all = true,
                    WriteType::Delete => {
                        drop.push(commit_ts);
                        remove_all = true;
                    }
                    WriteType::Lock | WriteType::Rollback => drop.push(commit_ts),
                }
            }
            removed += drop.len();
            for ts in drop {
                d.writes.remove(&ts);
            }
        });
        removed
    }

    /// `KvDeleteRange`: deletes every lock and version in
    /// `[start_key, end_key)` ∩ region; `notify_only` does nothing.
    pub fn delete_range(
        &self,
        req: &kvrpcpb::DeleteRangeRequest,
        region: RegionRange<'_>,
    ) -> kvrpcpb::DeleteRangeResponse {
        if !req.notify_only {
            let (lo, hi) = clamp_range(&req.start_key, &req.end_key, region);
            self.inner.store.delete_range(&lo, &hi);
        }
        kvrpcpb::DeleteRangeResponse::default()
    }

    /// `UnsafeDestroyRange` (transactional part): deletes every lock and
    /// version in `[start_key, end_key)` regardless of regions. Both keys
    /// must be non-empty.
    pub fn unsafe_destroy_range(
        &self,
        req: &kvrpcpb::UnsafeDestroyRangeRequest,
    ) -> kvrpcpb::UnsafeDestroyRangeResponse {
        let mut resp = kvrpcpb::UnsafeDestroyRangeResponse::default();
        if req.start_key.is_empty() || req.end_key.is_empty() {
            resp.error = "unsafe destroy range: start_key and end_key must not be empty".into();
            return resp;
        }
        self.inner.store.delete_range(&req.start_key, &req.end_key);
        resp
    }
}
