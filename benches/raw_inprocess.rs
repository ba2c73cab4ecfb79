//! The in-process stack's cost per raw get: the full RawKV client (every layer, the region
//! cache, the in-process transport) against calling `MockStore::handle` directly with a
//! ready-stamped request. Prints ns/op for both and their ratio.
//!
//! ```text
//! cargo bench --bench raw_inprocess            # RAW_BENCH_OPS=20000 by default
//! ```

use std::time::{Duration, Instant};

use tikv_tower::config::{ApiVersion, Config};
use tikv_tower::presets::embedded_boundaries;
use tikv_tower::RawClient;
use tikv_tower_mockstore::cluster::ApiVersion as MockApi;
use tikv_tower_mockstore::MockCluster;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};

const KEYS: usize = 1000;
const CONCURRENCY: usize = 64;

fn key(i: usize) -> Vec<u8> {
    format!("{}key{:05}", (b'a' + (i % 26) as u8) as char, i).into_bytes()
}

fn stamped(cluster: &MockCluster, k: &[u8]) -> (StoreRequest, u64) {
    let region = cluster.region_for_user_key(k).expect("region");
    let leader = *region.leader_peer().expect("leader");
    let ctx = kvrpcpb::Context {
        region_id: region.id,
        region_epoch: Some(region.epoch.to_pb()),
        peer: Some(leader.to_pb()),
        cluster_id: cluster.cluster_id(),
        ..Default::default()
    };
    let req = kvrpcpb::RawGetRequest {
        context: Some(ctx),
        key: k.to_vec().into(),
        ..Default::default()
    };
    (req.into(), leader.store_id)
}

fn per_op(d: Duration, n: usize) -> f64 {
    d.as_nanos() as f64 / n as f64
}

fn main() {
    let ops: usize = std::env::var("RAW_BENCH_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let splits: Vec<Vec<u8>> = (b'b'..=b'y').map(|c| vec![c]).collect();
        let b = MockCluster::builder().stores(3).api_version(MockApi::V1).split_keys(splits);
        let cluster = embedded_boundaries(b, ApiVersion::V1).build();
        let client = RawClient::with_mock_cluster(cluster.clone(), Config::default()).await.expect("client");
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..KEYS).map(|i| (key(i), vec![b'v'; 64])).collect();
        client.batch_put(pairs).await.expect("load");

        // Direct: MockStore::handle with pre-stamped requests.
        let reqs: Vec<(StoreRequest, u64)> = (0..KEYS).map(|i| stamped(&cluster, &key(i))).collect();
        let stores: Vec<_> = reqs.iter().map(|(_, s)| cluster.store(*s).expect("store")).collect();
        for i in 0..KEYS {
            let _ = stores[i].handle(reqs[i].0.clone()).await;
        }
        let start = Instant::now();
        for i in 0..ops {
            let j = i % KEYS;
            match stores[j].handle(reqs[j].0.clone()).await {
                Ok(StoreResponse::RawGet(r)) if r.region_error.is_none() && !r.not_found => {}
                other => panic!("direct get failed: {other:?}"),
            }
        }
        let direct = start.elapsed();

        // Full stack, sequential.
        for i in 0..KEYS {
            client.get(key(i)).await.expect("warm");
        }
        let start = Instant::now();
        for i in 0..ops {
            assert!(client.get(key(i % KEYS)).await.expect("get").is_some());
        }
        let stack = start.elapsed();

        // Full stack, many concurrent tasks.
        let start = Instant::now();
        let per_task = ops / CONCURRENCY;
        let tasks: Vec<_> = (0..CONCURRENCY)
            .map(|t| {
                let client = client.clone();
                tokio::spawn(async move {
                    for i in 0..per_task {
                        client.get(key((t * per_task + i) % KEYS)).await.expect("get");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        let concurrent = start.elapsed();

        let (d, s, c) = (per_op(direct, ops), per_op(stack, ops), per_op(concurrent, per_task * CONCURRENCY));
        println!("raw get, in-process, {ops} ops over {KEYS} keys in {} regions", cluster.region_count());
        println!("  MockStore::handle direct      {d:>10.0} ns/op");
        println!("  RawClient::get full stack     {s:>10.0} ns/op   (sequential)");
        println!("  RawClient::get full stack     {c:>10.0} ns/op   ({CONCURRENCY} tasks, wall time / op)");
        println!("  stack / direct ratio          {:>10.2}x  (sequential)", s / d);
        println!("  stack overhead per get        {:>10.0} ns", s - d);
    });
}
