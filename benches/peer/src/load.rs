//! The load driver: `tasks` concurrent tasks share one op counter and run until
//! `ops` operations were started or the time cap passed.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cpu::CpuSnapshot;

/// What one phase measured.
#[derive(Clone, Debug)]
pub struct PhaseResult {
    /// Operations that completed (successfully or not).
    pub ops: u64,
    /// Operations that returned an error (or a wrong answer).
    pub errors: u64,
    /// First error seen, for the report.
    pub first_error: Option<String>,
    /// Wall time of the phase.
    pub elapsed: Duration,
    /// Client-side CPU time (process minus server threads).
    pub client_cpu: Duration,
    /// Server threads' CPU time.
    pub server_cpu: Duration,
}

impl PhaseResult {
    /// Operations per second.
    pub fn throughput(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Client CPU microseconds per operation.
    pub fn client_us_per_op(&self) -> f64 {
        self.client_cpu.as_secs_f64() * 1e6 / (self.ops.max(1) as f64)
    }

    /// Server CPU microseconds per operation.
    pub fn server_us_per_op(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1e6 / (self.ops.max(1) as f64)
    }
}

/// Load parameters shared by every client so they run under the same conditions.
#[derive(Clone, Copy, Debug)]
pub struct LoadSpec {
    /// Concurrent tasks.
    pub tasks: usize,
    /// Operations per measured phase.
    pub ops: u64,
    /// Time cap of a phase.
    pub cap: Duration,
}

/// Runs `op(i)` for i in 0..spec.ops over `spec.tasks` tasks on the current
/// runtime and measures wall time and CPU.
pub async fn run_phase<F, Fut>(spec: LoadSpec, server_prefix: &str, op: F) -> PhaseResult
where
    F: Fn(u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(parking_lot_free::FirstError::default());
    let cpu0 = CpuSnapshot::take(server_prefix);
    let start = Instant::now();
    let deadline = start + spec.cap;
    let mut handles = Vec::with_capacity(spec.tasks);
    for _ in 0..spec.tasks {
        let (next, done, errors, first_error, op) = (
            next.clone(),
            done.clone(),
            errors.clone(),
            first_error.clone(),
            op.clone(),
        );
        handles.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= spec.ops || Instant::now() >= deadline {
                    break;
                }
                if let Err(e) = op(i).await {
                    errors.fetch_add(1, Ordering::Relaxed);
                    first_error.set(e);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    let elapsed = start.elapsed();
    let cpu1 = CpuSnapshot::take(server_prefix);
    let (client_cpu, server_cpu) = cpu1.since(&cpu0);
    PhaseResult {
        ops: done.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        first_error: first_error.get(),
        elapsed,
        client_cpu,
        server_cpu,
    }
}

mod parking_lot_free {
    use std::sync::Mutex;

    /// Keeps the first error message reported.
    #[derive(Default)]
    pub struct FirstError(Mutex<Option<String>>);

    impl FirstError {
        pub fn set(&self, e: String) {
            if let Ok(mut g) = self.0.lock() {
                if g.is_none() {
                    *g = Some(e);
                }
            }
        }

        pub fn get(&self) -> Option<String> {
            self.0.lock().ok().and_then(|g| g.clone())
        }
    }
}
