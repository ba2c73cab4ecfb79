//! Test doubles for building and testing stacks without a cluster.
//!
//! [`StaticLocator`] is a [`RegionLocator`] over a fixed region layout: regions split at
//! given keys, each with peers on stores 1, 2 and 3, led by store 1. It ignores what the
//! layers report back (leader changes, stale epochs, send failures), so a test controls the
//! layout completely. Pair it with `tower::service_fn` as the innermost service to exercise a
//! custom layer, or a preset from [`stack`](crate::stack), against canned store replies.
//!
//! ```
//! use tikv_tower_layers::testing::StaticLocator;
//! use tikv_tower_layers::RegionLocator;
//!
//! # tokio_test::block_on(async {
//! let cache = StaticLocator::split_at(&[b"m"]);
//! let left = cache.locate_key(b"a").await.unwrap();
//! let right = cache.locate_key(b"x").await.unwrap();
//! assert_eq!((left.region.id, right.region.id), (1, 2));
//! assert_eq!(right.start_key(), b"m");
//! assert_eq!(left.leader.map(|p| p.store_id), Some(1));
//! # });
//! ```

use std::sync::Arc;

use bytes::Bytes;

use tikv_tower_proto::metapb;

use crate::locate::{
    InvalidReason, LocateError, RegionLocator, RegionRoute, RegionVerId, StoreRoute,
};

/// A region layout that never changes (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct StaticLocator {
    regions: Vec<RegionRoute>,
}

impl StaticLocator {
    /// Regions split at `splits` (ascending), with ids 1, 2, ... from left to right; region
    /// `i`'s peers have ids `i * 10 + store` on stores 1, 2, 3, and store 1 leads.
    pub fn split_at(splits: &[&[u8]]) -> Arc<StaticLocator> {
        let mut bounds = vec![Bytes::new()];
        bounds.extend(splits.iter().map(|s| Bytes::copy_from_slice(s)));
        bounds.push(Bytes::new());
        let regions = bounds
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                let id = i as u64 + 1;
                let peers: Vec<_> = (1..=3)
                    .map(|store_id| metapb::Peer {
                        id: id * 10 + store_id,
                        store_id,
                        ..Default::default()
                    })
                    .collect();
                let region = metapb::Region {
                    id,
                    start_key: w[0].clone(),
                    end_key: w[1].clone(),
                    region_epoch: Some(metapb::RegionEpoch {
                        conf_ver: 1,
                        version: 1,
                    }),
                    peers: peers.clone(),
                    ..Default::default()
                };
                RegionRoute {
                    region: Arc::new(region),
                    leader: peers.first().cloned(),
                }
            })
            .collect();
        Arc::new(StaticLocator { regions })
    }

    /// The regions, left to right.
    pub fn regions(&self) -> &[RegionRoute] {
        &self.regions
    }

    fn find(&self, f: impl Fn(&RegionRoute) -> bool) -> Result<RegionRoute, LocateError> {
        self.regions
            .iter()
            .find(|r| f(r))
            .cloned()
            .ok_or_else(|| LocateError::RegionNotFound("no such region in the layout".into()))
    }
}

impl RegionLocator for StaticLocator {
    async fn locate_key(&self, key: &[u8]) -> Result<RegionRoute, LocateError> {
        // Regions after the first start at a non-empty key: count those at or before `key`.
        let i = self
            .regions
            .get(1..)
            .map_or(0, |rest| rest.partition_point(|r| r.start_key() <= key));
        self.regions
            .get(i)
            .cloned()
            .ok_or_else(|| LocateError::RegionNotFound("empty layout".into()))
    }

    async fn locate_end_key(&self, key: &[u8]) -> Result<RegionRoute, LocateError> {
        self.find(|r| {
            if key.is_empty() {
                r.end_key().is_empty()
            } else {
                r.start_key() < key && (r.end_key().is_empty() || key <= r.end_key())
            }
        })
    }

    async fn locate_region_id(&self, id: u64) -> Result<RegionRoute, LocateError> {
        self.find(|r| r.region.id == id)
    }

    async fn store(&self, id: u64) -> Result<StoreRoute, LocateError> {
        Ok(StoreRoute {
            id,
            addr: format!("store-{id}").into(),
            labels: Arc::from(vec![]),
        })
    }

    fn update_leader(&self, _: RegionVerId, _: Option<metapb::Peer>) {}

    fn on_epoch_not_match(&self, _: RegionVerId, _: &[metapb::Region]) -> bool {
        false
    }

    fn invalidate_region(&self, _: RegionVerId, _: InvalidReason) {}

    fn on_send_fail(&self, _: RegionVerId, _: u64) {}
}
