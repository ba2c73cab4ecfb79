//! The cluster's region and store tables, with lookups and topology changes.
//!
//! Regions are indexed by id and by start boundary (boundary form); every
//! lookup compares boundaries, never decoded keys. Topology changes follow
//! TiKV, not mocktikv: a split is *right-derived* (the original id keeps the
//! right-most range, TiKV `right-derive-when-split = true`) and bumps every
//! resulting region's `version` by the number of new regions; a merge sets
//! the target's `version` to `max(source + 1, target) + 1` (PrepareMerge
//! bumps the source first); membership changes
//! bump `conf_ver`.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound::{Excluded, Included, Unbounded};

use super::error::ClusterError;
use super::meta::{Peer, PeerRole, Region, Store};

/// TiKV's cap on regions attached to one `EpochNotMatch` (`MAX_REGIONS_IN_ERROR`).
const MAX_REGIONS_IN_ERROR: usize = 10;

/// Region and store tables (kept behind the cluster's lock).
#[derive(Debug, Default, Clone)]
pub(crate) struct ClusterState {
    regions: HashMap<u64, Region>,
    by_start: BTreeMap<Vec<u8>, u64>,
    pub(crate) stores: BTreeMap<u64, Store>,
}

impl ClusterState {
    /// Adds or replaces a region.
    pub(crate) fn insert_region(&mut self, region: Region) {
        if let Some(old) = self.regions.get(&region.id) {
            if self.by_start.get(&old.start_key) == Some(&region.id) {
                self.by_start.remove(&old.start_key.clone());
            }
        }
        self.by_start.insert(region.start_key.clone(), region.id);
        self.regions.insert(region.id, region);
    }

    fn remove_region(&mut self, id: u64) -> Option<Region> {
        let region = self.regions.remove(&id)?;
        if self.by_start.get(&region.start_key) == Some(&id) {
            self.by_start.remove(&region.start_key);
        }
        Some(region)
    }

    /// Region by id.
    pub(crate) fn region(&self, id: u64) -> Option<&Region> {
        self.regions.get(&id)
    }

    fn region_mut(&mut self, id: u64) -> Result<&mut Region, ClusterError> {
        self.regions
            .get_mut(&id)
            .ok_or(ClusterError::RegionNotFound(id))
    }

    /// Region `region_id` and its peer on `store_id`.
    fn region_and_peer(
        &mut self,
        region_id: u64,
        store_id: u64,
    ) -> Result<(&mut Region, Peer), ClusterError> {
        let region = self.region_mut(region_id)?;
        let peer = *region
            .peer_on_store(store_id)
            .ok_or(ClusterError::PeerNotFound {
                region_id,
                store_id,
            })?;
        Ok((region, peer))
    }

    /// The region containing `key` (boundary form).
    pub(crate) fn region_by_key(&self, key: &[u8]) -> Option<&Region> {
        let (_, id) = self
            .by_start
            .range::<[u8], _>((Unbounded, Included(key)))
            .next_back()?;
        self.regions.get(id).filter(|r| r.contains(key))
    }

    /// The region just before the one containing `key` (PD `GetPrevRegion`).
    pub(crate) fn prev_region(&self, key: &[u8]) -> Option<&Region> {
        let current = self.region_by_key(key)?;
        if current.start_key.is_empty() {
            return None;
        }
        let (_, id) = self
            .by_start
            .range::<[u8], _>((Unbounded, Excluded(current.start_key.as_slice())))
            .next_back()?;
        self.regions
            .get(id)
            .filter(|r| r.end_key == current.start_key)
    }

    /// Regions overlapping `[start, end)` in key order (empty `end` = +∞), at
    /// most `limit` of them (0 = no limit).
    pub(crate) fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Vec<Region> {
        let first = self
            .by_start
            .range::<[u8], _>((Unbounded, Included(start)))
            .next_back()
            .map(|(k, _)| k.clone())
            .unwrap_or_default();
        let mut out = Vec::new();
        for id in self.by_start.range(first..).map(|(_, id)| id) {
            let Some(region) = self.regions.get(id) else {
                continue;
            };
            if !end.is_empty() && region.start_key.as_slice() >= end {
                break;
            }
            if region.overlaps(start, end) {
                out.push(region.clone());
                if limit != 0 && out.len() >= limit {
                    break;
                }
            }
        }
        out
    }

    /// Every region in key order.
    pub(crate) fn all_regions(&self) -> Vec<Region> {
        self.by_start
            .values()
            .filter_map(|id| self.regions.get(id).cloned())
            .collect()
    }

    /// Number of regions.
    pub(crate) fn region_count(&self) -> usize {
        self.regions.len()
    }

    /// The regions attached to an `EpochNotMatch` seen by `store_id`: the
    /// current region followed by the regions split off it since
    /// `requested_version`, walking left as right-derived splits place them
    /// (TiKV `PeerFsmDelegate::collect_sibling_region`).
    pub(crate) fn epoch_not_match_regions(
        &self,
        region: &Region,
        store_id: u64,
        requested_version: u64,
    ) -> Vec<Region> {
        let mut out = vec![region.clone()];
        let mut max_version = region.epoch.version;
        if requested_version >= max_version {
            return out;
        }
        let mut remaining = max_version - requested_version;
        let mut cursor = region.start_key.clone();
        for _ in 0..MAX_REGIONS_IN_ERROR {
            if cursor.is_empty() {
                return out;
            }
            let left = self
                .by_start
                .range::<[u8], _>((Unbounded, Excluded(cursor.as_slice())))
                .rev()
                .filter_map(|(_, id)| self.regions.get(id))
                .find(|r| r.peer_on_store(store_id).is_some());
            let Some(left) = left else {
                return out;
            };
            remaining = remaining.saturating_sub(1);
            if left.epoch.version >= max_version {
                remaining += left.epoch.version - max_version;
                max_version = left.epoch.version;
            }
            out.push(left.clone());
            cursor = left.start_key.clone();
            if remaining == 0 {
                return out;
            }
        }
        out
    }

    /// Splits region `region_id` at `keys` (boundary form), right-derived.
    /// `alloc` hands out fresh ids. Returns every resulting region, left to
    /// right (TiKV `exec_batch_split` with `right_derive_when_split`).
    pub(crate) fn split(
        &mut self,
        region_id: u64,
        mut keys: Vec<Vec<u8>>,
        alloc: &mut dyn FnMut() -> u64,
    ) -> Result<Vec<Region>, ClusterError> {
        let region = self
            .region(region_id)
            .ok_or(ClusterError::RegionNotFound(region_id))?
            .clone();
        if keys.is_empty() {
            return Err(ClusterError::InvalidSplitKey {
                region_id,
                reason: "missing split key".into(),
            });
        }
        keys.sort();
        for (i, key) in keys.iter().enumerate() {
            if key.is_empty() {
                return Err(ClusterError::InvalidSplitKey {
                    region_id,
                    reason: "split key should not be empty".into(),
                });
            }
            if i > 0 && keys[i - 1] == *key {
                return Err(ClusterError::InvalidSplitKey {
                    region_id,
                    reason: format!("duplicated split key {key:?}"),
                });
            }
            if !region.contains(key) {
                return Err(ClusterError::KeyNotInRegion {
                    key: key.clone(),
                    region_id,
                });
            }
            if *key == region.start_key {
                return Err(ClusterError::InvalidSplitKey {
                    region_id,
                    reason: format!("split key {key:?} equals the region start key"),
                });
            }
        }
        let added = u64::try_from(keys.len()).unwrap_or(u64::MAX);
        let version = region.epoch.version.saturating_add(added);
        let leader_store = region.leader_peer().map(|p| p.store_id);
        let mut out = Vec::with_capacity(keys.len() + 1);
        let mut start = region.start_key.clone();
        for key in &keys {
            let peers: Vec<Peer> = region
                .peers
                .iter()
                .map(|p| Peer {
                    id: alloc(),
                    store_id: p.store_id,
                    role: p.role,
                })
                .collect();
            let leader = leader_store
                .and_then(|s| peers.iter().find(|p| p.store_id == s))
                .map(|p| p.id);
            out.push(Region {
                id: alloc(),
                start_key: std::mem::replace(&mut start, key.clone()),
                end_key: key.clone(),
                epoch: super::meta::RegionEpoch {
                    conf_ver: region.epoch.conf_ver,
                    version,
                },
                peers,
                leader,
                term: region.term,
                down_peers: Vec::new(),
                pending_peers: Vec::new(),
            });
        }
        let mut derived = region;
        derived.start_key = start;
        derived.epoch.version = version;
        out.push(derived);
        for r in &out {
            self.insert_region(r.clone());
        }
        Ok(out)
    }

    /// Merges `source_id` into the adjacent `target_id`; the target widens and
    /// gets `version = max(source, target) + 1`; the source disappears.
    pub(crate) fn merge(&mut self, source_id: u64, target_id: u64) -> Result<Region, ClusterError> {
        let source = self
            .region(source_id)
            .ok_or(ClusterError::RegionNotFound(source_id))?
            .clone();
        let mut target = self
            .region(target_id)
            .ok_or(ClusterError::RegionNotFound(target_id))?
            .clone();
        if source.end_key == target.start_key && !source.end_key.is_empty() {
            target.start_key = source.start_key.clone();
        } else if target.end_key == source.start_key && !target.end_key.is_empty() {
            target.end_key = source.end_key.clone();
        } else {
            return Err(ClusterError::NotAdjacent {
                source_id,
                target_id,
            });
        }
        // PrepareMerge bumps the source's version (and conf_ver); CommitMerge
        // sets the target's to max(source, target) + 1 (TiKV
        // `exec_prepare_merge` / `exec_commit_merge`).
        let source_version = source.epoch.version.saturating_add(1);
        target.epoch.version = source_version.max(target.epoch.version).saturating_add(1);
        self.remove_region(source_id);
        self.remove_region(target_id);
        self.insert_region(target.clone());
        Ok(target)
    }

    /// Moves leadership of `region_id` to its voter on `store_id`; the term
    /// goes up, the epoch does not change.
    pub(crate) fn transfer_leader(
        &mut self,
        region_id: u64,
        store_id: u64,
    ) -> Result<Region, ClusterError> {
        let (region, peer) = self.region_and_peer(region_id, store_id)?;
        if peer.role != PeerRole::Voter {
            return Err(ClusterError::NotVoter {
                region_id,
                store_id,
            });
        }
        if region.leader != Some(peer.id) {
            region.leader = Some(peer.id);
            region.term = region.term.saturating_add(1);
        }
        Ok(region.clone())
    }

    /// Leaves `region_id` without a leader (mocktikv `GiveUpLeader`).
    pub(crate) fn give_up_leader(&mut self, region_id: u64) -> Result<Region, ClusterError> {
        let region = self.region_mut(region_id)?;
        if region.leader.take().is_some() {
            region.term = region.term.saturating_add(1);
        }
        Ok(region.clone())
    }

    /// Adds a peer with `role` on `store_id`; `conf_ver + 1`.
    pub(crate) fn add_peer(
        &mut self,
        region_id: u64,
        store_id: u64,
        peer_id: u64,
        role: PeerRole,
    ) -> Result<Region, ClusterError> {
        if !self.stores.contains_key(&store_id) {
            return Err(ClusterError::StoreNotFound(store_id));
        }
        let region = self.region_mut(region_id)?;
        if region.peer_on_store(store_id).is_some() {
            return Err(ClusterError::PeerExists {
                region_id,
                store_id,
            });
        }
        region.peers.push(Peer {
            id: peer_id,
            store_id,
            role,
        });
        region.epoch.conf_ver = region.epoch.conf_ver.saturating_add(1);
        Ok(region.clone())
    }

    /// Removes the peer on `store_id`; `conf_ver + 1`; removing the leader
    /// leaves the region without one.
    pub(crate) fn remove_peer(
        &mut self,
        region_id: u64,
        store_id: u64,
    ) -> Result<Region, ClusterError> {
        let (region, peer) = self.region_and_peer(region_id, store_id)?;
        region.peers.retain(|p| p.id != peer.id);
        region.down_peers.retain(|p| *p != peer.id);
        region.pending_peers.retain(|p| *p != peer.id);
        if region.leader == Some(peer.id) {
            region.leader = None;
            region.term = region.term.saturating_add(1);
        }
        region.epoch.conf_ver = region.epoch.conf_ver.saturating_add(1);
        Ok(region.clone())
    }

    /// Marks the peer on `store_id` down or up (PD's `down_peers`).
    pub(crate) fn set_peer_down(
        &mut self,
        region_id: u64,
        store_id: u64,
        down: bool,
    ) -> Result<Region, ClusterError> {
        let (region, peer) = self.region_and_peer(region_id, store_id)?;
        region.down_peers.retain(|p| *p != peer.id);
        if down {
            region.down_peers.push(peer.id);
        }
        Ok(region.clone())
    }

    /// Store by id.
    pub(crate) fn store(&self, id: u64) -> Option<&Store> {
        self.stores.get(&id)
    }

    /// Mutable store by id.
    pub(crate) fn store_mut(&mut self, id: u64) -> Result<&mut Store, ClusterError> {
        self.stores
            .get_mut(&id)
            .ok_or(ClusterError::StoreNotFound(id))
    }
}
