//! The store core: background tasks end with `close()` / the last drop, and the two
//! stacks are built in the documented order.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tikv_tower_layers::call::{StoreCall, TransportError};
use tikv_tower_layers::resolve_lock::{LockResolver, ResolveOutcome};
use tikv_tower_layers::typed::{send, SendOptions};
use tikv_tower_layers::OpState;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{HasLocks, StoreResponse};

use super::*;
use crate::pd::fake::FakePd;

/// A store over a fake PD and a transport that is never reached.
async fn fake_store(pd: &FakePd) -> KvStore {
    let transport = StoreTransport::custom(tower::service_fn(|_c: StoreCall| async {
        Err::<StoreResponse, _>(TransportError::Canceled)
    }));
    super::pd_budget_tests::store_with(pd, transport).await
}

/// Waits (bounded) until the fake PD has seen `n` TSO streams end on its side.
async fn tso_streams_closed(pd: &FakePd, n: u64) -> bool {
    for _ in 0..500 {
        if pd.state.lock().tso_streams_closed >= n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    false
}

#[tokio::test]
async fn close_stops_every_task_and_pd_sees_the_tso_stream_closed() {
    let pd = FakePd::new(7, &["http://pd"]);
    let store = fake_store(&pd).await;
    let ts = store.oracle().get_timestamp().await.expect("ts");
    assert!(ts > 0);
    let mut running = store.tasks().running();
    running.sort_unstable();
    assert_eq!(
        running,
        [
            "pd-member-loop",
            "tso-dispatcher",
            "tso-low-resolution-updater"
        ]
    );
    assert_eq!(pd.state.lock().tso_streams_opened, 1);
    assert_eq!(pd.state.lock().tso_streams_closed, 0);

    let tasks = store.tasks().clone();
    store.close();
    assert!(store.is_closed());
    tasks.join().await;
    assert!(tasks.running().is_empty(), "{:?}", tasks.running());
    assert!(
        tso_streams_closed(&pd, 1).await,
        "PD's side of the TSO stream is still open"
    );
    assert!(store.oracle().get_timestamp().await.is_err());
    // Nothing restarts after close.
    assert!(tasks.spawn("late", async {}).is_none());
}

#[tokio::test]
async fn dropping_the_last_handle_closes_the_store() {
    let pd = FakePd::new(7, &["http://pd"]);
    let store = fake_store(&pd).await;
    store.oracle().get_timestamp().await.expect("ts");
    let tasks = store.tasks().clone();
    let clone = store.clone();
    drop(store);
    assert!(!tasks.is_closed(), "a clone still holds the store");
    drop(clone);
    assert!(tasks.is_closed());
    tasks.join().await;
    assert!(tasks.running().is_empty());
    assert!(tso_streams_closed(&pd, 1).await);
}

/// A trivial resolver built on the plain stack: rolls back every lock it is handed
/// (through the plain stack, so its own RPCs never meet the resolve-lock layer).
struct RollBack {
    plain: StoreStack,
    calls: AtomicU32,
}

impl LockResolver for RollBack {
    async fn resolve(
        &self,
        locks: Vec<kvrpcpb::LockInfo>,
        _caller_start_ts: u64,
        op: Arc<OpState>,
    ) -> std::result::Result<ResolveOutcome, tikv_tower_layers::Error> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut resolved = Vec::new();
        for lock in locks {
            let rollback = kvrpcpb::BatchRollbackRequest {
                start_version: lock.lock_version,
                keys: vec![lock.key.clone()],
                ..Default::default()
            };
            let reply = send(self.plain.clone(), rollback, SendOptions::op(op.clone())).await?;
            assert!(reply.error.is_none(), "{:?}", reply.error);
            resolved.push(lock.lock_version);
        }
        Ok(ResolveOutcome {
            resolved,
            ..Default::default()
        })
    }
}

#[tokio::test]
async fn resolver_on_the_plain_stack_plugs_into_the_locking_stack() {
    let cluster = tikv_tower_mockstore::MockCluster::builder()
        .stores(1)
        .build();
    let store = KvStore::in_process(cluster, StoreOptions::txn())
        .await
        .expect("store");
    // 1. The plain stack: leave a lock on "k" (transaction 5, never committed).
    let plain = store.plain_stack();
    let prewrite = kvrpcpb::PrewriteRequest {
        mutations: vec![kvrpcpb::Mutation {
            op: kvrpcpb::Op::Put as i32,
            key: b"k".to_vec().into(),
            value: b"v".to_vec().into(),
            ..Default::default()
        }],
        primary_lock: b"k".to_vec().into(),
        start_version: 5,
        lock_ttl: 60_000,
        ..Default::default()
    };
    let reply = send(plain.clone(), prewrite, SendOptions::default())
        .await
        .expect("prewrite");
    assert!(reply.errors.is_empty(), "{:?}", reply.errors);
    let get = kvrpcpb::GetRequest {
        key: b"k".to_vec().into(),
        version: 10,
        ..Default::default()
    };
    // The plain stack does not resolve: the read reports the lock.
    let locked = send(plain.clone(), get.clone(), SendOptions::default())
        .await
        .expect("get");
    assert_eq!(locked.locks().len(), 1);

    // 2. The resolver is built on the plain stack; 3. it is plugged into the locking stack.
    let resolver = Arc::new(RollBack {
        plain,
        calls: AtomicU32::new(0),
    });
    let locking = store.stack_with_resolver(resolver.clone());
    let read = send(locking, get.clone(), SendOptions::default())
        .await
        .expect("get");
    assert!(read.error.is_none(), "{:?}", read.error);
    assert!(read.not_found);
    assert_eq!(resolver.calls.load(Ordering::Relaxed), 1);
    // The rollback really happened: the plain stack reads no lock any more.
    let after = send(store.plain_stack(), get, SendOptions::default())
        .await
        .expect("get");
    assert!(after.locks().is_empty());
    store.close();
}
