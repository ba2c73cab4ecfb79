//! A one-minute tour of tikv-tower's RawKV client.
//!
//! ```text
//! cargo run --example quickstart                    # embedded in-process mockstore
//! cargo run --example quickstart -- --pd 127.0.0.1:2379   # a real cluster
//! ```

use clap::Parser;
use tikv_tower::raw::{ColumnFamily, KvPair};
use tikv_tower::RawClient;

#[derive(Parser)]
struct Args {
    /// PD endpoint(s) of a running cluster; none = embedded mockstore.
    #[arg(long)]
    pd: Vec<String>,
}

#[tokio::main]
async fn main() -> tikv_tower::Result<()> {
    let args = Args::parse();
    // One line: PD endpoints, or none for an in-process cluster.
    let client = RawClient::connect(args.pd.clone()).await?;
    println!(
        "connected to cluster {} ({})",
        client.cluster_id(),
        if args.pd.is_empty() { "embedded" } else { "PD" }
    );

    client.put("hello", "world").await?;
    println!(
        "get hello        -> {:?}",
        client
            .get("hello")
            .await?
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    );

    client
        .batch_put((0..10).map(|i| KvPair::new(format!("user:{i:02}"), format!("name-{i}"))))
        .await?;
    let some = client.batch_get(["user:03", "user:99", "user:07"]).await?;
    println!(
        "batch_get        -> {:?}",
        some.iter()
            .map(|v| v.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()))
            .collect::<Vec<_>>()
    );

    let page = client.scan("user:"..="user:~", 4).await?;
    println!(
        "scan 4           -> {:?}",
        page.iter()
            .map(|p| String::from_utf8_lossy(&p.key).into_owned())
            .collect::<Vec<_>>()
    );
    let last = client.reverse_scan_keys("user:".., 2).await?;
    println!(
        "reverse_scan 2   -> {:?}",
        last.iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect::<Vec<_>>()
    );

    let cas = client.with_atomic_for_cas(true);
    let (prev, swapped) = cas.compare_and_swap("counter", None, "1").await?;
    println!("compare_and_swap -> previous {prev:?}, swapped {swapped}");

    client
        .with_cf(ColumnFamily::Write)
        .put("hello", "in the write CF")
        .await?;
    println!("checksum         -> {:?}", client.checksum(..).await?);

    client.delete_range("user:".."user:~").await?;
    println!(
        "after delete_range: {} user keys",
        client.scan_keys("user:".."user:~", 100).await?.len()
    );

    match client.get("").await {
        Err(e) => println!(
            "bad input        -> typed error: {e} (invalid argument: {})",
            e.is_invalid_argument()
        ),
        Ok(_) => unreachable!("empty keys are rejected"),
    }
    client.close();
    Ok(())
}
