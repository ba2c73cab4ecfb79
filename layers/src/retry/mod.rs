//! Retry with client-go's typed, budgeted backoff.
//!
//! [`Retry`] sends a request down (normally to the route layer) and, when an attempt fails,
//! asks a [`RetryPolicy`] what to do. The default [`ClientGoRetry`] follows the hint the
//! route layer attached from the region-error matrix ([`matrix`]): retry at once, back off
//! with a typed [`BackoffKind`] then retry, re-locate (for a shard
//! pinned to a region: return the stale-route error so the shard layer re-splits), or give
//! up. Every backoff is charged to the operation's one budget in
//! [`OpState`](crate::OpState), shared by all shards; when it is spent the request fails
//! with [`Error::BackoffExhausted`] naming the kinds and last errors. `is_retry_request`
//! is stamped by the route layer on every attempt after the first.
//!
//! client-go counterpart: the loop of `RegionRequestSender.SendReqCtx` (its `next()`
//! handling of send failures and region errors) plus the callers' `bo.Backoff(BoRegionMiss)`
//! re-locate loops (e.g. `rawkv.sendReq`).
//!
//! # Example
//!
//! ```
//! # use std::sync::Arc;
//! # use tikv_tower_proto::metapb;
//! # use tikv_tower_layers::testing::StaticLocator;
//! use std::time::Duration;
//! use tikv_tower_layers::retry::RetryLayer;
//! use tikv_tower_layers::route::{RouteConfig, RouteLayer};
//! use tikv_tower_layers::{Request, StoreCall, TransportError};
//! use tikv_tower_proto::errorpb;
//! use tikv_tower_proto::kvrpcpb::RawGetRequest;
//! use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
//! use tower::{Layer, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tikv_tower_layers::Error> {
//! # let region_cache = StaticLocator::split_at(&[]);
//! // Store 1, the cached leader, has lost leadership to store 2.
//! let transport = tower::service_fn(|call: StoreCall| async move {
//!     let mut reply = StoreResponse::default_for(call.request.kind());
//!     if call.store_id == 1 {
//!         let leader = Some(metapb::Peer { id: 12, store_id: 2, ..Default::default() });
//!         let not_leader = Some(errorpb::NotLeader { region_id: 1, leader });
//!         reply.set_region_error(errorpb::Error { not_leader, ..Default::default() });
//!     }
//!     Ok::<_, TransportError>(reply)
//! });
//! let route_service = RouteLayer::new(region_cache, RouteConfig::default()).layer(transport);
//! let svc = ServiceBuilder::new().layer(RetryLayer::new()).service(route_service);
//! let get = StoreRequest::from(RawGetRequest { key: "k".into(), ..Default::default() });
//! let resp = svc.oneshot(Request::new(get)).await?;
//! // `NotLeader` naming the new leader: retried there at once, nothing slept.
//! assert_eq!((resp.details.attempts, resp.details.store_id), (2, Some(2)));
//! assert_eq!(resp.details.backoff, Duration::ZERO);
//! # Ok(())
//! # }
//! ```

pub mod backoff;
pub mod matrix;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tower::ServiceExt;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{Error, RetryHint};
use crate::locate::LocateError;
use crate::request::{Request, Response};
use backoff::BackoffKind;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAction {
    /// Return the error to the caller.
    Return,
    /// Retry at once.
    Now,
    /// Back off, then retry.
    Backoff(BackoffKind),
    /// Back off if given, then re-locate (pinned shards: return to the shard layer).
    Relocate(Option<BackoffKind>),
}

/// Decides whether and how to retry (a per-stack policy; per-operation memory lives in
/// the request's [`OpState`](crate::OpState)).
pub trait RetryPolicy: Clone + Send + Sync + 'static {
    /// The action for `err`, the `attempt`-th failure of `req`.
    fn decide(&self, req: &Request, err: &Error, attempt: u32) -> RetryAction;
}

/// client-go's behaviour: follow the matrix's hints; PD failures back off `BoPDRPC`.
#[derive(Debug, Clone, Copy)]
pub struct ClientGoRetry {
    /// Hard cap on attempts per shard, a guard against hint loops (the budget normally
    /// ends retries first).
    pub max_attempts: u32,
}

impl Default for ClientGoRetry {
    fn default() -> Self {
        ClientGoRetry { max_attempts: 128 }
    }
}

impl RetryPolicy for ClientGoRetry {
    fn decide(&self, _req: &Request, err: &Error, attempt: u32) -> RetryAction {
        if attempt >= self.max_attempts {
            return RetryAction::Return;
        }
        match err {
            Error::Region { hint, .. } | Error::SendFailed { hint, .. } => match *hint {
                RetryHint::Now => RetryAction::Now,
                RetryHint::Backoff(k) => RetryAction::Backoff(k),
                RetryHint::Relocate(k) => RetryAction::Relocate(k),
                RetryHint::Fail => RetryAction::Return,
            },
            Error::RegionUnavailable(_) => RetryAction::Relocate(Some(BackoffKind::RegionMiss)),
            Error::Locate(LocateError::Pd(_)) => RetryAction::Backoff(BackoffKind::PdRpc),
            Error::Locate(LocateError::RegionNotFound(_)) => {
                RetryAction::Backoff(BackoffKind::RegionMiss)
            }
            Error::Locate(LocateError::StoreNotFound(_)) => {
                RetryAction::Relocate(Some(BackoffKind::RegionMiss))
            }
            _ => RetryAction::Return,
        }
    }
}

/// Layer adding [`Retry`].
#[derive(Debug, Clone, Default)]
pub struct RetryLayer<P = ClientGoRetry> {
    policy: P,
}

impl RetryLayer {
    /// client-go's retry behaviour.
    pub fn new() -> Self {
        RetryLayer {
            policy: ClientGoRetry::default(),
        }
    }
}

impl<P> RetryLayer<P> {
    /// A custom policy.
    pub fn with_policy(policy: P) -> Self {
        RetryLayer { policy }
    }
}

impl<S, P: Clone> Layer<S> for RetryLayer<P> {
    type Service = Retry<S, P>;
    fn layer(&self, inner: S) -> Self::Service {
        Retry {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// The retry service (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct Retry<S, P = ClientGoRetry> {
    inner: S,
    policy: P,
}

/// Boxed future of the loop layers (one allocation per logical call).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, P> Service<Request> for Retry<S, P>
where
    S: Service<Request, Response = Response, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
    P: RetryPolicy,
{
    type Response = Response;
    type Error = Error;
    type Future = BoxFuture<Result<Response, Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let inner = self.inner.clone();
        let policy = self.policy.clone();
        Box::pin(retry_loop(inner, policy, req))
    }
}

async fn retry_loop<S, P>(inner: S, policy: P, req: Request) -> Result<Response, Error>
where
    S: Service<Request, Response = Response, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
    P: RetryPolicy,
{
    let mut failures = 0u32;
    loop {
        req.op.check_deadline()?;
        let err = match inner.clone().oneshot(req.clone()).await {
            Ok(mut resp) => {
                resp.details.backoff = req.op.total_sleep();
                return Ok(resp);
            }
            Err(e) => e,
        };
        failures += 1;
        match policy.decide(&req, &err, failures) {
            RetryAction::Return => return Err(err.finalize()),
            RetryAction::Now => {}
            RetryAction::Backoff(kind) => {
                req.op.backoff(kind, &err).await?;
            }
            RetryAction::Relocate(kind) => {
                if let Some(kind) = kind {
                    req.op.backoff(kind, &err).await?;
                }
                if req.target.is_pinned() {
                    // The shard layer re-splits with the refreshed cache.
                    return Err(err);
                }
            }
        }
        tracing::debug!(attempt = failures, error = %err, "retrying store request");
    }
}
