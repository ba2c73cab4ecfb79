//! `max_ts` synchronisation after a restart or a leader change (spec §4.3,
//! §4.4; TiKV `ConcurrencyManager` + `MaxTsSync` in raftstore).
//!
//! A new leader may not have seen reads served by the old one, so TiKV
//! refuses async-commit and 1PC prewrites with `MaxTimestampNotSynced` until
//! it has raised its `max_ts` to a fresh PD timestamp. The mock marks a
//! store unsynced when it restarts, and a region unsynced on the store that
//! receives its leadership; the first async-commit / 1PC prewrite that meets
//! an unsynced state gets the error and triggers the sync (a TSO from the
//! cluster's PD), so the client's retry succeeds.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tikv_tower_proto::errorpb;
use tikv_tower_proto::rpc::StoreRequest;

use super::MockStore;

/// Which parts of a store still need a `max_ts` sync.
#[derive(Debug, Default)]
pub(crate) struct MaxTsSync {
    /// The whole store (after a restart).
    store_unsynced: AtomicBool,
    /// Regions whose leadership this store just received.
    regions: Mutex<HashSet<u64>>,
}

impl MaxTsSync {
    /// State of a store that just (re)started.
    pub(crate) fn unsynced() -> Self {
        MaxTsSync {
            store_unsynced: AtomicBool::new(true),
            regions: Mutex::new(HashSet::new()),
        }
    }

    /// Marks `region_id` unsynced (its leadership arrived here).
    pub(crate) fn mark_region(&self, region_id: u64) {
        self.regions.lock().insert(region_id);
    }

    /// Whether a request on `region_id` must wait for a sync; clears the
    /// state (the sync is done by the caller).
    fn take_unsynced(&self, region_id: u64) -> bool {
        let store = self.store_unsynced.swap(false, Ordering::SeqCst);
        let region = self.regions.lock().remove(&region_id);
        store || region
    }
}

/// Whether `req` is a prewrite that needs a synced `max_ts`.
fn needs_sync(req: &StoreRequest) -> bool {
    matches!(req, StoreRequest::Prewrite(p) if p.use_async_commit || p.try_one_pc)
}

impl MockStore {
    /// `MaxTimestampNotSynced` if `req` needs a synced `max_ts` on
    /// `region_id` and the store has not synced yet; the sync happens now.
    pub(super) fn check_max_ts_synced(
        &self,
        region_id: u64,
        req: &StoreRequest,
    ) -> Option<errorpb::Error> {
        if !needs_sync(req) {
            return None;
        }
        let rt = self.runtime();
        if !rt.max_ts_sync.take_unsynced(region_id) {
            return None;
        }
        if let Ok(ts) = self.cluster.pd().tso(1) {
            let physical = u64::try_from(ts.physical).unwrap_or(0);
            let logical = u64::try_from(ts.logical).unwrap_or(0);
            rt.cm.update_max_ts((physical << 18) | logical);
        }
        Some(errorpb::Error {
            message: format!("max timestamp not synced, region {region_id}"),
            max_timestamp_not_synced: Some(errorpb::MaxTimestampNotSynced {}),
            ..Default::default()
        })
    }
}
