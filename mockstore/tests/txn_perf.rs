//! Quick cost figures of the engine (not a benchmark suite): prewrite +
//! commit of one key, and a point get. Ignored by default; run with
//! `cargo test -p tikv-tower-mockstore --release --test txn_perf -- --ignored --nocapture`.

mod txn_util;

use std::time::Instant;

use tikv_tower_proto::kvrpcpb;
use txn_util::*;

const N: u64 = 20_000;

/// CPU time of the calling thread in ns (Linux `schedstat`), if available:
/// wall time is meaningless on a loaded shared machine.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

struct Meter(Instant, Option<u64>);

fn start() -> Meter {
    Meter(Instant::now(), thread_cpu_ns())
}

fn report(what: &str, n: u64, m: Meter) {
    let wall = m.0.elapsed();
    let cpu = match (m.1, thread_cpu_ns()) {
        (Some(a), Some(b)) => format!("{:.2} µs/op CPU", (b - a) as f64 / 1e3 / n as f64),
        _ => "CPU n/a".into(),
    };
    println!(
        "{what}: {cpu}, {:.2} µs/op wall ({n} ops)",
        wall.as_secs_f64() * 1e6 / n as f64
    );
}

#[test]
#[ignore]
fn cost_of_prewrite_commit_and_get() {
    let h = H::new();
    let keys: Vec<Vec<u8>> = (0..N).map(|i| format!("key{i:08}").into_bytes()).collect();
    let t = start();
    for (i, k) in keys.iter().enumerate() {
        let ts = 10 + 2 * i as u64;
        h.must_prewrite_put(k, b"value", k, ts);
        h.must_commit(&[k], ts, ts + 1);
    }
    report("prewrite+commit (1 key, 2PC)", N, t);

    let t = start();
    for k in &keys {
        let r = h.e.get(
            &h.cm,
            &kvrpcpb::GetRequest {
                context: None,
                key: k.clone().into(),
                version: u64::MAX - 1,
                need_commit_ts: false,
            },
            ALL,
        );
        assert_eq!(r.value, "value");
    }
    report("get (hit)", N, t);

    // Two threads on disjoint keys: no global lock across a request.
    let t = Instant::now();
    std::thread::scope(|s| {
        for th in 0..2u64 {
            let h = &h;
            s.spawn(move || {
                for i in 0..N / 2 {
                    let k = format!("t{th}-{i:08}").into_bytes();
                    let ts = 1_000_000 + 2 * (th * N + i);
                    h.must_prewrite_put(&k, b"v", &k, ts);
                    h.must_commit(&[&k], ts, ts + 1);
                }
            });
        }
    });
    println!(
        "prewrite+commit, 2 threads on disjoint keys: {:.2} µs/op wall",
        t.elapsed().as_secs_f64() * 1e6 / N as f64
    );
}
