//! mockstore cost figures (plain `Instant` loops, a few seconds in total):
//! - in-process `MockStore::handle` per RawGet and per Prewrite + Commit;
//! - loopback gRPC throughput of RawGet with many concurrent clients, unary and over
//!   BatchCommands streams.
//!
//! Run with `cargo bench -p tikv-tower-mockstore --bench store`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tikv_tower_mockstore::{MockCluster, MockStore, ServeOptions};
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::StoreRequest;
use tikv_tower_proto::tikvpb::batch_commands_request::{
    request::Cmd as ReqCmd, Request as SubRequest,
};
use tikv_tower_proto::tikvpb::{self, tikv_client::TikvClient};
use tonic::transport::Channel;

fn ctx(cluster: &MockCluster, key: &[u8]) -> kvrpcpb::Context {
    let region = cluster.region_for_user_key(key).expect("region");
    let leader = region.leader_peer().copied().expect("leader");
    kvrpcpb::Context {
        region_id: region.id,
        region_epoch: Some(region.epoch.to_pb()),
        peer: Some(leader.to_pb()),
        ..Default::default()
    }
}

fn raw_get(cluster: &MockCluster, key: &[u8]) -> kvrpcpb::RawGetRequest {
    kvrpcpb::RawGetRequest {
        context: Some(ctx(cluster, key)),
        key: key.to_vec().into(),
        ..Default::default()
    }
}

async fn fill(cluster: &MockCluster, store: &MockStore, n: usize) {
    for i in 0..n {
        let key = format!("key{i:06}").into_bytes();
        let req = kvrpcpb::RawPutRequest {
            context: Some(ctx(cluster, &key)),
            key: key.into(),
            value: vec![7u8; 64].into(),
            ..Default::default()
        };
        store
            .handle(StoreRequest::RawPut(Box::new(req)))
            .await
            .expect("put");
    }
}

fn per_op(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e9 / n as f64
}

async fn inprocess(cluster: &MockCluster) -> (f64, f64) {
    let store = cluster.store(1).expect("store");
    fill(cluster, &store, 1000).await;
    let n = 100_000;
    let reqs: Vec<kvrpcpb::RawGetRequest> = (0..1000)
        .map(|i| raw_get(cluster, format!("key{i:06}").as_bytes()))
        .collect();
    let t = Instant::now();
    for i in 0..n {
        let r = store
            .handle(StoreRequest::RawGet(Box::new(reqs[i % reqs.len()].clone())))
            .await;
        assert!(r.is_ok());
    }
    let get_ns = per_op(t.elapsed(), n);

    let pd = cluster.pd();
    let ts = |c| {
        let t = pd.tso(c).expect("tso");
        ((t.physical as u64) << 18) | t.logical as u64
    };
    let m = 10_000;
    let t = Instant::now();
    for i in 0..m {
        let key = format!("txn{i:06}").into_bytes();
        let start = ts(1);
        let pw = kvrpcpb::PrewriteRequest {
            context: Some(ctx(cluster, &key)),
            mutations: vec![kvrpcpb::Mutation {
                op: kvrpcpb::Op::Put as i32,
                key: key.clone().into(),
                value: vec![1u8; 64].into(),
                ..Default::default()
            }],
            primary_lock: key.clone().into(),
            start_version: start,
            lock_ttl: 3000,
            txn_size: 1,
            ..Default::default()
        };
        store
            .handle(StoreRequest::Prewrite(Box::new(pw)))
            .await
            .expect("prewrite");
        let cm = kvrpcpb::CommitRequest {
            context: Some(ctx(cluster, &key)),
            start_version: start,
            keys: vec![key.into()],
            commit_version: ts(1),
            ..Default::default()
        };
        store
            .handle(StoreRequest::Commit(Box::new(cm)))
            .await
            .expect("commit");
    }
    (get_ns, per_op(t.elapsed(), m))
}

async fn loopback(cluster: &MockCluster, clients: usize, dur: Duration) -> (f64, f64) {
    let served = cluster
        .serve_grpc(ServeOptions::default())
        .await
        .expect("serve");
    let addr = served.store_addr(1).expect("addr");
    let reqs: Arc<Vec<kvrpcpb::RawGetRequest>> = Arc::new(
        (0..1000)
            .map(|i| raw_get(cluster, format!("key{i:06}").as_bytes()))
            .collect(),
    );
    // A handful of connections shared by the clients, as a real client pools them.
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(
            Channel::from_shared(format!("http://{addr}"))
                .expect("url")
                .connect()
                .await
                .expect("connect"),
        );
    }

    // Unary.
    let deadline = Instant::now() + dur;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut client = TikvClient::new(channels[c % channels.len()].clone());
        let reqs = reqs.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0usize;
            while Instant::now() < deadline {
                let r = client
                    .raw_get(reqs[(c * 31 + n) % reqs.len()].clone())
                    .await;
                assert!(r.is_ok());
                n += 1;
            }
            n
        }));
    }
    let start = Instant::now();
    let mut unary = 0;
    for t in tasks {
        unary += t.await.expect("task");
    }
    let unary_ops = unary as f64 / start.elapsed().as_secs_f64();

    // BatchCommands: one stream per connection; clients share streams, each keeps one
    // request in flight; a dispatcher per stream matches replies to waiters.
    let deadline = Instant::now() + dur;
    let mut tasks = Vec::new();
    let per_stream = clients / channels.len();
    for ch in &channels {
        let mut client = TikvClient::new(ch.clone());
        let (tx, rx) = tokio::sync::mpsc::channel::<tikvpb::BatchCommandsRequest>(1024);
        let mut replies = client
            .batch_commands(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .expect("stream")
            .into_inner();
        let waiters: Arc<
            parking_lot::Mutex<std::collections::HashMap<u64, tokio::sync::oneshot::Sender<()>>>,
        > = Arc::default();
        let w = waiters.clone();
        tokio::spawn(async move {
            while let Ok(Some(frame)) = replies.message().await {
                let mut w = w.lock();
                for id in frame.request_ids {
                    if let Some(s) = w.remove(&id) {
                        let _ = s.send(());
                    }
                }
            }
        });
        let ids = Arc::new(std::sync::atomic::AtomicU64::new(0));
        for c in 0..per_stream {
            let (tx, waiters, ids, reqs) = (tx.clone(), waiters.clone(), ids.clone(), reqs.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = 0usize;
                while Instant::now() < deadline {
                    let id = ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
                    waiters.lock().insert(id, done_tx);
                    let req = reqs[(c * 31 + n) % reqs.len()].clone();
                    let frame = tikvpb::BatchCommandsRequest {
                        requests: vec![SubRequest {
                            cmd: Some(ReqCmd::RawGet(req)),
                        }],
                        request_ids: vec![id],
                        client_send_time_ns: 0,
                    };
                    tx.send(frame).await.expect("send");
                    done_rx.await.expect("reply");
                    n += 1;
                }
                n
            }));
        }
    }
    let start = Instant::now();
    let mut batched = 0;
    for t in tasks {
        batched += t.await.expect("task");
    }
    let batch_ops = batched as f64 / start.elapsed().as_secs_f64();
    served.shutdown().await;
    (unary_ops, batch_ops)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let cluster = MockCluster::builder().build();
        let (get_ns, txn_ns) = inprocess(&cluster).await;
        println!(
            "in-process RawGet:            {get_ns:>10.0} ns/op ({:.0} ops/s)",
            1e9 / get_ns
        );
        println!(
            "in-process Prewrite+Commit:   {txn_ns:>10.0} ns/txn ({:.0} txn/s)",
            1e9 / txn_ns
        );
        println!("  ratio txn / get:            {:>10.1}x", txn_ns / get_ns);
        let clients = 64;
        let (unary, batch) = loopback(&cluster, clients, Duration::from_millis(1500)).await;
        println!("loopback RawGet, {clients} clients, unary:          {unary:>10.0} ops/s");
        println!("loopback RawGet, {clients} clients, BatchCommands:  {batch:>10.0} ops/s");
        println!("  ratio batch / unary:        {:>10.2}x", batch / unary);
        println!(
            "  ratio in-process / batch:   {:>10.1}x",
            (1e9 / get_ns) / batch
        );
    });
}
