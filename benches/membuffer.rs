//! Membuffer vs `BTreeMap<Vec<u8>, Vec<u8>>`, in one run (issue 4, "Performance").
//!
//! Workloads, each timed for both structures with the same pre-generated keys:
//! - 1M random-key sets, then 1M gets in another random order;
//! - a full forward and a full reverse scan;
//! - the same after every key was written a second time with a value of another length, so
//!   that current values live in the value log rather than inline with their keys (the
//!   membuffer's slower path; not one of the workloads, reported to show its cost);
//! - 20 statements of 10k sets each (half overwrites, half new keys) on a 100k-key buffer,
//!   each in a stage, alternately released and cleaned up. The baseline is the map plus a
//!   hand-written undo log, which is what a `BTreeMap` user would write.
//!
//! Memory: a counting global allocator records live and peak bytes requested while the 1M
//! entries are inserted; the ratio is against the payload (sum of key and value bytes).
//!
//! Run: `cargo bench -p tikv-tower --bench membuffer --no-default-features`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tikv_tower::txn::unionstore::{MemBuffer, SizeLimits};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{CountingAlloc, LIVE, PEAK};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Keys as one flat buffer of fixed-size keys, so the key set itself barely allocates.
struct Keys {
    flat: Vec<u8>,
    len: usize,
}

impl Keys {
    fn get(&self, i: usize) -> &[u8] {
        &self.flat[i * self.len..(i + 1) * self.len]
    }
    fn count(&self) -> usize {
        self.flat.len() / self.len
    }
}

fn random_keys(n: usize, shape: Shape, rng: &mut Rng) -> Keys {
    let len = match shape {
        Shape::Random16 => 16,
        Shape::TiDbRow => 19,
    };
    let mut flat = Vec::with_capacity(n * len);
    for _ in 0..n {
        match shape {
            Shape::Random16 => {
                flat.extend_from_slice(&rng.next().to_be_bytes());
                flat.extend_from_slice(&rng.next().to_be_bytes());
            }
            Shape::TiDbRow => {
                // t{table id: 8 bytes}_r{handle: 8 bytes}: an 11-byte prefix shared by all.
                flat.extend_from_slice(b"t\x80\x00\x00\x00\x00\x00\x00\x2a_r");
                flat.extend_from_slice(&rng.next().to_be_bytes());
            }
        }
    }
    Keys { flat, len }
}

#[derive(Clone, Copy, Debug)]
enum Shape {
    Random16,
    TiDbRow,
}

fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}

/// Runs `ours` and `base` alternately `REPS` times and keeps each one's fastest run: the
/// machine is shared, so the minimum is the least disturbed figure.
fn race<A: PartialEq + std::fmt::Debug>(
    mut ours: impl FnMut() -> A,
    mut base: impl FnMut() -> A,
) -> (Duration, Duration) {
    let (mut to, mut tb) = (Duration::MAX, Duration::MAX);
    for _ in 0..REPS {
        let (a, t) = time(&mut ours);
        to = to.min(t);
        let (b, t) = time(&mut base);
        tb = tb.min(t);
        assert_eq!(a, b);
    }
    (to, tb)
}

const REPS: usize = 3;

/// What a scan does with each pair: touch the first and last byte of key and value, as a
/// caller using the data would.
#[inline]
fn touch(k: &[u8], v: &[u8]) -> usize {
    k.first().map_or(0, |&b| b as usize)
        + k.last().map_or(0, |&b| b as usize)
        + v.first().map_or(0, |&b| b as usize)
        + v.len()
}

struct Row {
    name: String,
    ours: Duration,
    base: Duration,
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

/// Times gets of every key in `order`, then a full forward and a full reverse scan, for both
/// structures, and adds a row for each.
fn read_rows(
    buf: &MemBuffer,
    map: &BTreeMap<Vec<u8>, Vec<u8>>,
    keys: &Keys,
    order: &[u32],
    label: &str,
    rows: &mut Vec<Row>,
) {
    let (ours, base) = race(
        || {
            let mut s = 0usize;
            for &i in order {
                s += buf.get(keys.get(i as usize)).map_or(0, |v| v.len());
            }
            s
        },
        || {
            let mut s = 0usize;
            for &i in order {
                s += map.get(keys.get(i as usize)).map_or(0, |v| v.len());
            }
            s
        },
    );
    let n = order.len();
    rows.push(Row {
        name: format!("{label}: {n} gets"),
        ours,
        base,
    });
    let (ours, base) = race(
        || {
            buf.iter(b"", b"")
                .map(|e| touch(e.key, e.value.unwrap_or_default()))
                .sum::<usize>()
        },
        || map.iter().map(|(k, v)| touch(k, v)).sum::<usize>(),
    );
    rows.push(Row {
        name: format!("{label}: forward scan"),
        ours,
        base,
    });
    let (ours, base) = race(
        || {
            buf.iter_reverse(b"", b"")
                .map(|e| touch(e.key, e.value.unwrap_or_default()))
                .sum::<usize>()
        },
        || map.iter().rev().map(|(k, v)| touch(k, v)).sum::<usize>(),
    );
    rows.push(Row {
        name: format!("{label}: reverse scan"),
        ours,
        base,
    });
}

fn bench_shape(shape: Shape, value_len: usize, n: usize, rows: &mut Vec<Row>) {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let keys = random_keys(n, shape, &mut rng);
    let mut order: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    let value = vec![0xabu8; value_len];
    let label = format!("{shape:?} key, {value_len} B value");

    // ---- sets + memory ----
    let base_live = LIVE.load(Ordering::Relaxed);
    PEAK.store(base_live, Ordering::Relaxed);
    let (buf, t_ours_set) = time(|| {
        let mut b = MemBuffer::with_limits(SizeLimits::UNLIMITED);
        for i in 0..keys.count() {
            b.set(keys.get(i), &value).expect("set");
        }
        b
    });
    let ours_live = LIVE.load(Ordering::Relaxed) - base_live;
    let ours_peak = PEAK.load(Ordering::Relaxed) - base_live;
    let payload = buf.size();

    let base_live2 = LIVE.load(Ordering::Relaxed);
    PEAK.store(base_live2, Ordering::Relaxed);
    let (map, t_base_set) = time(|| {
        let mut m: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for i in 0..keys.count() {
            m.insert(keys.get(i).to_vec(), value.clone());
        }
        m
    });
    let map_live = LIVE.load(Ordering::Relaxed) - base_live2;
    let map_peak = PEAK.load(Ordering::Relaxed) - base_live2;
    assert_eq!(buf.len(), map.len());

    // Rebuild both a few more times, alternately, for the set timing.
    let (mut t_ours_set, mut t_base_set) = (t_ours_set, t_base_set);
    for _ in 1..REPS {
        let (b, t) = time(|| {
            let mut b = MemBuffer::with_limits(SizeLimits::UNLIMITED);
            for i in 0..keys.count() {
                b.set(keys.get(i), &value).expect("set");
            }
            b
        });
        t_ours_set = t_ours_set.min(t);
        drop(b);
        let (m, t) = time(|| {
            let mut m: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            for i in 0..keys.count() {
                m.insert(keys.get(i).to_vec(), value.clone());
            }
            m
        });
        t_base_set = t_base_set.min(t);
        drop(m);
    }
    rows.push(Row {
        name: format!("{label}: {n} sets"),
        ours: t_ours_set,
        base: t_base_set,
    });

    read_rows(&buf, &map, &keys, &order, &label, rows);

    println!(
        "memory  {label}: payload {:.1} MiB | membuffer live {:.1} MiB ({:.2}x payload), peak {:.1} MiB ({:.2}x) | BTreeMap live {:.1} MiB ({:.2}x payload), peak {:.1} MiB ({:.2}x) | membuffer/BTreeMap live {:.2}x",
        mib(payload as usize),
        mib(ours_live),
        ours_live as f64 / payload as f64,
        mib(ours_peak),
        ours_peak as f64 / payload as f64,
        mib(map_live),
        map_live as f64 / payload as f64,
        mib(map_peak),
        map_peak as f64 / payload as f64,
        ours_live as f64 / map_live as f64,
    );
    drop(black_box(buf));
    drop(black_box(map));
}

fn mib(b: usize) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn bench_staging(rows: &mut Vec<Row>) {
    const BASE: usize = 100_000;
    const STMT: usize = 10_000;
    const STMTS: usize = 20;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let keys = random_keys(BASE + STMT * STMTS, Shape::Random16, &mut rng);
    let value = vec![0x11u8; 64];
    let value2 = vec![0x22u8; 64];
    // Each statement writes 5k existing keys and 5k new ones.
    let stmt_keys: Vec<Vec<usize>> = (0..STMTS)
        .map(|s| {
            (0..STMT)
                .map(|j| {
                    if j % 2 == 0 {
                        (rng.next() % BASE as u64) as usize
                    } else {
                        BASE + s * STMT + j
                    }
                })
                .collect()
        })
        .collect();

    let mut buf = MemBuffer::with_limits(SizeLimits::UNLIMITED);
    let mut map: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for i in 0..BASE {
        buf.set(keys.get(i), &value).expect("set");
        map.insert(keys.get(i).to_vec(), value.clone());
    }
    let (_, t_ours) = time(|| {
        for (s, ks) in stmt_keys.iter().enumerate() {
            let h = buf.staging();
            for &k in ks {
                buf.set(keys.get(k), &value2).expect("set");
            }
            if s % 2 == 0 {
                buf.release(h).expect("release");
            } else {
                buf.cleanup(h).expect("cleanup");
            }
        }
    });
    let (_, t_base) = time(|| {
        for (s, ks) in stmt_keys.iter().enumerate() {
            let mut undo: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::with_capacity(STMT);
            for &k in ks {
                let key = keys.get(k).to_vec();
                let old = map.insert(key.clone(), value2.clone());
                undo.push((key, old));
            }
            if s % 2 == 1 {
                for (k, old) in undo.into_iter().rev() {
                    match old {
                        Some(v) => map.insert(k, v),
                        None => map.remove(&k),
                    };
                }
            }
        }
    });
    assert_eq!(buf.len(), map.len());
    rows.push(Row {
        name: format!("staging: {STMTS} x {STMT}-key statements, release/cleanup alternating"),
        ours: t_ours,
        base: t_base,
    });
}

/// Every key written twice, the second value one byte longer: the membuffer keeps the first
/// inline and the current one in the value log; the map just holds the current one. Gets run
/// in a random order, as in [`bench_shape`].
fn bench_rewritten(n: usize, rows: &mut Vec<Row>) {
    let mut rng = Rng(0x853c_49e6_748f_ea9b);
    let keys = random_keys(n, Shape::Random16, &mut rng);
    let (v1, v2) = (vec![0x5au8; 32], vec![0xa5u8; 33]);
    let label = "Random16 key, 32 B value rewritten as 33 B";
    let build_ours = || {
        let mut b = MemBuffer::with_limits(SizeLimits::UNLIMITED);
        for i in 0..keys.count() {
            b.set(keys.get(i), &v1).expect("set");
        }
        for i in 0..keys.count() {
            b.set(keys.get(i), &v2).expect("set");
        }
        b
    };
    let build_base = || {
        let mut m: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for i in 0..keys.count() {
            m.insert(keys.get(i).to_vec(), v1.clone());
        }
        for i in 0..keys.count() {
            m.insert(keys.get(i).to_vec(), v2.clone());
        }
        m
    };
    let (t_ours, t_base) = race(|| build_ours().len(), || build_base().len());
    rows.push(Row {
        name: format!("{label}: {n} + {n} sets"),
        ours: t_ours,
        base: t_base,
    });
    let (buf, map) = (build_ours(), build_base());
    let mut order: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    read_rows(&buf, &map, &keys, &order, label, rows);
}

fn main() {
    // `cargo bench` passes `--bench`; a `--quick` flag shrinks the run.
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 100_000 } else { 1_000_000 };
    let mut rows = Vec::new();
    for (shape, vlen) in [
        (Shape::Random16, 32),
        (Shape::Random16, 128),
        (Shape::TiDbRow, 64),
    ] {
        bench_shape(shape, vlen, n, &mut rows);
    }
    bench_rewritten(n, &mut rows);
    bench_staging(&mut rows);
    println!();
    println!(
        "{:<70} {:>12} {:>12} {:>8}",
        "workload", "membuffer", "BTreeMap", "ratio"
    );
    for r in &rows {
        println!(
            "{:<70} {:>10.1}ms {:>10.1}ms {:>7.2}x",
            r.name,
            r.ours.as_secs_f64() * 1e3,
            r.base.as_secs_f64() * 1e3,
            ratio(r.ours, r.base)
        );
    }
}
