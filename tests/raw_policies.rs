//! Swappable policies and per-RPC interceptors, plugged through the client builder, and
//! the typed errors of an exhausted backoff budget (in-process mockstore with fault
//! injection, tokio's paused clock).
#![cfg(feature = "embedded")]

mod raw_common;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use raw_common::*;
use tikv_tower::config::{ApiVersion, Config, RawConfig};
use tikv_tower::error::BackoffCause;
use tikv_tower::RawClient;
use tikv_tower_layers::replica::{
    ClientGoSelector, Pick, ReplicaFailure, ReplicaPolicy, ReplicaSession,
};
use tikv_tower_layers::retry::{ClientGoRetry, RetryPolicy, RetrySession};
use tikv_tower_layers::rpc_intercept::{RpcInfo, RpcInterceptor, RpcResult};
use tikv_tower_layers::{
    Decision, Error as LayerError, RegionErrorKind, RegionRoute, RegionVerId, ReplicaRead, Request,
    StoreCall, StoreRoute,
};
use tikv_tower_mockstore::fault::{FaultRule, InjectedError};
use tikv_tower_mockstore::MockCluster;
use tikv_tower_proto::metapb;
use tikv_tower_proto::rpc::RpcKind;

/// "Never retry ServerIsBusy": client-go's session for everything else.
#[derive(Debug)]
struct NoBusyRetry;

struct NoBusySession(Box<dyn RetrySession>);

impl RetryPolicy for NoBusyRetry {
    fn new_session(&self, req: &Request) -> Box<dyn RetrySession> {
        Box::new(NoBusySession(ClientGoRetry::default().new_session(req)))
    }
}

impl RetrySession for NoBusySession {
    fn decide(&mut self, req: &Request, err: &LayerError) -> Decision {
        if err.region_error_kind() == Some(RegionErrorKind::ServerIsBusy) {
            return Decision::Return;
        }
        self.0.decide(req, err)
    }
}

/// "Always the follower": the first peer that is not the leader, on a store PD reports
/// up, read as a replica read.
#[derive(Debug)]
struct AlwaysFollower;

struct FollowerSession {
    region: RegionVerId,
    follower: Option<metapb::Peer>,
}

impl ReplicaPolicy for AlwaysFollower {
    fn new_session(
        &self,
        region: &RegionRoute,
        stores: &[StoreRoute],
        _read: ReplicaRead,
        _read_only: bool,
    ) -> Box<dyn ReplicaSession> {
        let leader = region.leader.map(|l| l.id);
        let follower = region.region.peers.iter().copied().find(|p| {
            Some(p.id) != leader
                && stores
                    .iter()
                    .any(|s| s.id == p.store_id && s.state == metapb::StoreState::Up)
        });
        Box::new(FollowerSession {
            region: region.ver_id(),
            follower,
        })
    }
}

impl ReplicaSession for FollowerSession {
    fn region(&self) -> RegionVerId {
        self.region
    }
    fn pick(&mut self) -> Option<Pick> {
        self.follower.map(|peer| Pick {
            peer,
            replica_read: true,
            stale_read: false,
        })
    }
    fn on_failure(&mut self, _failure: &ReplicaFailure) -> Decision {
        Decision::Return
    }
}

/// Records every RPC attempt: kind, store, address, region, retry flag.
#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Vec<RpcInfo>>>);

impl RpcInterceptor for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    fn after(&self, info: &RpcInfo, _outcome: &mut RpcResult) {
        self.0.lock().push(info.clone());
    }
}

fn v1ttl() -> Config {
    Config::default().with_api_version(ApiVersion::V1Ttl)
}

fn leader_of(c: &MockCluster, key: &[u8]) -> u64 {
    c.region_for_user_key(key)
        .and_then(|r| r.leader_peer().map(|p| p.store_id))
        .expect("leader")
}

#[tokio::test(start_paused = true)]
async fn never_retry_server_is_busy_surfaces_after_one_attempt() {
    let c = cluster(ApiVersion::V1Ttl, 3, split_keys());
    let client = RawClient::builder()
        .config(v1ttl())
        .mock_cluster(c.clone())
        .retry_policy(Arc::new(NoBusyRetry))
        .build()
        .await
        .unwrap();
    client.put("k", "v").await.unwrap();
    let busy = c.faults().inject(
        FaultRule::region_error(InjectedError::ServerIsBusy {
            reason: "test".into(),
            backoff_ms: 0,
        })
        .for_kind(RpcKind::RawGet)
        .times(5),
    );
    let err = client.get("k").await.unwrap_err();
    assert!(err.is_server_busy(), "{err:?}");
    assert_eq!(c.faults().fired(busy), 1);

    // The default policy on the same cluster retries through the busy replies.
    let default = client_for(&c).await;
    assert_eq!(default.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(c.faults().fired(busy), 5);
}

async fn client_for(c: &MockCluster) -> RawClient {
    client(c, v1ttl()).await
}

#[tokio::test(start_paused = true)]
async fn always_the_follower_reads_from_the_follower_store() {
    let c = cluster(ApiVersion::V1Ttl, 3, split_keys());
    let rec = Recorder::default();
    let client = RawClient::builder()
        .config(v1ttl())
        .mock_cluster(c.clone())
        .replica_policy(Arc::new(AlwaysFollower))
        .interceptor(rec.clone())
        .build()
        .await
        .unwrap();
    // Writes keep going to the leader (a write is never a replica read: TiKV refuses
    // it), so seed with the default client.
    client_for(&c).await.put("a1", "x").await.unwrap();
    assert_eq!(client.get("a1").await.unwrap().as_deref(), Some(&b"x"[..]));
    let calls = rec.0.lock().clone();
    let gets: Vec<_> = calls.iter().filter(|i| i.kind == RpcKind::RawGet).collect();
    assert_eq!(gets.len(), 1, "{calls:?}");
    assert_ne!(gets[0].store_id, leader_of(&c, b"a1"));
    let store = c.store_meta(gets[0].store_id).expect("store");
    assert_eq!(*gets[0].addr, *store.address);

    // The default selector reads at the leader.
    let rec2 = Recorder::default();
    let leader_client = RawClient::builder()
        .config(v1ttl())
        .mock_cluster(c.clone())
        .replica_policy(Arc::new(ClientGoSelector::new()))
        .interceptor(rec2.clone())
        .build()
        .await
        .unwrap();
    leader_client.get("a1").await.unwrap();
    let calls = rec2.0.lock().clone();
    assert_eq!(calls.last().unwrap().store_id, leader_of(&c, b"a1"));
}

#[tokio::test(start_paused = true)]
async fn interceptor_sees_every_attempt_with_its_store_retries_and_shards_included() {
    let c = cluster(ApiVersion::V1Ttl, 3, split_keys());
    let rec = Recorder::default();
    let client = RawClient::builder()
        .config(v1ttl())
        .mock_cluster(c.clone())
        .interceptor(rec.clone())
        .build()
        .await
        .unwrap();
    client.put("c1", "v").await.unwrap();
    rec.0.lock().clear();

    // One retry: the first attempt answers NotLeader (naming the leader).
    let nl = c.faults().inject(
        FaultRule::region_error(InjectedError::StaleCommand)
            .for_kind(RpcKind::RawGet)
            .once(),
    );
    assert_eq!(client.get("c1").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(c.faults().fired(nl), 1);
    let calls = rec.0.lock().clone();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(!calls[0].is_retry && calls[1].is_retry);
    let region = c.region_for_user_key(b"c1").unwrap().id;
    for i in &calls {
        assert_eq!(i.region_id, region);
        assert_eq!(*i.addr, *c.store_meta(i.store_id).unwrap().address);
    }

    // A batch over many regions: one call per region part.
    rec.0.lock().clear();
    let keys = spread_keys(40);
    client.batch_get(keys.clone()).await.unwrap();
    let calls = rec.0.lock().clone();
    let mut regions: Vec<u64> = keys
        .iter()
        .map(|k| c.region_for_user_key(k).unwrap().id)
        .collect();
    regions.sort();
    regions.dedup();
    let mut seen: Vec<u64> = calls.iter().map(|i| i.region_id).collect();
    seen.sort();
    assert_eq!(seen, regions, "one attempt per shard");
}

#[tokio::test(start_paused = true)]
async fn interceptor_may_answer_an_attempt_itself() {
    struct Deny;
    impl RpcInterceptor for Deny {
        fn name(&self) -> &str {
            "deny-deletes"
        }
        fn before(&self, call: &mut StoreCall) -> ControlFlow<RpcResult> {
            if call.request.kind() == RpcKind::RawDelete {
                ControlFlow::Break(Err(tikv_tower_layers::TransportError::Canceled))
            } else {
                ControlFlow::Continue(())
            }
        }
    }
    let c = cluster(ApiVersion::V1Ttl, 3, split_keys());
    let client = RawClient::builder()
        .config(v1ttl())
        .mock_cluster(c.clone())
        .interceptor(Deny)
        .build()
        .await
        .unwrap();
    client.put("d", "v").await.unwrap();
    assert!(client.delete("d").await.is_err());
    assert_eq!(client.get("d").await.unwrap().as_deref(), Some(&b"v"[..]));
}

fn small_budget() -> Config {
    v1ttl().with_raw(RawConfig {
        max_backoff: Duration::from_millis(500),
        ..RawConfig::default()
    })
}

#[tokio::test(start_paused = true)]
async fn exhaustion_on_region_misses_is_region_unavailable_with_history() {
    let c = cluster(ApiVersion::V1Ttl, 3, vec![]);
    let client = client(&c, small_budget()).await;
    client.put("k", "v").await.unwrap();
    c.faults()
        .inject(FaultRule::region_error(InjectedError::RegionNotFound).for_kind(RpcKind::RawGet));
    let err = client.get("k").await.unwrap_err();
    assert_eq!(
        err.backoff_cause(),
        Some(BackoffCause::RegionUnavailable),
        "{err}"
    );
    assert!(err.is_region_unavailable() && err.is_retryable());
    let h = err.backoff_history().unwrap();
    assert!(h.total_sleep >= Duration::from_millis(1000), "{h}");
    assert!(!h.events.is_empty());
    assert!(
        h.events
            .iter()
            .all(|e| e.error.contains("region_not_found")),
        "{h:?}"
    );
    assert!(err.to_string().starts_with("region unavailable"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn exhaustion_on_unreachable_stores_is_tikv_server_timeout() {
    let c = cluster(ApiVersion::V1Ttl, 3, vec![]);
    let client = client(&c, small_budget()).await;
    client.put("k", "v").await.unwrap();
    for s in c.stores() {
        c.stop_store(s.id).unwrap();
    }
    let err = client.get("k").await.unwrap_err();
    assert_eq!(
        err.backoff_cause(),
        Some(BackoffCause::TiKvServerTimeout),
        "{err}"
    );
    assert!(err.is_timeout(), "{err}");
    assert!(err.to_string().starts_with("tikv server timeout"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn exhaustion_on_busy_stores_is_server_busy() {
    let c = cluster(ApiVersion::V1Ttl, 1, vec![]);
    let client = client(&c, small_budget()).await;
    c.faults().inject(
        FaultRule::region_error(InjectedError::ServerIsBusy {
            reason: "forever".into(),
            backoff_ms: 0,
        })
        .for_kind(RpcKind::RawPut),
    );
    let err = client.put("k", "v").await.unwrap_err();
    assert!(err.is_server_busy(), "{err}");
}

#[tokio::test(start_paused = true)]
async fn raft_entry_too_large_carries_the_configured_limit() {
    let c = cluster(ApiVersion::V1Ttl, 1, vec![]);
    let client = client(&c, v1ttl()).await;
    let too_large = tikv_tower_proto::errorpb::Error {
        message: "raft entry is too large".into(),
        raft_entry_too_large: Some(tikv_tower_proto::errorpb::RaftEntryTooLarge {
            region_id: 1,
            entry_size: 123,
        }),
        ..Default::default()
    };
    c.faults().inject(
        FaultRule::region_error(InjectedError::Custom(Box::new(too_large)))
            .for_kind(RpcKind::RawPut)
            .once(),
    );
    match client.put("k", "v").await.unwrap_err() {
        tikv_tower::Error::EntryTooLarge { limit, size } => {
            assert_eq!(size, 123);
            assert_eq!(limit, RawConfig::default().raft_entry_max_size as u64);
            assert!(limit > 0);
        }
        other => panic!("unexpected {other:?}"),
    }
}
