//! The store gRPC servers: unary raw and txn RPCs, the BatchCommands stream, health,
//! and store stop / start, through real tonic clients on loopback.

use std::collections::HashMap;
use std::time::Duration;

use tikv_tower_mockstore::{MockCluster, ServeOptions, ServedCluster};
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::tikvpb::batch_commands_request::{
    request::Cmd as ReqCmd, Request as SubRequest,
};
use tikv_tower_proto::tikvpb::batch_commands_response::response::Cmd as RespCmd;
use tikv_tower_proto::tikvpb::{self, tikv_client::TikvClient};
use tonic::transport::Channel;

mod common;

use common::leader_ctx;

async fn serve(cluster: &MockCluster) -> ServedCluster {
    cluster
        .serve_grpc(ServeOptions::default())
        .await
        .expect("serve")
}

async fn client(addr: std::net::SocketAddr) -> TikvClient<Channel> {
    let ch = Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    TikvClient::new(ch)
}

fn leader_store(cluster: &MockCluster, key: &[u8]) -> u64 {
    cluster
        .region_for_user_key(key)
        .and_then(|r| r.leader_peer().map(|p| p.store_id))
        .expect("leader")
}

#[tokio::test]
async fn raw_put_then_get_over_grpc() {
    let cluster = MockCluster::builder().stores(3).build();
    let served = serve(&cluster).await;
    let store = leader_store(&cluster, b"k1");
    let mut c = client(served.store_addr(store).expect("addr")).await;
    let put = c
        .raw_put(kvrpcpb::RawPutRequest {
            context: Some(leader_ctx(&cluster, b"k1")),
            key: "k1".into(),
            value: "v1".into(),
            ..Default::default()
        })
        .await
        .expect("put")
        .into_inner();
    assert!(
        put.region_error.is_none() && put.error.is_empty(),
        "{put:?}"
    );
    let got = c
        .raw_get(kvrpcpb::RawGetRequest {
            context: Some(leader_ctx(&cluster, b"k1")),
            key: "k1".into(),
            ..Default::default()
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!((got.value.as_ref(), got.not_found), (&b"v1"[..], false));

    // PD reports the served address of every store.
    for s in cluster.stores() {
        assert_eq!(
            Some(s.address.clone()),
            served.store_addr(s.id).map(|a| a.to_string())
        );
    }

    // A follower store answers NotLeader in the response, not a gRPC error.
    let follower = cluster
        .stores()
        .iter()
        .map(|s| s.id)
        .find(|id| *id != store)
        .expect("follower");
    let mut f = client(served.store_addr(follower).expect("addr")).await;
    let mut wrong = leader_ctx(&cluster, b"k1");
    if let Some(p) = cluster
        .region_for_user_key(b"k1")
        .and_then(|r| r.peer_on_store(follower).copied())
    {
        wrong.peer = Some(p.to_pb());
    }
    let r = f
        .raw_get(kvrpcpb::RawGetRequest {
            context: Some(wrong),
            key: "k1".into(),
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    assert!(r.region_error.and_then(|e| e.not_leader).is_some());
}

#[tokio::test]
async fn txn_prewrite_commit_get_over_grpc() {
    let cluster = MockCluster::builder().build();
    let served = serve(&cluster).await;
    let pd = cluster.pd();
    let version =
        |ts: tikv_tower_proto::pdpb::Timestamp| ((ts.physical as u64) << 18) | ts.logical as u64;
    let mut c = client(
        served
            .store_addr(leader_store(&cluster, b"a"))
            .expect("addr"),
    )
    .await;
    let start = version(pd.tso(1).expect("tso"));
    let pw = c
        .kv_prewrite(kvrpcpb::PrewriteRequest {
            context: Some(leader_ctx(&cluster, b"a")),
            mutations: vec![kvrpcpb::Mutation {
                op: kvrpcpb::Op::Put as i32,
                key: "a".into(),
                value: "1".into(),
                ..Default::default()
            }],
            primary_lock: "a".into(),
            start_version: start,
            lock_ttl: 3000,
            txn_size: 1,
            ..Default::default()
        })
        .await
        .expect("prewrite")
        .into_inner();
    assert!(pw.region_error.is_none() && pw.errors.is_empty(), "{pw:?}");
    let commit = version(pd.tso(1).expect("tso"));
    let cm = c
        .kv_commit(kvrpcpb::CommitRequest {
            context: Some(leader_ctx(&cluster, b"a")),
            start_version: start,
            keys: vec!["a".into()],
            commit_version: commit,
            ..Default::default()
        })
        .await
        .expect("commit")
        .into_inner();
    assert!(cm.region_error.is_none() && cm.error.is_none(), "{cm:?}");
    let read = version(pd.tso(1).expect("tso"));
    let got = c
        .kv_get(kvrpcpb::GetRequest {
            context: Some(leader_ctx(&cluster, b"a")),
            key: "a".into(),
            version: read,
            ..Default::default()
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(
        (got.value.as_ref(), got.not_found),
        (&b"1"[..], false),
        "{got:?}"
    );
    // Before the commit ts the value is invisible.
    let old = c
        .kv_get(kvrpcpb::GetRequest {
            context: Some(leader_ctx(&cluster, b"a")),
            key: "a".into(),
            version: commit - 1,
            ..Default::default()
        })
        .await
        .expect("get")
        .into_inner();
    assert!(old.not_found, "{old:?}");
}

#[tokio::test]
async fn batch_commands_answers_every_id_once() {
    let cluster = MockCluster::builder().build();
    let served = serve(&cluster).await;
    let mut c = client(
        served
            .store_addr(leader_store(&cluster, b"x"))
            .expect("addr"),
    )
    .await;
    let (tx, rx) = tokio::sync::mpsc::channel::<tikvpb::BatchCommandsRequest>(8);
    let mut responses = c
        .batch_commands(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("open stream")
        .into_inner();

    let put = |k: &str, id: u64| {
        (
            id,
            ReqCmd::RawPut(kvrpcpb::RawPutRequest {
                context: Some(leader_ctx(&cluster, k.as_bytes())),
                key: k.as_bytes().to_vec().into(),
                value: format!("v-{k}").into_bytes().into(),
                ..Default::default()
            }),
        )
    };
    let get = |k: &str, id: u64| {
        (
            id,
            ReqCmd::RawGet(kvrpcpb::RawGetRequest {
                context: Some(leader_ctx(&cluster, k.as_bytes())),
                key: k.as_bytes().to_vec().into(),
                ..Default::default()
            }),
        )
    };
    let frame = |items: Vec<(u64, ReqCmd)>| tikvpb::BatchCommandsRequest {
        request_ids: items.iter().map(|(id, _)| *id).collect(),
        requests: items
            .into_iter()
            .map(|(_, c)| SubRequest { cmd: Some(c) })
            .collect(),
        client_send_time_ns: 0,
    };
    let empty = |id: u64, test_id: u64| {
        (
            id,
            ReqCmd::Empty(tikvpb::BatchCommandsEmptyRequest {
                test_id,
                delay_time: 0,
            }),
        )
    };
    tx.send(frame(vec![
        put("x1", 1),
        put("x2", 2),
        empty(3, 77),
        get("missing", 4),
    ]))
    .await
    .expect("send");
    let mut seen: HashMap<u64, RespCmd> = HashMap::new();
    while seen.len() < 4 {
        let f = responses.message().await.expect("frame").expect("open");
        assert_eq!(f.request_ids.len(), f.responses.len());
        assert!(f.health_feedback.is_some());
        for (id, r) in f.request_ids.into_iter().zip(f.responses) {
            assert!(
                seen.insert(id, r.cmd.expect("cmd")).is_none(),
                "id {id} answered twice"
            );
        }
    }
    // Second frame on the same stream, reading what the first wrote.
    tx.send(frame(vec![get("x1", 10), get("x2", 11)]))
        .await
        .expect("send");
    while seen.len() < 6 {
        let f = responses.message().await.expect("frame").expect("open");
        for (id, r) in f.request_ids.into_iter().zip(f.responses) {
            assert!(
                seen.insert(id, r.cmd.expect("cmd")).is_none(),
                "id {id} answered twice"
            );
        }
    }
    assert!(
        matches!(&seen[&1], RespCmd::RawPut(r) if r.error.is_empty() && r.region_error.is_none())
    );
    assert!(matches!(&seen[&3], RespCmd::Empty(e) if e.test_id == 77));
    assert!(matches!(&seen[&4], RespCmd::RawGet(r) if r.not_found));
    assert!(matches!(&seen[&10], RespCmd::RawGet(r) if r.value == "v-x1"));
    assert!(matches!(&seen[&11], RespCmd::RawGet(r) if r.value == "v-x2"));
    // Closing the request side ends the response stream.
    drop(tx);
    assert!(responses.message().await.expect("clean end").is_none());
}

#[tokio::test]
async fn health_is_serving_on_store_and_pd() {
    let cluster = MockCluster::builder().build();
    let served = serve(&cluster).await;
    let addrs = [served.pd_addr(), served.store_addr(1).expect("store 1")];
    for addr in addrs {
        let ch = Channel::from_shared(format!("http://{addr}"))
            .expect("url")
            .connect()
            .await
            .expect("connect");
        let mut h = tonic_health::pb::health_client::HealthClient::new(ch);
        let r = h
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("check")
            .into_inner();
        assert_eq!(
            r.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }
}

#[tokio::test]
async fn stopped_store_refuses_connections_and_restarts_with_data() {
    let cluster = MockCluster::builder().build();
    let served = serve(&cluster).await;
    let addr = served.store_addr(1).expect("addr");
    let mut c = client(addr).await;
    c.raw_put(kvrpcpb::RawPutRequest {
        context: Some(leader_ctx(&cluster, b"k")),
        key: "k".into(),
        value: "v".into(),
        ..Default::default()
    })
    .await
    .expect("put");

    served.stop_store(1).await.expect("stop");
    let refused = Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await;
    assert!(refused.is_err(), "connect to a stopped store must fail");
    // The old connection is gone too.
    let r = c
        .raw_get(kvrpcpb::RawGetRequest {
            context: Some(leader_ctx(&cluster, b"k")),
            key: "k".into(),
            ..Default::default()
        })
        .await;
    assert!(r.is_err(), "{r:?}");

    served.start_store(1).await.expect("start");
    assert_eq!(served.store_addr(1), Some(addr));
    let mut c = client(addr).await;
    let got = c
        .raw_get(kvrpcpb::RawGetRequest {
            context: Some(leader_ctx(&cluster, b"k")),
            key: "k".into(),
            ..Default::default()
        })
        .await
        .expect("get after restart")
        .into_inner();
    assert_eq!(got.value, "v");
    served.shutdown().await;
}
