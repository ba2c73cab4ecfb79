//! Fault injection: make stores answer with region errors, drop or delay
//! RPCs, or apply a request and then fail it.
//!
//! Client-go's suites inject faults with mocktikv failpoints
//! (`rpcPrewriteResult=notLeader`, `rpcCommitResult=undeterminedResult`,
//! `rpcAllowedOnAlmostFull`, ...), client-side failpoints
//! (`tikvStoreSendReqResult=busy`) and cluster manipulation. mockstore offers
//! one API for all of them, which works the same in-process and over gRPC
//! because every request passes [`MockStore::handle`](crate::MockStore::handle):
//!
//! ```
//! use tikv_tower_mockstore::MockCluster;
//! use tikv_tower_mockstore::fault::{FaultRule, InjectedError};
//! use tikv_tower_proto::rpc::RpcKind;
//! let cluster = MockCluster::builder().stores(3).seed(7).build();
//! let id = cluster.faults().inject(
//!     FaultRule::region_error(InjectedError::NotLeader)
//!         .on_store(1)
//!         .for_kind(RpcKind::RawGet)
//!         .times(2),
//! );
//! assert_eq!(cluster.faults().fired(id), 0);
//! ```
//!
//! A rule matches a request by store, region (`ctx.region_id`), RPC kind and
//! an optional predicate. Each match fires with the rule's probability (drawn
//! from a generator seeded by the cluster's `seed`, so runs repeat), at most
//! `times` times (default: forever). Rules are checked in insertion order and
//! the first one that fires decides; delays do not stop the search, so a
//! slow store can also return errors.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tikv_tower_proto::rpc::{RpcKind, StoreRequest, StoreResponse};

/// A region error to inject; the payload (region id, leader, current
/// regions) is filled from the cluster's state when it fires.
#[derive(Clone, Debug, PartialEq)]
pub enum InjectedError {
    /// `NotLeader` naming the current leader (if any).
    NotLeader,
    /// `NotLeader` without a leader (an election is in progress).
    NotLeaderNoLeader,
    /// `EpochNotMatch` with the current region.
    EpochNotMatch,
    /// `ServerIsBusy` with a reason and a suggested backoff.
    ServerIsBusy {
        /// Reason text.
        reason: String,
        /// Suggested backoff (ms).
        backoff_ms: u64,
    },
    /// `StaleCommand`.
    StaleCommand,
    /// `RegionNotFound` for the requested region.
    RegionNotFound,
    /// `DiskFull` naming the receiving store.
    DiskFull,
    /// `MaxTimestampNotSynced`.
    MaxTimestampNotSynced,
    /// `UndeterminedResult` (the write may or may not have applied).
    UndeterminedResult,
    /// `ReadIndexNotReady`.
    ReadIndexNotReady,
    /// `ProposalInMergingMode`.
    ProposalInMergingMode,
    /// `RegionNotInitialized`.
    RegionNotInitialized,
    /// `RecoveryInProgress`.
    RecoveryInProgress,
    /// `FlashbackInProgress`.
    FlashbackInProgress,
    /// `IsWitness`.
    IsWitness,
    /// `DataIsNotReady` (stale reads).
    DataIsNotReady,
    /// `BucketVersionNotMatch` naming the region's latest buckets (TiKV's coprocessor
    /// answer to an older `buckets_version`; see [`crate::cluster::buckets`]).
    BucketVersionNotMatch,
    /// Exactly this error.
    Custom(Box<tikv_tower_proto::errorpb::Error>),
}

/// What a fired rule does to the request.
#[derive(Clone, Debug)]
pub enum FaultAction {
    /// Answer with a region error instead of handling the request.
    RegionError(InjectedError),
    /// Fail the RPC with gRPC `UNAVAILABLE` without handling it (a dropped
    /// connection / a store that does not answer).
    Drop,
    /// Fail the RPC with this gRPC code and message, without handling it.
    Status(tonic::Code, String),
    /// Sleep (tokio time) before handling the request.
    Delay(Duration),
    /// Handle the request (its writes apply), then fail the RPC with
    /// `UNAVAILABLE`: the client cannot know whether it applied.
    ApplyThenDrop,
    /// Answer with this response without handling the request.
    Respond(Box<StoreResponse>),
}

/// A predicate over the request, for rules that target a key or a txn.
pub type RequestFilter = Arc<dyn Fn(&StoreRequest) -> bool + Send + Sync>;

/// A fault rule: an action plus the requests it applies to.
#[derive(Clone)]
pub struct FaultRule {
    action: FaultAction,
    store: Option<u64>,
    region: Option<u64>,
    kinds: Vec<RpcKind>,
    times: Option<u64>,
    probability: f64,
    filter: Option<RequestFilter>,
}

impl std::fmt::Debug for FaultRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultRule")
            .field("action", &self.action)
            .field("store", &self.store)
            .field("region", &self.region)
            .field("kinds", &self.kinds)
            .field("times", &self.times)
            .field("probability", &self.probability)
            .field("filter", &self.filter.is_some())
            .finish()
    }
}

impl FaultRule {
    /// A rule with `action` that matches every request, forever.
    pub fn new(action: FaultAction) -> Self {
        FaultRule {
            action,
            store: None,
            region: None,
            kinds: Vec::new(),
            times: None,
            probability: 1.0,
            filter: None,
        }
    }

    /// Answer with region error `e`.
    pub fn region_error(e: InjectedError) -> Self {
        Self::new(FaultAction::RegionError(e))
    }

    /// Fail with `UNAVAILABLE` without handling.
    pub fn drop_rpc() -> Self {
        Self::new(FaultAction::Drop)
    }

    /// Sleep `d` before handling.
    pub fn delay(d: Duration) -> Self {
        Self::new(FaultAction::Delay(d))
    }

    /// Handle, then fail with `UNAVAILABLE` (an undetermined result).
    pub fn apply_then_drop() -> Self {
        Self::new(FaultAction::ApplyThenDrop)
    }

    /// Fail with gRPC `code` and `message`.
    pub fn status(code: tonic::Code, message: impl Into<String>) -> Self {
        Self::new(FaultAction::Status(code, message.into()))
    }

    /// Answer with `resp` (of the right kind for the targeted RPC).
    pub fn respond(resp: StoreResponse) -> Self {
        Self::new(FaultAction::Respond(Box::new(resp)))
    }

    /// Only requests received by `store_id`.
    pub fn on_store(mut self, store_id: u64) -> Self {
        self.store = Some(store_id);
        self
    }

    /// Only requests addressed to `region_id` (`ctx.region_id`).
    pub fn on_region(mut self, region_id: u64) -> Self {
        self.region = Some(region_id);
        self
    }

    /// Only requests of `kind` (may be called several times to add kinds).
    pub fn for_kind(mut self, kind: RpcKind) -> Self {
        self.kinds.push(kind);
        self
    }

    /// Fire at most `n` times, then stay inert.
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

    /// Fire once.
    pub fn once(self) -> Self {
        self.times(1)
    }

    /// Fire on a match with probability `p` (clamped to `[0, 1]`).
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        self
    }

    /// Only requests for which `f` returns true.
    pub fn when(mut self, f: impl Fn(&StoreRequest) -> bool + Send + Sync + 'static) -> Self {
        self.filter = Some(Arc::new(f));
        self
    }

    fn matches(&self, store_id: u64, req: &StoreRequest) -> bool {
        if self.store.is_some_and(|s| s != store_id) {
            return false;
        }
        if let Some(region) = self.region {
            if req.context().map(|c| c.region_id) != Some(region) {
                return false;
            }
        }
        if !self.kinds.is_empty() && !self.kinds.contains(&req.kind()) {
            return false;
        }
        self.filter.as_ref().is_none_or(|f| f(req))
    }
}

/// Identifies an injected rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FaultId(u64);

impl FaultId {
    /// The id as a number (the control API's rule id).
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

struct ActiveRule {
    id: FaultId,
    rule: FaultRule,
    fired: u64,
}

/// What the injector decided for one request.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    /// Total delay to sleep before going on.
    pub(crate) delay: Duration,
    /// The deciding action, if any (never `Delay`).
    pub(crate) action: Option<FaultAction>,
}

/// The cluster's fault rules and their seeded random generator.
pub struct FaultInjector {
    /// Number of active rules, read without the lock on the hot path.
    active: AtomicU64,
    rules: Mutex<Vec<ActiveRule>>,
    fired_counts: Mutex<Vec<(FaultId, u64)>>,
    rng: Mutex<StdRng>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for FaultInjector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultInjector")
            .field("rules", &self.rules.lock().len())
            .finish()
    }
}

impl FaultInjector {
    /// An injector without rules whose probabilities draw from `seed`.
    pub fn new(seed: u64) -> Self {
        FaultInjector {
            active: AtomicU64::new(0),
            rules: Mutex::new(Vec::new()),
            fired_counts: Mutex::new(Vec::new()),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            next_id: AtomicU64::new(1),
        }
    }

    /// Adds a rule; returns its id.
    pub fn inject(&self, rule: FaultRule) -> FaultId {
        let id = FaultId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let mut rules = self.rules.lock();
        rules.push(ActiveRule { id, rule, fired: 0 });
        self.active.store(rules.len() as u64, Ordering::Release);
        id
    }

    /// Makes `store_id` slow: every RPC it receives waits `d` first.
    pub fn slow_store(&self, store_id: u64, d: Duration) -> FaultId {
        self.inject(FaultRule::delay(d).on_store(store_id))
    }

    /// Makes the next `Prewrite` or `PessimisticLock` of transaction
    /// `start_ts` on region `region_id` wait `d` first (mocktikv
    /// `ScheduleDelay`, used to reorder concurrent requests).
    pub fn schedule_delay(&self, start_ts: u64, region_id: u64, d: Duration) -> FaultId {
        self.inject(
            FaultRule::delay(d)
                .on_region(region_id)
                .for_kind(RpcKind::Prewrite)
                .for_kind(RpcKind::PessimisticLock)
                .when(move |r| match r {
                    StoreRequest::Prewrite(p) => p.start_version == start_ts,
                    StoreRequest::PessimisticLock(p) => p.start_version == start_ts,
                    _ => false,
                })
                .once(),
        )
    }

    /// Removes a rule (keeping its fired count readable).
    pub fn remove(&self, id: FaultId) {
        let mut rules = self.rules.lock();
        if let Some(pos) = rules.iter().position(|r| r.id == id) {
            let r = rules.remove(pos);
            self.active.store(rules.len() as u64, Ordering::Release);
            self.fired_counts.lock().push((r.id, r.fired));
        }
    }

    /// The active rules: id, description, times fired.
    pub fn list(&self) -> Vec<(FaultId, String, u64)> {
        self.rules
            .lock()
            .iter()
            .map(|r| (r.id, format!("{:?}", r.rule), r.fired))
            .collect()
    }

    /// Removes every rule.
    pub fn clear(&self) {
        let ids: Vec<FaultId> = self.rules.lock().iter().map(|r| r.id).collect();
        for id in ids {
            self.remove(id);
        }
    }

    /// How many times rule `id` fired.
    pub fn fired(&self, id: FaultId) -> u64 {
        if let Some(r) = self.rules.lock().iter().find(|r| r.id == id) {
            return r.fired;
        }
        self.fired_counts
            .lock()
            .iter()
            .find(|(i, _)| *i == id)
            .map_or(0, |(_, n)| *n)
    }

    /// Number of active rules.
    pub fn len(&self) -> usize {
        self.rules.lock().len()
    }

    /// Whether no rule is active.
    pub fn is_empty(&self) -> bool {
        self.rules.lock().is_empty()
    }

    /// Evaluates the rules for a request received by `store_id`.
    pub(crate) fn decide(&self, store_id: u64, req: &StoreRequest) -> Decision {
        let mut decision = Decision::default();
        if self.active.load(Ordering::Acquire) == 0 {
            return decision;
        }
        let mut rules = self.rules.lock();
        if rules.is_empty() {
            return decision;
        }
        let mut rng = self.rng.lock();
        for active in rules.iter_mut() {
            if active.rule.times.is_some_and(|t| active.fired >= t) {
                continue;
            }
            if !active.rule.matches(store_id, req) {
                continue;
            }
            let p = active.rule.probability;
            if p < 1.0 && rng.random::<f64>() >= p {
                continue;
            }
            active.fired += 1;
            match &active.rule.action {
                FaultAction::Delay(d) => decision.delay = decision.delay.saturating_add(*d),
                other => {
                    decision.action = Some(other.clone());
                    break;
                }
            }
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tikv_tower_proto::kvrpcpb;

    fn raw_get(region: u64) -> StoreRequest {
        let mut req = StoreRequest::from(kvrpcpb::RawGetRequest::default());
        req.context_mut().region_id = region;
        req
    }

    #[test]
    fn times_limits_firing() {
        let f = FaultInjector::new(1);
        let id = f.inject(FaultRule::drop_rpc().times(2));
        let fired: Vec<bool> = (0..4)
            .map(|_| f.decide(1, &raw_get(1)).action.is_some())
            .collect();
        assert_eq!(fired, [true, true, false, false]);
        assert_eq!(f.fired(id), 2);
    }

    #[test]
    fn filters_store_region_kind_and_predicate() {
        let f = FaultInjector::new(1);
        f.inject(
            FaultRule::drop_rpc()
                .on_store(2)
                .on_region(5)
                .for_kind(RpcKind::RawGet)
                .when(|r| r.context().is_some_and(|c| !c.replica_read)),
        );
        assert!(f.decide(1, &raw_get(5)).action.is_none(), "other store");
        assert!(f.decide(2, &raw_get(6)).action.is_none(), "other region");
        let put = StoreRequest::from(kvrpcpb::RawPutRequest {
            context: Some(kvrpcpb::Context {
                region_id: 5,
                ..Default::default()
            }),
            ..Default::default()
        });
        assert!(f.decide(2, &put).action.is_none(), "other kind");
        let mut replica = raw_get(5);
        replica.context_mut().replica_read = true;
        assert!(f.decide(2, &replica).action.is_none(), "predicate");
        assert!(f.decide(2, &raw_get(5)).action.is_some());
    }

    #[test]
    fn probability_is_seeded_and_roughly_right() {
        let run = |seed| {
            let f = FaultInjector::new(seed);
            f.inject(FaultRule::drop_rpc().probability(0.3));
            (0..1000)
                .map(|_| f.decide(1, &raw_get(1)).action.is_some())
                .collect::<Vec<_>>()
        };
        let a = run(42);
        assert_eq!(a, run(42), "same seed, same sequence");
        let hits = a.iter().filter(|x| **x).count();
        assert!((200..400).contains(&hits), "hits {hits}");
        let f = FaultInjector::new(0);
        f.inject(FaultRule::drop_rpc().probability(f64::NAN));
        assert!(f.decide(1, &raw_get(1)).action.is_none());
    }

    #[test]
    fn delays_accumulate_and_do_not_stop_the_search() {
        let f = FaultInjector::new(0);
        f.slow_store(1, Duration::from_millis(5));
        f.inject(FaultRule::delay(Duration::from_millis(7)));
        f.inject(FaultRule::region_error(InjectedError::StaleCommand).once());
        let d = f.decide(1, &raw_get(1));
        assert_eq!(d.delay, Duration::from_millis(12));
        assert!(matches!(
            d.action,
            Some(FaultAction::RegionError(InjectedError::StaleCommand))
        ));
        let d = f.decide(1, &raw_get(1));
        assert!(d.action.is_none());
        f.clear();
        assert!(f.is_empty());
    }
}
