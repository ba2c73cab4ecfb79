//! User interceptors: see or modify a request before it goes down, and its reply after.
//!
//! An [`InterceptLayer`] runs an ordered chain of [`Interceptor`]s like an onion: `before`
//! hooks run first-to-last, `after` hooks last-to-first. A `before` hook may refuse the
//! request: the request is not sent, and the interceptors that already ran see the
//! [`Error::Intercepted`] in their `after` hooks. Interceptors operate on the logical
//! [`Request`] (kind, target, context, op state), so they also see per-operation tags.
//!
//! client-go counterpart: `tikvrpc/interceptor` (`RPCInterceptor`,
//! `RPCInterceptorChain`, `interceptor.WithRPCInterceptor`), whose functions wrap the next
//! interceptor and can return early.
//!
//! # Example
//!
//! ```
//! use tikv_tower_layers::intercept::{InterceptLayer, before_fn};
//! let layer = InterceptLayer::new()
//!     .push(before_fn("deny-empty-source", |req| {
//!         if req.op.tags().request_source.is_none() { Err("request source required".into()) } else { Ok(()) }
//!     }));
//! # let _ = layer;
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::Error;
use crate::request::{Request, Response};

/// A user interceptor.
pub trait Interceptor: Send + Sync + 'static {
    /// A name (reported when it refuses a request).
    fn name(&self) -> &str;
    /// Inspect or modify the request; `Err(reason)` refuses it.
    fn before(&self, _req: &mut Request) -> Result<(), String> {
        Ok(())
    }
    /// Inspect or modify the outcome.
    fn after(&self, _result: &mut Result<Response, Error>) {}
}

struct BeforeFn<F> {
    name: String,
    f: F,
}

impl<F> Interceptor for BeforeFn<F>
where
    F: Fn(&mut Request) -> Result<(), String> + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn before(&self, req: &mut Request) -> Result<(), String> {
        (self.f)(req)
    }
}

/// An interceptor from a `before` closure.
pub fn before_fn<F>(name: impl Into<String>, f: F) -> impl Interceptor
where
    F: Fn(&mut Request) -> Result<(), String> + Send + Sync + 'static,
{
    BeforeFn {
        name: name.into(),
        f,
    }
}

type Chain = Arc<[Arc<dyn Interceptor>]>;

/// Layer adding [`Intercept`].
#[derive(Clone)]
pub struct InterceptLayer {
    chain: Chain,
}

impl Default for InterceptLayer {
    fn default() -> Self {
        InterceptLayer {
            chain: Arc::from(Vec::<Arc<dyn Interceptor>>::new()),
        }
    }
}

impl fmt::Debug for InterceptLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.chain.iter().map(|i| i.name().to_string()))
            .finish()
    }
}

impl InterceptLayer {
    /// An empty chain.
    pub fn new() -> Self {
        Self::default()
    }
    /// Append an interceptor (runs after those already in the chain).
    pub fn push(self, i: impl Interceptor) -> Self {
        self.push_arc(Arc::new(i))
    }
    /// Append a shared interceptor.
    pub fn push_arc(self, i: Arc<dyn Interceptor>) -> Self {
        let mut v: Vec<Arc<dyn Interceptor>> = self.chain.iter().cloned().collect();
        v.push(i);
        InterceptLayer {
            chain: Arc::from(v),
        }
    }
    /// Number of interceptors.
    pub fn len(&self) -> usize {
        self.chain.len()
    }
    /// Whether the chain is empty.
    pub fn is_empty(&self) -> bool {
        self.chain.is_empty()
    }
}

impl<S> Layer<S> for InterceptLayer {
    type Service = Intercept<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Intercept {
            inner,
            chain: self.chain.clone(),
        }
    }
}

/// The interceptor service (see the [module docs](self)).
#[derive(Clone)]
pub struct Intercept<S> {
    inner: S,
    chain: Chain,
}

impl<S: fmt::Debug> fmt::Debug for Intercept<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intercept")
            .field("inner", &self.inner)
            .field("len", &self.chain.len())
            .finish()
    }
}

impl<S> Service<Request> for Intercept<S>
where
    S: Service<Request, Response = Response, Error = Error>,
{
    type Response = Response;
    type Error = Error;
    type Future = InterceptFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        for (i, icp) in self.chain.iter().enumerate() {
            if let Err(message) = icp.before(&mut req) {
                return InterceptFuture {
                    inner: None,
                    refused: Some(Error::Intercepted {
                        name: icp.name().to_string(),
                        message,
                    }),
                    chain: self.chain.clone(),
                    ran: i,
                };
            }
        }
        InterceptFuture {
            inner: Some(self.inner.call(req)),
            refused: None,
            chain: self.chain.clone(),
            ran: self.chain.len(),
        }
    }
}

pin_project! {
    /// Response future of [`Intercept`].
    pub struct InterceptFuture<F> {
        #[pin]
        inner: Option<F>,
        refused: Option<Error>,
        chain: Chain,
        ran: usize,
    }
}

impl<F> Future for InterceptFuture<F>
where
    F: Future<Output = Result<Response, Error>>,
{
    type Output = Result<Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut out = match this.inner.as_pin_mut() {
            Some(f) => match f.poll(cx) {
                Poll::Ready(r) => r,
                Poll::Pending => return Poll::Pending,
            },
            None => Err(this.refused.take().unwrap_or_else(|| {
                Error::Unexpected("interceptor future polled after completion".into())
            })),
        };
        for icp in this.chain[..*this.ran].iter().rev() {
            icp.after(&mut out);
        }
        Poll::Ready(out)
    }
}
