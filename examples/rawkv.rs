//! client-go's `examples/rawkv`: put, get, delete, get again.
//!
//! ```text
//! cargo run --example rawkv                          # embedded in-process mockstore
//! cargo run --example rawkv -- --pd 127.0.0.1:2379   # a real cluster
//! ```

use clap::Parser;
use tikv_tower::RawClient;

#[derive(Parser)]
struct Args {
    /// PD endpoint(s); none = embedded mockstore.
    #[arg(long)]
    pd: Vec<String>,
}

#[tokio::main]
async fn main() -> tikv_tower::Result<()> {
    let args = Args::parse();
    let cli = RawClient::connect(args.pd).await?;
    println!("cluster ID: {}", cli.cluster_id());

    let key = b"Company".to_vec();
    let val = b"PingCAP".to_vec();

    // put key into tikv
    cli.put(key.clone(), val.clone()).await?;
    println!(
        "Successfully put {}:{} to tikv",
        String::from_utf8_lossy(&key),
        String::from_utf8_lossy(&val)
    );

    // get key from tikv
    let got = cli.get(key.clone()).await?;
    println!(
        "found val: {:?} for key: {}",
        got.as_deref().map(String::from_utf8_lossy),
        String::from_utf8_lossy(&key)
    );

    // delete key from tikv
    cli.delete(key.clone()).await?;
    println!("key: {} deleted", String::from_utf8_lossy(&key));

    // get key again from tikv
    let got = cli.get(key.clone()).await?;
    println!(
        "found val: {:?} for key: {}",
        got.as_deref().map(String::from_utf8_lossy),
        String::from_utf8_lossy(&key)
    );
    cli.close();
    Ok(())
}
