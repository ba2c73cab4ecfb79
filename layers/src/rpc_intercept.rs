//! Interceptors of every store RPC attempt (client-go `tikvrpc/interceptor`).
//!
//! An [`RpcInterceptLayer`] sits below the route layer, where a request has become a
//! [`StoreCall`]: one RPC attempt addressed to one store, its `Context` stamped with the
//! region, epoch and peer. Every attempt passes it — the first one, each retry, each
//! shard of a split request — so an interceptor sees exactly the RPCs that go out, with
//! their target store address ([`RpcInfo`]).
//!
//! The chain runs like client-go's `RPCInterceptorChain`, as an onion: `before` hooks run
//! first-to-last and may modify the call or answer it themselves
//! ([`ControlFlow::Break`] with a reply or a transport error: the store is not called, as
//! when a Go interceptor returns without calling `next`); `after` hooks of the
//! interceptors that ran see the outcome last-to-first and may replace it. A replaced
//! reply is classified by the layers above like a store's (a region error in it is
//! retried).
//!
//! The per-operation hook (once per logical operation, before sharding and retry) is a
//! different layer: [`intercept`](crate::intercept).
//!
//! # Example
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use tikv_tower_layers::rpc_intercept::{RpcInterceptLayer, RpcInterceptor, RpcInfo};
//! use tikv_tower_layers::{StoreCall, TransportError};
//! use tikv_tower_proto::kvrpcpb::RawGetRequest;
//! use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
//! use tower::{Layer, ServiceExt};
//!
//! /// Records where each attempt went.
//! #[derive(Default)]
//! struct Audit(Mutex<Vec<(Arc<str>, u64)>>);
//! impl RpcInterceptor for Audit {
//!     fn name(&self) -> &str { "audit" }
//!     fn after(&self, info: &RpcInfo, _reply: &mut Result<StoreResponse, TransportError>) {
//!         self.0.lock().unwrap().push((info.addr.clone(), info.region_id));
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let audit = Arc::new(Audit::default());
//! let store = tower::service_fn(|call: StoreCall| async move {
//!     Ok::<_, TransportError>(StoreResponse::default_for(call.request.kind()))
//! });
//! let svc = RpcInterceptLayer::new().push_arc(audit.clone()).layer(store);
//! let mut request = StoreRequest::from(RawGetRequest::default());
//! request.context_mut().region_id = 7;
//! let call = StoreCall { store_id: 1, addr: "store-1".into(), request, timeout: None };
//! svc.oneshot(call).await.unwrap();
//! assert_eq!(*audit.0.lock().unwrap(), vec![(Arc::from("store-1"), 7)]);
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tikv_tower_proto::rpc::{RpcKind, StoreResponse};
use tower_layer::Layer;
use tower_service::Service;

use crate::call::{StoreCall, TransportError};

/// What an interceptor learns about an attempt (kept for its `after` hook, since the call
/// itself has gone to the store).
#[derive(Debug, Clone)]
pub struct RpcInfo {
    /// The RPC kind.
    pub kind: RpcKind,
    /// The target store.
    pub store_id: u64,
    /// Its address.
    pub addr: Arc<str>,
    /// The region the call is addressed to (`Context.region_id`).
    pub region_id: u64,
    /// `Context.is_retry_request`: whether an earlier attempt of this shard failed.
    pub is_retry: bool,
}

impl RpcInfo {
    /// The facts of `call`.
    pub fn of(call: &StoreCall) -> RpcInfo {
        let ctx = call.request.context();
        RpcInfo {
            kind: call.request.kind(),
            store_id: call.store_id,
            addr: call.addr.clone(),
            region_id: ctx.map_or(0, |c| c.region_id),
            is_retry: ctx.is_some_and(|c| c.is_retry_request),
        }
    }
}

/// The outcome of one attempt as interceptors see it.
pub type RpcResult = Result<StoreResponse, TransportError>;

/// An interceptor of store RPC attempts (client-go `interceptor.RPCInterceptor`).
pub trait RpcInterceptor: Send + Sync + 'static {
    /// A name (logs, debugging).
    fn name(&self) -> &str;
    /// Inspect or modify the call before it is sent; `Break(outcome)` answers it without
    /// calling the store.
    fn before(&self, _call: &mut StoreCall) -> ControlFlow<RpcResult> {
        ControlFlow::Continue(())
    }
    /// Inspect or replace the outcome.
    fn after(&self, _info: &RpcInfo, _outcome: &mut RpcResult) {}
}

type Chain = Arc<[Arc<dyn RpcInterceptor>]>;

/// Layer adding [`RpcIntercept`].
#[derive(Clone)]
pub struct RpcInterceptLayer {
    chain: Chain,
}

impl Default for RpcInterceptLayer {
    fn default() -> Self {
        RpcInterceptLayer {
            chain: Arc::from(Vec::<Arc<dyn RpcInterceptor>>::new()),
        }
    }
}

impl fmt::Debug for RpcInterceptLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.chain.iter().map(|i| i.name().to_string()))
            .finish()
    }
}

impl RpcInterceptLayer {
    /// An empty chain (calls pass straight through).
    pub fn new() -> Self {
        Self::default()
    }
    /// Append an interceptor (runs after those already in the chain).
    pub fn push(self, i: impl RpcInterceptor) -> Self {
        self.push_arc(Arc::new(i))
    }
    /// Append a shared interceptor.
    pub fn push_arc(self, i: Arc<dyn RpcInterceptor>) -> Self {
        let mut v: Vec<Arc<dyn RpcInterceptor>> = self.chain.iter().cloned().collect();
        v.push(i);
        RpcInterceptLayer {
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

impl<S> Layer<S> for RpcInterceptLayer {
    type Service = RpcIntercept<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RpcIntercept {
            inner,
            chain: self.chain.clone(),
        }
    }
}

/// The interceptor service (see the [module docs](self)).
#[derive(Clone)]
pub struct RpcIntercept<S> {
    inner: S,
    chain: Chain,
}

impl<S: fmt::Debug> fmt::Debug for RpcIntercept<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcIntercept")
            .field("inner", &self.inner)
            .field("len", &self.chain.len())
            .finish()
    }
}

impl<S> Service<StoreCall> for RpcIntercept<S>
where
    S: Service<StoreCall, Response = StoreResponse, Error = TransportError>,
{
    type Response = StoreResponse;
    type Error = TransportError;
    type Future = RpcInterceptFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut call: StoreCall) -> Self::Future {
        if self.chain.is_empty() {
            return RpcInterceptFuture {
                inner: Some(self.inner.call(call)),
                answered: None,
                info: None,
                chain: self.chain.clone(),
                ran: 0,
            };
        }
        for (i, icp) in self.chain.iter().enumerate() {
            if let ControlFlow::Break(outcome) = icp.before(&mut call) {
                return RpcInterceptFuture {
                    inner: None,
                    answered: Some(outcome),
                    info: Some(RpcInfo::of(&call)),
                    chain: self.chain.clone(),
                    ran: i + 1,
                };
            }
        }
        let info = RpcInfo::of(&call);
        RpcInterceptFuture {
            inner: Some(self.inner.call(call)),
            answered: None,
            info: Some(info),
            chain: self.chain.clone(),
            ran: self.chain.len(),
        }
    }
}

pin_project! {
    /// Response future of [`RpcIntercept`].
    pub struct RpcInterceptFuture<F> {
        #[pin]
        inner: Option<F>,
        answered: Option<RpcResult>,
        info: Option<RpcInfo>,
        chain: Chain,
        ran: usize,
    }
}

impl<F> Future for RpcInterceptFuture<F>
where
    F: Future<Output = RpcResult>,
{
    type Output = RpcResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut out = match this.inner.as_pin_mut() {
            Some(f) => match f.poll(cx) {
                Poll::Ready(r) => r,
                Poll::Pending => return Poll::Pending,
            },
            None => this
                .answered
                .take()
                .unwrap_or(Err(TransportError::Canceled)),
        };
        if let Some(info) = this.info.as_ref() {
            for icp in this.chain[..*this.ran].iter().rev() {
                icp.after(info, &mut out);
            }
        }
        Poll::Ready(out)
    }
}
