//! The request model: what a logical operation looks like while it travels the stack.
//!
//! A [`Request`] is one kvrpcpb request ([`StoreRequest`]) plus everything the layers need
//! to deliver it:
//!
//! - a routing [`Target`]: one key, the request's own keys (any order), a key range
//!   (forward or reverse, with a scan limit), a region (pinned at an epoch or by id), or
//!   "every region overlapping a range" for delete-range-like fan-out;
//! - a [`ReplicaRead`] kind (leader, follower, mixed, learner, prefer-leader, stale read),
//!   and optionally its own replica and retry policies (overriding the stack's);
//! - the per-operation state [`OpState`] behind an `Arc`, shared by every shard and every
//!   attempt of the logical operation: the backoff budget ([`Backoffer`]), the deadline, the
//!   resolved-locks set, the request tags and the trace span;
//! - an optional per-RPC timeout override.
//!
//! A successful reply is a [`Response`]: the [`StoreResponse`] (key errors included: they
//! belong to the protocols above) plus [`ExecDetails`] (attempts, region, store, backoff).
//!
//! client-go counterpart: `tikvrpc.Request` (request + `kvrpcpb.Context` + replica read
//! type) together with the `retry.Backoffer` passed next to it to `SendReq`.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use tikv_tower_layers::{OpState, ReplicaRead, Request, Target};
//! use tikv_tower_proto::{kvrpcpb, rpc::StoreRequest};
//!
//! let op = OpState::builder().max_backoff(Duration::from_secs(20)).request_source("app").build();
//! let get = StoreRequest::from(kvrpcpb::RawGetRequest { key: "k".into(), ..Default::default() });
//! // The target (`Target::Key(b"k")`) is inferred from the request kind.
//! let req = Request::new(get).with_op(op).with_replica_read(ReplicaRead::Follower);
//! assert_eq!(req.target, Target::Key("k".into()));
//! assert_eq!(req.op.tags().request_source.as_deref(), Some("app"));
//!
//! // A scan is addressed by its range and limit, visited region by region.
//! let range = kvrpcpb::RawScanRequest { start_key: "a".into(), end_key: "c".into(), limit: 10, ..Default::default() };
//! let scan = Request::new(StoreRequest::from(range));
//! assert!(matches!(scan.target, Target::Range(r) if r.start == "a" && r.limit == Some(10)));
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
use tokio::time::Instant;

use crate::error::Error;
use crate::locate::RegionVerId;
use crate::replica::{ReplicaPolicy, ReplicaSession};
use crate::retry::backoff::{BackoffKind, Backoffer};
use crate::retry::RetryPolicy;

/// A key range in request key space: `[start, end)`, `end` empty = unbounded.
///
/// The bounds are normalized (lower, upper) whatever the scan direction; `reverse` says
/// that results come from `end` downwards (kvrpcpb's reverse scans carry the upper bound
/// in `start_key`; the shard layer converts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRange {
    /// Inclusive lower bound.
    pub start: Bytes,
    /// Exclusive upper bound; empty means "to the end of the key space".
    pub end: Bytes,
    /// Scan from `end` downwards.
    pub reverse: bool,
    /// At most this many results over the whole range (scans); `None` = no limit.
    pub limit: Option<u32>,
}

impl KeyRange {
    /// A forward range without limit.
    pub fn new(start: impl Into<Bytes>, end: impl Into<Bytes>) -> Self {
        KeyRange {
            start: start.into(),
            end: end.into(),
            reverse: false,
            limit: None,
        }
    }
    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= &self.start[..] && (self.end.is_empty() || key < &self.end[..])
    }
}

/// Where a request goes (how the route and shard layers address it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The region holding this key (client-go `LocateKey`); re-located on every retry.
    Key(Bytes),
    /// The request's own keys (batch kinds, any order): the shard layer groups them by
    /// region; without a shard layer they must all lie in one region.
    Keys,
    /// A key range visited region by region in key order (scans), honoring the limit.
    Range(KeyRange),
    /// Every region overlapping the range, concurrently (delete range, destroy range).
    EachRegion(KeyRange),
    /// One region at one epoch: a shard produced by the shard layer. If the region's epoch
    /// changed, the request fails with a stale-route region error and is re-split above.
    Region(RegionVerId),
    /// One region by id, whatever its current epoch (client-go `LocateRegionByID`).
    RegionId(u64),
    /// Not addressable (the kind carries no key and no target was given).
    Unrouted,
}

impl Target {
    /// The target implied by the request kind: single-key kinds route by their key,
    /// batch kinds by their keys, scans by their range, delete-range kinds to every region.
    pub fn infer(req: &StoreRequest) -> Target {
        crate::shard::kinds::infer_target(req)
    }
    /// Whether a stale route must be handled by re-splitting above (pinned shard) rather
    /// than by re-locating and retrying in place.
    pub fn is_pinned(&self) -> bool {
        matches!(self, Target::Region(_))
    }
}

/// Which replicas may serve a read (client-go `kv.ReplicaReadType` plus stale read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum ReplicaRead {
    /// Only the leader (writes always use this).
    #[default]
    Leader,
    /// Followers only, round-robin; falls back to the leader when no follower is usable.
    Follower,
    /// Any peer, round-robin (leader included).
    Mixed,
    /// Learners only.
    Learner,
    /// The leader unless it is unusable or busy, then followers.
    PreferLeader,
    /// Stale read at any replica (first attempt: a local/random replica with
    /// `stale_read = true`; on `DataIsNotReady` retries at the leader as a normal read).
    StaleRead,
}

impl ReplicaRead {
    /// Whether this policy may read from a non-leader peer.
    pub fn is_follower_read(self) -> bool {
        !matches!(self, ReplicaRead::Leader)
    }
}

/// Request tags stamped into `kvrpcpb::Context` by the tag layer (per-operation values
/// override the layer's defaults).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestTags {
    /// `Context.request_source` (client-go `RequestSource`: e.g. "external_Insert").
    pub request_source: Option<String>,
    /// `Context.resource_control_context.resource_group_name`.
    pub resource_group_name: Option<String>,
    /// `Context.resource_group_tag` (when set, overrides the layer's tagger callback).
    pub resource_group_tag: Option<Bytes>,
    /// `Context.priority`.
    pub priority: Option<kvrpcpb::CommandPri>,
    /// `Context.disk_full_opt`.
    pub disk_full_opt: Option<kvrpcpb::DiskFullOpt>,
    /// `Context.txn_source`.
    pub txn_source: Option<u64>,
    /// `Context.request_origin`.
    pub request_origin: Option<kvrpcpb::RequestOrigin>,
    /// `Context.source_stmt`.
    pub source_stmt: Option<kvrpcpb::SourceStmt>,
    /// `Context.not_fill_cache`.
    pub not_fill_cache: Option<bool>,
}

/// Lock sets learned while the operation ran (stamped into `Context.resolved_locks` /
/// `Context.committed_locks` of later attempts, client-go `resolvedLocks`).
#[derive(Debug, Default)]
struct LockSets {
    resolved: Vec<u64>,
    committed: Vec<u64>,
}

/// State shared by every shard and every attempt of one logical operation.
///
/// client-go spreads this over the `Backoffer` (budget, context deadline), the snapshot's
/// `resolvedLocks` and the request's context fields; here it travels with the request.
pub struct OpState {
    backoffer: Mutex<Backoffer>,
    deadline: Option<Instant>,
    locks: Mutex<LockSets>,
    tags: RequestTags,
    span: OnceLock<tracing::Span>,
    rpcs: AtomicU32,
}

impl fmt::Debug for OpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpState")
            .field("total_sleep", &self.total_sleep())
            .field("deadline", &self.deadline)
            .field("tags", &self.tags)
            .field("rpcs", &self.rpcs())
            .finish()
    }
}

impl Default for OpState {
    fn default() -> Self {
        OpStateBuilder::default().build_inner()
    }
}

/// Builder of [`OpState`].
#[derive(Debug, Clone)]
pub struct OpStateBuilder {
    max_backoff: Duration,
    timeout: Option<Duration>,
    tags: RequestTags,
    resolved_locks: Vec<u64>,
}

impl Default for OpStateBuilder {
    fn default() -> Self {
        OpStateBuilder {
            max_backoff: DEFAULT_MAX_BACKOFF,
            timeout: None,
            tags: RequestTags::default(),
            resolved_locks: Vec::new(),
        }
    }
}

/// The default total backoff budget of an operation (client-go rawkv's `rawkvMaxBackoff`
/// and the snapshot `batchGetMaxBackoff`: 20 s).
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_millis(20_000);

impl OpStateBuilder {
    /// Total sleep budget shared by every shard (client-go `NewBackofferWithVars(maxSleep)`).
    pub fn max_backoff(mut self, d: Duration) -> Self {
        self.max_backoff = d;
        self
    }
    /// Deadline of the whole operation, measured from `build()` (client-go context deadline).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }
    /// Replace all tags.
    pub fn tags(mut self, tags: RequestTags) -> Self {
        self.tags = tags;
        self
    }
    /// Set `Context.request_source`.
    pub fn request_source(mut self, s: impl Into<String>) -> Self {
        self.tags.request_source = Some(s.into());
        self
    }
    /// Set the resource group name.
    pub fn resource_group_name(mut self, s: impl Into<String>) -> Self {
        self.tags.resource_group_name = Some(s.into());
        self
    }
    /// Set the request priority.
    pub fn priority(mut self, p: kvrpcpb::CommandPri) -> Self {
        self.tags.priority = Some(p);
        self
    }
    /// Start with these lock versions already resolved.
    pub fn resolved_locks(mut self, locks: Vec<u64>) -> Self {
        self.resolved_locks = locks;
        self
    }
    fn build_inner(self) -> OpState {
        OpState {
            backoffer: Mutex::new(Backoffer::new(self.max_backoff)),
            deadline: self.timeout.map(|t| Instant::now() + t),
            locks: Mutex::new(LockSets {
                resolved: self.resolved_locks,
                committed: Vec::new(),
            }),
            tags: self.tags,
            span: OnceLock::new(),
            rpcs: AtomicU32::new(0),
        }
    }
    /// Build the shared state.
    pub fn build(self) -> Arc<OpState> {
        Arc::new(self.build_inner())
    }
}

impl OpState {
    /// A fresh state with the default budget and no deadline.
    pub fn new() -> Arc<OpState> {
        Arc::new(OpState::default())
    }
    /// A builder.
    pub fn builder() -> OpStateBuilder {
        OpStateBuilder::default()
    }

    /// Sleep for the next backoff of `kind`, charged to the shared budget
    /// (client-go `Backoffer.Backoff`). Fails with [`Error::BackoffExhausted`] when the
    /// budget is spent, or [`Error::DeadlineExceeded`] when the deadline comes first.
    pub async fn backoff(
        &self,
        kind: BackoffKind,
        cause: &(dyn fmt::Display + Send + Sync),
    ) -> Result<Duration, Error> {
        self.backoff_with_max(kind, None, cause).await
    }

    /// Like [`backoff`](Self::backoff) but never sleeping longer than `max_sleep`
    /// (client-go `BackoffWithMaxSleepTxnLockFast`).
    pub async fn backoff_with_max(
        &self,
        kind: BackoffKind,
        max_sleep: Option<Duration>,
        cause: &(dyn fmt::Display + Send + Sync),
    ) -> Result<Duration, Error> {
        self.check_deadline()?;
        let sleep = self.backoffer.lock().next_sleep(kind, max_sleep, cause)?;
        match self.deadline {
            Some(deadline) if Instant::now() + sleep >= deadline => {
                tokio::time::sleep_until(deadline).await;
                Err(Error::DeadlineExceeded)
            }
            _ => {
                tokio::time::sleep(sleep).await;
                Ok(sleep)
            }
        }
    }

    /// Total time slept in backoffs so far, over all shards.
    pub fn total_sleep(&self) -> Duration {
        self.backoffer.lock().total_sleep()
    }

    /// Run `f` with the backoffer locked (inspection, tests).
    pub fn with_backoffer<R>(&self, f: impl FnOnce(&mut Backoffer) -> R) -> R {
        f(&mut self.backoffer.lock())
    }

    /// The operation deadline, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left before the deadline (`None` = no deadline).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Runs `f` (a region lookup, a PD call made for this operation) until the operation
    /// deadline: [`Error::DeadlineExceeded`] if it comes first (client-go passes the
    /// Backoffer's context into the region cache's PD calls).
    ///
    /// A future ready at its first poll (a region-cache hit) costs no timer.
    pub async fn within_deadline<F: std::future::Future>(&self, f: F) -> Result<F::Output, Error> {
        let Some(deadline) = self.deadline else {
            return Ok(f.await);
        };
        let mut f = std::pin::pin!(f);
        let first = std::future::poll_fn(|cx| std::task::Poll::Ready(f.as_mut().poll(cx))).await;
        if let std::task::Poll::Ready(v) = first {
            return Ok(v);
        }
        tokio::time::timeout_at(deadline, f)
            .await
            .map_err(|_| Error::DeadlineExceeded)
    }

    /// `Err(DeadlineExceeded)` once the deadline has passed.
    pub fn check_deadline(&self) -> Result<(), Error> {
        match self.deadline {
            Some(d) if Instant::now() >= d => Err(Error::DeadlineExceeded),
            _ => Ok(()),
        }
    }

    /// Lock versions (start ts) known resolved: readers may skip their locks.
    pub fn resolved_locks(&self) -> Vec<u64> {
        self.locks.lock().resolved.clone()
    }

    /// Lock versions known committed.
    pub fn committed_locks(&self) -> Vec<u64> {
        self.locks.lock().committed.clone()
    }

    /// Record resolved and committed lock versions (deduplicated).
    pub fn add_locks(&self, resolved: &[u64], committed: &[u64]) {
        let mut sets = self.locks.lock();
        for v in resolved {
            if !sets.resolved.contains(v) {
                sets.resolved.push(*v);
            }
        }
        for v in committed {
            if !sets.committed.contains(v) {
                sets.committed.push(*v);
            }
        }
    }

    /// The operation's tags.
    pub fn tags(&self) -> &RequestTags {
        &self.tags
    }

    /// The operation's span (set by the trace layer; `Span::none()` before).
    pub fn span(&self) -> tracing::Span {
        self.span.get().cloned().unwrap_or_else(tracing::Span::none)
    }

    /// Set the operation span once; returns the span in effect.
    pub fn init_span(&self, f: impl FnOnce() -> tracing::Span) -> tracing::Span {
        self.span.get_or_init(f).clone()
    }

    /// Count one RPC sent for this operation; returns the new count.
    pub fn count_rpc(&self) -> u32 {
        self.rpcs.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// RPCs sent so far, over all shards and attempts.
    pub fn rpcs(&self) -> u32 {
        self.rpcs.load(Ordering::Relaxed)
    }
}

/// The replica session of one shard, shared by all its attempts (made by the route layer
/// from the [`ReplicaPolicy`] in effect; `None` until the first attempt).
pub type SharedReplicaSession = Arc<Mutex<Option<Box<dyn ReplicaSession>>>>;

/// A key-addressed request travelling down the stack.
///
/// Cloning is cheap except for `inner` (one clone per retry attempt). Every clone shares
/// the [`OpState`] and the per-shard replica session, so attempts of one shard continue
/// where the previous attempt left (tried peers, attempt counts).
#[derive(Clone)]
pub struct Request {
    /// The kvrpcpb request; the layers stamp its `Context`.
    pub inner: StoreRequest,
    /// Where it goes.
    pub target: Target,
    /// Which replicas may serve it.
    pub replica_read: ReplicaRead,
    /// Per-operation shared state.
    pub op: Arc<OpState>,
    /// Per-RPC timeout override (otherwise the timeout layer's per-command default).
    pub timeout: Option<Duration>,
    /// Replica policy for this request only (otherwise the route layer's).
    pub replica_policy: Option<Arc<dyn ReplicaPolicy>>,
    /// Retry policy for this request only (otherwise the retry layer's).
    pub retry_policy: Option<Arc<dyn RetryPolicy>>,
    /// Attempts of this shard before this one (set by the retry layer; drives
    /// `Context.is_retry_request`).
    pub attempt: u32,
    session: SharedReplicaSession,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("inner", &self.inner)
            .field("target", &self.target)
            .field("replica_read", &self.replica_read)
            .field("op", &self.op)
            .field("timeout", &self.timeout)
            .field("replica_policy", &self.replica_policy)
            .field("retry_policy", &self.retry_policy)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl Request {
    /// A request with the target inferred from its kind ([`Target::infer`]), leader
    /// reads, and a fresh [`OpState`].
    pub fn new(inner: StoreRequest) -> Request {
        let target = Target::infer(&inner);
        Request::with_target(inner, target)
    }

    /// A request with an explicit target.
    pub fn with_target(inner: StoreRequest, target: Target) -> Request {
        Request {
            inner,
            target,
            replica_read: ReplicaRead::Leader,
            op: OpState::new(),
            timeout: None,
            replica_policy: None,
            retry_policy: None,
            attempt: 0,
            session: Arc::default(),
        }
    }

    /// Use this operation state (share it between requests of one logical operation).
    pub fn with_op(mut self, op: Arc<OpState>) -> Request {
        self.op = op;
        self
    }

    /// Set the replica read policy.
    pub fn with_replica_read(mut self, r: ReplicaRead) -> Request {
        self.replica_read = r;
        self
    }

    /// Set the per-RPC timeout.
    pub fn with_timeout(mut self, t: Duration) -> Request {
        self.timeout = Some(t);
        self
    }

    /// Use this replica policy for this request (overrides the stack's).
    pub fn with_replica_policy(mut self, p: Arc<dyn ReplicaPolicy>) -> Request {
        self.replica_policy = Some(p);
        self
    }

    /// Use this retry policy for this request (overrides the stack's).
    pub fn with_retry_policy(mut self, p: Arc<dyn RetryPolicy>) -> Request {
        self.retry_policy = Some(p);
        self
    }

    /// A part of this request (a shard): same op, policies and timeout, a new kvrpcpb
    /// request and target, and its own replica session.
    pub fn part(&self, inner: StoreRequest, target: Target) -> Request {
        Request {
            inner,
            target,
            replica_read: self.replica_read,
            op: self.op.clone(),
            timeout: self.timeout,
            replica_policy: self.replica_policy.clone(),
            retry_policy: self.retry_policy.clone(),
            attempt: 0,
            session: Arc::default(),
        }
    }

    /// The per-shard replica session (shared by all attempts of this shard).
    pub fn replica_session(&self) -> &SharedReplicaSession {
        &self.session
    }

    /// The request's `Context` (created if missing).
    pub fn context_mut(&mut self) -> &mut kvrpcpb::Context {
        self.inner.context_mut()
    }
}

/// Execution details of a reply (client-go `ExecDetails` / `RegionRequestRuntimeStats`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecDetails {
    /// RPC attempts for this reply (summed over shards for a merged reply).
    pub attempts: u32,
    /// The region that answered (the last shard's for a merged reply).
    pub region: Option<RegionVerId>,
    /// The store that answered.
    pub store_id: Option<u64>,
    /// Its address.
    pub store_addr: Option<Arc<str>>,
    /// Total backoff slept by the operation when the reply was produced.
    pub backoff: Duration,
    /// Number of shards merged into this reply (1 when not sharded).
    pub shards: u32,
}

/// A reply: the store's response (key errors left in place) plus execution details.
#[derive(Debug, Clone)]
pub struct Response {
    /// The kvrpcpb response (never carrying a region error).
    pub inner: StoreResponse,
    /// How it was obtained.
    pub details: ExecDetails,
}
