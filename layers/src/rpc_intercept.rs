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

use std::ops::ControlFlow;
use std::sync::Arc;
use std::task::{Context, Poll};

use tikv_tower_proto::rpc::{RpcKind, StoreResponse};
use tower_service::Service;

use crate::call::{StoreCall, TransportError};
use crate::chain::{ChainFuture, ChainLayer, ChainService, Hook};

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

impl Hook for dyn RpcInterceptor {
    type Info = RpcInfo;
    type Outcome = RpcResult;
    const SERVICE: &'static str = "RpcIntercept";
    fn hook_name(&self) -> &str {
        self.name()
    }
    fn run_after(&self, info: &RpcInfo, outcome: &mut RpcResult) {
        self.after(info, outcome)
    }
    fn spent() -> RpcResult {
        Err(TransportError::Canceled)
    }
}

/// Layer adding [`RpcIntercept`] (the shared [`ChainLayer`] over [`RpcInterceptor`]s).
pub type RpcInterceptLayer = ChainLayer<dyn RpcInterceptor>;

impl ChainLayer<dyn RpcInterceptor> {
    /// Append an interceptor (runs after those already in the chain).
    pub fn push(self, i: impl RpcInterceptor) -> Self {
        self.push_arc(Arc::new(i))
    }
}

/// The interceptor service (see the [module docs](self)).
pub type RpcIntercept<S> = ChainService<S, dyn RpcInterceptor>;

/// Response future of [`RpcIntercept`].
pub type RpcInterceptFuture<F> = ChainFuture<F, dyn RpcInterceptor, RpcInfo, RpcResult>;

impl<S> Service<StoreCall> for ChainService<S, dyn RpcInterceptor>
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
            return ChainFuture::sent(self.inner.call(call), None, self.chain.clone(), 0);
        }
        for (i, icp) in self.chain.iter().enumerate() {
            if let ControlFlow::Break(outcome) = icp.before(&mut call) {
                // The answering interceptor's own `after` runs too.
                let info = RpcInfo::of(&call);
                return ChainFuture::answered(outcome, info, self.chain.clone(), i + 1);
            }
        }
        let info = RpcInfo::of(&call);
        let ran = self.chain.len();
        ChainFuture::sent(self.inner.call(call), Some(info), self.chain.clone(), ran)
    }
}
