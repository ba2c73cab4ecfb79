//! `MaxTimestampNotSynced` after a restart or a leader transfer: once, for
//! async-commit / 1PC prewrites only, then the store has synced `max_ts`
//! from PD.

use tikv_tower_mockstore::cluster::Region;
use tikv_tower_mockstore::MockCluster;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::StoreRequest;

mod common;

use common::{peer_ctx, put_prewrite};

fn prewrite(
    region: &Region,
    store_id: u64,
    start_ts: u64,
    key: &[u8],
    async_commit: bool,
) -> StoreRequest {
    kvrpcpb::PrewriteRequest {
        use_async_commit: async_commit,
        secondaries: Vec::new(),
        ..put_prewrite(peer_ctx(region, store_id), start_ts, key)
    }
    .into()
}

async fn not_synced(c: &MockCluster, store_id: u64, req: StoreRequest) -> bool {
    let resp = c
        .store(store_id)
        .expect("store")
        .handle(req)
        .await
        .expect("rpc");
    match resp.region_error() {
        None => false,
        Some(e) if e.max_timestamp_not_synced.is_some() => true,
        Some(e) => panic!("unexpected {e:?}"),
    }
}

#[tokio::test]
async fn restart_needs_one_sync() {
    let c = MockCluster::builder().build();
    let r = c.regions()[0].clone();
    assert!(
        !not_synced(&c, 1, prewrite(&r, 1, 10, b"a", true)).await,
        "fresh store is synced"
    );
    c.stop_store(1).expect("stop");
    c.start_store(1).expect("start");
    assert_eq!(c.store(1).expect("store").concurrency_manager().max_ts(), 0);
    // A 2PC prewrite does not care.
    assert!(!not_synced(&c, 1, prewrite(&r, 1, 11, b"b", false)).await);
    assert!(not_synced(&c, 1, prewrite(&r, 1, 12, b"c", true)).await);
    assert!(
        c.store(1).expect("store").concurrency_manager().max_ts() > 1 << 18,
        "synced from PD TSO"
    );
    assert!(
        !not_synced(&c, 1, prewrite(&r, 1, 12, b"c", true)).await,
        "the retry is served"
    );
}

#[tokio::test]
async fn leader_transfer_needs_one_sync_on_the_new_leader() {
    let c = MockCluster::builder().stores(2).build();
    let r0 = c.regions()[0].clone();
    let r = c.transfer_leader(r0.id, 2).expect("transfer");
    assert!(not_synced(&c, 2, prewrite(&r, 2, 20, b"a", true)).await);
    assert!(!not_synced(&c, 2, prewrite(&r, 2, 20, b"a", true)).await);
    // Transferring to the current leader changes nothing.
    c.transfer_leader(r0.id, 2).expect("noop");
    assert!(!not_synced(&c, 2, prewrite(&r, 2, 21, b"b", true)).await);
}
