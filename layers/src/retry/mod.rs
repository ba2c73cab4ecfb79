//! Retry with client-go's typed, budgeted backoff.
//!
//! [`Retry`] sends a request down (normally to the route layer) and, when an attempt fails,
//! asks a [`RetrySession`] what to do. A session lives for one request (one shard) and is
//! made, on the first failure, by the [`RetryPolicy`] in effect: the request's own
//! ([`Request::with_retry_policy`](crate::Request::with_retry_policy)) or the layer's
//! (`StackConfig::retry`, the client builder's `retry_policy`) — scylla-rust-driver's
//! `RetryPolicy::new_session()` → `RetrySession`. The default [`ClientGoRetry`] makes a
//! [`ClientGoRetrySession`], which follows the [`Decision`] the route layer attached from
//! the region-error matrix ([`matrix`]) and the replica session: retry at once, back off
//! with a typed [`BackoffKind`] then retry, re-locate (for a shard pinned to a region:
//! return the stale-route error so the shard layer re-splits), or return the error. Every backoff is charged to the operation's one budget in
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

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::ServiceExt;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{Decision, Error};
use crate::request::{Request, Response};
use backoff::BackoffKind;

/// Makes a [`RetrySession`] per request (scylla's `RetryPolicy`). Shared by the stack.
pub trait RetryPolicy: Send + Sync + fmt::Debug + 'static {
    /// A session for `req` (called at its first failure only).
    fn new_session(&self, req: &Request) -> Box<dyn RetrySession>;
}

/// Decides, failure after failure of one request, what to do next (scylla's
/// `RetrySession`, client-go's `Backoffer` plus the sender's retry loop).
pub trait RetrySession: Send {
    /// The decision after `err`, the latest failure of `req`. The decision the route
    /// layer attached ([`Error::decision`]) is the region-error matrix' advice.
    fn decide(&mut self, req: &Request, err: &Error) -> Decision;
}

/// client-go's behaviour (the default policy): see [`ClientGoRetrySession`].
#[derive(Debug, Clone, Copy)]
pub struct ClientGoRetry {
    /// Hard cap on attempts per shard, a guard against decision loops (the budget
    /// normally ends retries first).
    pub max_attempts: u32,
}

impl Default for ClientGoRetry {
    fn default() -> Self {
        ClientGoRetry { max_attempts: 128 }
    }
}

impl RetryPolicy for ClientGoRetry {
    fn new_session(&self, _req: &Request) -> Box<dyn RetrySession> {
        Box::new(ClientGoRetrySession::new(self.max_attempts))
    }
}

/// client-go's retry session: follow the matrix' decision; a region with no replica left
/// re-locates after `BoRegionMiss`; lookup failures back off as
/// [`Decision::for_locate`] says (`BoPDRPC` for PD); everything else is returned.
#[derive(Debug, Clone)]
pub struct ClientGoRetrySession {
    failures: u32,
    max_attempts: u32,
}

impl ClientGoRetrySession {
    /// A session allowing at most `max_attempts` failures.
    pub fn new(max_attempts: u32) -> Self {
        ClientGoRetrySession {
            failures: 0,
            max_attempts,
        }
    }
}

impl RetrySession for ClientGoRetrySession {
    fn decide(&mut self, _req: &Request, err: &Error) -> Decision {
        self.failures += 1;
        if self.failures >= self.max_attempts {
            return Decision::Return;
        }
        match err {
            Error::Region { decision, .. } | Error::SendFailed { decision, .. } => *decision,
            Error::RegionUnavailable(_) => Decision::Relocate(Some(BackoffKind::RegionMiss)),
            Error::Locate(e) => Decision::for_locate(e),
            _ => Decision::Return,
        }
    }
}

/// Layer adding [`Retry`].
#[derive(Debug, Clone)]
pub struct RetryLayer {
    policy: Arc<dyn RetryPolicy>,
}

impl Default for RetryLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryLayer {
    /// client-go's retry behaviour.
    pub fn new() -> Self {
        RetryLayer {
            policy: Arc::new(ClientGoRetry::default()),
        }
    }

    /// A custom policy (requests may still bring their own).
    pub fn with_policy(policy: Arc<dyn RetryPolicy>) -> Self {
        RetryLayer { policy }
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Retry {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// The retry service (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct Retry<S> {
    inner: S,
    policy: Arc<dyn RetryPolicy>,
}

/// Boxed future of the loop layers (one allocation per logical call).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S> Service<Request> for Retry<S>
where
    S: Service<Request, Response = Response, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
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

async fn retry_loop<S>(
    mut inner: S,
    policy: Arc<dyn RetryPolicy>,
    mut req: Request,
) -> Result<Response, Error>
where
    S: Service<Request, Response = Response, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    // Made at the first failure: a request that succeeds at once pays nothing for it.
    let mut session: Option<Box<dyn RetrySession>> = None;
    loop {
        req.op.check_deadline()?;
        let err = match inner.ready().await?.call(req.clone()).await {
            Ok(mut resp) => {
                resp.details.backoff = req.op.total_sleep();
                return Ok(resp);
            }
            Err(e) => e,
        };
        let session = session.get_or_insert_with(|| {
            req.retry_policy
                .as_deref()
                .unwrap_or(&*policy)
                .new_session(&req)
        });
        match session.decide(&req, &err) {
            Decision::Return => return Err(err),
            Decision::Now => {}
            Decision::Backoff(kind) => {
                req.op.backoff(kind, &err).await?;
            }
            Decision::Relocate(kind) => {
                if let Some(kind) = kind {
                    req.op.backoff(kind, &err).await?;
                }
                if req.target.is_pinned() {
                    // The shard layer re-splits with the refreshed cache.
                    return Err(err);
                }
            }
        }
        req.attempt += 1;
        tracing::debug!(attempt = req.attempt, error = %err, "retrying store request");
    }
}
