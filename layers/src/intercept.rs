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

use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;

use crate::chain::{ChainFuture, ChainLayer, ChainService, Hook};
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

impl Hook for dyn Interceptor {
    type Info = ();
    type Outcome = Result<Response, Error>;
    const SERVICE: &'static str = "Intercept";
    fn hook_name(&self) -> &str {
        self.name()
    }
    fn run_after(&self, _info: &(), outcome: &mut Self::Outcome) {
        self.after(outcome)
    }
    fn spent() -> Self::Outcome {
        Err(Error::Unexpected(
            "interceptor future polled after completion".into(),
        ))
    }
}

/// Layer adding [`Intercept`] (the shared [`ChainLayer`] over [`Interceptor`]s).
pub type InterceptLayer = ChainLayer<dyn Interceptor>;

impl ChainLayer<dyn Interceptor> {
    /// Append an interceptor (runs after those already in the chain).
    pub fn push(self, i: impl Interceptor) -> Self {
        self.push_arc(Arc::new(i))
    }
}

/// The interceptor service (see the [module docs](self)).
pub type Intercept<S> = ChainService<S, dyn Interceptor>;

/// Response future of [`Intercept`].
pub type InterceptFuture<F> = ChainFuture<F, dyn Interceptor, (), Result<Response, Error>>;

impl<S> Service<Request> for ChainService<S, dyn Interceptor>
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
                // The refusing interceptor's own `after` does not run.
                let refused = Error::Intercepted {
                    name: icp.name().to_string(),
                    message,
                };
                return ChainFuture::answered(Err(refused), (), self.chain.clone(), i);
            }
        }
        let ran = self.chain.len();
        ChainFuture::sent(self.inner.call(req), Some(()), self.chain.clone(), ran)
    }
}
