//! Per-command RPC timeouts and `max_execution_duration_ms`.
//!
//! [`Timeouts`] holds client-go's defaults: `ReadTimeoutShort` (30 s) for requests that
//! read or write a few keys, `ReadTimeoutMedium` (60 s) for requests that may scan a
//! region, `ReadTimeoutLong` (150 s, older client-go) for region-wide maintenance
//! (checksum, destroy range, split), and `MaxWriteExecutionTime` (20 s: short minus 10 s)
//! as the server-side execution budget of writes. Overrides per [`RpcKind`] are allowed.
//!
//! [`Timeout`] works at both levels of the stack:
//!
//! - as a `Service<Request>` (above the route layer) it fills the request's per-RPC
//!   timeout with the kind's default when the caller set none, and stamps
//!   `Context.max_execution_duration_ms` when unset (writes: `MaxWriteExecutionTime`,
//!   capped by the timeout; reads: the timeout), client-go `SendReqCtx`;
//! - as a `Service<StoreCall>` (below the route layer, above the transport) it enforces
//!   the call's timeout (already capped by the operation deadline by the route layer) with
//!   tokio's timer, failing with [`TransportError::Timeout`], which the retry layer treats
//!   as a send failure (client-go's per-RPC context deadline).
//!
//! # Example
//!
//! ```
//! # use std::sync::Arc;
//! # use tikv_tower_proto::metapb;
//! # use tikv_tower_layers::testing::StaticLocator;
//! use tikv_tower_layers::route::{RouteConfig, RouteLayer};
//! use tikv_tower_layers::timeout::{TimeoutLayer, Timeouts, READ_TIMEOUT_SHORT};
//! use tikv_tower_layers::{Error, Request, StoreCall, TransportError};
//! use tikv_tower_proto::kvrpcpb::RawGetRequest;
//! use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! # let region_cache = StaticLocator::split_at(&[]);
//! // A store that never answers.
//! let transport = tower::service_fn(|call: StoreCall| async move {
//!     // The request-level layer chose the kind's default timeout and the server-side budget.
//!     assert_eq!(call.timeout, Some(READ_TIMEOUT_SHORT));
//!     assert_eq!(call.request.context().map(|c| c.max_execution_duration_ms), Some(30_000));
//!     std::future::pending::<Result<StoreResponse, TransportError>>().await
//! });
//! let t = TimeoutLayer::new(Timeouts::default());
//! let svc = tower::ServiceBuilder::new()
//!     .layer(t.clone())
//!     // (the shard and retry layers go here)
//!     .layer(RouteLayer::new(region_cache, RouteConfig::default()))
//!     .layer(t)
//!     .service(transport);
//! let get = StoreRequest::from(RawGetRequest { key: "k".into(), ..Default::default() });
//! let err = svc.oneshot(Request::new(get)).await.unwrap_err();
//! // The call-level layer gave up after 30 s: a send failure for the retry layer.
//! assert!(matches!(err, Error::SendFailed { source: TransportError::Timeout { .. }, .. }));
//! # }
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tikv_tower_proto::rpc::{RpcKind, StoreResponse};
use tokio::time::Sleep;
use tower_layer::Layer;
use tower_service::Service;

use crate::call::{StoreCall, TransportError};
use crate::request::Request;

/// client-go `ReadTimeoutShort`.
pub const READ_TIMEOUT_SHORT: Duration = Duration::from_secs(30);
/// client-go `ReadTimeoutMedium`.
pub const READ_TIMEOUT_MEDIUM: Duration = Duration::from_secs(60);
/// client-go `ReadTimeoutLong` (older releases).
pub const READ_TIMEOUT_LONG: Duration = Duration::from_secs(150);
/// client-go `MaxWriteExecutionTime`.
pub const MAX_WRITE_EXECUTION_TIME: Duration = Duration::from_secs(20);

/// Timeout table.
#[derive(Debug, Clone)]
pub struct Timeouts {
    /// Few-key requests.
    pub short: Duration,
    /// Region-scanning requests.
    pub medium: Duration,
    /// Region-wide maintenance.
    pub long: Duration,
    /// Server-side execution budget stamped on writes.
    pub max_write_execution: Duration,
    /// Per-kind overrides.
    pub overrides: HashMap<RpcKind, Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            short: READ_TIMEOUT_SHORT,
            medium: READ_TIMEOUT_MEDIUM,
            long: READ_TIMEOUT_LONG,
            max_write_execution: MAX_WRITE_EXECUTION_TIME,
            overrides: HashMap::new(),
        }
    }
}

impl Timeouts {
    /// The default timeout of a kind.
    pub fn for_kind(&self, kind: RpcKind) -> Duration {
        if let Some(t) = self.overrides.get(&kind) {
            return *t;
        }
        match kind {
            RpcKind::Scan
            | RpcKind::ScanLock
            | RpcKind::DeleteRange
            | RpcKind::RawScan
            | RpcKind::RawBatchScan
            | RpcKind::RawDeleteRange
            | RpcKind::Gc => self.medium,
            RpcKind::UnsafeDestroyRange | RpcKind::RawChecksum | RpcKind::SplitRegion => self.long,
            _ => self.short,
        }
    }
}

/// Layer adding [`Timeout`].
#[derive(Debug, Clone, Default)]
pub struct TimeoutLayer {
    timeouts: Arc<Timeouts>,
}

impl TimeoutLayer {
    /// With this table.
    pub fn new(timeouts: Timeouts) -> Self {
        TimeoutLayer {
            timeouts: Arc::new(timeouts),
        }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Timeout {
            inner,
            timeouts: self.timeouts.clone(),
        }
    }
}

/// The timeout service (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct Timeout<S> {
    inner: S,
    timeouts: Arc<Timeouts>,
}

impl<S> Service<Request> for Timeout<S>
where
    S: Service<Request>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let kind = req.inner.kind();
        let timeout = *req
            .timeout
            .get_or_insert_with(|| self.timeouts.for_kind(kind));
        let ctx = req.context_mut();
        if ctx.max_execution_duration_ms == 0 {
            let budget = if kind.is_read_only() {
                timeout
            } else {
                self.timeouts.max_write_execution.min(timeout)
            };
            ctx.max_execution_duration_ms = budget.as_millis() as u64;
        }
        self.inner.call(req)
    }
}

impl<S> Service<StoreCall> for Timeout<S>
where
    S: Service<StoreCall, Response = StoreResponse, Error = TransportError>,
{
    type Response = StoreResponse;
    type Error = TransportError;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut call: StoreCall) -> Self::Future {
        let after = *call
            .timeout
            .get_or_insert_with(|| self.timeouts.for_kind(call.request.kind()));
        let addr = call.addr.clone();
        TimeoutFuture {
            inner: self.inner.call(call),
            sleep: tokio::time::sleep(after),
            addr,
            after,
        }
    }
}

pin_project! {
    /// Response future of [`Timeout`] at the store-call level.
    pub struct TimeoutFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Sleep,
        addr: Arc<str>,
        after: Duration,
    }
}

impl<F> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<StoreResponse, TransportError>>,
{
    type Output = Result<StoreResponse, TransportError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.inner.poll(cx) {
            return Poll::Ready(out);
        }
        match this.sleep.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(TransportError::Timeout {
                addr: this.addr.clone(),
                elapsed: *this.after,
            })),
            Poll::Pending => Poll::Pending,
        }
    }
}
