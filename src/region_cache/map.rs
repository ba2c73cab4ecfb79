//! The sorted region map: regions by start key and by id, with client-go's insertion
//! rules (`RegionCache.insertRegionToCache`, `SortedRegions.removeIntersecting`).

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound::{Excluded, Included, Unbounded};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tikv_tower_layers::locate::{RegionRoute, RegionVerId};
use tikv_tower_proto::metapb;

use super::store::StoreEpochs;

/// One cached region. Shared by both indexes; the leader, TTL and validity change in
/// place without the map's write lock.
#[derive(Debug)]
pub(crate) struct CachedRegion {
    pub(crate) region: Arc<metapb::Region>,
    pub(crate) ver: RegionVerId,
    leader: Mutex<Leader>,
    /// Expiry, in ms since the cache's base instant (client-go `Region.ttl`).
    expires_at_ms: AtomicU64,
    /// Set when invalidated or marked for reload (client-go `Region.invalidReason` /
    /// `needReloadOnAccess`).
    invalid: AtomicBool,
}

/// The believed leader, with its store's failure epoch as it was when the leader was set.
#[derive(Debug, Default)]
struct Leader {
    peer: Option<metapb::Peer>,
    epoch: Option<(Arc<AtomicU32>, u32)>,
}

impl Leader {
    fn new(peer: Option<metapb::Peer>, epochs: &StoreEpochs) -> Leader {
        let epoch = peer.map(|p| {
            let c = epochs.counter(p.store_id);
            let now = c.load(Ordering::Acquire);
            (c, now)
        });
        Leader { peer, epoch }
    }

    /// Whether the leader's store failed since the leader was set.
    fn store_failed(&self) -> bool {
        self.epoch
            .as_ref()
            .is_some_and(|(c, seen)| c.load(Ordering::Acquire) != *seen)
    }
}

impl CachedRegion {
    pub(crate) fn new(
        region: metapb::Region,
        leader: Option<metapb::Peer>,
        expires_at_ms: u64,
        epochs: &StoreEpochs,
    ) -> Self {
        let ver = RegionVerId::of(&region);
        let leader = leader.filter(|l| region.peers.iter().any(|p| p.id == l.id));
        CachedRegion {
            region: Arc::new(region),
            ver,
            leader: Mutex::new(Leader::new(leader, epochs)),
            expires_at_ms: AtomicU64::new(expires_at_ms),
            invalid: AtomicBool::new(false),
        }
    }

    /// The route, or `None` when a request to the leader's store failed since the leader was
    /// set (the caller drops the entry and reloads it).
    pub(crate) fn route(&self) -> Option<RegionRoute> {
        let leader = self.leader.lock();
        (!leader.store_failed()).then(|| RegionRoute {
            region: self.region.clone(),
            leader: leader.peer,
        })
    }

    pub(crate) fn leader(&self) -> Option<metapb::Peer> {
        self.leader.lock().peer
    }

    /// Sets the leader; false when `peer` is not a peer of the region.
    pub(crate) fn set_leader(&self, peer: Option<metapb::Peer>, epochs: &StoreEpochs) -> bool {
        let found = match peer {
            None => None,
            Some(p) => match self
                .region
                .peers
                .iter()
                .find(|x| x.id == p.id || (p.id == 0 && x.store_id == p.store_id))
            {
                Some(found) => Some(*found),
                None => return false,
            },
        };
        *self.leader.lock() = Leader::new(found, epochs);
        true
    }

    /// A request to `store_id` for this region failed: if the store leads the region, bump the
    /// store's failure epoch, once for every holder of the same epoch (client-go
    /// `markRegionNeedBeRefill`'s compare-and-swap), so that its other regions reload too.
    pub(crate) fn store_failed(&self, store_id: u64) {
        let leader = self.leader.lock();
        if let (Some(p), Some((c, seen))) = (leader.peer, &leader.epoch) {
            if p.store_id == store_id {
                let _ = c.compare_exchange(
                    *seen,
                    seen.wrapping_add(1),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            }
        }
    }

    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        key >= self.region.start_key.as_ref()
            && (self.region.end_key.is_empty() || key < self.region.end_key.as_ref())
    }

    /// Whether `key` is in `(start, end]` (end empty = +inf) (client-go `ContainsByEnd`).
    pub(crate) fn contains_by_end(&self, key: &[u8]) -> bool {
        key > self.region.start_key.as_ref()
            && (self.region.end_key.is_empty() || key <= self.region.end_key.as_ref())
    }

    /// Valid at `now_ms`; a hit extends the TTL (client-go `checkRegionCacheTTL`). The
    /// new expiry (`next_ttl`, which draws the jitter) is computed only when the entry has
    /// less than `ttl_ms` left, so most hits cost two atomic loads.
    pub(crate) fn check_valid(
        &self,
        now_ms: u64,
        ttl_ms: u64,
        next_ttl: impl FnOnce() -> u64,
    ) -> bool {
        if self.invalid.load(Ordering::Acquire) {
            return false;
        }
        let exp = self.expires_at_ms.load(Ordering::Acquire);
        if now_ms >= exp {
            return false;
        }
        if exp < now_ms.saturating_add(ttl_ms) {
            let next = next_ttl();
            if next > exp {
                let _ = self.expires_at_ms.compare_exchange(
                    exp,
                    next,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            }
        }
        true
    }

    pub(crate) fn invalidate(&self) {
        self.invalid.store(true, Ordering::Release);
    }

    pub(crate) fn is_invalid(&self) -> bool {
        self.invalid.load(Ordering::Acquire)
    }
}

/// Whether epoch `a` is strictly newer than `b` in any component (client-go
/// `RegionVerID` comparison in `insertRegionToCache`).
fn newer(a: &RegionVerId, b: &RegionVerId) -> bool {
    a.ver > b.ver || (a.ver == b.ver && a.conf_ver > b.conf_ver)
}

/// Regions by start key and by id.
#[derive(Debug, Default)]
pub(crate) struct RegionMap {
    by_start: BTreeMap<Bytes, Arc<CachedRegion>>,
    by_id: HashMap<u64, Arc<CachedRegion>>,
}

impl RegionMap {
    /// The cached region containing `key`, valid or not.
    pub(crate) fn find(&self, key: &[u8]) -> Option<&Arc<CachedRegion>> {
        let (_, r) = self
            .by_start
            .range::<[u8], _>((Unbounded, Included(key)))
            .next_back()?;
        r.contains(key).then_some(r)
    }

    /// The cached region with `start < key <= end` (end-key lookup); `key` empty means
    /// the region with an unbounded end.
    pub(crate) fn find_by_end(&self, key: &[u8]) -> Option<&Arc<CachedRegion>> {
        if key.is_empty() {
            let (_, r) = self.by_start.iter().next_back()?;
            return r.region.end_key.is_empty().then_some(r);
        }
        let (_, r) = self
            .by_start
            .range::<[u8], _>((Unbounded, Excluded(key)))
            .next_back()?;
        r.contains_by_end(key).then_some(r)
    }

    pub(crate) fn by_id(&self, id: u64) -> Option<&Arc<CachedRegion>> {
        self.by_id.get(&id)
    }

    /// Inserts `r`, dropping every entry it overlaps (and an older entry with its id).
    /// Refused (returns false) when an overlapping or same-id entry is newer: stale
    /// information never replaces newer.
    pub(crate) fn insert(&mut self, r: Arc<CachedRegion>) -> bool {
        let start = r.region.start_key.clone();
        let end = r.region.end_key.clone();
        let overlapping: Vec<Bytes> = {
            let mut keys = Vec::new();
            // The entry that starts before `start` may still overlap it.
            if let Some((k, prev)) = self
                .by_start
                .range::<[u8], _>((Unbounded, Excluded(start.as_ref())))
                .next_back()
            {
                if prev.region.end_key.is_empty() || prev.region.end_key.as_ref() > start.as_ref() {
                    keys.push(k.clone());
                }
            }
            for (k, _) in self
                .by_start
                .range::<[u8], _>((Included(start.as_ref()), Unbounded))
            {
                if !end.is_empty() && k[..] >= end[..] {
                    break;
                }
                keys.push(k.clone());
            }
            keys
        };
        let same_id = self.by_id.get(&r.ver.id).cloned();
        let stale = overlapping
            .iter()
            .filter_map(|k| self.by_start.get(k))
            .chain(same_id.iter())
            .any(|old| !old.is_invalid() && newer(&old.ver, &r.ver));
        if stale {
            return false;
        }
        for k in overlapping {
            if let Some(old) = self.by_start.remove(&k) {
                old.invalidate();
                if self
                    .by_id
                    .get(&old.ver.id)
                    .is_some_and(|x| Arc::ptr_eq(x, &old))
                {
                    self.by_id.remove(&old.ver.id);
                }
            }
        }
        if let Some(old) = same_id {
            old.invalidate();
            if self
                .by_start
                .get(&old.region.start_key)
                .is_some_and(|x| Arc::ptr_eq(x, &old))
            {
                self.by_start.remove(&old.region.start_key);
            }
        }
        self.by_id.insert(r.ver.id, r.clone());
        self.by_start.insert(start, r);
        true
    }

    /// Removes the entry for `ver` (exact epoch), returning it.
    pub(crate) fn remove(&mut self, ver: &RegionVerId) -> Option<Arc<CachedRegion>> {
        let r = self.by_id.get(&ver.id).filter(|r| r.ver == *ver)?.clone();
        self.by_id.remove(&ver.id);
        if self
            .by_start
            .get(&r.region.start_key)
            .is_some_and(|x| Arc::ptr_eq(x, &r))
        {
            self.by_start.remove(&r.region.start_key);
        }
        r.invalidate();
        Some(r)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_start.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(id: u64, start: &[u8], end: &[u8], ver: u64) -> Arc<CachedRegion> {
        let r = metapb::Region {
            id,
            start_key: start.to_vec().into(),
            end_key: end.to_vec().into(),
            region_epoch: Some(metapb::RegionEpoch {
                conf_ver: 1,
                version: ver,
            }),
            peers: vec![metapb::Peer {
                id: id * 10,
                store_id: 1,
                ..Default::default()
            }],
            ..Default::default()
        };
        Arc::new(CachedRegion::new(
            r,
            None,
            u64::MAX,
            &StoreEpochs::default(),
        ))
    }

    #[test]
    fn insert_drops_overlaps_and_refuses_stale() {
        let mut m = RegionMap::default();
        assert!(m.insert(region(1, b"", b"", 1)));
        // A split: [..m) as 2 and [m..) as 1, both version 2.
        assert!(m.insert(region(2, b"", b"m", 2)));
        assert_eq!(m.len(), 1, "the old whole-range entry is gone");
        assert!(m.insert(region(1, b"m", b"", 2)));
        assert_eq!(m.len(), 2);
        assert_eq!(m.find(b"a").unwrap().ver.id, 2);
        assert_eq!(m.find(b"z").unwrap().ver.id, 1);
        // Stale info (the pre-split region) is refused.
        assert!(!m.insert(region(1, b"", b"", 1)));
        assert_eq!(m.len(), 2);
        assert_eq!(m.find_by_end(b"m").unwrap().ver.id, 2);
        assert_eq!(m.find_by_end(b"").unwrap().ver.id, 1);
        assert!(m.remove(&m.find(b"a").unwrap().ver.clone()).is_some());
        assert!(m.find(b"a").is_none());
    }
}
