//! PD failures during an operation's region lookup are retried once, by the operation's
//! own Backoffer (`BoPDRPC`, client-go region cache `loadRegion(bo, …)`), inside its
//! budget and deadline; the PD client's own retry is for standalone calls only. Paused
//! tokio time throughout.

use std::time::Duration;

use tikv_tower_layers::call::StoreCall;
use tikv_tower_layers::retry::backoff::{BackoffCause, BackoffKind};
use tikv_tower_layers::typed::{send, SendOptions};
use tikv_tower_layers::OpState;
use tikv_tower_proto::rpc::StoreResponse;
use tikv_tower_proto::{kvrpcpb, metapb};

use super::*;
use crate::pd::fake::FakePd;

/// A fake PD with one region over everything (leader on store 1) and one store.
fn one_region_pd() -> FakePd {
    let pd = FakePd::new(7, &["http://pd"]);
    {
        let mut st = pd.state.lock();
        let leader = metapb::Peer {
            id: 11,
            store_id: 1,
            ..Default::default()
        };
        let region = metapb::Region {
            id: 1,
            region_epoch: Some(metapb::RegionEpoch {
                conf_ver: 1,
                version: 1,
            }),
            peers: vec![leader],
            ..Default::default()
        };
        st.regions = vec![(region, Some(leader))];
        st.stores.insert(
            1,
            metapb::Store {
                id: 1,
                address: "s1".into(),
                ..Default::default()
            },
        );
    }
    pd
}

/// A raw store over the fake `pd` and `transport` (shared with the store-core tests).
pub(super) async fn store_with(pd: &FakePd, transport: StoreTransport) -> KvStore {
    KvStore::with_transport(
        pd.connector(),
        vec!["http://pd".into()],
        transport,
        StoreOptions::raw(),
        TaskRegistry::new(),
    )
    .await
    .expect("store")
}

/// A store over `pd` whose transport answers every RawGet with `v`.
async fn store_over(pd: &FakePd) -> KvStore {
    let transport = StoreTransport::custom(tower::service_fn(|_c: StoreCall| async {
        Ok::<_, tikv_tower_layers::TransportError>(StoreResponse::from(kvrpcpb::RawGetResponse {
            value: "v".into(),
            ..Default::default()
        }))
    }));
    store_with(pd, transport).await
}

/// A store over a fake PD whose every GetRegion outlives the PD RPC timeout (3 s).
async fn hanging_pd() -> (FakePd, KvStore) {
    let pd = one_region_pd();
    let store = store_over(&pd).await;
    pd.state.lock().get_region_delay = Duration::from_secs(3600);
    (pd, store)
}

fn raw_get() -> kvrpcpb::RawGetRequest {
    kvrpcpb::RawGetRequest {
        key: "k".into(),
        ..Default::default()
    }
}

#[tokio::test(start_paused = true)]
async fn pd_failures_are_backed_off_on_the_operations_budget_once_each() {
    let pd = one_region_pd();
    let store = store_over(&pd).await;
    pd.state.lock().get_region_failures = 3;
    let op = OpState::new();
    let reply = send(store.plain_stack(), raw_get(), SendOptions::op(op.clone()))
        .await
        .expect("the lookup succeeds on the fourth attempt");
    assert_eq!(&reply.value[..], b"v");
    // Three failures, three PdRpc sleeps on the operation's backoffer, four PD attempts:
    // no retry inside the PD client, none stacked by the layers.
    assert_eq!(pd.calls("get_region"), 4);
    let history = op.with_backoffer(|b| b.history());
    assert_eq!(history.kinds_used(), [BackoffKind::PdRpc]);
    assert_eq!(history.events.len(), 3, "{history}");
    assert!(history
        .events
        .iter()
        .all(|e| e.kind == BackoffKind::PdRpc && e.sleep > Duration::ZERO));
    assert!(history.events[0]
        .error
        .contains("injected GetRegion failure"));
    // Charged to the operation: the budget's total is the PdRpc sleeps.
    assert_eq!(op.total_sleep(), history.total_sleep);
    assert!(op.total_sleep() >= Duration::from_millis(250 + 500 + 1000));
    store.close();
}

#[tokio::test(start_paused = true)]
async fn a_pd_that_keeps_timing_out_exhausts_the_budget_as_pd_server_timeout() {
    let (pd, store) = hanging_pd().await;
    let op = OpState::builder()
        .max_backoff(Duration::from_secs(20))
        .build();
    let start = tokio::time::Instant::now();
    let err = send(store.plain_stack(), raw_get(), SendOptions::op(op.clone()))
        .await
        .expect_err("PD never answers");
    let err = crate::Error::from(err);
    assert!(err.is_pd_server_timeout(), "{err}");
    assert_eq!(err.backoff_cause(), Some(BackoffCause::PdServerTimeout));
    let history = err.backoff_history().expect("history attached").clone();
    assert_eq!(history.kinds_used(), [BackoffKind::PdRpc]);
    // Every attempt failed once and was followed by one backoff (the last refused by the
    // budget): attempts = backoff events, all on the operation's budget.
    let attempts = pd.calls("get_region");
    assert_eq!(attempts, history.events.len() as u64, "{history}");
    // PdRpc sleeps are at least 250, 500, 1000, then 1500 ms (equal jitter, cap 3 s): a
    // 20 s budget admits at most 16 sleeps, so at most 17 attempts. The PD client's own
    // 10 attempts per lookup would have made ~10x as many.
    assert!((8..=17).contains(&attempts), "{attempts} PD attempts");
    assert!(history.total_sleep >= Duration::from_secs(20));
    // Elapsed = sleeps + one 3 s RPC timeout per attempt.
    let elapsed = start.elapsed();
    assert!(
        elapsed >= history.total_sleep + Duration::from_secs(3) * attempts as u32,
        "{elapsed:?}"
    );
    store.close();
}

#[tokio::test(start_paused = true)]
async fn a_hanging_pd_lookup_ends_at_the_operation_deadline() {
    let (pd, store) = hanging_pd().await;
    let op = OpState::builder().timeout(Duration::from_secs(5)).build();
    let start = tokio::time::Instant::now();
    let err = send(store.plain_stack(), raw_get(), SendOptions::op(op))
        .await
        .expect_err("deadline");
    assert!(
        matches!(err, tikv_tower_layers::Error::DeadlineExceeded),
        "{err}"
    );
    // One 3 s PD timeout, one PdRpc sleep, then the second attempt is cut at 5 s.
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(pd.calls("get_region"), 2);
    store.close();
}

#[tokio::test(start_paused = true)]
async fn standalone_pd_calls_keep_their_own_bounded_retry() {
    let pd = one_region_pd();
    let store = store_over(&pd).await;
    pd.state.lock().get_region_failures = 2;
    // Not on behalf of an operation: the PD client retries by itself.
    let info = store
        .pd()
        .get_region(b"k")
        .await
        .expect("third attempt succeeds");
    assert_eq!(info.map(|i| i.region.id), Some(1));
    assert_eq!(pd.calls("get_region"), 3);
    // One attempt through the operation handle.
    pd.state.lock().get_region_failures = 1;
    let err = store.pd().single_attempt().get_region(b"k").await;
    assert!(
        matches!(
            err,
            Err(crate::pd::PdError::Grpc {
                code: tonic::Code::Unavailable,
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(pd.calls("get_region"), 4);
    store.close();
}

#[tokio::test(start_paused = true)]
async fn close_stops_region_loads_in_flight() {
    let (_pd, store) = hanging_pd().await;
    let stack = store.plain_stack();
    let op = OpState::new();
    let pending = tokio::spawn(send(stack, raw_get(), SendOptions::op(op)));
    // Let the lookup start: its load runs in the store's registry.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(
        store.tasks().running().contains(&"region-load"),
        "{:?}",
        store.tasks().running()
    );
    let tasks = store.tasks().clone();
    store.close();
    tasks.join().await;
    assert!(tasks.running().is_empty(), "{:?}", tasks.running());
    // The waiting operation is told the cache is closed (not retried as a PD outage).
    let err = pending.await.expect("no panic").expect_err("closed");
    assert!(
        matches!(
            err,
            tikv_tower_layers::Error::Locate(tikv_tower_layers::locate::LocateError::Closed)
        ),
        "{err}"
    );
}
