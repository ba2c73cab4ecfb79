//! Insert your own tower layer into the RawKV stack: here one that counts logical
//! operations by kind and measures their latency.
//!
//! ```text
//! cargo run --example custom_layer                          # embedded mockstore
//! cargo run --example custom_layer -- --pd 127.0.0.1:2379
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::future::BoxFuture;
use tikv_tower::RawClient;
use tikv_tower_layers::{Request, Response};
use tower::{Layer, Service};

/// Per-kind statistics shared by the layer and the program.
#[derive(Default, Debug)]
struct Stats {
    by_kind: BTreeMap<&'static str, (u64, Duration)>,
}

/// The layer: configuration, cheap to clone.
#[derive(Clone)]
struct CountLayer {
    stats: Arc<Mutex<Stats>>,
}

impl<S> Layer<S> for CountLayer {
    type Service = Count<S>;
    fn layer(&self, inner: S) -> Count<S> {
        Count {
            inner,
            stats: self.stats.clone(),
        }
    }
}

/// The service: counts, times, forwards.
#[derive(Clone)]
struct Count<S> {
    inner: S,
    stats: Arc<Mutex<Stats>>,
}

impl<S> Service<Request> for Count<S>
where
    S: Service<Request, Response = Response> + Send,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let kind = req.inner.kind().as_str();
        let stats = self.stats.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let start = Instant::now();
            let out = fut.await;
            let mut s = stats.lock().unwrap_or_else(|e| e.into_inner());
            let e = s.by_kind.entry(kind).or_default();
            e.0 += 1;
            e.1 += start.elapsed();
            out
        })
    }
}

#[derive(Parser)]
struct Args {
    /// PD endpoint(s); none = embedded mockstore.
    #[arg(long)]
    pd: Vec<String>,
}

#[tokio::main]
async fn main() -> tikv_tower::Result<()> {
    let args = Args::parse();
    let stats = Arc::new(Mutex::new(Stats::default()));
    let client = RawClient::builder()
        .pd_endpoints(args.pd)
        .layer(CountLayer {
            stats: stats.clone(),
        })
        // Layers from tower work too.
        .layer(tower::limit::ConcurrencyLimitLayer::new(32))
        .build()
        .await?;

    for i in 0..100 {
        client.put(format!("k{i:03}"), "v").await?;
    }
    let keys: Vec<String> = (0..100).map(|i| format!("k{i:03}")).collect();
    client.batch_get(keys.clone()).await?;
    client.scan("k".., 50).await?;
    client.batch_delete(keys).await?;

    for (kind, (n, total)) in &stats.lock().unwrap_or_else(|e| e.into_inner()).by_kind {
        println!(
            "{kind:<16} {n:>4} ops, mean {:?}",
            *total / (*n as u32).max(1)
        );
    }
    client.close();
    Ok(())
}
