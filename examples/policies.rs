//! Swap each policy of the stack: a retry policy that never retries `ServerIsBusy`, a
//! replica policy that always reads from a follower, and an interceptor of every store
//! RPC attempt that shows where each one went. Runs against an embedded in-process
//! cluster whose stores are made busy by fault injection.
//!
//! ```text
//! cargo run --example policies
//! ```

use std::sync::Arc;

use tikv_tower::config::{ApiVersion, Config};
use tikv_tower::presets::embedded_cluster;
use tikv_tower::RawClient;
use tikv_tower_layers::replica::{Pick, ReplicaFailure, ReplicaPolicy, ReplicaSession};
use tikv_tower_layers::retry::{ClientGoRetry, RetryPolicy, RetrySession};
use tikv_tower_layers::rpc_intercept::{RpcInfo, RpcInterceptor, RpcResult};
use tikv_tower_layers::{
    Decision, Error, RegionErrorKind, RegionRoute, RegionVerId, ReplicaRead, Request, StoreRoute,
};
use tikv_tower_mockstore::fault::{FaultRule, InjectedError};
use tikv_tower_proto::metapb;
use tikv_tower_proto::rpc::RpcKind;

/// Retry like client-go, except that a busy store ends the operation at once.
#[derive(Debug)]
struct FailFastWhenBusy;

struct FailFastSession(Box<dyn RetrySession>);

impl RetryPolicy for FailFastWhenBusy {
    fn new_session(&self, req: &Request) -> Box<dyn RetrySession> {
        Box::new(FailFastSession(ClientGoRetry::default().new_session(req)))
    }
}

impl RetrySession for FailFastSession {
    fn decide(&mut self, req: &Request, err: &Error) -> Decision {
        match err.region_error_kind() {
            Some(RegionErrorKind::ServerIsBusy) => Decision::Return,
            _ => self.0.decide(req, err),
        }
    }
}

/// Always a follower whose store is up (writes excepted: they need the leader).
#[derive(Debug)]
struct Followers;

struct FollowerSession {
    region: RegionVerId,
    peer: Option<metapb::Peer>,
    replica_read: bool,
}

impl ReplicaPolicy for Followers {
    fn new_session(
        &self,
        region: &RegionRoute,
        stores: &[StoreRoute],
        _read: ReplicaRead,
        read_only: bool,
    ) -> Box<dyn ReplicaSession> {
        let leader = region.leader;
        let follower = region.region.peers.iter().copied().find(|p| {
            Some(p.id) != leader.map(|l| l.id)
                && stores
                    .iter()
                    .any(|s| s.id == p.store_id && s.state == metapb::StoreState::Up)
        });
        let (peer, replica_read) = if read_only {
            (follower.or(leader), follower.is_some())
        } else {
            (leader, false)
        };
        Box::new(FollowerSession {
            region: region.ver_id(),
            peer,
            replica_read,
        })
    }
}

impl ReplicaSession for FollowerSession {
    fn region(&self) -> RegionVerId {
        self.region
    }
    fn pick(&mut self) -> Option<Pick> {
        self.peer.map(|peer| Pick {
            peer,
            replica_read: self.replica_read,
            stale_read: false,
        })
    }
    fn on_failure(&mut self, failure: &ReplicaFailure) -> Decision {
        match failure {
            // Anything else: give the attempt back to the retry session as final.
            ReplicaFailure::NotLeader(_) => Decision::Relocate(None),
            _ => Decision::Return,
        }
    }
}

/// Prints every store RPC attempt.
struct Print;

impl RpcInterceptor for Print {
    fn name(&self) -> &str {
        "print"
    }
    fn after(&self, info: &RpcInfo, outcome: &mut RpcResult) {
        let result = match outcome {
            Ok(r) if r.region_error().is_some() => "region error",
            Ok(_) => "ok",
            Err(_) => "send failed",
        };
        println!(
            "  {:?} -> store {} ({}) region {} retry={} : {result}",
            info.kind, info.store_id, info.addr, info.region_id, info.is_retry
        );
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::default().with_api_version(ApiVersion::V1Ttl);
    let cluster = embedded_cluster(&config);
    let client = RawClient::builder()
        .config(config)
        .mock_cluster(cluster.clone())
        .retry_policy(Arc::new(FailFastWhenBusy))
        .replica_policy(Arc::new(Followers))
        .interceptor(Print)
        .build()
        .await?;

    println!("put (leader), then get (a follower):");
    client.put("k", "v").await?;
    assert_eq!(
        client.get("k").await?,
        Some(bytes::Bytes::from_static(b"v"))
    );

    println!("get while every store is busy: one attempt, then the error");
    cluster.faults().inject(
        FaultRule::region_error(InjectedError::ServerIsBusy {
            reason: "example".into(),
            backoff_ms: 0,
        })
        .for_kind(RpcKind::RawGet),
    );
    let err = client.get("k").await.unwrap_err();
    println!("  -> {err} (server busy: {})", err.is_server_busy());
    Ok(())
}
