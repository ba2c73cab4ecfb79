//! Rate and concurrency limits.
//!
//! [`RateLimitLayer`] paces requests with `governor`'s GCRA limiters: one *global* quota
//! for everything passing the layer, and optionally one quota *per store*. It works on
//! any request type implementing [`LimitKey`]: at the [`Request`] level (above the
//! route layer) there is no store yet, so only the global quota applies; at the
//! [`StoreCall`] level (below the route layer) the per-store quota applies too. A request
//! waits (asynchronously) until its quotas allow it; nothing is dropped.
//!
//! Concurrency limits are tower's own `ConcurrencyLimitLayer` (re-exported as
//! [`ConcurrencyLimitLayer`]): at the request level it bounds logical operations in
//! flight, at the store-call level RPCs in flight (client-go's per-store token limit,
//! `StoreLimit`).
//!
//! Note: governor uses the real clock; tokio's paused time does not advance it.
//!
//! # Example
//!
//! ```
//! use std::num::NonZeroU32;
//! use tikv_tower_layers::limit::{Quota, RateLimitLayer};
//! let layer = RateLimitLayer::new()
//!     .global(Quota::per_second(NonZeroU32::new(10_000).unwrap()))
//!     .per_store(Quota::per_second(NonZeroU32::new(2_000).unwrap()));
//! # let _ = layer;
//! ```

use std::sync::Arc;
use std::task::{Context, Poll};

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, RateLimiter};
use tower::ServiceExt;
use tower_layer::Layer;
use tower_service::Service;

pub use governor::Quota;
pub use tower::limit::ConcurrencyLimitLayer;

use crate::call::StoreCall;
use crate::request::Request;
use crate::retry::BoxFuture;

/// The key a request is rate-limited under besides the global quota.
pub trait LimitKey {
    /// The store id, when known.
    fn limit_key(&self) -> Option<u64>;
}

impl LimitKey for Request {
    fn limit_key(&self) -> Option<u64> {
        None
    }
}

impl LimitKey for StoreCall {
    fn limit_key(&self) -> Option<u64> {
        Some(self.store_id)
    }
}

/// Layer adding [`RateLimit`].
#[derive(Clone, Default)]
pub struct RateLimitLayer {
    global: Option<Arc<DefaultDirectRateLimiter>>,
    per_store: Option<Arc<DefaultKeyedRateLimiter<u64>>>,
}

impl std::fmt::Debug for RateLimitLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("global", &self.global.is_some())
            .field("per_store", &self.per_store.is_some())
            .finish()
    }
}

impl RateLimitLayer {
    /// No limits yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// Limit everything through this layer to `quota`.
    pub fn global(mut self, quota: Quota) -> Self {
        self.global = Some(Arc::new(RateLimiter::direct(quota)));
        self
    }
    /// Limit each store to `quota` (store-call level).
    pub fn per_store(mut self, quota: Quota) -> Self {
        self.per_store = Some(Arc::new(RateLimiter::keyed(quota)));
        self
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            limits: self.clone(),
        }
    }
}

/// The rate-limiting service (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct RateLimit<S> {
    inner: S,
    limits: RateLimitLayer,
}

impl<S, R> Service<R> for RateLimit<S>
where
    R: LimitKey + Send + 'static,
    S: Service<R> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: R) -> Self::Future {
        let inner = self.inner.clone();
        let limits = self.limits.clone();
        Box::pin(async move {
            if let Some(g) = &limits.global {
                g.until_ready().await;
            }
            if let (Some(k), Some(p)) = (req.limit_key(), &limits.per_store) {
                p.until_key_ready(&k).await;
            }
            inner.oneshot(req).await
        })
    }
}
