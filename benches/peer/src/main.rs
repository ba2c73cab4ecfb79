//! Raw get / raw put throughput and client CPU per op, in one run against one
//! mockstore server on loopback, for:
//!
//! - (a) `ours`: tikv-tower's `RawClient` (connects through PD),
//! - (b) `peer`: the peer client `tikv-client` 0.4 (connects through PD),
//! - (c) `bare`: a plain tonic `TikvClient` sending unary RawGet/RawPut straight to the
//!   leader with routes read once from PD,
//! - (d) `batch`: sub-requests built directly and sent on one BatchCommands stream per
//!   store, no layers, routes read once from PD (the true ceiling of a batching client).
//!
//! Every side runs with the same number of concurrent tasks and the same op
//! count on the same client runtime (2 worker threads); the server runs on its
//! own runtime (2 worker threads, named `mockstore-srv*`) in the same process,
//! so client CPU = process user+sys (`getrusage`) minus the server threads'
//! on-CPU time (`/proc/self/task/*/schedstat`). See README.md.

mod bare;
mod bare_batch;
mod cpu;
mod load;
#[cfg(feature = "ours")]
mod ours;
mod peer;
mod server;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use load::{run_phase, LoadSpec, PhaseResult};

/// Thread-name prefix of the server runtime (used for CPU accounting).
pub const SERVER_THREADS: &str = "mockstore-srv";

#[derive(Clone, Debug)]
struct Args {
    tasks: usize,
    ops: u64,
    cap_secs: f64,
    keys: u64,
    value_size: usize,
    warmup: u64,
    rounds: usize,
    pd: Option<String>,
    only: Option<Vec<String>>,
}

const USAGE: &str = "usage: tikv-tower-peer-bench [--tasks N] [--ops N] [--cap SECS] [--keys N] \
[--value-size BYTES] [--warmup N] [--rounds N] [--pd HOST:PORT] [--only bare,batch,peer,ours,ours1]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        tasks: 64,
        ops: 15_000,
        cap_secs: 10.0,
        keys: 10_000,
        value_size: 128,
        warmup: 5_000,
        rounds: 2,
        pd: None,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.into());
        }
        let val = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {val}: {e}\n{USAGE}");
        match flag.as_str() {
            "--tasks" => a.tasks = val.parse().map_err(|e| bad(&e))?,
            "--ops" => a.ops = val.parse().map_err(|e| bad(&e))?,
            "--cap" => a.cap_secs = val.parse().map_err(|e| bad(&e))?,
            "--keys" => a.keys = val.parse().map_err(|e| bad(&e))?,
            "--value-size" => a.value_size = val.parse().map_err(|e| bad(&e))?,
            "--warmup" => a.warmup = val.parse().map_err(|e| bad(&e))?,
            "--rounds" => a.rounds = val.parse().map_err(|e| bad(&e))?,
            "--pd" => a.pd = Some(val),
            "--only" => a.only = Some(val.split(',').map(str::to_string).collect()),
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    if a.tasks == 0 || a.keys == 0 || a.rounds == 0 {
        return Err(format!("--tasks, --keys and --rounds must be > 0\n{USAGE}"));
    }
    Ok(a)
}

fn key(i: u64, keys: u64) -> Vec<u8> {
    // Spread consecutive ops over the key space.
    let k = i.wrapping_mul(7919) % keys;
    format!("bench-key-{k:08}").into_bytes()
}

/// One client under test: a name and its get / put operations.
#[derive(Clone)]
enum Side {
    Bare(bare::Bare),
    Batch(bare_batch::BareBatch),
    Peer(peer::Peer),
    #[cfg(feature = "ours")]
    Ours(ours::Ours),
    /// tikv-tower with one gRPC connection per store, like the peer and bare sides.
    #[cfg(feature = "ours")]
    Ours1(ours::Ours),
}

impl Side {
    fn name(&self) -> &'static str {
        match self {
            Side::Bare(_) => "bare",
            Side::Batch(_) => "batch",
            Side::Peer(_) => "peer",
            #[cfg(feature = "ours")]
            Side::Ours(_) => "ours",
            #[cfg(feature = "ours")]
            Side::Ours1(_) => "ours1",
        }
    }

    async fn get(&self, k: Vec<u8>) -> Result<(), String> {
        match self {
            Side::Bare(c) => c.get(k).await,
            Side::Batch(c) => c.get(k).await,
            Side::Peer(c) => c.get(k).await,
            #[cfg(feature = "ours")]
            Side::Ours(c) | Side::Ours1(c) => c.get(k).await,
        }
    }

    async fn put(&self, k: Vec<u8>, v: Vec<u8>) -> Result<(), String> {
        match self {
            Side::Bare(c) => c.put(k, v).await,
            Side::Batch(c) => c.put(k, v).await,
            Side::Peer(c) => c.put(k, v).await,
            #[cfg(feature = "ours")]
            Side::Ours(c) | Side::Ours1(c) => c.put(k, v).await,
        }
    }
}

async fn phase(side: &Side, is_get: bool, spec: LoadSpec, args: &Args) -> PhaseResult {
    let side = Arc::new(side.clone());
    let (keys, vsize) = (args.keys, args.value_size);
    run_phase(spec, SERVER_THREADS, move |i| {
        let side = side.clone();
        async move {
            let k = key(i, keys);
            if is_get {
                side.get(k).await
            } else {
                side.put(k, vec![(i % 251) as u8; vsize]).await
            }
        }
    })
    .await
}

async fn connect_sides(args: &Args, pd: &str) -> Vec<Side> {
    let want = |n: &str| args.only.as_ref().is_none_or(|o| o.iter().any(|x| x == n));
    let mut sides = Vec::new();
    if want("bare") {
        match bare::Bare::connect(pd).await {
            Ok(c) => sides.push(Side::Bare(c)),
            Err(e) => eprintln!("bare: cannot connect: {e}"),
        }
    }
    if want("batch") {
        match bare_batch::BareBatch::connect(pd).await {
            Ok(c) => sides.push(Side::Batch(c)),
            Err(e) => eprintln!("batch: cannot connect: {e}"),
        }
    }
    if want("peer") {
        match tokio::time::timeout(Duration::from_secs(30), peer::Peer::connect(pd)).await {
            Ok(Ok(c)) => {
                match tokio::time::timeout(Duration::from_secs(10), peer::Peer::check_tso(pd)).await
                {
                    Ok(Ok((physical, logical))) => {
                        println!("peer: Tso stream ok (physical {physical} ms, logical {logical})")
                    }
                    Ok(Err(e)) => println!("peer: Tso check FAILED: {e}"),
                    Err(_) => println!("peer: Tso check timed out after 10 s"),
                }
                sides.push(Side::Peer(c))
            }
            Ok(Err(e)) => eprintln!("peer: cannot connect: {e}"),
            Err(_) => eprintln!("peer: connect timed out after 30 s"),
        }
    }
    #[cfg(feature = "ours")]
    for (name, conns) in [("ours", None), ("ours1", Some(1))] {
        if !want(name) {
            continue;
        }
        match tokio::time::timeout(Duration::from_secs(30), ours::Ours::connect(pd, conns)).await {
            Ok(Ok(c)) if conns.is_some() => sides.push(Side::Ours1(c)),
            Ok(Ok(c)) => sides.push(Side::Ours(c)),
            Ok(Err(e)) => eprintln!("{name}: cannot connect: {e}"),
            Err(_) => eprintln!("{name}: connect timed out after 30 s"),
        }
    }
    #[cfg(not(feature = "ours"))]
    if want("ours") {
        eprintln!("ours: built without the `ours` feature (tikv-tower RawClient); skipped");
    }
    sides
}

fn fmt_result(r: &PhaseResult) -> String {
    let mut s = format!(
        "{:>9.0} ops/s  client {:>6.1} us/op  server {:>6.1} us/op  ({} ops in {:.2} s",
        r.throughput(),
        r.client_us_per_op(),
        r.server_us_per_op(),
        r.ops,
        r.elapsed.as_secs_f64()
    );
    if r.errors > 0 {
        s += &format!(
            ", {} ERRORS, first: {}",
            r.errors,
            r.first_error.as_deref().unwrap_or("?")
        );
    }
    s + ")"
}

/// Sums the rounds of one (side, op).
fn aggregate(rs: &[PhaseResult]) -> PhaseResult {
    let mut t = PhaseResult {
        ops: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        client_cpu: Duration::ZERO,
        server_cpu: Duration::ZERO,
    };
    for r in rs {
        t.ops += r.ops;
        t.errors += r.errors;
        t.elapsed += r.elapsed;
        t.client_cpu += r.client_cpu;
        t.server_cpu += r.server_cpu;
        if t.first_error.is_none() {
            t.first_error = r.first_error.clone();
        }
    }
    t
}

async fn run(args: Args, pd: String) -> Result<(), String> {
    println!(
        "pd {pd}; {} tasks, {} ops per phase (cap {} s), {} keys, {}-byte values, {} rounds, warm-up {} ops",
        args.tasks, args.ops, args.cap_secs, args.keys, args.value_size, args.rounds, args.warmup
    );
    let sides = connect_sides(&args, &pd).await;
    if sides.is_empty() {
        return Err("no client could connect".into());
    }
    let cap = Duration::from_secs_f64(args.cap_secs);
    // Preload every key with the first side (bare when present), unmeasured.
    let preload = LoadSpec {
        tasks: args.tasks,
        ops: args.keys,
        cap: Duration::from_secs(60),
    };
    let r = phase(&sides[0], false, preload, &args).await;
    println!("preload by {}: {}", sides[0].name(), fmt_result(&r));
    // Warm every side up (connections, region caches, server allocations).
    let warm = LoadSpec {
        tasks: args.tasks,
        ops: args.warmup,
        cap,
    };
    for s in &sides {
        for is_get in [false, true] {
            let r = phase(s, is_get, warm, &args).await;
            if r.errors > 0 {
                println!(
                    "warm-up {} {}: {}",
                    s.name(),
                    if is_get { "get" } else { "put" },
                    fmt_result(&r)
                );
            }
        }
    }
    let spec = LoadSpec {
        tasks: args.tasks,
        ops: args.ops,
        cap,
    };
    let mut results: BTreeMap<(&'static str, &'static str), Vec<PhaseResult>> = BTreeMap::new();
    for round in 0..args.rounds {
        // Rotate the order each round so no side always runs first.
        for j in 0..sides.len() {
            let s = &sides[(j + round) % sides.len()];
            for (op, is_get) in [("get", true), ("put", false)] {
                let r = phase(s, is_get, spec, &args).await;
                println!("round {round} {:<5} {op}: {}", s.name(), fmt_result(&r));
                results.entry((s.name(), op)).or_default().push(r);
            }
        }
    }
    println!();
    println!("== totals over {} rounds ==", args.rounds);
    let agg: BTreeMap<_, _> = results.iter().map(|(k, v)| (*k, aggregate(v))).collect();
    for ((side, op), r) in &agg {
        println!("{side:<5} {op}: {}", fmt_result(r));
    }
    println!();
    println!("== ratios (throughput: higher is better; CPU/op: lower is better) ==");
    for op in ["get", "put"] {
        for (mine, other) in [
            ("ours", "peer"),
            ("ours", "batch"),
            ("ours", "bare"),
            ("ours1", "peer"),
            ("ours1", "batch"),
            ("ours1", "bare"),
            ("batch", "peer"),
        ] {
            match (agg.get(&(mine, op)), agg.get(&(other, op))) {
                (Some(a), Some(b)) => println!(
                    "{op}: {mine}/{other}  throughput {:.2}x   client CPU/op {:.2}x",
                    a.throughput() / b.throughput().max(1e-9),
                    a.client_us_per_op() / b.client_us_per_op().max(1e-9)
                ),
                _ => println!("{op}: {mine}/{other}  n/a (a side is missing)"),
            }
        }
        if let (Some(p), Some(b)) = (agg.get(&("peer", op)), agg.get(&("bare", op))) {
            println!(
                "{op}: peer/bare  throughput {:.2}x   client CPU/op {:.2}x",
                p.throughput() / b.throughput().max(1e-9),
                p.client_us_per_op() / b.client_us_per_op().max(1e-9)
            );
        }
    }
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let server_rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(SERVER_THREADS)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("server runtime: {e}");
            std::process::exit(1);
        }
    };
    let (pd, _server) = match &args.pd {
        Some(pd) => (pd.clone(), None),
        None => match server_rt.block_on(server::start()) {
            Ok((pd, handle)) => (pd, Some(handle)),
            Err(e) => {
                eprintln!("mockstore server: {e}");
                std::process::exit(1);
            }
        },
    };
    let client_rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-client")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("client runtime: {e}");
            std::process::exit(1);
        }
    };
    let out = client_rt.block_on(run(args, pd));
    client_rt.shutdown_timeout(Duration::from_secs(1));
    if let Err(e) = out {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
