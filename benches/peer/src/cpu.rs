//! CPU accounting for one process that hosts both the clients and the server.
//!
//! The process's user+sys time comes from `getrusage(RUSAGE_SELF)` (it also
//! counts threads that have exited). The server's share is the sum of the
//! on-CPU time (`/proc/self/task/<tid>/schedstat`, field 1, nanoseconds) of the
//! threads whose name starts with the server runtime's thread-name prefix; the
//! client's share is the rest.

use std::fs;
use std::time::Duration;

/// User + system CPU time consumed by the whole process so far.
pub fn process_cpu() -> Duration {
    // SAFETY: `getrusage` only writes into the zeroed struct we pass it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// On-CPU time of the live threads of this process whose name starts with `prefix`.
pub fn threads_cpu(prefix: &str) -> Duration {
    let mut total = Duration::ZERO;
    let Ok(dir) = fs::read_dir("/proc/self/task") else {
        return total;
    };
    for entry in dir.flatten() {
        let path = entry.path();
        let Ok(comm) = fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if !comm.trim_end().starts_with(prefix) {
            continue;
        }
        let Ok(sched) = fs::read_to_string(path.join("schedstat")) else {
            continue;
        };
        if let Some(ns) = sched
            .split_whitespace()
            .next()
            .and_then(|f| f.parse::<u64>().ok())
        {
            total += Duration::from_nanos(ns);
        }
    }
    total
}

/// A snapshot of process and server CPU time.
#[derive(Clone, Copy, Debug)]
pub struct CpuSnapshot {
    process: Duration,
    server: Duration,
}

impl CpuSnapshot {
    /// Takes a snapshot; `server_prefix` names the server runtime's threads.
    pub fn take(server_prefix: &str) -> Self {
        CpuSnapshot {
            process: process_cpu(),
            server: threads_cpu(server_prefix),
        }
    }

    /// (client, server) CPU time spent between `earlier` and `self`.
    pub fn since(&self, earlier: &CpuSnapshot) -> (Duration, Duration) {
        let process = self.process.saturating_sub(earlier.process);
        let server = self.server.saturating_sub(earlier.server);
        (process.saturating_sub(server), server)
    }
}
