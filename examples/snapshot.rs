//! Transactional reads: snapshots (point get, batch get, commit ts), forward and reverse
//! iterators, a transaction reading its own writes, and a stale read.
//!
//! ```text
//! cargo run --example snapshot                          # embedded mockstore
//! cargo run --example snapshot -- --pd 127.0.0.1:2379
//! ```
//!
//! The committer is not built yet, so the example writes its data with raw
//! `KvPrewrite` / `KvCommit` RPCs through the store's plain stack.

use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use futures::TryStreamExt;
use tikv_tower::txn::{SnapshotOptions, TxnClient};
use tikv_tower_layers::typed::{self, SendOptions};
use tikv_tower_proto::kvrpcpb;

#[derive(Parser)]
struct Args {
    /// PD endpoint(s); none = embedded mockstore.
    #[arg(long)]
    pd: Vec<String>,
}

/// Writes `pairs` in one transaction with raw prewrite / commit RPCs.
async fn write(client: &TxnClient, pairs: &[(String, String)]) -> tikv_tower::Result<u64> {
    let stack = client.store().plain_stack();
    let start = client.current_timestamp().await?;
    let mutations = pairs
        .iter()
        .map(|(k, v)| kvrpcpb::Mutation {
            op: kvrpcpb::Op::Put as i32,
            key: Bytes::from(k.clone()),
            value: Bytes::from(v.clone()),
            assertion: 0,
        })
        .collect();
    let prewrite = kvrpcpb::PrewriteRequest {
        mutations,
        primary_lock: Bytes::from(pairs[0].0.clone()),
        start_version: start,
        lock_ttl: 3000,
        txn_size: pairs.len() as u64,
        ..Default::default()
    };
    let r = typed::send(stack.clone(), prewrite, SendOptions::default()).await?;
    if !r.errors.is_empty() {
        return Err(tikv_tower::Error::from_key_error(r.errors[0].clone()));
    }
    let commit_ts = client.current_timestamp().await?;
    let commit = kvrpcpb::CommitRequest {
        start_version: start,
        keys: pairs.iter().map(|(k, _)| Bytes::from(k.clone())).collect(),
        commit_version: commit_ts,
        ..Default::default()
    };
    let r = typed::send(stack, commit, SendOptions::default()).await?;
    if let Some(e) = r.error {
        return Err(tikv_tower::Error::from_key_error(e));
    }
    Ok(commit_ts)
}

#[tokio::main]
async fn main() -> tikv_tower::Result<()> {
    let args = Args::parse();
    let client = TxnClient::connect(args.pd).await?;
    println!("cluster ID: {}", client.cluster_id());

    let pairs: Vec<(String, String)> = (0..20)
        .map(|i| (format!("example/{i:02}"), format!("value {i}")))
        .collect();
    let commit_ts = write(&client, &pairs).await?;
    println!("wrote {} keys, committed at {commit_ts}", pairs.len());

    // Point get and batch get at a fresh ts, with commit timestamps.
    let ts = client.current_timestamp().await?;
    let snap = client.snapshot_with(ts, SnapshotOptions::default().with_need_commit_ts(true));
    let (entry, details) = snap.get_with_details("example/07").await?;
    println!(
        "get example/07 -> {:?} (store {:?}, {} attempt(s))",
        entry, details.exec.store_id, details.exec.attempts
    );
    let got = snap
        .batch_get(["example/01", "example/02", "missing"])
        .await?;
    println!("batch_get -> {} of 3 keys present", got.len());

    // Iterators: a forward stream and a reverse `next()` loop, small batches.
    let snap = client.snapshot_with(ts, SnapshotOptions::default().with_scan_batch_size(4));
    let forward: Vec<_> = snap
        .scanner("example/05".."example/10")?
        .into_stream()
        .try_collect()
        .await?;
    let keys: Vec<_> = forward
        .iter()
        .map(|e| String::from_utf8_lossy(&e.key).into_owned())
        .collect();
    println!("forward [05, 10): {keys:?}");
    let mut reverse = snap.scanner_reverse("example/".."example/04")?;
    while let Some(e) = reverse.next().await? {
        println!(
            "reverse: {} = {}",
            String::from_utf8_lossy(&e.key),
            String::from_utf8_lossy(&e.value)
        );
    }

    // A transaction reads its own (buffered) writes over its snapshot.
    let mut txn = client.begin().await?;
    txn.set("example/03", "changed")?;
    txn.delete("example/04")?;
    let view = txn.scan("example/02".."example/06", 10, false).await?;
    for (k, v) in &view {
        println!(
            "txn view: {} = {}",
            String::from_utf8_lossy(k),
            String::from_utf8_lossy(v)
        );
    }
    println!("(the transaction is dropped: nothing is committed)");

    // A stale read: one second in the past, served by any replica whose safe ts covers it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let stale_ts = client.stale_timestamp(1).await?;
    let stale = client.snapshot_with(stale_ts, SnapshotOptions::default().with_stale_read(true));
    let (v, d) = stale.get_with_details("example/07").await?;
    println!(
        "stale read at {stale_ts}: {:?} from store {:?}",
        v.map(|e| e.value),
        d.exec.store_id
    );
    println!(
        "min safe ts over the stores: {}",
        client.min_safe_ts().await?
    );
    client.close();
    Ok(())
}
