//! Cost of sharding one big batch: a 10 000-pair `RawBatchPut` (16-byte keys, 128-byte
//! values, keys in scattered order) split over 64 regions of a
//! [`StaticLocator`], every part answered at once by a fake inner service. What is
//! measured is the shard layer itself: grouping keys by region, building the 64 parts,
//! running them and merging the replies (building the request is outside the timing).
//!
//! Run with `cargo bench -p tikv-tower-layers --bench shard`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tikv_tower_layers::shard::ShardLayer;
use tikv_tower_layers::testing::StaticLocator;
use tikv_tower_layers::{Error, ExecDetails, Request, Response};
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
use tower::{Layer, ServiceExt};

const PAIRS: usize = 10_000;
const REGIONS: u64 = 64;
const KEY_LEN: usize = 16;
const VALUE_LEN: usize = 128;

/// `REGIONS` regions evenly splitting the space of keys by their first 8 bytes.
fn locator() -> Arc<StaticLocator> {
    let step = u64::MAX / REGIONS + 1;
    let splits: Vec<[u8; 8]> = (1..REGIONS).map(|i| (i * step).to_be_bytes()).collect();
    let splits: Vec<&[u8]> = splits.iter().map(|s| &s[..]).collect();
    StaticLocator::split_at(&splits)
}

/// 10 000 pairs with keys spread over the whole space in scattered (not sorted) order.
fn batch_put() -> kvrpcpb::RawBatchPutRequest {
    let pairs = (0..PAIRS as u64)
        .map(|i| {
            // An odd multiplier permutes u64s: distinct, scattered keys.
            let mut key = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes().to_vec();
            key.resize(KEY_LEN, b'k');
            kvrpcpb::KvPair {
                key: key.into(),
                value: vec![b'v'; VALUE_LEN].into(),
                ..Default::default()
            }
        })
        .collect();
    kvrpcpb::RawBatchPutRequest {
        pairs,
        ..Default::default()
    }
}

fn shard(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let parts = Arc::new(AtomicUsize::new(0));
    let seen = parts.clone();
    // The fake store: drops the part, answers success.
    let inner = tower::service_fn(move |req: Request| {
        seen.fetch_add(1, Ordering::Relaxed);
        let ok = matches!(req.inner, StoreRequest::RawBatchPut(_));
        drop(req);
        async move {
            if !ok {
                return Err(Error::Unexpected("not a RawBatchPut".into()));
            }
            Ok::<_, Error>(Response {
                inner: StoreResponse::RawBatchPut(Default::default()),
                details: ExecDetails::default(),
            })
        }
    });
    let svc = ShardLayer::new(locator()).layer(inner);
    let body = batch_put();

    // Sanity: one part per region.
    parts.store(0, Ordering::Relaxed);
    let resp = rt
        .block_on(svc.clone().oneshot(Request::new(body.clone().into())))
        .expect("sharded put");
    assert_eq!(resp.details.shards as u64, REGIONS);
    assert_eq!(parts.load(Ordering::Relaxed) as u64, REGIONS);

    let mut g = c.benchmark_group("shard");
    g.throughput(Throughput::Elements(PAIRS as u64))
        .sample_size(30)
        .measurement_time(Duration::from_secs(5));
    g.bench_function("raw_batch_put_10k_pairs_64_regions", |b| {
        b.iter_batched(
            || Request::new(body.clone().into()),
            |req| rt.block_on(svc.clone().oneshot(req)).expect("sharded put"),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, shard);
criterion_main!(benches);
