//! Unit tests of the region cache against the fake PD.

use std::time::Duration;

use tikv_tower_layers::locate::{InvalidReason, RegionLocator, RegionVerId};
use tikv_tower_proto::metapb;

use super::{RegionCache, RegionCacheConfig};
use crate::pd::fake::FakePd;
use crate::pd::{ApiCodec, PdClient, PdConfig};

fn peer(id: u64, store: u64) -> metapb::Peer {
    metapb::Peer {
        id,
        store_id: store,
        ..Default::default()
    }
}

fn region(id: u64, start: &[u8], end: &[u8], ver: u64) -> metapb::Region {
    metapb::Region {
        id,
        start_key: start.to_vec().into(),
        end_key: end.to_vec().into(),
        region_epoch: Some(metapb::RegionEpoch {
            conf_ver: 1,
            version: ver,
        }),
        peers: vec![
            peer(id * 10 + 1, 1),
            peer(id * 10 + 2, 2),
            peer(id * 10 + 3, 3),
        ],
        ..Default::default()
    }
}

fn store(id: u64, addr: &str) -> metapb::Store {
    metapb::Store {
        id,
        address: addr.to_string(),
        ..Default::default()
    }
}

async fn setup(regions: Vec<metapb::Region>, config: RegionCacheConfig) -> (FakePd, RegionCache) {
    let pd = FakePd::new(1, &["http://pd"]);
    {
        let mut st = pd.state.lock();
        st.regions = regions
            .into_iter()
            .map(|r| {
                let l = r.peers.first().cloned();
                (r, l)
            })
            .collect();
        for i in 1..=3 {
            st.stores.insert(i, store(i, &format!("s{i}")));
        }
    }
    let cfg = PdConfig {
        endpoints: vec!["pd".into()],
        ..PdConfig::default()
    };
    let client = PdClient::connect(pd.connector(), cfg).await.unwrap();
    (pd, RegionCache::new(client, config))
}

fn three_regions() -> Vec<metapb::Region> {
    vec![
        region(1, b"", b"g", 5),
        region(2, b"g", b"p", 5),
        region(3, b"p", b"", 5),
    ]
}

#[tokio::test(start_paused = true)]
async fn concurrent_misses_share_one_pd_call() {
    let (pd, cache) = setup(three_regions(), RegionCacheConfig::default()).await;
    pd.state.lock().get_region_delay = Duration::from_millis(20);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let c = cache.clone();
            tokio::spawn(async move { c.locate_key(b"h").await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().region.id, 2);
    }
    assert_eq!(pd.calls("get_region"), 1);
    // Now cached: no more calls, and the leader is PD's.
    let r = cache.locate_key(b"i").await.unwrap();
    assert_eq!(r.leader.unwrap().id, 21);
    assert_eq!(pd.calls("get_region"), 1);
}

#[tokio::test(start_paused = true)]
async fn epoch_not_match_inserts_current_regions() {
    let (pd, cache) = setup(vec![region(1, b"", b"", 1)], RegionCacheConfig::default()).await;
    let old = cache.locate_key(b"x").await.unwrap();
    cache.update_leader(old.ver_id(), Some(peer(12, 2)));
    // TiKV split the region: id 1 keeps the right part, new id 4 has the left, version 2.
    let mut left = region(4, b"", b"m", 2);
    left.peers = vec![peer(41, 1), peer(42, 2), peer(43, 3)];
    let right = region(1, b"m", b"", 2);
    assert!(cache.on_epoch_not_match(old.ver_id(), &[left, right.clone()]));
    let a = cache.locate_key(b"a").await.unwrap();
    let z = cache.locate_key(b"z").await.unwrap();
    assert_eq!((a.region.id, z.region.id), (4, 1));
    assert_eq!(z.ver_id().ver, 2);
    // The leader stays on the store that led the stale region.
    assert_eq!(a.leader.unwrap().store_id, 2);
    assert_eq!(
        pd.calls("get_region"),
        1,
        "served from the inserted regions"
    );
    // Stale information does not replace newer.
    assert!(cache.on_epoch_not_match(
        RegionVerId {
            id: 9,
            conf_ver: 1,
            ver: 1
        },
        &[region(1, b"", b"", 1)]
    ));
    assert_eq!(cache.locate_key(b"a").await.unwrap().region.id, 4);
    // A reply older than the request tells nothing.
    assert!(!cache.on_epoch_not_match(z.ver_id(), &[region(1, b"m", b"", 1)]));
}

#[tokio::test(start_paused = true)]
async fn entries_expire_after_idle_ttl() {
    let cfg = RegionCacheConfig {
        ttl: Duration::from_secs(10),
        ttl_jitter: Duration::ZERO,
    };
    let (pd, cache) = setup(three_regions(), cfg).await;
    cache.locate_key(b"a").await.unwrap();
    tokio::time::advance(Duration::from_secs(8)).await;
    cache.locate_key(b"a").await.unwrap(); // a hit extends the TTL
    tokio::time::advance(Duration::from_secs(8)).await;
    cache.locate_key(b"a").await.unwrap();
    assert_eq!(pd.calls("get_region"), 1);
    tokio::time::advance(Duration::from_secs(11)).await;
    cache.locate_key(b"a").await.unwrap();
    assert_eq!(pd.calls("get_region"), 2, "expired entry reloaded");
}

#[tokio::test(start_paused = true)]
async fn send_failure_re_resolves_store_address() {
    let (pd, cache) = setup(three_regions(), RegionCacheConfig::default()).await;
    let r = cache.locate_key(b"a").await.unwrap();
    assert_eq!(&*cache.store(1).await.unwrap().addr, "s1");
    pd.state.lock().stores.insert(1, store(1, "s1-moved"));
    assert_eq!(&*cache.store(1).await.unwrap().addr, "s1", "cached");
    cache.on_send_fail(r.ver_id(), 1);
    assert_eq!(&*cache.store(1).await.unwrap().addr, "s1-moved");
    assert_eq!(pd.calls("get_store"), 2);
    // The region was marked for reload too.
    cache.locate_key(b"a").await.unwrap();
    assert_eq!(pd.calls("get_region"), 2);
    // A store PD no longer knows is reported as such.
    pd.state.lock().stores.remove(&3);
    assert!(matches!(
        cache.store(3).await,
        Err(tikv_tower_layers::locate::LocateError::StoreNotFound(3))
    ));
}

/// One failed send to a store that leads several regions makes all of them reload, once each
/// (client-go store failure epochs); regions led elsewhere stay cached.
#[tokio::test(start_paused = true)]
async fn send_failure_to_a_leader_store_reloads_its_other_regions() {
    let (pd, cache) = setup(three_regions(), RegionCacheConfig::default()).await;
    let r1 = cache.locate_key(b"a").await.unwrap();
    let r2 = cache.locate_key(b"h").await.unwrap();
    let r3 = cache.locate_key(b"q").await.unwrap();
    // Region 3 is led by store 2: unaffected by store 1 failing.
    cache.update_leader(r3.ver_id(), Some(peer(32, 2)));
    assert_eq!(pd.calls("get_region"), 3);
    // Region 2's leader moves to store 3 in PD while the cache still says store 1.
    pd.state.lock().regions[1].1 = Some(peer(23, 3));
    cache.on_send_fail(r1.ver_id(), 1);
    cache.locate_key(b"a").await.unwrap();
    assert_eq!(pd.calls("get_region"), 4);
    // A failure of the same era reported for region 2 (still cached with the old epoch) does
    // not bump the epoch a second time: region 1, just reloaded, stays cached.
    cache.on_send_fail(r2.ver_id(), 1);
    cache.locate_key(b"a").await.unwrap();
    assert_eq!(pd.calls("get_region"), 4);
    // Region 2 reloads and learns its new leader.
    assert_eq!(
        cache
            .locate_key(b"h")
            .await
            .unwrap()
            .leader
            .unwrap()
            .store_id,
        3
    );
    assert_eq!(pd.calls("get_region"), 5);
    assert_eq!(
        cache
            .locate_key(b"q")
            .await
            .unwrap()
            .leader
            .unwrap()
            .store_id,
        2
    );
    // Reloaded entries saw the new epoch: they stay cached.
    cache.locate_key(b"a").await.unwrap();
    cache.locate_key(b"h").await.unwrap();
    assert_eq!(pd.calls("get_region"), 5);
}

#[tokio::test(start_paused = true)]
async fn leader_updates_and_invalidation() {
    let (pd, cache) = setup(three_regions(), RegionCacheConfig::default()).await;
    let r = cache.locate_key(b"q").await.unwrap();
    cache.update_leader(r.ver_id(), Some(peer(33, 3)));
    assert_eq!(cache.locate_key(b"q").await.unwrap().leader.unwrap().id, 33);
    cache.update_leader(r.ver_id(), None);
    assert!(cache.locate_key(b"q").await.unwrap().leader.is_none());
    // A leader that is not a peer means the cached peers are stale.
    cache.update_leader(r.ver_id(), Some(peer(99, 9)));
    cache.locate_key(b"q").await.unwrap();
    assert_eq!(pd.calls("get_region"), 2);
    let r = cache.locate_key(b"q").await.unwrap();
    cache.invalidate_region(r.ver_id(), InvalidReason::RegionNotFound);
    cache.locate_key(b"q").await.unwrap();
    assert_eq!(pd.calls("get_region"), 3);
}

#[tokio::test(start_paused = true)]
async fn end_key_and_id_lookups() {
    let (pd, cache) = setup(three_regions(), RegionCacheConfig::default()).await;
    // "g" as an end key belongs to region 1 ([, g)), found via GetPrevRegion.
    assert_eq!(cache.locate_end_key(b"g").await.unwrap().region.id, 1);
    assert_eq!(pd.calls("get_prev_region"), 1);
    assert_eq!(cache.locate_end_key(b"h").await.unwrap().region.id, 2);
    assert_eq!(cache.locate_end_key(b"").await.unwrap().region.id, 3);
    assert_eq!(cache.locate_region_id(2).await.unwrap().region.id, 2);
    assert_eq!(pd.calls("get_region_by_id"), 0, "region 2 was cached");
    // Cached lookups by end key.
    assert_eq!(cache.locate_end_key(b"g").await.unwrap().region.id, 1);
    assert_eq!(pd.calls("get_prev_region"), 1);
}

#[tokio::test(start_paused = true)]
async fn range_lookups_batch_load() {
    let (pd, cache) = setup(three_regions(), RegionCacheConfig::default()).await;
    let ids: Vec<u64> = cache
        .locate_range(b"b", b"q")
        .await
        .unwrap()
        .iter()
        .map(|r| r.region.id)
        .collect();
    assert_eq!(ids, vec![1, 2, 3]);
    assert_eq!(pd.calls("batch_scan_regions"), 1);
    assert_eq!(pd.calls("get_region"), 0);
    assert_eq!(cache.region_count(), 3);
    let ids: Vec<u64> = cache
        .locate_range(b"", b"")
        .await
        .unwrap()
        .iter()
        .map(|r| r.region.id)
        .collect();
    assert_eq!(ids, vec![1, 2, 3]);
    assert_eq!(pd.calls("batch_scan_regions"), 1, "served from cache");
}

#[tokio::test(start_paused = true)]
async fn txn_codec_bounds_in_request_key_space() {
    let enc = crate::pd::codec::encode_bytes;
    let regions = vec![region(1, b"", &enc(b"g"), 5), region(2, &enc(b"g"), b"", 5)];
    let pd = FakePd::new(1, &["http://pd"]);
    pd.state.lock().regions = regions.into_iter().map(|r| (r, None)).collect();
    let cfg = PdConfig {
        endpoints: vec!["pd".into()],
        ..PdConfig::default()
    };
    let client = PdClient::connect(pd.connector(), cfg)
        .await
        .unwrap()
        .with_codec(ApiCodec::v1_txn());
    let cache = RegionCache::new(client, RegionCacheConfig::default());
    let r = cache.locate_key(b"h").await.unwrap();
    assert_eq!((r.region.id, r.start_key()), (2, &b"g"[..]));
    // EpochNotMatch regions arrive encoded from TiKV and are decoded by the cache.
    let mut split = region(3, &enc(b"g"), &enc(b"k"), 6);
    split.peers.truncate(1);
    assert!(cache.on_epoch_not_match(r.ver_id(), &[split, region(2, &enc(b"k"), b"", 6)]));
    assert_eq!(cache.locate_key(b"h").await.unwrap().region.id, 3);
    assert_eq!(cache.locate_key(b"k").await.unwrap().start_key(), b"k");
}

#[tokio::test(start_paused = true)]
async fn store_not_match_re_resolves_the_leader_store() {
    let (pd, cache) = setup(three_regions(), RegionCacheConfig::default()).await;
    let r = cache.locate_key(b"a").await.unwrap();
    let store_id = r.leader.unwrap().store_id;
    cache.store(store_id).await.unwrap();
    cache.invalidate_region(r.ver_id(), InvalidReason::StoreNotMatch);
    cache.store(store_id).await.unwrap();
    assert_eq!(pd.calls("get_store"), 2);
    assert_eq!(cache.region_count(), 0, "the region was dropped");
}

/// `clear()` frees the old map only after the write lock is released: while the old map
/// is being dropped, the lock is free for readers, and a lookup from another thread
/// completes (it would block forever if the drop ran under the lock).
#[tokio::test(start_paused = true)]
async fn clear_frees_the_old_map_outside_the_lock() {
    let (_pd, cache) = setup(three_regions(), RegionCacheConfig::default()).await;
    cache.locate_key(b"a").await.unwrap();
    assert_eq!(cache.region_count(), 1);
    let (tx, rx) = std::sync::mpsc::channel();
    let probe = cache.clone();
    cache.inner.write_map().on_drop = Some(Box::new(move || {
        let lock_free = probe.inner.regions.try_read().is_ok();
        // A reader on another thread, while this drop is still running (only tried when
        // the lock is free, so a regression fails instead of hanging).
        let reader = probe.clone();
        let looked_up = lock_free
            && std::thread::spawn(move || reader.cached_region(b"a").is_none())
                .join()
                .unwrap_or(false);
        let _ = tx.send((looked_up, lock_free));
    }));
    cache.clear();
    let (looked_up, lock_free) = rx.recv().expect("the old map was dropped");
    assert!(lock_free, "the read lock is available during the drop");
    assert!(looked_up, "a reader finished a lookup during the drop");
    assert_eq!(cache.region_count(), 0);
    // The cache keeps working.
    assert_eq!(cache.locate_key(b"a").await.unwrap().region.id, 1);
}
