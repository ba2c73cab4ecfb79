//! Cost of sharding one big batch: a 10 000-pair `RawBatchPut` (16-byte keys, 128-byte
//! values, keys in scattered order) split over 64 regions of a fake in-memory
//! [`RegionLocator`], every part answered at once by a fake inner service. What is
//! measured is the shard layer itself: grouping keys by region, building the 64 parts,
//! running them and merging the replies (building the request is outside the timing).
//!
//! Run with `cargo bench -p tikv-tower-layers --bench shard`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tikv_tower_layers::shard::ShardLayer;
use tikv_tower_layers::{
    Error, ExecDetails, InvalidReason, LocateError, RegionLocator, RegionRoute, RegionVerId,
    Request, Response, StoreRoute,
};
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::metapb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
use tower::{Layer, ServiceExt};

const PAIRS: usize = 10_000;
const REGIONS: u64 = 64;
const KEY_LEN: usize = 16;
const VALUE_LEN: usize = 128;

/// `REGIONS` regions evenly splitting the space of keys by their first 8 bytes.
struct FakeLocator {
    regions: Vec<RegionRoute>,
}

impl FakeLocator {
    fn new() -> Self {
        let step = u64::MAX / REGIONS + 1;
        let bound = |i: u64| {
            if i == 0 || i == REGIONS {
                Vec::new()
            } else {
                (i * step).to_be_bytes().to_vec()
            }
        };
        let regions = (0..REGIONS)
            .map(|i| RegionRoute {
                region: Arc::new(metapb::Region {
                    id: i + 1,
                    start_key: bound(i),
                    end_key: bound(i + 1),
                    region_epoch: Some(metapb::RegionEpoch {
                        conf_ver: 1,
                        version: 1,
                    }),
                    ..Default::default()
                }),
                leader: None,
            })
            .collect();
        FakeLocator { regions }
    }

    fn find(&self, key: &[u8]) -> RegionRoute {
        // Regions after the first start at a non-empty key; count those at or before `key`.
        let i = self.regions[1..].partition_point(|r| r.start_key() <= key);
        self.regions[i].clone()
    }
}

impl RegionLocator for FakeLocator {
    async fn locate_key(&self, key: &[u8]) -> Result<RegionRoute, LocateError> {
        Ok(self.find(key))
    }
    async fn locate_end_key(&self, key: &[u8]) -> Result<RegionRoute, LocateError> {
        match self
            .regions
            .iter()
            .find(|r| key.is_empty() || r.end_key().is_empty() || r.end_key() >= key)
        {
            Some(r) => Ok(r.clone()),
            None => Err(LocateError::RegionNotFound("end".into())),
        }
    }
    async fn locate_region_id(&self, id: u64) -> Result<RegionRoute, LocateError> {
        self.regions
            .iter()
            .find(|r| r.region.id == id)
            .cloned()
            .ok_or_else(|| LocateError::RegionNotFound(id.to_string()))
    }
    async fn store(&self, store_id: u64) -> Result<StoreRoute, LocateError> {
        Err(LocateError::StoreNotFound(store_id))
    }
    fn update_leader(&self, _region: RegionVerId, _leader: Option<metapb::Peer>) {}
    fn on_epoch_not_match(&self, _region: RegionVerId, _current: &[metapb::Region]) -> bool {
        false
    }
    fn invalidate_region(&self, _region: RegionVerId, _reason: InvalidReason) {}
    fn on_send_fail(&self, _region: RegionVerId, _store_id: u64) {}
}

/// 10 000 pairs with keys spread over the whole space in scattered (not sorted) order.
fn batch_put() -> kvrpcpb::RawBatchPutRequest {
    let pairs = (0..PAIRS as u64)
        .map(|i| {
            // An odd multiplier permutes u64s: distinct, scattered keys.
            let mut key = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes().to_vec();
            key.resize(KEY_LEN, b'k');
            kvrpcpb::KvPair {
                key,
                value: vec![b'v'; VALUE_LEN],
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
    let svc = ShardLayer::new(Arc::new(FakeLocator::new())).layer(inner);
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
