//! Layer tests with a fake region locator and fake stores (see `testutil`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
use tikv_tower_proto::{errorpb, kvrpcpb};
use tower::{ServiceBuilder, ServiceExt};
use tower_service::Service;

use crate::call::{StoreCall, TransportError};
use crate::error::{Decision, Error};
use crate::intercept::{before_fn, InterceptLayer, Interceptor};
use crate::limit::{Quota, RateLimitLayer};
use crate::replica::{ClientGoSelector, ReplicaPolicy};
use crate::request::{OpState, ReplicaRead, Request, RequestTags, Response, Target};
use crate::resolve_lock::{LockResolver, ResolveLockLayer, ResolveOutcome};
use crate::retry::backoff::BackoffKind;
use crate::retry::matrix::{self, Attempt};
use crate::retry::RetryLayer;
use crate::route::{RouteConfig, RouteLayer};
use crate::shard::ShardLayer;
use crate::tag::TagLayer;
use crate::testutil::{region, Cluster, Scripted};
use crate::timeout::TimeoutLayer;

/// Retry, route and timeout over the fake cluster's transport: the stack below the shard
/// layer.
pub(crate) fn lower(
    c: &Cluster,
) -> impl Service<Request, Response = Response, Error = Error, Future: Send>
       + Clone
       + Send
       + Sync
       + 'static {
    ServiceBuilder::new()
        .layer(RetryLayer::new())
        .layer(RouteLayer::new(
            Arc::new(c.clone()),
            RouteConfig {
                cluster_id: 7,
                ..Default::default()
            },
        ))
        .layer(TimeoutLayer::default())
        .service(c.transport())
}

fn sharded(
    c: &Cluster,
) -> impl Service<Request, Response = Response, Error = Error, Future: Send>
       + Clone
       + Send
       + Sync
       + 'static {
    ServiceBuilder::new()
        .layer(ShardLayer::new(Arc::new(c.clone())))
        .service(lower(c))
}

fn raw_get(k: &str) -> Request {
    Request::new(
        kvrpcpb::RawGetRequest {
            key: k.as_bytes().to_vec().into(),
            ..Default::default()
        }
        .into(),
    )
}

fn raw_batch_get(keys: &[&str]) -> Request {
    Request::new(
        kvrpcpb::RawBatchGetRequest {
            keys: keys
                .iter()
                .map(|k| Bytes::copy_from_slice(k.as_bytes()))
                .collect(),
            ..Default::default()
        }
        .into(),
    )
}

fn region_error(f: impl FnOnce(&mut errorpb::Error)) -> Scripted {
    let mut e = errorpb::Error {
        message: "scripted".into(),
        ..Default::default()
    };
    f(&mut e);
    Scripted::Region(Box::new(e))
}

fn pair_keys(resp: &StoreResponse) -> Vec<String> {
    let pairs = match resp {
        StoreResponse::RawBatchGet(r) => &r.pairs,
        StoreResponse::RawScan(r) => &r.kvs,
        other => panic!("unexpected {other:?}"),
    };
    pairs
        .iter()
        .map(|p| String::from_utf8_lossy(&p.key).into_owned())
        .collect()
}

fn split_cluster() -> Cluster {
    // Truth: three regions; the cache starts in sync.
    let c = Cluster::with_regions(vec![
        (region(1, "", "c", 1), 1),
        (region(2, "c", "f", 1), 2),
        (region(3, "f", "", 1), 3),
    ]);
    for k in ["a", "b", "c", "d", "e", "f", "g", "h"] {
        c.put(k, &k.to_uppercase());
    }
    c
}

#[tokio::test(start_paused = true)]
async fn get_stamps_context() {
    let c = Cluster::single();
    c.put("a", "1");
    let resp = lower(&c).oneshot(raw_get("a")).await.unwrap();
    match resp.inner {
        StoreResponse::RawGet(r) => assert_eq!(r.value, "1"),
        other => panic!("{other:?}"),
    }
    let (store, ctx) = &c.calls()[0];
    assert_eq!(*store, 1);
    assert_eq!(ctx.region_id, 1);
    assert_eq!(ctx.cluster_id, 7);
    assert_eq!(ctx.peer.as_ref().map(|p| p.store_id), Some(1));
    assert_eq!(ctx.region_epoch.as_ref().map(|e| e.version), Some(1));
    assert!(!ctx.is_retry_request);
    assert_eq!(resp.details.attempts, 1);
    assert_eq!(resp.details.store_addr.as_deref(), Some("store-1"));
}

#[tokio::test(start_paused = true)]
async fn retry_gives_up_when_budget_is_spent_and_says_why() {
    let c = Cluster::single();
    for _ in 0..64 {
        c.script(
            None,
            region_error(|e| e.max_timestamp_not_synced = Some(Default::default())),
        );
    }
    let op = OpState::builder()
        .max_backoff(Duration::from_millis(100))
        .build();
    let err = lower(&c)
        .oneshot(raw_get("a").with_op(op.clone()))
        .await
        .unwrap_err();
    match &err {
        Error::BackoffExhausted(h) => {
            let (kinds, last_errors, total_sleep, budget, longest) = (
                &h.kinds_used(),
                h.last_errors(),
                &h.total_sleep,
                &h.budget,
                h.longest(),
            );
            assert_eq!(kinds, &vec![BackoffKind::MaxTsNotSynced]);
            assert_eq!(longest, Some(BackoffKind::MaxTsNotSynced));
            assert!(
                last_errors
                    .last()
                    .unwrap()
                    .contains("max_timestamp_not_synced"),
                "{last_errors:?}"
            );
            // 2+4+8+16+32+64 = 126 ms: the budget is checked before each sleep.
            assert_eq!(*total_sleep, Duration::from_millis(126));
            assert_eq!(*budget, Duration::from_millis(100));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.is_retryable());
    assert_eq!(c.calls().len(), 7);
    // Every attempt after the first is marked as a retry.
    assert!(c.calls()[1..].iter().all(|(_, ctx)| ctx.is_retry_request));
}

#[tokio::test(start_paused = true)]
async fn undetermined_result_is_never_retried() {
    let c = Cluster::single();
    c.script(
        None,
        region_error(|e| {
            e.undetermined_result = Some(errorpb::UndeterminedResult {
                message: "maybe".into(),
            })
        }),
    );
    let req = Request::new(
        kvrpcpb::RawPutRequest {
            key: "a".into(),
            value: "1".into(),
            ..Default::default()
        }
        .into(),
    );
    let err = lower(&c).oneshot(req).await.unwrap_err();
    assert!(
        matches!(err, Error::Undetermined(ref m) if m == "maybe"),
        "{err:?}"
    );
    assert!(err.is_undetermined());
    assert_eq!(c.calls().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn not_leader_moves_to_the_new_leader_without_backoff() {
    let c = Cluster::single();
    c.0.lock().truth[0].1 = 2; // leader moved to store 2; the cache still says 1
    c.put("a", "1");
    let op = OpState::new();
    let resp = lower(&c)
        .oneshot(raw_get("a").with_op(op.clone()))
        .await
        .unwrap();
    assert!(matches!(resp.inner, StoreResponse::RawGet(ref r) if r.value == "1"));
    assert_eq!(c.stores_called(), vec![1, 2]);
    let calls = c.calls();
    assert!(!calls[0].1.is_retry_request);
    assert!(calls[1].1.is_retry_request);
    assert_eq!(calls[1].1.peer.as_ref().map(|p| p.store_id), Some(2));
    assert_eq!(c.0.lock().leader_updates, vec![(1, Some(2))]);
    assert_eq!(op.total_sleep(), Duration::ZERO);
    assert_eq!(resp.details.attempts, 2);
}

#[tokio::test(start_paused = true)]
async fn unreachable_store_moves_to_the_next_peer() {
    let c = Cluster::single();
    {
        let mut s = c.0.lock();
        s.truth[0].1 = 2;
        s.down.insert(1);
    }
    c.put("a", "1");
    let op = OpState::new();
    let resp = lower(&c)
        .oneshot(raw_get("a").with_op(op.clone()))
        .await
        .unwrap();
    assert!(matches!(resp.inner, StoreResponse::RawGet(ref r) if r.value == "1"));
    let stores = c.stores_called();
    assert_eq!(stores[0], 1);
    assert_eq!(*stores.last().unwrap(), 2);
    assert_eq!(
        stores.iter().filter(|s| **s == 1).count(),
        1,
        "the dead store is not retried: {stores:?}"
    );
    assert_eq!(c.0.lock().send_fails, vec![1]);
    assert_eq!(op.with_backoffer(|b| b.times(BackoffKind::TiKvRpc)), 1);
}

#[tokio::test(start_paused = true)]
async fn all_replicas_down_ends_in_exhausted_budget_naming_tikv_rpc() {
    let c = Cluster::single();
    c.0.lock().down.extend([1, 2, 3]);
    let op = OpState::builder()
        .max_backoff(Duration::from_millis(2000))
        .build();
    let err = lower(&c)
        .oneshot(raw_get("a").with_op(op))
        .await
        .unwrap_err();
    match err {
        Error::BackoffExhausted(h) => {
            assert!(h.kinds_used().contains(&BackoffKind::TiKvRpc), "{h:?}");
            assert_eq!(h.longest(), Some(BackoffKind::TiKvRpc));
            assert_eq!(
                h.cause(),
                crate::retry::backoff::BackoffCause::TiKvServerTimeout
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn shard_resplits_after_epoch_not_match_and_keeps_request_order() {
    // The cache believes in one region; the truth has two.
    let c = Cluster::with_regions(vec![(region(1, "", "", 1), 1)]);
    {
        let mut s = c.0.lock();
        s.truth = vec![(region(1, "", "m", 2), 1), (region(2, "m", "", 1), 2)];
    }
    for k in ["a", "b", "m", "z"] {
        c.put(k, k);
    }
    let resp = sharded(&c)
        .oneshot(raw_batch_get(&["z", "a", "q", "m", "b"]))
        .await
        .unwrap();
    assert_eq!(pair_keys(&resp.inner), vec!["z", "a", "m", "b"]);
    assert_eq!(resp.details.shards, 2);
    // One stale attempt, then one per new region.
    assert_eq!(c.calls().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn shard_splits_keys_in_any_order_and_merges_in_request_order() {
    let c = split_cluster();
    let resp = sharded(&c)
        .oneshot(raw_batch_get(&["g", "a", "d", "b", "x"]))
        .await
        .unwrap();
    assert_eq!(pair_keys(&resp.inner), vec!["g", "a", "d", "b"]);
    assert_eq!(resp.details.shards, 3);
    let mut stores = c.stores_called();
    stores.sort();
    assert_eq!(stores, vec![1, 2, 3]);
}

#[tokio::test(start_paused = true)]
async fn budget_is_shared_by_all_shards() {
    let c = Cluster::with_regions(vec![
        (region(1, "", "c", 1), 1),
        (region(2, "c", "f", 1), 1),
        (region(3, "f", "k", 1), 1),
        (region(4, "k", "", 1), 1),
    ]);
    for _ in 0..200 {
        c.script(
            None,
            region_error(|e| e.max_timestamp_not_synced = Some(Default::default())),
        );
    }
    let op = OpState::builder()
        .max_backoff(Duration::from_millis(100))
        .build();
    let err = sharded(&c)
        .oneshot(raw_batch_get(&["a", "d", "g", "z"]).with_op(op.clone()))
        .await
        .unwrap_err();
    assert!(err.is_backoff_exhausted(), "{err:?}");
    // One budget: a single backoff sequence (2, 4, ..., 64 ms), not four of them.
    let times = op.with_backoffer(|b| b.times(BackoffKind::MaxTsNotSynced));
    assert!(times <= 8, "backed off {times} times");
    assert!(
        op.total_sleep() < Duration::from_millis(400),
        "{:?}",
        op.total_sleep()
    );
}

#[tokio::test(start_paused = true)]
async fn scan_visits_regions_in_order_and_honors_the_limit() {
    let c = split_cluster();
    let req = Request::new(
        kvrpcpb::RawScanRequest {
            limit: 5,
            ..Default::default()
        }
        .into(),
    );
    let resp = sharded(&c).oneshot(req).await.unwrap();
    assert_eq!(pair_keys(&resp.inner), vec!["a", "b", "c", "d", "e"]);
    // Region 3 is not visited: the limit was reached in region 2.
    assert_eq!(c.stores_called(), vec![1, 2]);
    assert_eq!(c.calls()[1].1.region_id, 2);
}

#[tokio::test(start_paused = true)]
async fn reverse_scan_goes_downwards() {
    let c = split_cluster();
    let req = Request::new(
        kvrpcpb::RawScanRequest {
            start_key: "g".into(),
            end_key: "b".into(),
            reverse: true,
            limit: 4,
            ..Default::default()
        }
        .into(),
    );
    let resp = sharded(&c).oneshot(req).await.unwrap();
    assert_eq!(pair_keys(&resp.inner), vec!["f", "e", "d", "c"]);
    assert_eq!(c.stores_called(), vec![3, 2]);
}

#[tokio::test(start_paused = true)]
async fn delete_range_fans_out_to_every_region() {
    let c = split_cluster();
    let req = Request::new(
        kvrpcpb::RawDeleteRangeRequest {
            start_key: "b".into(),
            end_key: "g".into(),
            ..Default::default()
        }
        .into(),
    );
    assert!(matches!(req.target, Target::EachRegion(_)));
    sharded(&c).oneshot(req).await.unwrap();
    let left: Vec<_> = c.0.lock().data.keys().cloned().collect();
    assert_eq!(left, vec![b"a".to_vec(), b"g".to_vec(), b"h".to_vec()]);
    assert_eq!(c.calls().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn batch_put_splits_by_region() {
    let c = split_cluster();
    let pairs = ["z", "a", "d"]
        .iter()
        .map(|k| kvrpcpb::KvPair {
            key: k.as_bytes().to_vec().into(),
            value: "v".into(),
            ..Default::default()
        })
        .collect();
    let req = Request::new(
        kvrpcpb::RawBatchPutRequest {
            pairs,
            ..Default::default()
        }
        .into(),
    );
    sharded(&c).oneshot(req).await.unwrap();
    assert_eq!(
        c.0.lock().data.get(b"z".as_slice()),
        Some(&Bytes::from_static(b"v"))
    );
    assert_eq!(c.calls().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn stale_read_retries_as_a_normal_read_after_data_is_not_ready() {
    let c = Cluster::single();
    c.put("a", "1");
    c.script(
        None,
        region_error(|e| e.data_is_not_ready = Some(Default::default())),
    );
    let resp = lower(&c)
        .oneshot(raw_get("a").with_replica_read(ReplicaRead::StaleRead))
        .await
        .unwrap();
    assert!(matches!(resp.inner, StoreResponse::RawGet(ref r) if r.value == "1"));
    let calls = c.calls();
    assert_eq!(calls.len(), 2);
    assert!(calls[0].1.stale_read);
    assert!(!calls[1].1.stale_read);
}

#[tokio::test(start_paused = true)]
async fn key_target_relocates_after_key_not_in_region() {
    // Cache: one region; truth: split at "m" with region 1 keeping its epoch version 1?
    // KeyNotInRegion invalidates; the next attempt re-locates through the reloaded cache.
    let c = Cluster::single();
    c.put("z", "9");
    c.script(
        None,
        region_error(|e| {
            e.key_not_in_region = Some(errorpb::KeyNotInRegion {
                key: "z".into(),
                ..Default::default()
            })
        }),
    );
    let op = OpState::new();
    let resp = lower(&c)
        .oneshot(raw_get("z").with_op(op.clone()))
        .await
        .unwrap();
    assert!(matches!(resp.inner, StoreResponse::RawGet(ref r) if r.value == "9"));
    assert_eq!(op.with_backoffer(|b| b.times(BackoffKind::RegionMiss)), 1);
    assert_eq!(c.0.lock().invalidations.len(), 1);
}

/// The region-error matrix, row by row (client-go `onRegionError`).
#[test]
fn region_error_matrix() {
    use crate::error::RegionErrorKind as K;
    type Case = (
        &'static str,
        fn(&mut errorpb::Error),
        Result<Decision, &'static str>,
    );
    let cases: Vec<Case> = vec![
        (
            "undetermined",
            |e| e.undetermined_result = Some(Default::default()),
            Err("undetermined"),
        ),
        (
            "not leader + leader",
            |e| {
                e.not_leader = Some(errorpb::NotLeader {
                    region_id: 1,
                    leader: Some(crate::testutil::peer(1, 2)),
                })
            },
            Ok(Decision::Now),
        ),
        (
            "not leader, none",
            |e| e.not_leader = Some(Default::default()),
            Ok(Decision::Backoff(BackoffKind::RegionScheduling)),
        ),
        (
            "disk full",
            |e| e.disk_full = Some(Default::default()),
            Ok(Decision::Backoff(BackoffKind::TiKvDiskFull)),
        ),
        (
            "recovery",
            |e| e.recovery_in_progress = Some(Default::default()),
            Ok(Decision::Relocate(Some(
                BackoffKind::RegionRecoveryInProgress,
            ))),
        ),
        (
            "witness",
            |e| e.is_witness = Some(Default::default()),
            Ok(Decision::Relocate(Some(BackoffKind::IsWitness))),
        ),
        (
            "flashback",
            |e| e.flashback_in_progress = Some(Default::default()),
            Err("flashback"),
        ),
        (
            "flashback not prepared",
            |e| e.flashback_not_prepared = Some(Default::default()),
            Err("flashback"),
        ),
        (
            "key not in region",
            |e| e.key_not_in_region = Some(Default::default()),
            Ok(Decision::Relocate(Some(BackoffKind::RegionMiss))),
        ),
        (
            "epoch not match, learned",
            |e| {
                e.epoch_not_match = Some(errorpb::EpochNotMatch {
                    current_regions: vec![region(1, "", "", 2)],
                })
            },
            Ok(Decision::Relocate(None)),
        ),
        (
            "epoch not match, nothing",
            |e| e.epoch_not_match = Some(Default::default()),
            Ok(Decision::Relocate(Some(BackoffKind::RegionMiss))),
        ),
        (
            "bucket",
            |e| e.bucket_version_not_match = Some(Default::default()),
            Ok(Decision::Relocate(Some(BackoffKind::RegionMiss))),
        ),
        (
            "busy leader write",
            |e| e.server_is_busy = Some(Default::default()),
            Ok(Decision::Backoff(BackoffKind::TiKvServerBusy)),
        ),
        (
            "stale command",
            |e| e.stale_command = Some(Default::default()),
            Ok(Decision::Now),
        ),
        (
            "store not match",
            |e| e.store_not_match = Some(Default::default()),
            Ok(Decision::Relocate(Some(BackoffKind::RegionMiss))),
        ),
        (
            "entry too large",
            |e| e.raft_entry_too_large = Some(Default::default()),
            Err("too large"),
        ),
        (
            "max ts",
            |e| e.max_timestamp_not_synced = Some(Default::default()),
            Ok(Decision::Backoff(BackoffKind::MaxTsNotSynced)),
        ),
        (
            "not init",
            |e| e.region_not_initialized = Some(Default::default()),
            Ok(Decision::Backoff(BackoffKind::MaxRegionNotInitialized)),
        ),
        (
            "read index",
            |e| e.read_index_not_ready = Some(Default::default()),
            Ok(Decision::Backoff(BackoffKind::RegionScheduling)),
        ),
        (
            "merging",
            |e| e.proposal_in_merging_mode = Some(Default::default()),
            Ok(Decision::Backoff(BackoffKind::RegionScheduling)),
        ),
        (
            "data not ready",
            |e| e.data_is_not_ready = Some(Default::default()),
            Ok(Decision::Now),
        ),
        (
            "mismatch peer",
            |e| e.mismatch_peer_id = Some(Default::default()),
            Ok(Decision::Relocate(Some(BackoffKind::RegionMiss))),
        ),
        (
            "unknown",
            |_| {},
            Ok(Decision::Relocate(Some(BackoffKind::RegionMiss))),
        ),
    ];
    for (name, build, want) in cases {
        let c = Cluster::single();
        let policy = ClientGoSelector::new();
        let route = futures::executor::block_on(crate::locate::RegionLocator::locate_key(&c, b"a"))
            .unwrap();
        let mut session = policy.new_session(&route, &[], ReplicaRead::Leader, false);
        session.pick();
        let at = Attempt {
            region: route.ver_id(),
            store_id: 1,
            is_read: false,
            max_execution_duration_ms: 0,
            entry_limit: 8 << 20,
            attempts: 1,
        };
        let mut e = errorpb::Error::default();
        build(&mut e);
        let got = matrix::on_region_error(&c, &mut *session, &at, &e);
        match (got, want) {
            (Ok(h), Ok(w)) => assert_eq!(h, w, "{name}"),
            (Err(err), Err(_)) => assert!(
                !err.is_retryable() || err.is_undetermined(),
                "{name}: {err:?}"
            ),
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
        let _ = K::of(&e);
    }
}

#[tokio::test(start_paused = true)]
async fn store_call_timeout_fires() {
    let hang = tower::service_fn(|_c: StoreCall| {
        futures::future::pending::<Result<StoreResponse, TransportError>>()
    });
    let svc = ServiceBuilder::new()
        .layer(TimeoutLayer::default())
        .service(hang);
    let call = StoreCall {
        store_id: 1,
        addr: Arc::from("store-1"),
        request: kvrpcpb::RawGetRequest::default().into(),
        timeout: Some(Duration::from_secs(2)),
    };
    let start = tokio::time::Instant::now();
    let err = svc.oneshot(call).await.unwrap_err();
    assert!(
        matches!(err, TransportError::Timeout { elapsed, .. } if elapsed == Duration::from_secs(2))
    );
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn operation_deadline_caps_rpc_timeouts() {
    let c = Cluster::single();
    let hang = tower::service_fn(|_c: StoreCall| {
        futures::future::pending::<Result<StoreResponse, TransportError>>()
    });
    let svc = ServiceBuilder::new()
        .layer(TimeoutLayer::default())
        .layer(RetryLayer::new())
        .layer(RouteLayer::new(Arc::new(c.clone()), RouteConfig::default()))
        .layer(TimeoutLayer::default())
        .service(hang);
    let op = OpState::builder().timeout(Duration::from_secs(3)).build();
    let start = tokio::time::Instant::now();
    let err = svc.oneshot(raw_get("a").with_op(op)).await.unwrap_err();
    assert!(matches!(err, Error::DeadlineExceeded), "{err:?}");
    assert!(
        start.elapsed() <= Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

/// Lookups run until the operation deadline; a lookup ready at once (a cache hit) is
/// answered even when the deadline has passed (no timer, no spurious timeout).
#[tokio::test(start_paused = true)]
async fn within_deadline_bounds_pending_lookups_only() {
    let op = OpState::builder().timeout(Duration::from_secs(2)).build();
    assert_eq!(op.within_deadline(async { 7 }).await.ok(), Some(7));
    let start = tokio::time::Instant::now();
    let r = op.within_deadline(futures::future::pending::<()>()).await;
    assert!(matches!(r, Err(Error::DeadlineExceeded)), "{r:?}");
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(op.within_deadline(async { 8 }).await.ok(), Some(8));
    // A lookup that needs time gets the rest of it, not more.
    let op = OpState::builder().timeout(Duration::from_secs(2)).build();
    let slow = tokio::time::sleep(Duration::from_secs(1));
    assert!(op.within_deadline(slow).await.is_ok());
    let slower = tokio::time::sleep(Duration::from_secs(5));
    assert!(op.within_deadline(slower).await.is_err());
    // No deadline: no bound.
    let free = OpState::new();
    let long = tokio::time::sleep(Duration::from_secs(3600));
    assert!(free.within_deadline(long).await.is_ok());
}

#[test]
fn request_level_timeout_stamps_defaults() {
    let cases: Vec<(StoreRequest, Duration, u64)> = vec![
        (
            kvrpcpb::RawGetRequest::default().into(),
            Duration::from_secs(30),
            30_000,
        ),
        (
            kvrpcpb::RawPutRequest::default().into(),
            Duration::from_secs(30),
            20_000,
        ),
        (
            kvrpcpb::RawScanRequest::default().into(),
            Duration::from_secs(60),
            60_000,
        ),
        (
            kvrpcpb::UnsafeDestroyRangeRequest::default().into(),
            Duration::from_secs(150),
            20_000,
        ),
    ];
    for (inner, timeout, max_exec) in cases {
        let seen = Arc::new(parking_lot::Mutex::new(None));
        let s2 = seen.clone();
        let probe = tower::service_fn(move |r: Request| {
            *s2.lock() = Some((
                r.timeout,
                r.inner.context().map(|c| c.max_execution_duration_ms),
            ));
            futures::future::ready(Err::<Response, Error>(Error::InvalidArgument(
                "probe".into(),
            )))
        });
        let kind = inner.kind();
        let svc = ServiceBuilder::new()
            .layer(TimeoutLayer::default())
            .service(probe);
        let _ =
            futures::executor::block_on(svc.oneshot(Request::with_target(inner, Target::Unrouted)));
        assert_eq!(
            *seen.lock(),
            Some((Some(timeout), Some(max_exec))),
            "{kind}"
        );
    }
}

type Seen = Arc<parking_lot::Mutex<Vec<Request>>>;

fn capture() -> (
    Seen,
    impl Service<
            Request,
            Response = Response,
            Error = Error,
            Future = futures::future::Ready<Result<Response, Error>>,
        > + Clone,
) {
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let svc = tower::service_fn(move |r: Request| {
        let kind = r.inner.kind();
        s2.lock().push(r);
        futures::future::ready(Ok(Response {
            inner: StoreResponse::default_for(kind),
            details: Default::default(),
        }))
    });
    (seen, svc)
}

#[tokio::test]
async fn tag_layer_stamps_op_tags_over_defaults_and_tagger() {
    let (seen, inner) = capture();
    let layer = TagLayer::new(RequestTags {
        request_source: Some("default".into()),
        priority: Some(kvrpcpb::CommandPri::Low),
        txn_source: Some(3),
        ..Default::default()
    })
    .with_tagger(|req| Some(req.kind().as_str().as_bytes().to_vec()));
    let svc = ServiceBuilder::new().layer(layer).service(inner);
    let op = OpState::builder()
        .request_source("external_app")
        .resource_group_name("rg1")
        .build();
    svc.clone().oneshot(raw_get("a").with_op(op)).await.unwrap();
    svc.oneshot(raw_get("b")).await.unwrap();
    let seen = seen.lock();
    let ctx0 = seen[0].inner.context().unwrap();
    assert_eq!(ctx0.request_source, "external_app");
    assert_eq!(
        ctx0.resource_control_context
            .as_ref()
            .unwrap()
            .resource_group_name,
        "rg1"
    );
    assert_eq!(ctx0.priority, kvrpcpb::CommandPri::Low as i32);
    assert_eq!(ctx0.txn_source, 3);
    assert_eq!(ctx0.resource_group_tag, "RawGet");
    let ctx1 = seen[1].inner.context().unwrap();
    assert_eq!(ctx1.request_source, "default");
    assert!(ctx1.resource_control_context.is_none());
}

struct Recorder(&'static str, Arc<parking_lot::Mutex<Vec<String>>>, bool);

impl Interceptor for Recorder {
    fn name(&self) -> &str {
        self.0
    }
    fn before(&self, req: &mut Request) -> Result<(), String> {
        self.1.lock().push(format!("{}-before", self.0));
        req.context_mut().request_source.push_str(self.0);
        if self.2 {
            Err("refused".into())
        } else {
            Ok(())
        }
    }
    fn after(&self, result: &mut Result<Response, Error>) {
        self.1.lock().push(format!(
            "{}-after-{}",
            self.0,
            if result.is_ok() { "ok" } else { "err" }
        ));
    }
}

#[tokio::test]
async fn interceptors_run_in_order_and_can_short_circuit() {
    let log = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let (seen, inner) = capture();
    let chain = InterceptLayer::new()
        .push(Recorder("a", log.clone(), false))
        .push(Recorder("b", log.clone(), false));
    ServiceBuilder::new()
        .layer(chain)
        .service(inner.clone())
        .oneshot(raw_get("k"))
        .await
        .unwrap();
    assert_eq!(
        *log.lock(),
        vec!["a-before", "b-before", "b-after-ok", "a-after-ok"]
    );
    assert_eq!(seen.lock()[0].inner.context().unwrap().request_source, "ab");

    log.lock().clear();
    let chain = InterceptLayer::new()
        .push(Recorder("a", log.clone(), false))
        .push(Recorder("b", log.clone(), true))
        .push(Recorder("c", log.clone(), false));
    let err = ServiceBuilder::new()
        .layer(chain)
        .service(inner)
        .oneshot(raw_get("k"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Intercepted { ref name, .. } if name == "b"));
    assert_eq!(*log.lock(), vec!["a-before", "b-before", "a-after-err"]);
    assert_eq!(
        seen.lock().len(),
        1,
        "the refused request never reached the inner service"
    );
    let _ = before_fn("x", |_r| Ok(()));
}

#[tokio::test]
async fn rate_limiter_paces_requests() {
    let (_seen, inner) = capture();
    let quota = Quota::with_period(Duration::from_millis(25)).unwrap();
    let svc = ServiceBuilder::new()
        .layer(RateLimitLayer::new().global(quota))
        .service(inner);
    let start = std::time::Instant::now();
    for _ in 0..3 {
        svc.clone().oneshot(raw_get("a")).await.unwrap();
    }
    // Burst of one, then one permit per 25 ms.
    assert!(
        start.elapsed() >= Duration::from_millis(45),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn per_store_rate_limit_keys_by_store() {
    let c = Cluster::single();
    let quota = Quota::with_period(Duration::from_secs(10)).unwrap();
    let svc = ServiceBuilder::new()
        .layer(RateLimitLayer::new().per_store(quota))
        .service(c.transport());
    let start = std::time::Instant::now();
    for store in [1u64, 2, 3] {
        let call = StoreCall {
            store_id: store,
            addr: Arc::from("x"),
            request: kvrpcpb::RawGetRequest::default().into(),
            timeout: None,
        };
        let _ = svc.clone().oneshot(call).await;
    }
    // Three different stores: no waiting.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

struct FakeResolver {
    rounds: parking_lot::Mutex<u32>,
}

impl LockResolver for FakeResolver {
    fn resolve(
        &self,
        locks: Vec<kvrpcpb::LockInfo>,
        _caller_start_ts: u64,
        _op: Arc<OpState>,
    ) -> impl std::future::Future<Output = Result<ResolveOutcome, Error>> + Send {
        *self.rounds.lock() += 1;
        let versions: Vec<u64> = locks.iter().map(|l| l.lock_version).collect();
        async move {
            Ok(ResolveOutcome {
                wait: Duration::from_millis(5),
                resolved: versions,
                committed: vec![],
            })
        }
    }
}

#[tokio::test(start_paused = true)]
async fn resolve_lock_resolves_records_and_retries() {
    let seen = Arc::new(parking_lot::Mutex::new(Vec::<Vec<u64>>::new()));
    let s2 = seen.clone();
    let inner = tower::service_fn(move |r: Request| {
        let resolved = r
            .inner
            .context()
            .map(|c| c.resolved_locks.clone())
            .unwrap_or_default();
        s2.lock().push(resolved.clone());
        let mut resp = kvrpcpb::BatchGetResponse::default();
        if resolved.is_empty() {
            resp.pairs.push(kvrpcpb::KvPair {
                key: "a".into(),
                error: Some(Box::new(kvrpcpb::KeyError {
                    locked: Some(kvrpcpb::LockInfo {
                        lock_version: 42,
                        key: "a".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })),
                ..Default::default()
            });
        } else {
            resp.pairs.push(kvrpcpb::KvPair {
                key: "a".into(),
                value: "1".into(),
                ..Default::default()
            });
        }
        futures::future::ready(Ok::<_, Error>(Response {
            inner: StoreResponse::BatchGet(Box::new(resp)),
            details: Default::default(),
        }))
    });
    let resolver = Arc::new(FakeResolver {
        rounds: parking_lot::Mutex::new(0),
    });
    let svc = ServiceBuilder::new()
        .layer(ResolveLockLayer::new(resolver.clone()))
        .service(inner);
    let op = OpState::new();
    let req = Request::new(
        kvrpcpb::BatchGetRequest {
            keys: vec!["a".into()],
            version: 50,
            ..Default::default()
        }
        .into(),
    )
    .with_op(op.clone());
    let resp = svc.oneshot(req).await.unwrap();
    assert!(matches!(resp.inner, StoreResponse::BatchGet(ref r) if r.pairs[0].value == "1"));
    assert_eq!(*seen.lock(), vec![vec![], vec![42]]);
    assert_eq!(*resolver.rounds.lock(), 1);
    assert_eq!(op.resolved_locks(), vec![42]);
    assert_eq!(op.with_backoffer(|b| b.times(BackoffKind::TxnLockFast)), 1);
    assert!(op.total_sleep() <= Duration::from_millis(5));
}

#[tokio::test(start_paused = true)]
async fn standard_stack_serves_a_sharded_batch() {
    let c = split_cluster();
    let svc = crate::stack::raw(
        c.transport(),
        Arc::new(c.clone()),
        crate::stack::StackConfig::default(),
    );
    let resp = svc.oneshot(raw_batch_get(&["h", "a", "e"])).await.unwrap();
    assert_eq!(pair_keys(&resp.inner), vec!["h", "a", "e"]);
    let boxed = crate::stack::boxed(crate::stack::raw(
        c.transport(),
        Arc::new(c.clone()),
        Default::default(),
    ));
    let resp = boxed.oneshot(raw_get("a")).await.unwrap();
    assert!(matches!(resp.inner, StoreResponse::RawGet(ref r) if r.value == "A"));
}

#[tokio::test(start_paused = true)]
async fn configurable_read_timeout_moves_on_without_backoff() {
    let c = Cluster::single();
    c.script(
        Some(1),
        Scripted::Transport(TransportError::Timeout {
            addr: Arc::from("store-1"),
            elapsed: Duration::from_millis(500),
        }),
    );
    let mut req = Request::new(
        kvrpcpb::GetRequest {
            key: "a".into(),
            version: 1,
            ..Default::default()
        }
        .into(),
    );
    req.context_mut().max_execution_duration_ms = 500;
    let op = OpState::new();
    lower(&c).oneshot(req.with_op(op.clone())).await.unwrap();
    assert_eq!(c.stores_called()[0], 1);
    assert_eq!(op.with_backoffer(|b| b.times(BackoffKind::TiKvRpc)), 0);
}

#[tokio::test(start_paused = true)]
async fn transient_send_failure_backs_off_tikv_rpc() {
    let c = Cluster::single();
    c.put("a", "1");
    c.script(
        Some(1),
        Scripted::Transport(TransportError::Unavailable {
            addr: Arc::from("store-1"),
            message: "reset".into(),
        }),
    );
    let op = OpState::new();
    let resp = lower(&c)
        .oneshot(raw_get("a").with_op(op.clone()))
        .await
        .unwrap();
    assert!(matches!(resp.inner, StoreResponse::RawGet(ref r) if r.value == "1"));
    assert_eq!(op.with_backoffer(|b| b.times(BackoffKind::TiKvRpc)), 1);
    assert_eq!(c.0.lock().send_fails, vec![1]);
}

/// Records span names and string fields.
#[derive(Clone, Default)]
struct SpanLog(Arc<parking_lot::Mutex<Vec<SpanRecord>>>);

/// A span's name and fields.
type SpanRecord = (String, Vec<(String, String)>);

struct FieldVisitor<'a>(&'a mut Vec<(String, String)>);

impl tracing::field::Visit for FieldVisitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .push((field.name().to_string(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push((field.name().to_string(), value.to_string()));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SpanLog {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut fields = Vec::new();
        attrs.record(&mut FieldVisitor(&mut fields));
        self.0
            .lock()
            .push((attrs.metadata().name().to_string(), fields));
    }
}

#[test]
fn trace_layer_opens_operation_and_rpc_spans() {
    use tracing_subscriber::layer::SubscriberExt;
    let log = SpanLog::default();
    let subscriber = tracing_subscriber::registry().with(log.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let c = Cluster::single();
        c.0.lock().truth[0].1 = 2; // one NotLeader, so two attempts
        let svc = ServiceBuilder::new()
            .layer(crate::trace::TraceLayer::new())
            .service(lower(&c));
        svc.oneshot(raw_get("a")).await.unwrap();
    });
    let spans = log.0.lock().clone();
    let names: Vec<&str> = spans.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["tikv.op", "tikv.rpc", "tikv.rpc"]);
    let field = |i: usize, k: &str| {
        spans[i]
            .1
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(field(0, "db.system").as_deref(), Some("tikv"));
    assert_eq!(field(0, "db.operation").as_deref(), Some("RawGet"));
    assert_eq!(field(1, "server.address").as_deref(), Some("store-1"));
    assert_eq!(field(2, "server.address").as_deref(), Some("store-2"));
    assert_eq!(field(2, "tikv.attempt").as_deref(), Some("2"));
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Whatever the key order, duplicates and region layout (cache possibly stale),
        /// a sharded batch get returns exactly the stored keys in request order.
        #[test]
        fn sharded_batch_get_matches_a_map(
            keys in proptest::collection::vec("[a-h]{1,2}", 0..24),
            splits in proptest::collection::btree_set("[a-h]{1,2}", 0..5),
            stale in any::<bool>(),
        ) {
            let bounds: Vec<String> = splits.into_iter().collect();
            let mut regions = Vec::new();
            let mut start = String::new();
            for (i, b) in bounds.iter().enumerate() {
                regions.push((region(i as u64 + 1, &start, b, 2), 1 + (i as u64 % 3)));
                start = b.clone();
            }
            regions.push((region(bounds.len() as u64 + 1, &start, "", 2), 1));
            let c = Cluster::with_regions(regions);
            if stale {
                // The cache knows only one big region at an older epoch.
                c.0.lock().cache = vec![(region(1, "", "", 1), 1)];
            }
            for (i, k) in keys.iter().enumerate() {
                if i % 2 == 0 {
                    c.put(k, "v");
                }
            }
            let stored: Vec<String> = c.0.lock().data.keys().map(|k| String::from_utf8_lossy(k).into_owned()).collect();
            let refs: Vec<&str> = keys.iter().map(|s| s.as_str()).collect();
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
            let resp = rt.block_on(sharded(&c).oneshot(raw_batch_get(&refs))).unwrap();
            let got = pair_keys(&resp.inner);
            // Expected: request order, stored keys only, first occurrence of duplicates kept in place.
            let mut want: Vec<String> = keys.iter().filter(|k| stored.contains(k)).cloned().collect();
            let mut got_sorted = got.clone();
            got_sorted.sort();
            want.sort();
            prop_assert_eq!(got_sorted, want);
            // Order: the position of each returned key in the request is non-decreasing.
            let pos: Vec<usize> = got.iter().map(|k| keys.iter().position(|r| r == k).unwrap()).collect();
            prop_assert!(pos.windows(2).all(|w| w[0] <= w[1]), "{:?} for {:?}", got, keys);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn follower_read_goes_to_a_follower_with_replica_read() {
    let c = Cluster::single();
    c.put("a", "1");
    let resp = lower(&c)
        .oneshot(raw_get("a").with_replica_read(ReplicaRead::Follower))
        .await
        .unwrap();
    assert!(matches!(resp.inner, StoreResponse::RawGet(ref r) if r.value == "1"));
    let calls = c.calls();
    assert_eq!(calls.len(), 1);
    assert_ne!(calls[0].0, 1, "the leader is store 1");
    assert!(calls[0].1.replica_read);
    // A write never reads from followers, whatever the policy says.
    let put = Request::new(
        kvrpcpb::RawPutRequest {
            key: "b".into(),
            ..Default::default()
        }
        .into(),
    )
    .with_replica_read(ReplicaRead::Follower);
    lower(&c).oneshot(put).await.unwrap();
    assert_eq!(c.calls()[1].0, 1);
    assert!(!c.calls()[1].1.replica_read);
}

#[tokio::test(start_paused = true)]
async fn region_id_target_routes_by_id() {
    let c = split_cluster();
    let req = Request::with_target(
        kvrpcpb::RawDeleteRangeRequest::default().into(),
        Target::RegionId(2),
    );
    lower(&c).oneshot(req).await.unwrap();
    assert_eq!(c.calls()[0].1.region_id, 2);
    assert_eq!(c.calls()[0].0, 2);
}

#[tokio::test(start_paused = true)]
async fn leader_learned_from_a_successful_leader_read_at_a_follower() {
    // Cache leader store 1 is down; truth leader is store 2.
    let c = Cluster::single();
    {
        let mut s = c.0.lock();
        s.truth[0].1 = 2;
        s.down.insert(1);
    }
    lower(&c).oneshot(raw_get("a")).await.unwrap();
    let updates = c.0.lock().leader_updates.clone();
    assert_eq!(updates.last(), Some(&(1, Some(2))), "{updates:?}");
}

/// Per-request overhead of the raw stack over an instant transport (run in release:
/// `cargo test --release -p tikv-tower-layers --lib overhead -- --ignored --nocapture`).
#[test]
#[ignore]
fn overhead() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let c = split_cluster();
    let instant = tower::service_fn(|call: StoreCall| {
        futures::future::ready(Ok::<_, TransportError>(StoreResponse::default_for(
            call.request.kind(),
        )))
    });
    let n = 200_000u32;
    rt.block_on(async {
        let direct = instant;
        let start = std::time::Instant::now();
        for _ in 0..n {
            let call = StoreCall {
                store_id: 1,
                addr: Arc::from("store-1"),
                request: kvrpcpb::RawGetRequest { key: "a".into(), ..Default::default() }.into(),
                timeout: None,
            };
            direct.oneshot(call).await.unwrap();
        }
        let base = start.elapsed() / n;
        let stack = crate::stack::raw(direct, Arc::new(c.clone()), Default::default());
        let start = std::time::Instant::now();
        for _ in 0..n {
            stack.clone().oneshot(raw_get("a")).await.unwrap();
        }
        let full = start.elapsed() / n;
        let route_only = ServiceBuilder::new()
            .layer(RouteLayer::new(Arc::new(c.clone()), RouteConfig::default()))
            .service(direct);
        let start = std::time::Instant::now();
        for _ in 0..n {
            route_only.clone().oneshot(raw_get("a")).await.unwrap();
        }
        let routed = start.elapsed() / n;
        let start = std::time::Instant::now();
        for _ in 0..n {
            let _ = raw_get("a");
        }
        let build = start.elapsed() / n;
        println!("Request::new {build:?}/op, route layer alone {routed:?}/op");
        let keys: Vec<String> = (0..64).map(|i| format!("{}{i}", (b'a' + (i % 8) as u8) as char)).collect();
        let refs: Vec<&str> = keys.iter().map(|s| s.as_str()).collect();
        let m = n / 20;
        let start = std::time::Instant::now();
        for _ in 0..m {
            stack.clone().oneshot(raw_batch_get(&refs)).await.unwrap();
        }
        let batch = start.elapsed() / m;
        println!("direct {base:?}/op, raw stack RawGet {full:?}/op, 64-key RawBatchGet over 3 regions {batch:?}/op");
    });
}
