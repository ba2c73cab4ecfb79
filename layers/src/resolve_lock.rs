//! Resolving locks met by reads, then retrying.
//!
//! A transactional read (`Get`, `BatchGet`, `Scan`, `BufferBatchGet`) may answer a key
//! error carrying a lock (`KeyError.locked`) left by another transaction. [`ResolveLock`]
//! collects those locks from the reply, hands them to a [`LockResolver`] (the transaction
//! machinery: check the primary's status, commit or roll back the secondaries), records
//! the lock versions found resolved / committed in the operation's [`OpState`] (stamped
//! into `Context.resolved_locks` / `committed_locks` of the next attempts so the server
//! skips them), and retries. When some lock is still alive the resolver says how long to
//! wait; the layer backs off with `BoTxnLockFast` capped at that wait (client-go
//! `BackoffWithMaxSleepTxnLockFast(msBeforeExpired)`), charged to the shared budget.
//!
//! Other key errors (write conflicts, ...) are left in the reply for the protocols above.
//!
//! client-go counterpart: the lock-handling loops of `txnsnapshot.KVSnapshot.get`,
//! `batchGetSingleRegion` and `Scanner.getData` around `LockResolver.ResolveLocksWithOpts`.
//!
//! # Example
//!
//! ```ignore
//! use tikv_tower_layers::resolve_lock::ResolveLockLayer;
//! let layer = ResolveLockLayer::new(Arc::new(my_resolver));
//! ```

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::Either;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
use tower::util::Oneshot;
use tower::ServiceExt;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::Error;
use crate::request::{OpState, Request, Response};
use crate::retry::backoff::BackoffKind;
use crate::retry::BoxFuture;

/// What a resolution round achieved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolveOutcome {
    /// Time until the earliest still-alive lock expires (zero: all resolved).
    pub wait: Duration,
    /// Lock versions (start ts) now known rolled back or otherwise not blocking.
    pub resolved: Vec<u64>,
    /// Lock versions known committed.
    pub committed: Vec<u64>,
}

/// Resolves locks found by a read (implemented by the transaction layer).
pub trait LockResolver: Send + Sync + 'static {
    /// Resolve `locks` met by a read at `caller_start_ts`.
    fn resolve(
        &self,
        locks: Vec<kvrpcpb::LockInfo>,
        caller_start_ts: u64,
        op: Arc<OpState>,
    ) -> impl Future<Output = Result<ResolveOutcome, Error>> + Send;
}

/// Layer adding [`ResolveLock`].
#[derive(Debug)]
pub struct ResolveLockLayer<R> {
    resolver: Arc<R>,
    backoff: BackoffKind,
}

impl<R> Clone for ResolveLockLayer<R> {
    fn clone(&self) -> Self {
        ResolveLockLayer {
            resolver: self.resolver.clone(),
            backoff: self.backoff,
        }
    }
}

impl<R: LockResolver> ResolveLockLayer<R> {
    /// Resolve with `resolver`, waiting with `BoTxnLockFast`.
    pub fn new(resolver: Arc<R>) -> Self {
        ResolveLockLayer {
            resolver,
            backoff: BackoffKind::TxnLockFast,
        }
    }
    /// Wait for live locks with this backoff kind instead (e.g. `TxnLock`).
    pub fn backoff_kind(mut self, kind: BackoffKind) -> Self {
        self.backoff = kind;
        self
    }
}

impl<S, R> Layer<S> for ResolveLockLayer<R> {
    type Service = ResolveLock<S, R>;
    fn layer(&self, inner: S) -> Self::Service {
        ResolveLock {
            inner,
            resolver: self.resolver.clone(),
            backoff: self.backoff,
        }
    }
}

/// The lock-resolving service (see the [module docs](self)).
#[derive(Debug)]
pub struct ResolveLock<S, R> {
    inner: S,
    resolver: Arc<R>,
    backoff: BackoffKind,
}

impl<S: Clone, R> Clone for ResolveLock<S, R> {
    fn clone(&self) -> Self {
        ResolveLock {
            inner: self.inner.clone(),
            resolver: self.resolver.clone(),
            backoff: self.backoff,
        }
    }
}

/// The read timestamp of a lock-sensitive read kind.
fn read_ts(req: &StoreRequest) -> Option<u64> {
    match req {
        StoreRequest::Get(r) => Some(r.version),
        StoreRequest::BatchGet(r) => Some(r.version),
        StoreRequest::Scan(r) => Some(r.version),
        StoreRequest::BufferBatchGet(r) => Some(r.version),
        _ => None,
    }
}

/// The locks a read reply reports (top-level and per-pair key errors).
pub fn locks_in(resp: &StoreResponse) -> Vec<kvrpcpb::LockInfo> {
    fn from_pairs<'a>(
        top: Option<&'a kvrpcpb::KeyError>,
        pairs: &'a [kvrpcpb::KvPair],
    ) -> impl Iterator<Item = &'a kvrpcpb::LockInfo> {
        top.into_iter()
            .chain(pairs.iter().filter_map(|p| p.error.as_ref()))
            .filter_map(|e| e.locked.as_ref())
    }
    let found: Vec<&kvrpcpb::LockInfo> = match resp {
        StoreResponse::Get(r) => r
            .error
            .as_ref()
            .and_then(|e| e.locked.as_ref())
            .into_iter()
            .collect(),
        StoreResponse::BatchGet(r) => from_pairs(r.error.as_ref(), &r.pairs).collect(),
        StoreResponse::Scan(r) => from_pairs(r.error.as_ref(), &r.pairs).collect(),
        StoreResponse::BufferBatchGet(r) => from_pairs(r.error.as_ref(), &r.pairs).collect(),
        _ => Vec::new(),
    };
    found.into_iter().cloned().collect()
}

impl<S, R> Service<Request> for ResolveLock<S, R>
where
    S: Service<Request, Response = Response, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
    R: LockResolver,
{
    type Response = Response;
    type Error = Error;
    /// Kinds that cannot meet locks pass through without boxing.
    type Future = Either<Oneshot<S, Request>, BoxFuture<Result<Response, Error>>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let inner = self.inner.clone();
        let Some(ts) = read_ts(&req.inner) else {
            return Either::Left(inner.oneshot(req));
        };
        let resolver = self.resolver.clone();
        let backoff = self.backoff;
        Either::Right(Box::pin(async move {
            let mut req = req;
            loop {
                {
                    let resolved = req.op.resolved_locks();
                    let committed = req.op.committed_locks();
                    let ctx = req.context_mut();
                    ctx.resolved_locks = resolved;
                    ctx.committed_locks = committed;
                }
                let resp = inner.clone().oneshot(req.clone()).await?;
                let locks = locks_in(&resp.inner);
                if locks.is_empty() {
                    return Ok(resp);
                }
                let n = locks.len();
                let outcome = resolver.resolve(locks, ts, req.op.clone()).await?;
                req.op.add_locks(&outcome.resolved, &outcome.committed);
                if !outcome.wait.is_zero() {
                    let cause = format!("{n} lock(s) still alive, {:?} to expiry", outcome.wait);
                    req.op
                        .backoff_with_max(backoff, Some(outcome.wait), &cause)
                        .await?;
                } else if outcome.resolved.is_empty() && outcome.committed.is_empty() {
                    // Nothing learned and nothing to wait for: avoid a hot loop.
                    req.op
                        .backoff(backoff, &"lock resolution made no progress")
                        .await?;
                }
            }
        }))
    }
}
