//! A request recorder: every request a store receives, with the response
//! (or gRPC status) it gave, so tests can assert on the exact requests a
//! client sends (spec §4.6).
//!
//! ```
//! use tikv_tower_mockstore::MockCluster;
//! let cluster = MockCluster::builder().build();
//! cluster.recorder().start();
//! // ... run the client ...
//! let log = cluster.recorder().take();
//! assert!(log.is_empty());
//! ```

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};

/// One recorded exchange.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The receiving store.
    pub store_id: u64,
    /// The request as received.
    pub request: StoreRequest,
    /// The response, or the gRPC status code and message of a failure.
    pub response: Result<StoreResponse, (tonic::Code, String)>,
}

/// Records exchanges while started (off by default: recording copies every
/// request).
#[derive(Debug, Default)]
pub struct Recorder {
    on: AtomicBool,
    log: Mutex<Vec<Recorded>>,
}

impl Recorder {
    /// Starts recording.
    pub fn start(&self) {
        self.on.store(true, Ordering::SeqCst);
    }

    /// Stops recording (the log is kept).
    pub fn stop(&self) {
        self.on.store(false, Ordering::SeqCst);
    }

    /// Whether recording is on.
    pub fn is_recording(&self) -> bool {
        self.on.load(Ordering::SeqCst)
    }

    /// Returns and clears the log.
    pub fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.log.lock())
    }

    /// A copy of the log.
    pub fn snapshot(&self) -> Vec<Recorded> {
        self.log.lock().clone()
    }

    pub(crate) fn record(
        &self,
        store_id: u64,
        request: StoreRequest,
        response: &Result<StoreResponse, tonic::Status>,
    ) {
        let response = match response {
            Ok(r) => Ok(r.clone()),
            Err(s) => Err((s.code(), s.message().to_string())),
        };
        self.log.lock().push(Recorded {
            store_id,
            request,
            response,
        });
    }
}
