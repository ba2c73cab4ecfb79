//! The sorted region map: regions by start key and by id, with client-go's insertion
//! rules (`RegionCache.insertRegionToCache`, `SortedRegions.removeIntersecting`).
//!
//! An entry ([`CachedRegion`]) lives inline in the start-key index; the id index points at
//! the same region by its `Arc<metapb::Region>`. The mutable state of an entry (believed
//! leader, expiry, validity) is atomics, so a lookup under the map's read lock never takes
//! another lock and never writes shared memory on a hit.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound::{Excluded, Included, Unbounded};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tikv_tower_layers::locate::{RegionRoute, RegionVerId};
use tikv_tower_proto::metapb;

use super::clock::Freshness;
use super::store::StoreEpochs;

/// `expires_at_ms` of an invalidated entry.
const INVALID: u64 = 0;

/// One cached region. Its leader, TTL and validity change in place without the map's
/// write lock.
#[derive(Debug)]
pub(crate) struct CachedRegion {
    pub(crate) region: Arc<metapb::Region>,
    /// The believed leader packed with its store's failure epoch as it was when the leader
    /// was set: `(index in region.peers + 1) << 32 | epoch`; 0 = no leader known.
    leader: AtomicU64,
    /// The failure-epoch counter of each peer's store, parallel to `region.peers`
    /// (client-go `Store.epoch`).
    store_epochs: Box<[Arc<AtomicU32>]>,
    /// Expiry, in ms since the cache clock's base (client-go `Region.ttl`); [`INVALID`]
    /// once invalidated or marked for reload (client-go `Region.invalidReason` /
    /// `needReloadOnAccess`).
    expires_at_ms: AtomicU64,
    /// The region's latest known buckets (client-go `regionStore.buckets`): from PD with
    /// the region, raised by `BucketVersionNotMatch`. Not read on the lookup path.
    buckets: parking_lot::Mutex<Option<Arc<metapb::Buckets>>>,
}

fn pack_leader(index: Option<usize>, epoch: u32) -> u64 {
    match index.and_then(|i| u64::try_from(i).ok()) {
        Some(i) if i < u64::from(u32::MAX) => ((i + 1) << 32) | u64::from(epoch),
        _ => 0,
    }
}

fn unpack_leader(word: u64) -> Option<(usize, u32)> {
    let index = usize::try_from(word >> 32).ok()?.checked_sub(1)?;
    Some((index, word as u32))
}

impl CachedRegion {
    pub(crate) fn new(
        region: metapb::Region,
        leader: Option<metapb::Peer>,
        expires_at_ms: u64,
        epochs: &StoreEpochs,
    ) -> Self {
        let store_epochs: Box<[Arc<AtomicU32>]> = region
            .peers
            .iter()
            .map(|p| epochs.counter(p.store_id))
            .collect();
        let index = leader.and_then(|l| region.peers.iter().position(|p| p.id == l.id));
        let cached = CachedRegion {
            region: Arc::new(region),
            leader: AtomicU64::new(0),
            store_epochs,
            expires_at_ms: AtomicU64::new(expires_at_ms.max(INVALID + 1)),
            buckets: parking_lot::Mutex::new(None),
        };
        cached.store_leader(index);
        cached
    }

    /// The region's latest known buckets.
    pub(crate) fn buckets(&self) -> Option<Arc<metapb::Buckets>> {
        self.buckets.lock().clone()
    }

    /// Records `buckets` unless those known are as new or newer (client-go
    /// `OnBucketVersionNotMatch`: "buckets == nil || buckets.GetVersion() < version").
    pub(crate) fn update_buckets(&self, buckets: metapb::Buckets) {
        let mut slot = self.buckets.lock();
        if slot.as_ref().is_none_or(|b| b.version < buckets.version) {
            *slot = Some(Arc::new(buckets));
        }
    }

    /// The region's id and epoch.
    pub(crate) fn ver(&self) -> RegionVerId {
        RegionVerId::of(&self.region)
    }

    fn store_leader(&self, index: Option<usize>) {
        let epoch = index
            .and_then(|i| self.store_epochs.get(i))
            .map_or(0, |c| c.load(Ordering::Acquire));
        self.leader
            .store(pack_leader(index, epoch), Ordering::Release);
    }

    /// The route, or `None` when a request to the leader's store failed since the leader was
    /// set (the caller drops the entry and reloads it).
    pub(crate) fn route(&self) -> Option<RegionRoute> {
        let leader = match unpack_leader(self.leader.load(Ordering::Acquire)) {
            None => None,
            Some((index, seen)) => {
                let failed = self
                    .store_epochs
                    .get(index)
                    .is_some_and(|c| c.load(Ordering::Acquire) != seen);
                if failed {
                    return None;
                }
                self.region.peers.get(index).copied()
            }
        };
        Some(RegionRoute {
            region: self.region.clone(),
            leader,
        })
    }

    pub(crate) fn leader(&self) -> Option<metapb::Peer> {
        let (index, _) = unpack_leader(self.leader.load(Ordering::Acquire))?;
        self.region.peers.get(index).copied()
    }

    /// Sets the leader; false when `peer` is not a peer of the region.
    pub(crate) fn set_leader(&self, peer: Option<metapb::Peer>) -> bool {
        let index = match peer {
            None => None,
            Some(p) => match self
                .region
                .peers
                .iter()
                .position(|x| x.id == p.id || (p.id == 0 && x.store_id == p.store_id))
            {
                Some(i) => Some(i),
                None => return false,
            },
        };
        self.store_leader(index);
        true
    }

    /// A request to `store_id` for this region failed: if the store leads the region, bump the
    /// store's failure epoch, once for every holder of the same epoch (client-go
    /// `markRegionNeedBeRefill`'s compare-and-swap), so that its other regions reload too.
    pub(crate) fn store_failed(&self, store_id: u64) {
        let Some((index, seen)) = unpack_leader(self.leader.load(Ordering::Acquire)) else {
            return;
        };
        let leads = self
            .region
            .peers
            .get(index)
            .is_some_and(|p| p.store_id == store_id);
        if let (true, Some(c)) = (leads, self.store_epochs.get(index)) {
            let _ = c.compare_exchange(
                seen,
                seen.wrapping_add(1),
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
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

    /// The expiry ([`INVALID`] = invalidated).
    pub(crate) fn expires_at_ms(&self) -> u64 {
        self.expires_at_ms.load(Ordering::Acquire)
    }

    /// Applies a lookup's [`Freshness`] verdict: false when the entry is stale; an
    /// extension is a compare-and-swap from `seen`, so it never revives an entry
    /// invalidated meanwhile.
    pub(crate) fn apply(&self, seen: u64, verdict: Freshness) -> bool {
        match verdict {
            Freshness::Stale => false,
            Freshness::Fresh => true,
            Freshness::Extend(next) => {
                if next > seen {
                    let _ = self.expires_at_ms.compare_exchange(
                        seen,
                        next,
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    );
                }
                true
            }
        }
    }

    pub(crate) fn invalidate(&self) {
        self.expires_at_ms.store(INVALID, Ordering::Release);
    }

    pub(crate) fn is_invalid(&self) -> bool {
        self.expires_at_ms() == INVALID
    }
}

/// Whether epoch `a` is strictly newer than `b` in any component (client-go
/// `RegionVerID` comparison in `insertRegionToCache`).
fn newer(a: &RegionVerId, b: &RegionVerId) -> bool {
    a.ver > b.ver || (a.ver == b.ver && a.conf_ver > b.conf_ver)
}

/// Regions by start key and by id.
#[derive(Default)]
pub(crate) struct RegionMap {
    by_start: BTreeMap<Bytes, CachedRegion>,
    /// The region of each id; its entry is `by_start[region.start_key]` when the `Arc`s
    /// are the same.
    by_id: HashMap<u64, Arc<metapb::Region>>,
    #[cfg(test)]
    pub(crate) on_drop: Option<Box<dyn FnOnce() + Send + Sync>>,
}

#[cfg(test)]
impl Drop for RegionMap {
    fn drop(&mut self) {
        if let Some(hook) = self.on_drop.take() {
            hook();
        }
    }
}

impl RegionMap {
    /// The cached region containing `key`, valid or not.
    pub(crate) fn find(&self, key: &[u8]) -> Option<&CachedRegion> {
        let (_, r) = self
            .by_start
            .range::<[u8], _>((Unbounded, Included(key)))
            .next_back()?;
        r.contains(key).then_some(r)
    }

    /// The cached region with `start < key <= end` (end-key lookup); `key` empty means
    /// the region with an unbounded end.
    pub(crate) fn find_by_end(&self, key: &[u8]) -> Option<&CachedRegion> {
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

    pub(crate) fn by_id(&self, id: u64) -> Option<&CachedRegion> {
        let region = self.by_id.get(&id)?;
        self.by_start
            .get(region.start_key.as_ref())
            .filter(|r| Arc::ptr_eq(&r.region, region))
    }

    /// The entries overlapping `[start, end)` (end empty = unbounded), in key order,
    /// borrowed: nothing is cloned.
    fn overlapping<'a>(
        &'a self,
        start: &'a [u8],
        end: &'a [u8],
    ) -> impl Iterator<Item = &'a CachedRegion> + 'a {
        // The entry that starts before `start` may still overlap it.
        let before = self
            .by_start
            .range::<[u8], _>((Unbounded, Excluded(start)))
            .next_back()
            .map(|(_, r)| r)
            .filter(move |r| r.region.end_key.is_empty() || r.region.end_key.as_ref() > start);
        let from = self
            .by_start
            .range::<[u8], _>((Included(start), Unbounded))
            .take_while(move |(k, _)| end.is_empty() || k.as_ref() < end)
            .map(|(_, r)| r);
        before.into_iter().chain(from)
    }

    /// Whether inserting `r` would replace newer information: a valid overlapping or
    /// same-id entry has a newer epoch. Stops at the first such entry and clones
    /// nothing, so refusing a stale wide region is cheap.
    pub(crate) fn is_stale(&self, r: &CachedRegion) -> bool {
        let ver = r.ver();
        let newer_than_r = |old: &CachedRegion| !old.is_invalid() && newer(&old.ver(), &ver);
        self.by_id(ver.id).is_some_and(newer_than_r)
            || self
                .overlapping(&r.region.start_key, &r.region.end_key)
                .any(newer_than_r)
    }

    /// Inserts `r`, dropping every entry it overlaps (and an older entry with its id).
    /// Refused (`Err(r)`) when an overlapping or same-id entry is newer: stale
    /// information never replaces newer. The dropped entries are returned so the caller
    /// frees them after releasing the lock.
    pub(crate) fn insert(&mut self, r: CachedRegion) -> Result<Vec<CachedRegion>, CachedRegion> {
        if self.is_stale(&r) {
            return Err(r);
        }
        // Handles on the overlapping regions (refcount bumps, no key copies).
        let mut doomed: Vec<Arc<metapb::Region>> = self
            .overlapping(&r.region.start_key, &r.region.end_key)
            .map(|o| o.region.clone())
            .collect();
        if let Some(same_id) = self.by_id.get(&r.region.id) {
            doomed.push(same_id.clone());
        }
        let mut removed = Vec::with_capacity(doomed.len());
        for region in doomed {
            if let Some(old) = self.remove_region(&region) {
                removed.push(old);
            }
        }
        self.by_id.insert(r.region.id, r.region.clone());
        self.by_start.insert(r.region.start_key.clone(), r);
        Ok(removed)
    }

    /// Removes the entry holding exactly `region` (by identity) from both indexes.
    fn remove_region(&mut self, region: &Arc<metapb::Region>) -> Option<CachedRegion> {
        if self
            .by_id
            .get(&region.id)
            .is_some_and(|x| Arc::ptr_eq(x, region))
        {
            self.by_id.remove(&region.id);
        }
        let key = region.start_key.as_ref();
        if self
            .by_start
            .get(key)
            .is_some_and(|x| Arc::ptr_eq(&x.region, region))
        {
            return self.by_start.remove(key);
        }
        None
    }

    /// Removes the entry for `ver` (exact epoch), returning it, invalidated.
    pub(crate) fn remove(&mut self, ver: &RegionVerId) -> Option<CachedRegion> {
        let region = self
            .by_id
            .get(&ver.id)
            .filter(|r| RegionVerId::of(r) == *ver)?
            .clone();
        let r = self.remove_region(&region)?;
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

    fn region(id: u64, start: &[u8], end: &[u8], ver: u64) -> CachedRegion {
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
        CachedRegion::new(r, None, u64::MAX, &StoreEpochs::default())
    }

    #[test]
    fn insert_drops_overlaps_and_refuses_stale() {
        let mut m = RegionMap::default();
        assert!(m.insert(region(1, b"", b"", 1)).is_ok());
        // A split: [..m) as 2 and [m..) as 1, both version 2.
        let dropped = m.insert(region(2, b"", b"m", 2)).unwrap();
        assert_eq!(dropped.len(), 1, "the old whole-range entry is returned");
        assert_eq!(m.len(), 1, "the old whole-range entry is gone");
        assert!(m.insert(region(1, b"m", b"", 2)).is_ok());
        assert_eq!(m.len(), 2);
        assert_eq!(m.find(b"a").unwrap().ver().id, 2);
        assert_eq!(m.find(b"z").unwrap().ver().id, 1);
        // Stale info (the pre-split region) is refused.
        assert!(m.insert(region(1, b"", b"", 1)).is_err());
        assert_eq!(m.len(), 2);
        assert_eq!(m.find_by_end(b"m").unwrap().ver().id, 2);
        assert_eq!(m.find_by_end(b"").unwrap().ver().id, 1);
        assert!(m.remove(&m.find(b"a").unwrap().ver()).is_some());
        assert!(m.find(b"a").is_none());
        assert!(m.by_id(2).is_none() && m.by_id(1).is_some());
    }

    /// A stale region spanning many newer entries is refused at the first newer entry it
    /// meets, and leaves every entry in place.
    #[test]
    fn stale_wide_region_is_refused_without_touching_entries() {
        let mut m = RegionMap::default();
        for i in 0..1000u64 {
            let start = format!("k{i:04}").into_bytes();
            let end = format!("k{:04}", i + 1).into_bytes();
            assert!(m.insert(region(i + 10, &start, &end, 5)).is_ok());
        }
        let wide = region(1, b"", b"", 1);
        assert!(m.is_stale(&wide));
        assert!(m.insert(wide).is_err());
        assert_eq!(m.len(), 1000);
        // A newer merge of 100 of them replaces exactly those.
        let dropped = m.insert(region(2, b"k0100", b"k0200", 6)).unwrap();
        assert_eq!(dropped.len(), 100);
        assert_eq!(m.len(), 901);
        assert_eq!(m.find(b"k0150").unwrap().ver().id, 2);
        assert_eq!(m.find(b"k0200").unwrap().ver().id, 210);
        assert!(m.by_id(150).is_none(), "the id index follows");
    }
}
