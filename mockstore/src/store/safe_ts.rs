//! Region safe ts and the stale-read check (TiKV `LocalReader` stale read:
//! `ReadDelegate::check_stale_read_safe`).
//!
//! A stale read at `read_ts` is served only when `read_ts <= safe_ts` of the
//! region, else the store answers `DataIsNotReady{region_id, peer_id,
//! safe_ts}` and the client retries elsewhere or as a leader read. TiKV's
//! resolved-ts worker advances safe ts to `min(PD TSO, min start_ts of the
//! region's locks - 1)`, fetching a fresh TSO each round; the mock computes
//! the same on demand, the fresh TSO being `max(last TSO issued, cluster
//! clock now)` (no resolver lag), unless a test pins it with
//! [`MockCluster::set_safe_ts`] (a lagging resolver).

use tikv_tower_proto::rpc::StoreRequest;
use tikv_tower_proto::{errorpb, kvrpcpb};

use crate::cluster::{BoundaryEncoding, MockCluster, Region};
use crate::store::bounds::RawBounds;

impl MockCluster {
    /// Pins the safe ts of `region_id` (`None` = computed again from PD's
    /// TSO and the region's locks).
    pub fn set_safe_ts(&self, region_id: u64, safe_ts: Option<u64>) {
        let mut pinned = self.inner.safe_ts.lock();
        match safe_ts {
            Some(ts) => pinned.insert(region_id, ts),
            None => pinned.remove(&region_id),
        };
    }

    /// The safe ts of `region`: pinned, or `min(fresh TSO, min lock
    /// start_ts - 1)` over the region's locks, where the fresh TSO is the
    /// later of the last one issued and the cluster clock's now.
    pub fn region_safe_ts(&self, region: &Region) -> u64 {
        if let Some(ts) = self.inner.safe_ts.lock().get(&region.id) {
            return *ts;
        }
        let now = crate::pd::tso::compose(
            i64::try_from(self.clock().now_millis()).unwrap_or(i64::MAX),
            0,
        );
        let mut safe = self.inner.pd.last_tso().max(now);
        let bounds = RawBounds::of(region, BoundaryEncoding::Memcomparable);
        self.engine()
            .store()
            .for_each_in_range(&bounds.start, &bounds.end, false, |k, d| {
                if let Some(l) = d.lock.as_ref().filter(|_| bounds.contains(k)) {
                    safe = safe.min(l.ts.saturating_sub(1));
                }
                true
            });
        safe
    }
}

impl MockCluster {
    /// The smallest safe ts of the regions with a peer on `store_id` overlapping
    /// `range` (request keys; empty bounds: unbounded) — TiKV `GetStoreSafeTS`
    /// (`Storage::get_store_safe_ts`, min over the store's region read
    /// progress). 0 when the store holds no such region.
    pub fn store_safe_ts(&self, store_id: u64, range: Option<&kvrpcpb::KeyRange>) -> u64 {
        let enc = self.boundary_encoding();
        let (lo, hi) = match range {
            Some(r) => (
                enc.to_boundary(&r.start_key),
                enc.to_boundary_end(&r.end_key),
            ),
            None => (Vec::new(), Vec::new()),
        };
        let regions = self.inner.state.read().all_regions();
        regions
            .iter()
            .filter(|r| r.peer_on_store(store_id).is_some())
            .filter(|r| {
                (hi.is_empty() || r.start_key < hi) && (r.end_key.is_empty() || r.end_key > lo)
            })
            .map(|r| self.region_safe_ts(r))
            .min()
            .unwrap_or(0)
    }
}

/// The read ts a stale read of `req` asks for (`None`: not a stale
/// transactional read, no check).
fn stale_read_ts(req: &StoreRequest) -> Option<u64> {
    if !req.context().is_some_and(|c| c.stale_read) {
        return None;
    }
    match req {
        StoreRequest::Get(r) => Some(r.version),
        StoreRequest::BatchGet(r) => Some(r.version),
        StoreRequest::Scan(r) => Some(r.version),
        _ => None,
    }
}

/// `DataIsNotReady` when `req` is a stale read above the region's safe ts.
pub(crate) fn check_stale_read(
    cluster: &MockCluster,
    store_id: u64,
    region: &Region,
    req: &StoreRequest,
) -> Option<errorpb::Error> {
    let read_ts = stale_read_ts(req)?;
    let safe_ts = cluster.region_safe_ts(region);
    if read_ts <= safe_ts {
        return None;
    }
    let peer_id = region.peer_on_store(store_id).map_or(0, |p| p.id);
    Some(errorpb::Error {
        message: format!(
            "peer is not ready for stale read: region {}, read ts {read_ts}, safe ts {safe_ts}",
            region.id
        ),
        data_is_not_ready: Some(errorpb::DataIsNotReady {
            region_id: region.id,
            peer_id,
            safe_ts,
        }),
        ..Default::default()
    })
}
