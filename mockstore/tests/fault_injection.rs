//! Fault injection (spec §4.6): region errors once / N times / with a
//! probability, per store and per RPC kind; drops, delays (paused tokio
//! time), apply-then-drop, canned responses.

use std::time::Duration;

use tikv_tower_mockstore::fault::{FaultRule, InjectedError};
use tikv_tower_mockstore::MockCluster;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{RpcKind, StoreRequest, StoreResponse};

mod common;

use common::peer_ctx;

fn cluster() -> MockCluster {
    MockCluster::builder().stores(3).seed(11).build()
}

fn ctx(c: &MockCluster) -> kvrpcpb::Context {
    peer_ctx(&c.regions()[0], 1)
}

fn get(c: &MockCluster) -> StoreRequest {
    kvrpcpb::RawGetRequest {
        context: Some(ctx(c)),
        key: "k".into(),
        ..Default::default()
    }
    .into()
}

fn put(c: &MockCluster, v: &[u8]) -> StoreRequest {
    kvrpcpb::RawPutRequest {
        context: Some(ctx(c)),
        key: "k".into(),
        value: v.to_vec().into(),
        ..Default::default()
    }
    .into()
}

async fn outcome(c: &MockCluster, req: StoreRequest) -> &'static str {
    match c.store(1).expect("store").handle(req).await {
        Err(s) if s.code() == tonic::Code::Unavailable => "unavailable",
        Err(_) => "status",
        Ok(r) => match r.region_error() {
            None => "ok",
            Some(e) if e.not_leader.is_some() => "not_leader",
            Some(e) if e.server_is_busy.is_some() => "busy",
            Some(_) => "region_error",
        },
    }
}

#[tokio::test]
async fn n_times_then_inert() {
    let c = cluster();
    let id = c.faults().inject(
        FaultRule::region_error(InjectedError::NotLeader)
            .on_store(1)
            .for_kind(RpcKind::RawGet)
            .times(2),
    );
    // Other kinds are not affected.
    assert_eq!(outcome(&c, put(&c, b"v")).await, "ok");
    let got = [
        outcome(&c, get(&c)).await,
        outcome(&c, get(&c)).await,
        outcome(&c, get(&c)).await,
    ];
    assert_eq!(got, ["not_leader", "not_leader", "ok"]);
    assert_eq!(c.faults().fired(id), 2);
}

#[tokio::test]
async fn once_on_another_store_does_not_fire_here() {
    let c = cluster();
    c.faults().inject(FaultRule::drop_rpc().on_store(2).once());
    assert_eq!(outcome(&c, get(&c)).await, "ok");
    let rule = c.faults().inject(FaultRule::drop_rpc().on_store(1).once());
    assert_eq!(outcome(&c, get(&c)).await, "unavailable");
    assert_eq!(outcome(&c, get(&c)).await, "ok");
    assert_eq!(c.faults().fired(rule), 1);
}

#[tokio::test]
async fn probability_is_seeded() {
    let run = || async {
        let c = cluster();
        c.faults().inject(
            FaultRule::region_error(InjectedError::ServerIsBusy {
                reason: "busy".into(),
                backoff_ms: 10,
            })
            .probability(0.5),
        );
        let mut v = Vec::new();
        for _ in 0..64 {
            v.push(outcome(&c, get(&c)).await);
        }
        v
    };
    let a = run().await;
    assert_eq!(a, run().await);
    let busy = a.iter().filter(|x| **x == "busy").count();
    assert!((16..48).contains(&busy), "busy {busy}");
}

/// A predicate over an injected region error.
type Check = fn(&tikv_tower_proto::errorpb::Error) -> bool;

#[tokio::test]
async fn injected_errors_carry_their_payload() {
    let c = cluster();
    let region = c.regions()[0].clone();
    let cases: Vec<(InjectedError, Check)> = vec![
        (InjectedError::NotLeader, |e| {
            e.not_leader
                .as_ref()
                .is_some_and(|n| n.leader.as_ref().map(|p| p.store_id) == Some(1))
        }),
        (InjectedError::NotLeaderNoLeader, |e| {
            e.not_leader.as_ref().is_some_and(|n| n.leader.is_none())
        }),
        (InjectedError::EpochNotMatch, |e| {
            e.epoch_not_match
                .as_ref()
                .is_some_and(|m| !m.current_regions.is_empty())
        }),
        (InjectedError::StaleCommand, |e| e.stale_command.is_some()),
        (InjectedError::RegionNotFound, |e| {
            e.region_not_found.is_some()
        }),
        (InjectedError::DiskFull, |e| {
            e.disk_full.as_ref().is_some_and(|d| d.store_id == vec![1])
        }),
        (InjectedError::MaxTimestampNotSynced, |e| {
            e.max_timestamp_not_synced.is_some()
        }),
        (InjectedError::UndeterminedResult, |e| {
            e.undetermined_result.is_some()
        }),
        (InjectedError::ReadIndexNotReady, |e| {
            e.read_index_not_ready.is_some()
        }),
        (InjectedError::ProposalInMergingMode, |e| {
            e.proposal_in_merging_mode.is_some()
        }),
        (InjectedError::RegionNotInitialized, |e| {
            e.region_not_initialized.is_some()
        }),
        (InjectedError::RecoveryInProgress, |e| {
            e.recovery_in_progress.is_some()
        }),
        (InjectedError::FlashbackInProgress, |e| {
            e.flashback_in_progress.is_some()
        }),
        (InjectedError::IsWitness, |e| e.is_witness.is_some()),
        (InjectedError::DataIsNotReady, |e| {
            e.data_is_not_ready.is_some()
        }),
    ];
    for (err, check) in cases {
        c.faults().inject(
            FaultRule::region_error(err.clone())
                .on_region(region.id)
                .once(),
        );
        let resp = c
            .store(1)
            .expect("store")
            .handle(get(&c))
            .await
            .expect("rpc");
        let e = resp.region_error().cloned().expect("region error");
        assert!(check(&e), "{err:?}: {e:?}");
        assert!(
            matches!(resp, StoreResponse::RawGet(_)),
            "response of the request's kind"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn delay_and_slow_store_use_tokio_time() {
    let c = cluster();
    c.faults().slow_store(1, Duration::from_millis(300));
    c.faults().inject(
        FaultRule::delay(Duration::from_millis(200))
            .for_kind(RpcKind::RawGet)
            .once(),
    );
    let start = tokio::time::Instant::now();
    assert_eq!(outcome(&c, get(&c)).await, "ok");
    assert_eq!(start.elapsed(), Duration::from_millis(500));
    let start = tokio::time::Instant::now();
    assert_eq!(outcome(&c, get(&c)).await, "ok");
    assert_eq!(start.elapsed(), Duration::from_millis(300));
}

#[tokio::test]
async fn apply_then_drop_writes_but_fails() {
    let c = cluster();
    c.faults().inject(
        FaultRule::apply_then_drop()
            .for_kind(RpcKind::RawPut)
            .once(),
    );
    assert_eq!(outcome(&c, put(&c, b"applied")).await, "unavailable");
    match c
        .store(1)
        .expect("store")
        .handle(get(&c))
        .await
        .expect("rpc")
    {
        StoreResponse::RawGet(r) => assert_eq!(r.value, "applied"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn canned_response_status_and_predicate() {
    let c = cluster();
    let canned = StoreResponse::RawGet(Box::new(kvrpcpb::RawGetResponse {
        value: "canned".into(),
        ..Default::default()
    }));
    c.faults().inject(
        FaultRule::respond(canned)
            .when(|r| matches!(r, StoreRequest::RawGet(g) if g.key == "k"))
            .once(),
    );
    match c
        .store(1)
        .expect("store")
        .handle(get(&c))
        .await
        .expect("rpc")
    {
        StoreResponse::RawGet(r) => assert_eq!(r.value, "canned"),
        other => panic!("{other:?}"),
    }
    let id = c
        .faults()
        .inject(FaultRule::status(tonic::Code::DeadlineExceeded, "slow"));
    let err = c
        .store(1)
        .expect("store")
        .handle(get(&c))
        .await
        .expect_err("status");
    assert_eq!(err.code(), tonic::Code::DeadlineExceeded);
    c.faults().remove(id);
    assert_eq!(outcome(&c, get(&c)).await, "ok");
    assert_eq!(c.faults().fired(id), 1);
}

#[tokio::test]
async fn kv_gc_is_unimplemented_and_unsafe_destroy_range_skips_region_checks() {
    let c = cluster();
    let gc: StoreRequest = kvrpcpb::GcRequest {
        context: Some(ctx(&c)),
        safe_point: 1,
    }
    .into();
    let err = c
        .store(1)
        .expect("store")
        .handle(gc)
        .await
        .expect_err("unimplemented");
    assert_eq!(err.code(), tonic::Code::Unimplemented);
    assert_eq!(outcome(&c, put(&c, b"v")).await, "ok");
    // No context at all: still served, on any store.
    let udr: StoreRequest = kvrpcpb::UnsafeDestroyRangeRequest {
        context: None,
        start_key: "a".into(),
        end_key: "z".into(),
    }
    .into();
    match c.store(3).expect("store").handle(udr).await.expect("rpc") {
        StoreResponse::UnsafeDestroyRange(r) => assert_eq!(r.error, ""),
        other => panic!("{other:?}"),
    }
    match c
        .store(1)
        .expect("store")
        .handle(get(&c))
        .await
        .expect("rpc")
    {
        StoreResponse::RawGet(r) => assert!(r.not_found, "raw data destroyed too"),
        other => panic!("{other:?}"),
    }
    let empty: StoreRequest = kvrpcpb::UnsafeDestroyRangeRequest {
        context: None,
        start_key: Default::default(),
        end_key: "z".into(),
    }
    .into();
    match c.store(1).expect("store").handle(empty).await.expect("rpc") {
        StoreResponse::UnsafeDestroyRange(r) => assert!(!r.error.is_empty()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_delay_past_max_execution_duration_is_server_is_busy() {
    let c = cluster();
    c.faults().slow_store(1, Duration::from_millis(300));
    let mut req = get(&c);
    req.context_mut().max_execution_duration_ms = 100;
    let resp = c.store(1).expect("store").handle(req).await.expect("rpc");
    let busy = resp
        .region_error()
        .and_then(|e| e.server_is_busy.clone())
        .expect("busy");
    assert_eq!(busy.reason, "deadline is exceeded");
    let mut req = get(&c);
    req.context_mut().max_execution_duration_ms = 1000;
    assert_eq!(outcome(&c, req).await, "ok");
}
