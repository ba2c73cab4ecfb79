//! Keys and values are never copied between the caller and the transport.
//!
//! A 10 000-pair `RawBatchPut` with 1 KiB values goes through shard + retry + route over a
//! [`StaticLocator`] with 64 regions; the fake transport answers the first attempt of one
//! part with a retryable `NotLeader` (new leader known: retried at once), so that part is
//! cloned for a second attempt. The test counts every byte allocated while the call runs
//! (a counting `#[global_allocator]`, which is why this test has a binary of its own) and
//! fails if that comes anywhere near the value payload: one copy of the values alone would
//! allocate the whole payload again. It also checks directly that every value the transport
//! sees points into the caller's buffers.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tikv_tower_layers::retry::RetryLayer;
use tikv_tower_layers::route::{RouteConfig, RouteLayer};
use tikv_tower_layers::shard::ShardLayer;
use tikv_tower_layers::testing::StaticLocator;
use tikv_tower_layers::{Request, StoreCall, TransportError};
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
use tikv_tower_proto::{errorpb, kvrpcpb};
use tower::ServiceExt;

/// The system allocator, counting bytes and calls while `COUNTING` is set.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static BYTES: AtomicU64 = AtomicU64::new(0);
static CALLS: AtomicU64 = AtomicU64::new(0);

impl Counting {
    fn count(size: usize) {
        if COUNTING.load(Ordering::Relaxed) {
            BYTES.fetch_add(size as u64, Ordering::Relaxed);
            CALLS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// SAFETY: every call is forwarded unchanged to `System`; counting has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::count(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::count(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A growth allocates (at most) the new size.
        Self::count(new_size);
        // SAFETY: forwarded with the caller's pointer, layout and size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const PAIRS: usize = 10_000;
const REGIONS: u64 = 64;
const VALUE_LEN: usize = 1024;
/// The part answered `NotLeader` on its first attempt.
const FAILING_REGION: u64 = 7;

/// 10 000 pairs, keys scattered over the key space, each value its own 1 KiB buffer.
fn batch_put() -> kvrpcpb::RawBatchPutRequest {
    let pairs = (0..PAIRS as u64)
        .map(|i| kvrpcpb::KvPair {
            key: Bytes::from(i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes().to_vec()),
            value: Bytes::from(vec![(i % 251) as u8; VALUE_LEN]),
            ..Default::default()
        })
        .collect();
    kvrpcpb::RawBatchPutRequest {
        pairs,
        ..Default::default()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn batch_put_through_shard_and_retry_shares_value_buffers() {
    let locator = StaticLocator::uniform(REGIONS);
    let body = batch_put();
    // Where the caller's values live: every value the transport sees must point there.
    let originals: Arc<HashSet<usize>> = Arc::new(
        body.pairs
            .iter()
            .map(|p| p.value.as_ptr() as usize)
            .collect(),
    );
    let payload = (PAIRS * VALUE_LEN) as u64;

    let attempts = Arc::new(AtomicUsize::new(0));
    let failed_once = Arc::new(AtomicBool::new(false));
    let foreign = Arc::new(Mutex::new(0usize));
    let transport = {
        let (attempts, failed_once, foreign, originals) = (
            attempts.clone(),
            failed_once.clone(),
            foreign.clone(),
            originals.clone(),
        );
        tower::service_fn(move |call: StoreCall| {
            attempts.fetch_add(1, Ordering::Relaxed);
            let region_id = call.request.context().map_or(0, |c| c.region_id);
            let StoreRequest::RawBatchPut(req) = call.request else {
                return std::future::ready(Err(TransportError::Unavailable {
                    addr: call.addr,
                    message: "not a RawBatchPut".into(),
                }));
            };
            let copied = req
                .pairs
                .iter()
                .filter(|p| !originals.contains(&(p.value.as_ptr() as usize)))
                .count();
            *foreign.lock().unwrap() += copied;
            let mut reply = kvrpcpb::RawBatchPutResponse::default();
            if region_id == FAILING_REGION && !failed_once.swap(true, Ordering::Relaxed) {
                // Retryable, and retried at once: the leader moved to the peer on store 2.
                let leader = metapb_peer(region_id, 2);
                reply.region_error = Some(errorpb::Error {
                    not_leader: Some(errorpb::NotLeader {
                        region_id,
                        leader: Some(leader),
                    }),
                    ..Default::default()
                });
            }
            std::future::ready(Ok(StoreResponse::from(reply)))
        })
    };
    let svc = tower::ServiceBuilder::new()
        .layer(ShardLayer::new(locator.clone()))
        .layer(RetryLayer::new())
        .layer(RouteLayer::new(locator.clone(), RouteConfig::default()))
        .service(transport);
    let req = Request::new(StoreRequest::from(body));

    BYTES.store(0, Ordering::Relaxed);
    CALLS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    let resp = svc.oneshot(req).await;
    COUNTING.store(false, Ordering::Relaxed);
    let (bytes, calls) = (BYTES.load(Ordering::Relaxed), CALLS.load(Ordering::Relaxed));

    let resp = resp.expect("sharded put");
    assert_eq!(
        u64::from(resp.details.shards),
        REGIONS,
        "one part per region"
    );
    assert!(
        failed_once.load(Ordering::Relaxed),
        "the forced retry happened"
    );
    assert_eq!(
        attempts.load(Ordering::Relaxed) as u64,
        REGIONS + 1,
        "every part once, the failing one twice"
    );
    eprintln!(
        "allocated during the call: {bytes} bytes in {calls} allocations \
         ({:.1}% of the {payload}-byte value payload, {:.1} bytes per pair)",
        bytes as f64 * 100.0 / payload as f64,
        bytes as f64 / PAIRS as f64,
    );
    // One copy of the values would allocate the whole payload again (and more). What is
    // allowed is per-pair bookkeeping, about 320 bytes a pair today: each part's item list
    // and the retry layer's clone of it per attempt (72-byte `KvPair`s, the buffers only
    // referenced), the shared-buffer header `Bytes` allocates on a buffer's first clone,
    // and the shard layer's key index.
    assert!(
        bytes < payload / 2,
        "{bytes} bytes allocated for a {payload}-byte payload: values were copied"
    );
    assert_eq!(
        *foreign.lock().unwrap(),
        0,
        "values reached the transport outside the caller's buffers"
    );
}

fn metapb_peer(region_id: u64, store_id: u64) -> tikv_tower_proto::metapb::Peer {
    tikv_tower_proto::metapb::Peer {
        id: region_id * 10 + store_id,
        store_id,
        ..Default::default()
    }
}
