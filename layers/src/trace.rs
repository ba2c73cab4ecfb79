//! Tracing: one span per logical operation, one per RPC attempt.
//!
//! [`TraceLayer`] opens the operation span `tikv.op` (stored in the request's
//! [`OpState`], so every shard and attempt nests under it) and records, when the
//! operation ends, its outcome, the number of RPCs and the backoff slept. The route layer
//! opens a `tikv.rpc` span per attempt ([`rpc_span`]) with the region, the store address,
//! the attempt number and the outcome (`ok`, a region-error label, `send_failed`).
//!
//! Attributes follow the OpenTelemetry database semantic conventions: `db.system =
//! "tikv"`, `db.operation` (the RPC name, e.g. `RawBatchGet`), `server.address`,
//! `otel.kind = "client"`, `otel.status_code` on failure, plus `tikv.region_id`,
//! `tikv.attempt`. With the crate feature `otel`, `otel::layer` returns the
//! `tracing-opentelemetry` subscriber layer that exports these spans through an
//! OpenTelemetry tracer.
//!
//! client-go counterpart: the opentracing spans of `RegionRequestSender`
//! (`regionRequest.SendReqCtx`, `tikv.onRegionError`, `regionRequest.onSendFail`) and the
//! `TraceExecDetails`.
//!
//! # Example
//!
//! ```
//! use tikv_tower_layers::trace::TraceLayer;
//! use tikv_tower_layers::{Error, Request, Response};
//! use tikv_tower_proto::kvrpcpb::RawGetRequest;
//! use tikv_tower_proto::rpc::{RpcKind, StoreRequest, StoreResponse};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tikv_tower_layers::Error> {
//! // Spans are recorded under a subscriber (e.g. `otel::layer` with the `otel` feature).
//! let _guard = tracing::subscriber::set_default(tracing_subscriber::registry());
//! // Below the trace layer (a stand-in for the rest of the stack here), every shard and
//! // attempt runs inside the operation span kept in the request's `OpState`.
//! let inner = tower::service_fn(|req: Request| async move {
//!     assert_eq!(req.op.span().metadata().map(|m| m.name()), Some("tikv.op"));
//!     assert_eq!(tracing::Span::current().id(), req.op.span().id());
//!     let inner = StoreResponse::default_for(RpcKind::RawGet);
//!     Ok::<_, Error>(Response { inner, details: Default::default() })
//! });
//! let svc = tower::ServiceBuilder::new().layer(TraceLayer::new()).service(inner);
//! let get = StoreRequest::from(RawGetRequest { key: "k".into(), ..Default::default() });
//! svc.oneshot(Request::new(get)).await?;
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tikv_tower_proto::rpc::RpcKind;
use tower_layer::Layer;
use tower_service::Service;
use tracing::instrument::Instrumented;
use tracing::{field, Instrument, Span};

use crate::error::Error;
use crate::request::{OpState, Request, Response};

/// The operation span for a request of `kind`.
pub fn op_span(kind: RpcKind) -> Span {
    tracing::info_span!(
        "tikv.op",
        otel.name = kind.as_str(),
        otel.kind = "client",
        otel.status_code = field::Empty,
        db.system = "tikv",
        db.operation = kind.as_str(),
        tikv.rpcs = field::Empty,
        tikv.backoff_ms = field::Empty,
        outcome = field::Empty,
    )
}

/// The span of one RPC attempt, child of the operation span when there is one.
pub fn rpc_span(op: &OpState, kind: RpcKind, region_id: u64, addr: &str, attempt: u32) -> Span {
    let parent = op.span();
    macro_rules! make {
        ($($parent:tt)*) => {
            tracing::debug_span!(
                $($parent)*
                "tikv.rpc",
                otel.kind = "client",
                otel.status_code = field::Empty,
                db.system = "tikv",
                db.operation = kind.as_str(),
                server.address = addr,
                tikv.region_id = region_id,
                tikv.attempt = attempt,
                outcome = field::Empty,
            )
        };
    }
    match parent.id() {
        Some(id) => make!(parent: id,),
        None => make!(),
    }
}

/// Record an attempt's or operation's outcome on `span`.
pub fn record_outcome(span: &Span, outcome: &str) {
    span.record("outcome", outcome);
    if outcome != "ok" {
        span.record("otel.status_code", "ERROR");
    }
}

/// Layer adding [`Trace`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceLayer {
    _priv: (),
}

impl TraceLayer {
    /// A trace layer.
    pub fn new() -> Self {
        TraceLayer::default()
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Trace { inner }
    }
}

/// The tracing service (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct Trace<S> {
    inner: S,
}

impl<S> Service<Request> for Trace<S>
where
    S: Service<Request, Response = Response, Error = Error>,
{
    type Response = Response;
    type Error = Error;
    type Future = TraceFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let kind = req.inner.kind();
        let span = req.op.init_span(|| op_span(kind));
        let op = req.op.clone();
        let fut = {
            let _enter = span.enter();
            self.inner.call(req)
        };
        TraceFuture {
            inner: fut.instrument(span.clone()),
            span,
            op,
        }
    }
}

pin_project! {
    /// Response future of [`Trace`].
    pub struct TraceFuture<F> {
        #[pin]
        inner: Instrumented<F>,
        span: Span,
        op: Arc<OpState>,
    }
}

impl<F> Future for TraceFuture<F>
where
    F: Future<Output = Result<Response, Error>>,
{
    type Output = Result<Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let span: &Span = this.span;
        let op: &OpState = this.op;
        let out = match this.inner.poll(cx) {
            Poll::Ready(out) => out,
            Poll::Pending => return Poll::Pending,
        };
        span.record("tikv.rpcs", op.rpcs());
        span.record("tikv.backoff_ms", op.total_sleep().as_millis() as u64);
        match &out {
            Ok(_) => record_outcome(span, "ok"),
            Err(e) => {
                let label = e.region_error_kind().map_or("error", |k| k.label());
                record_outcome(span, label);
                tracing::debug!(parent: span, error = %e, "tikv operation failed");
            }
        }
        Poll::Ready(out)
    }
}

/// OpenTelemetry export (crate feature `otel`).
#[cfg(feature = "otel")]
pub mod otel {
    use tracing_subscriber::registry::LookupSpan;

    /// The `tracing-opentelemetry` layer exporting tikv-tower's spans through `tracer`;
    /// add it to a `tracing_subscriber::Registry`.
    pub fn layer<S, T>(tracer: T) -> tracing_opentelemetry::OpenTelemetryLayer<S, T>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
        T: opentelemetry::trace::Tracer + 'static,
        T::Span: Send + Sync,
    {
        tracing_opentelemetry::layer().with_tracer(tracer)
    }
}
