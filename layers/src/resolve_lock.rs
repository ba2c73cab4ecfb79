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
//! A stale read that meets a lock is turned into a leader read for its next attempts
//! (client-go `DisableStaleReadMeetLock`): the lock's txn may have committed data the
//! stale replica has not applied yet.
//!
//! Other key errors (write conflicts, ...) are left in the reply for the protocols above.
//!
//! client-go counterpart: the lock-handling loops of `txnsnapshot.KVSnapshot.get`,
//! `batchGetSingleRegion` and `Scanner.getData` around `LockResolver.ResolveLocksWithOpts`.
//!
//! # Example
//!
//! ```
//! # use std::sync::Arc;
//! # use tikv_tower_proto::metapb;
//! # use tikv_tower_layers::testing::StaticLocator;
//! use tikv_tower_layers::resolve_lock::{LockResolver, ResolveLockLayer, ResolveOutcome};
//! use tikv_tower_layers::route::{RouteConfig, RouteLayer};
//! use tikv_tower_layers::{Error, OpState, Request, StoreCall, TransportError};
//! use tikv_tower_proto::kvrpcpb::{GetRequest, GetResponse, KeyError, LockInfo};
//! use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
//! use tower::ServiceExt;
//!
//! /// Finds every lock's transaction rolled back (the transaction layer's resolver checks
//! /// the primary's status and commits or rolls back instead).
//! struct RolledBack;
//! impl LockResolver for RolledBack {
//!     async fn resolve(
//!         &self,
//!         locks: Vec<LockInfo>,
//!         _caller_start_ts: u64,
//!         _op: Arc<OpState>,
//!     ) -> Result<ResolveOutcome, Error> {
//!         let resolved = locks.iter().map(|l| l.lock_version).collect();
//!         Ok(ResolveOutcome { resolved, ..Default::default() })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tikv_tower_layers::Error> {
//! # let region_cache = StaticLocator::split_at(&[]);
//! // A store where "k" is locked by the transaction started at 5, until a read says
//! // (in `Context.resolved_locks`) that this lock no longer blocks it.
//! let transport = tower::service_fn(|call: StoreCall| async move {
//!     let resolved = call.request.context().map(|c| c.resolved_locks.clone()).unwrap_or_default();
//!     let reply = if resolved.contains(&5) {
//!         GetResponse { value: "v".into(), ..Default::default() }
//!     } else {
//!         let lock = LockInfo { key: "k".into(), primary_lock: "k".into(), lock_version: 5, ..Default::default() };
//!         GetResponse { error: Some(KeyError { locked: Some(lock), ..Default::default() }), ..Default::default() }
//!     };
//!     Ok::<_, TransportError>(StoreResponse::from(reply))
//! });
//! let svc = tower::ServiceBuilder::new()
//!     .layer(ResolveLockLayer::new(Arc::new(RolledBack)))
//!     .layer(RouteLayer::new(region_cache, RouteConfig::default()))
//!     .service(transport);
//! let op = OpState::new();
//! let get = StoreRequest::from(GetRequest { key: "k".into(), version: 10, ..Default::default() });
//! let resp = svc.oneshot(Request::new(get).with_op(op.clone())).await?;
//! assert!(matches!(resp.inner, StoreResponse::Get(r) if r.value == "v"));
//! assert_eq!(op.resolved_locks(), [5]); // remembered for the operation's later reads
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::Either;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{HasLocks, StoreRequest, StoreResponse};
use tower::util::Oneshot;
use tower::ServiceExt;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::Error;
use crate::request::{OpState, ReplicaRead, Request, Response};
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

/// The read timestamp of a lock-sensitive read kind (the table's `read_ts` fact).
fn read_ts(req: &StoreRequest) -> Option<u64> {
    req.read_ts()
}

/// The locks a read reply reports (top-level and per-pair key errors, via
/// [`HasLocks`]), for the kinds whose table row carries a read ts.
pub fn locks_in(resp: &StoreResponse) -> Vec<kvrpcpb::LockInfo> {
    let found = match resp {
        StoreResponse::Get(r) => r.locks(),
        StoreResponse::BatchGet(r) => r.locks(),
        StoreResponse::Scan(r) => r.locks(),
        StoreResponse::BufferBatchGet(r) => r.locks(),
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
                if req.replica_read == ReplicaRead::StaleRead {
                    // A stale read that met a lock reads from the leader from now on
                    // (client-go `Request.DisableStaleReadMeetLock`): a fresh replica
                    // session is built for the new policy.
                    req.replica_read = ReplicaRead::Leader;
                    *req.replica_session().lock() = None;
                }
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
