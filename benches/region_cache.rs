//! Region lookup cost against a `RwLock<BTreeMap>` probe of the same metadata (issue 8,
//! item 9 and "Performance": ≤ 1.3× in every case).
//!
//! 10k and 1M cached regions of TiDB-shaped keys (`t{table}_r{row}`, memcomparable
//! integers as TiDB writes them) are loaded into a [`RegionCache`] through
//! `BatchScanRegions` from a fake PD. The baseline is a `parking_lot::RwLock<BTreeMap>`
//! from start key to the same `RegionRoute`s; a probe returns a clone of the route, as a
//! cache hit does. Cases: hot key (one key, every lookup) and random keys, 1 and 2
//! threads. Criterion times each side; a summary then measures both sides interleaved in
//! short rounds (the machine is shared and noisy) and prints, per case, the median ns per
//! lookup and the ratio cache / BTreeMap. Memory: bytes allocated per cached region by the
//! cache and by the baseline map built from deep copies of the same regions.
//!
//! Run: `cargo bench --bench region_cache` (`REGION_BENCH_SIZES=10000` for the small case
//! only).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::ops::Bound::{Included, Unbounded};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use futures::FutureExt;
use parking_lot::RwLock;
use tikv_tower::pd::rpc::RpcFuture;
use tikv_tower::pd::{PdClient, PdConfig, PdConnector, PdError, PdRpc, TsoStream};
use tikv_tower::region_cache::{RegionCache, RegionCacheConfig};
use tikv_tower_layers::locate::{RegionLocator, RegionRoute};
use tikv_tower_proto::{keyspacepb, metapb, pdpb};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{CountingAlloc, LIVE};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Regions per table; rows per region.
const REGIONS_PER_TABLE: u64 = 1_000;
const ROWS_PER_REGION: u64 = 10_000;

/// TiDB's memcomparable int64 (sign bit flipped, big endian).
fn mem_i64(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

/// A TiDB record key: `t{table}_r{row}`.
fn row_key(table: u64, row: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(19);
    k.push(b't');
    k.extend_from_slice(&mem_i64(table as i64));
    k.extend_from_slice(b"_r");
    k.extend_from_slice(&mem_i64(row as i64));
    k
}

/// Region `i`'s start key (region 0 starts at the beginning of the key space).
fn boundary(i: u64) -> Vec<u8> {
    if i == 0 {
        return Vec::new();
    }
    row_key(
        1 + i / REGIONS_PER_TABLE,
        (i % REGIONS_PER_TABLE) * ROWS_PER_REGION,
    )
}

fn regions(n: u64) -> Vec<pdpb::Region> {
    (0..n)
        .map(|i| {
            let peers: Vec<metapb::Peer> = (1..=3)
                .map(|s| metapb::Peer {
                    id: i * 3 + s,
                    store_id: (i + s) % 5 + 1,
                    ..Default::default()
                })
                .collect();
            let leader = peers.first().copied();
            pdpb::Region {
                region: Some(metapb::Region {
                    id: i + 1,
                    start_key: boundary(i).into(),
                    end_key: if i + 1 == n {
                        Default::default()
                    } else {
                        boundary(i + 1).into()
                    },
                    region_epoch: Some(metapb::RegionEpoch {
                        conf_ver: 5,
                        version: 20,
                    }),
                    peers,
                    ..Default::default()
                }),
                leader,
                ..Default::default()
            }
        })
        .collect()
}

/// A fake PD member answering `GetMembers` and `BatchScanRegions` (every region).
#[derive(Clone)]
struct FakePd {
    url: String,
    regions: Arc<Vec<pdpb::Region>>,
}

fn header() -> Option<pdpb::ResponseHeader> {
    Some(pdpb::ResponseHeader {
        cluster_id: 1,
        error: None,
    })
}

impl PdConnector for FakePd {
    fn connect(
        &self,
        url: &str,
    ) -> futures::future::BoxFuture<'static, Result<Arc<dyn PdRpc>, PdError>> {
        let conn: Arc<dyn PdRpc> = Arc::new(FakePd {
            url: url.to_string(),
            regions: self.regions.clone(),
        });
        Box::pin(async move { Ok(conn) })
    }
}

macro_rules! unimplemented_rpcs {
    ($($method:ident($req:ty) -> $resp:ty;)*) => {
        $(fn $method(&self, _req: $req) -> RpcFuture<$resp> {
            Box::pin(async { Err(tonic::Status::unimplemented("bench PD")) })
        })*
    };
}

impl PdRpc for FakePd {
    fn url(&self) -> &str {
        &self.url
    }
    fn get_members(&self, _req: pdpb::GetMembersRequest) -> RpcFuture<pdpb::GetMembersResponse> {
        let member = pdpb::Member {
            name: "pd".into(),
            member_id: 1,
            client_urls: vec![self.url.clone()],
            ..Default::default()
        };
        let resp = pdpb::GetMembersResponse {
            header: header(),
            members: vec![member.clone()],
            leader: Some(member),
            ..Default::default()
        };
        Box::pin(async move { Ok(resp) })
    }
    fn batch_scan_regions(
        &self,
        _req: pdpb::BatchScanRegionsRequest,
    ) -> RpcFuture<pdpb::BatchScanRegionsResponse> {
        let resp = pdpb::BatchScanRegionsResponse {
            header: header(),
            regions: self.regions.as_ref().clone(),
        };
        Box::pin(async move { Ok(resp) })
    }
    fn tso(&self) -> RpcFuture<TsoStream> {
        Box::pin(async { Err(tonic::Status::unimplemented("bench PD")) })
    }
    unimplemented_rpcs! {
        get_region(pdpb::GetRegionRequest) -> pdpb::GetRegionResponse;
        get_prev_region(pdpb::GetRegionRequest) -> pdpb::GetRegionResponse;
        get_region_by_id(pdpb::GetRegionByIdRequest) -> pdpb::GetRegionResponse;
        scan_regions(pdpb::ScanRegionsRequest) -> pdpb::ScanRegionsResponse;
        get_store(pdpb::GetStoreRequest) -> pdpb::GetStoreResponse;
        get_all_stores(pdpb::GetAllStoresRequest) -> pdpb::GetAllStoresResponse;
        get_gc_safe_point(pdpb::GetGcSafePointRequest) -> pdpb::GetGcSafePointResponse;
        update_gc_safe_point(pdpb::UpdateGcSafePointRequest) -> pdpb::UpdateGcSafePointResponse;
        update_service_gc_safe_point(pdpb::UpdateServiceGcSafePointRequest) -> pdpb::UpdateServiceGcSafePointResponse;
        advance_txn_safe_point(pdpb::AdvanceTxnSafePointRequest) -> pdpb::AdvanceTxnSafePointResponse;
        advance_gc_safe_point(pdpb::AdvanceGcSafePointRequest) -> pdpb::AdvanceGcSafePointResponse;
        set_gc_barrier(pdpb::SetGcBarrierRequest) -> pdpb::SetGcBarrierResponse;
        delete_gc_barrier(pdpb::DeleteGcBarrierRequest) -> pdpb::DeleteGcBarrierResponse;
        get_gc_state(pdpb::GetGcStateRequest) -> pdpb::GetGcStateResponse;
        split_regions(pdpb::SplitRegionsRequest) -> pdpb::SplitRegionsResponse;
        scatter_region(pdpb::ScatterRegionRequest) -> pdpb::ScatterRegionResponse;
        get_operator(pdpb::GetOperatorRequest) -> pdpb::GetOperatorResponse;
        load_keyspace(keyspacepb::LoadKeyspaceRequest) -> keyspacepb::LoadKeyspaceResponse;
        load_keyspace_by_id(keyspacepb::LoadKeyspaceByIdRequest) -> keyspacepb::LoadKeyspaceResponse;
    }
}

/// The baseline: start key → route, behind one read-write lock.
type Baseline = RwLock<BTreeMap<bytes::Bytes, RegionRoute>>;

fn probe(map: &Baseline, key: &[u8]) -> Option<RegionRoute> {
    let map = map.read();
    let (_, r) = map
        .range::<[u8], _>((Unbounded, Included(key)))
        .next_back()?;
    r.contains(key).then(|| r.clone())
}

fn cache_hit(cache: &RegionCache, key: &[u8]) -> Option<RegionRoute> {
    // A hit completes at the first poll, as in the route layer.
    cache.locate_key(key).now_or_never().and_then(Result::ok)
}

/// One size's fixture: the cache (its runtime kept alive for the cache's ticker), the
/// baseline, and the keys.
struct Fixture {
    n: u64,
    _rt: tokio::runtime::Runtime,
    cache: RegionCache,
    baseline: Baseline,
    hot: Vec<u8>,
    random: Arc<Vec<Vec<u8>>>,
    cache_bytes: usize,
    baseline_bytes: usize,
}

fn fixture(n: u64) -> Fixture {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let pd = FakePd {
        url: "http://pd".into(),
        regions: Arc::new(regions(n)),
    };
    let (cache, routes, cache_bytes) = rt.block_on(async {
        let cfg = PdConfig {
            endpoints: vec!["pd".into()],
            ..PdConfig::default()
        };
        let client = PdClient::connect(Arc::new(pd), cfg).await.expect("PD");
        let before = LIVE.load(Ordering::Relaxed);
        let cache = RegionCache::new(client, RegionCacheConfig::default());
        let routes = cache
            .load_ranges(&[(Vec::new(), Vec::new())], 0)
            .await
            .expect("BatchScanRegions");
        // The routes share the cached regions: counted with the cache.
        let bytes = LIVE.load(Ordering::Relaxed) - before;
        (cache, routes, bytes)
    });
    assert_eq!(cache.region_count() as u64, n, "every region cached");
    let before = LIVE.load(Ordering::Relaxed);
    let deep: BTreeMap<bytes::Bytes, RegionRoute> = routes
        .iter()
        .map(|r| {
            let region = Arc::new(metapb::Region::clone(&r.region));
            (
                region.start_key.clone(),
                RegionRoute {
                    region,
                    leader: r.leader,
                },
            )
        })
        .collect();
    let baseline_bytes = LIVE.load(Ordering::Relaxed) - before;
    drop(deep);
    // The probed baseline shares the cache's regions (same metadata, same Arcs).
    let baseline: Baseline = RwLock::new(
        routes
            .into_iter()
            .map(|r| (r.region.start_key.clone(), r))
            .collect(),
    );
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let random = (0..65_536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let region = 1 + x % (n - 1);
            row_key(
                1 + region / REGIONS_PER_TABLE,
                (region % REGIONS_PER_TABLE) * ROWS_PER_REGION + (x >> 40) % ROWS_PER_REGION,
            )
        })
        .collect();
    Fixture {
        n,
        _rt: rt,
        cache,
        baseline,
        hot: row_key(1 + (n / 2) / REGIONS_PER_TABLE, 12_345),
        random: Arc::new(random),
        cache_bytes,
        baseline_bytes,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Cache,
    BTree,
}

#[derive(Clone, Copy)]
enum Keys {
    Hot,
    Random,
}

/// `iters` lookups on each of `threads` threads at once; the time per lookup of one thread.
fn run(f: &Fixture, side: Side, keys: Keys, threads: usize, iters: u64) -> Duration {
    let lookup = |key: &[u8]| match side {
        Side::Cache => cache_hit(&f.cache, key).is_some(),
        Side::BTree => probe(&f.baseline, key).is_some(),
    };
    let barrier = Barrier::new(threads);
    let times: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                let lookup = &lookup;
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    let mut found = 0u64;
                    match keys {
                        Keys::Hot => {
                            for _ in 0..iters {
                                found += u64::from(lookup(black_box(&f.hot)));
                            }
                        }
                        Keys::Random => {
                            let n = f.random.len();
                            for i in 0..iters as usize {
                                found += u64::from(lookup(&f.random[(i + t * 7919) % n]));
                            }
                        }
                    }
                    let took = start.elapsed();
                    assert_eq!(found, iters, "every lookup hits");
                    took
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .collect()
    });
    times.into_iter().max().unwrap_or_default()
}

fn case_name(n: u64, keys: Keys, threads: usize) -> String {
    let size = if n >= 1_000_000 {
        format!("{}M", n / 1_000_000)
    } else {
        format!("{}k", n / 1_000)
    };
    let keys = match keys {
        Keys::Hot => "hot",
        Keys::Random => "random",
    };
    format!("{size}/{keys}/{threads}t")
}

const CASES: [(Keys, usize); 4] = [
    (Keys::Hot, 1),
    (Keys::Hot, 2),
    (Keys::Random, 1),
    (Keys::Random, 2),
];

fn sizes() -> Vec<u64> {
    std::env::var("REGION_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 1_000_000])
}

fn fixtures() -> &'static [Fixture] {
    static FIXTURES: std::sync::OnceLock<Vec<Fixture>> = std::sync::OnceLock::new();
    FIXTURES.get_or_init(|| sizes().into_iter().map(fixture).collect())
}

fn bench(c: &mut Criterion) {
    for f in fixtures() {
        for (keys, threads) in CASES {
            let mut g = c.benchmark_group(case_name(f.n, keys, threads));
            for (side, name) in [(Side::Cache, "cache"), (Side::BTree, "btree")] {
                g.bench_function(name, |b| {
                    b.iter_custom(|iters| run(f, side, keys, threads, iters))
                });
            }
            g.finish();
        }
    }
}

/// Both sides interleaved in `ROUNDS` rounds of `OPS` lookups per thread; medians.
fn summary() {
    const ROUNDS: usize = 15;
    const OPS: u64 = 200_000;
    println!("\nregion lookup, median ns per lookup per thread ({ROUNDS} interleaved rounds):");
    for f in fixtures() {
        for (keys, threads) in CASES {
            let mut cache = Vec::new();
            let mut btree = Vec::new();
            for _ in 0..ROUNDS {
                cache.push(run(f, Side::Cache, keys, threads, OPS));
                btree.push(run(f, Side::BTree, keys, threads, OPS));
            }
            let median = |v: &mut Vec<Duration>| {
                v.sort();
                v[v.len() / 2].as_nanos() as f64 / OPS as f64
            };
            let (c, b) = (median(&mut cache), median(&mut btree));
            println!(
                "  {:<16} cache {c:7.1}  btree {b:7.1}  ratio {:.2}",
                case_name(f.n, keys, threads),
                c / b
            );
        }
        println!(
            "  {} regions: cache {} B/region, BTreeMap of the same regions {} B/region (ratio {:.2})",
            f.n,
            f.cache_bytes as u64 / f.n,
            f.baseline_bytes as u64 / f.n,
            f.cache_bytes as f64 / f.baseline_bytes as f64
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = bench
}

fn main() {
    if std::env::var_os("REGION_BENCH_SUMMARY_ONLY").is_none() {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
    summary();
}
