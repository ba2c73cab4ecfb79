//! The store cache: id → address and labels, re-resolved from PD after a send failure
//! (client-go `internal/locate/store_cache.go`: `Store`, `resolveState`, `reResolve`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use tikv_tower_layers::locate::StoreRoute;
use tikv_tower_proto::metapb;

#[derive(Debug)]
pub(crate) struct CachedStore {
    pub(crate) route: StoreRoute,
    /// Set by a send failure: the next lookup asks PD again (client-go `needCheck`).
    pub(crate) needs_resolve: AtomicBool,
}

/// Stores by id.
#[derive(Debug, Default)]
pub(crate) struct StoreMap {
    stores: RwLock<HashMap<u64, Arc<CachedStore>>>,
}

impl StoreMap {
    /// A resolved store (not marked for re-resolution).
    pub(crate) fn get(&self, id: u64) -> Option<StoreRoute> {
        let s = self.stores.read().get(&id).cloned()?;
        (!s.needs_resolve.load(Ordering::Acquire)).then(|| s.route.clone())
    }

    /// The store's last known route even if it awaits re-resolution.
    pub(crate) fn get_stale(&self, id: u64) -> Option<StoreRoute> {
        self.stores.read().get(&id).map(|s| s.route.clone())
    }

    pub(crate) fn put(&self, store: &metapb::Store) -> StoreRoute {
        let route = StoreRoute {
            id: store.id,
            addr: Arc::from(store.address.as_str()),
            labels: Arc::from(store.labels.clone()),
            state: store.state(),
        };
        let entry = Arc::new(CachedStore {
            route: route.clone(),
            needs_resolve: AtomicBool::new(false),
        });
        self.stores.write().insert(store.id, entry);
        route
    }

    pub(crate) fn remove(&self, id: u64) {
        self.stores.write().remove(&id);
    }

    /// Marks the store for re-resolution (client-go `Store.markNeedCheck`).
    pub(crate) fn mark_needs_resolve(&self, id: u64) {
        if let Some(s) = self.stores.read().get(&id) {
            s.needs_resolve.store(true, Ordering::Release);
        }
    }
}

/// Per-store failure epochs (client-go `Store.epoch`). A send failure to a store bumps its
/// epoch; a cached region remembers the epoch of its leader's store from when that leader was
/// set, and a lookup that finds it changed drops the region and reloads it from PD (client-go
/// `markRegionNeedBeRefill`, and the "others failed on same store" check in
/// `getRPCContext`). So once one request finds a store dead, requests for the store's other
/// regions do not each fail against it before learning where the leader went.
#[derive(Debug, Default)]
pub(crate) struct StoreEpochs {
    map: RwLock<HashMap<u64, Arc<AtomicU32>>>,
}

impl StoreEpochs {
    /// The live epoch counter of `store`.
    pub(crate) fn counter(&self, store: u64) -> Arc<AtomicU32> {
        if let Some(c) = self.map.read().get(&store) {
            return c.clone();
        }
        self.map.write().entry(store).or_default().clone()
    }
}
