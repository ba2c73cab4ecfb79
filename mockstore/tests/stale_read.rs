//! Stale reads above the region's safe ts get `DataIsNotReady` (issue 9,
//! item 5).

use tikv_tower_mockstore::pd::tso::compose;
use tikv_tower_mockstore::{Clock, MockCluster};
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::StoreRequest;

mod common;

use common::peer_ctx;

const NOW_MS: i64 = 1_700_000_000_000;

fn stale_get(ctx: kvrpcpb::Context, version: u64) -> StoreRequest {
    kvrpcpb::GetRequest {
        context: Some(kvrpcpb::Context {
            stale_read: true,
            ..ctx
        }),
        key: b"k".to_vec().into(),
        version,
        ..Default::default()
    }
    .into()
}

/// Written from TiKV `ReadDelegate::check_stale_read_safe` (LocalReader):
/// a stale read whose ts is above the region's safe ts is answered
/// `DataIsNotReady{region_id, peer_id, safe_ts}`; safe ts follows the
/// resolver (`min(PD TSO, min lock start_ts - 1)`). The old mock produced
/// `DataIsNotReady` only when injected.
#[tokio::test]
async fn stale_reads_above_safe_ts_are_not_ready() {
    let (clock, _manual) = Clock::manual(NOW_MS as u64);
    let c = MockCluster::builder().stores(3).clock(clock).build();
    let region = c.region_for_user_key(b"k").expect("region");
    let follower = c.store(2).expect("store 2");
    let ctx = peer_ctx(&region, 2);
    let now = compose(NOW_MS, 0);

    let ok = follower
        .handle(stale_get(ctx.clone(), now - 1))
        .await
        .expect("rpc");
    assert!(ok.region_error().is_none(), "{:?}", ok.region_error());

    let future = follower
        .handle(stale_get(ctx.clone(), now + 1))
        .await
        .expect("rpc");
    let e = future.region_error().cloned().expect("region error");
    let dnr = e.data_is_not_ready.expect("DataIsNotReady");
    assert_eq!((dnr.region_id, dnr.safe_ts), (region.id, now));
    assert_eq!(Some(dnr.peer_id), region.peer_on_store(2).map(|p| p.id));

    // A lock holds safe ts below its start ts.
    let lock_ts = compose(NOW_MS - 2_000, 0);
    let leader = c.store(1).expect("store 1");
    let pw = common::put_prewrite(peer_ctx(&region, 1), lock_ts, b"k");
    let resp = leader.handle(pw.into()).await.expect("rpc");
    assert!(resp.region_error().is_none());
    let blocked = follower
        .handle(stale_get(ctx.clone(), lock_ts + 10))
        .await
        .expect("rpc");
    let dnr = blocked
        .region_error()
        .and_then(|e| e.data_is_not_ready)
        .expect("DataIsNotReady");
    assert_eq!(dnr.safe_ts, lock_ts - 1);

    // A pinned (lagging) safe ts.
    c.set_safe_ts(region.id, Some(100));
    let lagging = follower.handle(stale_get(ctx, 101)).await.expect("rpc");
    assert!(lagging
        .region_error()
        .is_some_and(|e| e.data_is_not_ready.is_some()));
}
