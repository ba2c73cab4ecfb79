//! `mockstore`: an in-memory TiKV + PD cluster served on loopback.
//!
//! Prints the PD address (`127.0.0.1:<port>`) on the first line of stdout, then one
//! `store <id> 127.0.0.1:<port>` line per store, and serves until Ctrl-C.

use clap::Parser;
use tikv_tower_mockstore::cluster::{ApiVersion, BoundaryEncoding, SplitThresholds};
use tikv_tower_mockstore::{MockCluster, ServeOptions};

/// An in-memory TiKV + PD cluster served over gRPC on 127.0.0.1.
///
/// PD (gRPC `pdpb.PD` / `keyspacepb.Keyspace`, the HTTP API under `/pd/api/v1/` with
/// PD's operator API, and the mockstore fault API under `/mockstore/api/v1/`) and every
/// store listen on loopback. The first line printed is the PD address. See the README
/// for curl examples of the control API.
#[derive(Debug, Parser)]
#[command(name = "mockstore", version)]
struct Args {
    /// Number of stores (each holds a replica of every region; the leader is on the first).
    #[arg(long, default_value_t = 1)]
    stores: usize,

    /// Storage API version: 1 (TxnKV and RawKV without TTL) or 2 (keyspaces, raw TTL).
    #[arg(long = "api-version", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    api_version: u8,

    /// A keyspace to create (API version 2; repeatable). Ids are given in order from 1;
    /// `DEFAULT` (id 0) always exists.
    #[arg(long = "keyspace", value_name = "NAME")]
    keyspaces: Vec<String>,

    /// A keyspace with keyspace-level GC (PD keyspace config `gc_management_type =
    /// keyspace_level`: its own txn / GC safe points and barriers; repeatable). Ids follow
    /// those of `--keyspace`.
    #[arg(long = "keyspace-level-gc", value_name = "NAME")]
    level_gc_keyspaces: Vec<String>,

    /// Regions carry buckets (TiKV `enable-region-bucket`), which PD returns to lookups
    /// asking `need_buckets`; `POST /mockstore/api/v1/regions/{id}/buckets/refresh`
    /// reports newer ones.
    #[arg(long = "region-buckets")]
    region_buckets: bool,

    /// An initial split key (repeatable): `[FORM:]KEY`, KEY `0x`-prefixed hex or UTF-8
    /// text. FORM says how the key becomes a region boundary: `txn:` a transactional
    /// key (memcomparable-encoded), `raw:` a raw key as a RawKV client sends it
    /// (unencoded under API V1, memcomparable under V2), `boundary:` already a boundary
    /// (verbatim). Without FORM the key is converted as `--boundaries` says.
    #[arg(long = "split-key", value_name = "[FORM:]KEY", value_parser = parse_split_key)]
    split_keys: Vec<SplitKey>,

    /// How a `--split-key` without FORM is converted: `memcomparable` (as a
    /// transactional key; the default) or `raw` (verbatim, laying out an API-V1 RawKV
    /// cluster). Requests always compare in their own form: V1 raw keys unencoded,
    /// transactional and V2 keys memcomparable (TiKV `encode_raw_key`).
    #[arg(long, default_value = "memcomparable", value_parser = ["memcomparable", "raw"])]
    boundaries: String,

    /// Split a region automatically once it holds more than this many bytes of raw and
    /// transactional data (TiKV `region-max-size`; pieces of 2/3 of it). TiKV's default
    /// is 384 MiB (1.5 x `region-split-size` 256 MiB); off unless given.
    #[arg(long = "auto-split-size", value_name = "BYTES")]
    auto_split_size: Option<u64>,

    /// Split a region automatically once it holds more than this many committed
    /// transaction versions (TiKV `region-max-keys`; pieces of 2/3 of it). Locks and
    /// RawKV data never count: raw data splits only by size. Off unless given.
    #[arg(long = "auto-split-keys", value_name = "KEYS")]
    auto_split_keys: Option<u64>,

    /// The split-check tick in milliseconds (TiKV `split-region-check-tick-interval`):
    /// regions written since the last tick are checked at most this often; 0 checks
    /// after every write.
    #[arg(
        long = "split-check-interval-ms",
        value_name = "MS",
        default_value_t = 10_000
    )]
    split_check_interval_ms: u64,

    /// Merge small or empty adjacent regions as PD's merge checker does (off by default),
    /// on the split-check tick, with TiKV's merge epoch rules.
    #[arg(long)]
    merge: bool,

    /// With `--merge`: regions up to this many bytes are merged (PD
    /// `max-merge-region-size`).
    #[arg(long = "max-merge-region-size", value_name = "BYTES", default_value_t = 20 * 1024 * 1024)]
    max_merge_region_size: u64,

    /// With `--merge`: regions up to this many keys are merged (PD
    /// `max-merge-region-keys`).
    #[arg(
        long = "max-merge-region-keys",
        value_name = "KEYS",
        default_value_t = 200_000
    )]
    max_merge_region_keys: u64,

    /// With `--merge`: no merge of a region split (or of any region after start) more
    /// recently than this (PD `split-merge-interval`).
    #[arg(
        long = "split-merge-interval-ms",
        value_name = "MS",
        default_value_t = 3_600_000
    )]
    split_merge_interval_ms: u64,

    /// Largest write in bytes before the store answers `RaftEntryTooLarge` (default 8 MiB).
    #[arg(long = "raft-entry-max-size", value_name = "BYTES")]
    raft_entry_max_size: Option<u64>,

    /// Drive the cluster clock (TSO physical time, raw TTL, split-check tick, safe ts)
    /// by hand: it starts at the wall-clock time and moves only through
    /// `POST /mockstore/api/v1/clock/advance`.
    #[arg(long = "manual-clock")]
    manual_clock: bool,

    /// Seed of the fault injector's random generator.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// PD port (0 = any free port).
    #[arg(long = "pd-port", default_value_t = 0)]
    pd_port: u16,

    /// First store port; store i listens on base + i (default: any free ports).
    #[arg(long = "store-port-base")]
    store_port_base: Option<u16>,
}

/// A `--split-key`: its form and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SplitKey {
    /// No form given: converted as `--boundaries` says.
    Plain(Vec<u8>),
    /// `txn:` a transactional key.
    Txn(Vec<u8>),
    /// `raw:` a raw key.
    Raw(Vec<u8>),
    /// `boundary:` a boundary, verbatim.
    Boundary(Vec<u8>),
}

fn parse_split_key(s: &str) -> Result<SplitKey, String> {
    if let Some(k) = s.strip_prefix("txn:") {
        return parse_key(k).map(SplitKey::Txn);
    }
    if let Some(k) = s.strip_prefix("raw:") {
        return parse_key(k).map(SplitKey::Raw);
    }
    if let Some(k) = s.strip_prefix("boundary:") {
        return parse_key(k).map(SplitKey::Boundary);
    }
    parse_key(s).map(SplitKey::Plain)
}

fn parse_key(s: &str) -> Result<Vec<u8>, String> {
    match s.strip_prefix("0x") {
        None => Ok(s.as_bytes().to_vec()),
        Some(hex) => tikv_tower_mockstore::codec::decode_hex(hex)
            .ok_or_else(|| format!("invalid hex key {s:?} (an even number of hex digits)")),
    }
}

fn build(args: &Args) -> MockCluster {
    let api = if args.api_version == 2 {
        ApiVersion::V2
    } else {
        ApiVersion::V1
    };
    let mut plain = Vec::new();
    let mut boundary = Vec::new();
    for key in &args.split_keys {
        match key {
            SplitKey::Plain(k) => plain.push(k.clone()),
            SplitKey::Txn(k) => boundary.push(api.key_form(false).to_boundary(k)),
            SplitKey::Raw(k) => boundary.push(api.key_form(true).to_boundary(k)),
            SplitKey::Boundary(k) => boundary.push(k.clone()),
        }
    }
    let mut b = MockCluster::builder()
        .stores(args.stores.max(1))
        .api_version(api)
        .boundary_encoding(if args.boundaries == "raw" {
            BoundaryEncoding::Raw
        } else {
            BoundaryEncoding::Memcomparable
        })
        .split_keys(plain)
        .boundary_split_keys(boundary)
        .split_thresholds(SplitThresholds {
            max_keys: args.auto_split_keys,
            max_size: args.auto_split_size,
            check_interval: Some(std::time::Duration::from_millis(
                args.split_check_interval_ms,
            )),
            ..Default::default()
        })
        .seed(args.seed);
    if args.merge {
        b = b.merge(tikv_tower_mockstore::pd::merge_check::MergeConfig {
            max_merge_region_size: args.max_merge_region_size,
            max_merge_region_keys: args.max_merge_region_keys,
            split_merge_interval: std::time::Duration::from_millis(args.split_merge_interval_ms),
        });
    }
    if args.manual_clock {
        b = b.clock(tikv_tower_mockstore::Clock::Manual(
            tikv_tower_mockstore::ManualClock::starting_now(),
        ));
    }
    let declared = args
        .keyspaces
        .iter()
        .map(|n| (n, false))
        .chain(args.level_gc_keyspaces.iter().map(|n| (n, true)));
    for (i, (name, level_gc)) in declared.enumerate() {
        let id = u32::try_from(i + 1).unwrap_or(u32::MAX);
        b = if level_gc {
            b.keyspace_level_gc(name.clone(), id)
        } else {
            b.keyspace(name.clone(), id)
        };
    }
    if let Some(n) = args.raft_entry_max_size {
        b = b.raft_entry_max_size(n);
    }
    b.region_buckets(args.region_buckets).build()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let cluster = build(&args);
    let served = cluster
        .serve_grpc(ServeOptions {
            pd_port: args.pd_port,
            store_port_base: args.store_port_base,
        })
        .await?;
    println!("{}", served.pd_addr());
    for (id, addr) in served.store_addrs() {
        println!("store {id} {addr}");
    }
    tokio::signal::ctrl_c().await?;
    served.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_as_hex_or_text() {
        assert_eq!(parse_key("abc"), Ok(b"abc".to_vec()));
        assert_eq!(parse_key("0x00ff"), Ok(vec![0, 255]));
        assert!(parse_key("0x0").is_err());
        assert!(parse_key("0xzz").is_err());
        assert_eq!(parse_split_key("raw:b"), Ok(SplitKey::Raw(b"b".to_vec())));
        assert_eq!(
            parse_split_key("txn:0x62"),
            Ok(SplitKey::Txn(b"b".to_vec()))
        );
        assert_eq!(
            parse_split_key("boundary:b"),
            Ok(SplitKey::Boundary(b"b".to_vec()))
        );
        assert_eq!(parse_split_key("b"), Ok(SplitKey::Plain(b"b".to_vec())));
    }

    #[test]
    fn split_key_forms_become_boundaries() {
        let args = Args::parse_from([
            "mockstore",
            "--split-key",
            "raw:b",
            "--split-key",
            "txn:b",
            "--split-key",
            "boundary:c",
        ]);
        let c = build(&args);
        let starts: Vec<Vec<u8>> = c.regions().into_iter().map(|r| r.start_key).collect();
        let enc_b = tikv_tower_mockstore::codec::encode_bytes(b"b");
        assert_eq!(
            starts,
            vec![Vec::new(), b"b".to_vec(), enc_b, b"c".to_vec()]
        );
    }

    #[test]
    fn cli_builds_the_cluster() {
        let args = Args::parse_from([
            "mockstore",
            "--stores",
            "3",
            "--api-version",
            "2",
            "--keyspace",
            "ks1",
            "--keyspace-level-gc",
            "ks2",
            "--split-key",
            "0x7200000161",
        ]);
        let c = build(&args);
        assert_eq!(c.stores().len(), 3);
        assert!(c
            .keyspace_by_name("ks1")
            .is_some_and(|k| !k.keyspace_level_gc));
        assert!(c
            .keyspace_by_name("ks2")
            .is_some_and(|k| k.keyspace_level_gc && k.id == 2));
    }
}
