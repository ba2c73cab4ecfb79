//! Replica selection: which peer of a region serves the next attempt.
//!
//! A [`ReplicaPolicy`] is shared by every request of a stack. For each shard routed to a
//! region it makes a [`ReplicaSession`] ([`new_session`](ReplicaPolicy::new_session),
//! client-go `newReplicaSelector`), handing it the region's peers *and the metadata of
//! their stores* ([`StoreRoute`]: address, labels, state). The session is the only place
//! the per-shard selection state is written: the route layer asks it to
//! [`pick`](ReplicaSession::pick) a peer for each attempt and reports what happened
//! ([`on_success`](ReplicaSession::on_success),
//! [`on_failure`](ReplicaSession::on_failure) with a [`ReplicaFailure`]), and the session
//! answers with the one retry [`Decision`] type the retry loop executes. When the shard is
//! routed to another region (or epoch), or the session says it is no longer usable, the
//! route layer asks the policy for a new session.
//!
//! A policy is set per stack (`StackConfig::replica`), on the client builder, or per
//! request ([`Request::with_replica_policy`](crate::Request::with_replica_policy)).
//!
//! [`ClientGoSelector`] is client-go's `replicaSelector` (`internal/locate/replica_selector.go`):
//!
//! - leader reads and writes (`nextForReplicaReadLeader`, `ReplicaSelectLeaderStrategy`):
//!   the leader while it is a candidate (reachable, fewer than [`MAX_REPLICA_ATTEMPT`]
//!   attempts, no `NotLeader`), otherwise every other peer once (a follower answers
//!   `NotLeader` with the real leader, which heals the cache);
//! - `NotLeader` with a leader moves to that leader at once; without one, backs off
//!   `BoRegionScheduling` and tries the next peer (`onNotLeader`);
//! - a send failure marks the peer unreachable for this shard: the next attempt goes to
//!   the next peer (`onSendFailure`);
//! - `ServerIsBusy` on a read that may go elsewhere records a *pending* backoff for that
//!   store and retries another peer at once; the backoff is slept only if that store is
//!   picked again (`onServerIsBusy`, `addPendingBackoff`, `backoffOnRetry`);
//! - follower / mixed / learner / prefer-leader reads round-robin over their candidates,
//!   each peer at most once, preferring stores whose labels match
//!   ([`ClientGoSelector::with_match_labels`], client-go `WithMatchLabels`) and skipping
//!   stores PD reports tombstoned, and fall back to the leader (`ReplicaSelectMixedStrategy`);
//! - stale reads go to any replica first with `stale_read = true`; after `DataIsNotReady`
//!   the next attempt is a normal read at the leader, then replica reads
//!   (`nextForReplicaReadMixed`, `onDataIsNotReady`);
//! - when no candidate is left the route layer invalidates the region and the request is
//!   re-located (client-go: "all replicas tried", pseudo `EpochNotMatch`).
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use tikv_tower_layers::replica::{ClientGoSelector, ReplicaFailure, ReplicaPolicy};
//! use tikv_tower_layers::{Decision, RegionRoute, ReplicaRead};
//! use tikv_tower_proto::metapb;
//!
//! // Region 1 with peers on stores 1, 2, 3; the cache believes store 1 leads.
//! let peers: Vec<_> = (1..=3).map(|s| metapb::Peer { id: 10 + s, store_id: s, ..Default::default() }).collect();
//! let region = metapb::Region { id: 1, peers: peers.clone(), ..Default::default() };
//! let route = RegionRoute { region: Arc::new(region), leader: Some(peers[0]) };
//! let policy = ClientGoSelector::default();
//!
//! // A follower read goes to a follower, flagged `replica_read`.
//! let mut session = policy.new_session(&route, &[], ReplicaRead::Follower, true);
//! let pick = session.pick().unwrap();
//! assert!(pick.replica_read && pick.peer.store_id != 1);
//!
//! // A write (not read-only) goes to the leader; `NotLeader` naming store 2 moves it there.
//! let mut session = policy.new_session(&route, &[], ReplicaRead::Follower, false);
//! assert_eq!(session.pick().unwrap().peer.store_id, 1);
//! let decision = session.on_failure(&ReplicaFailure::NotLeader(Some(peers[1])));
//! assert_eq!(decision, Decision::Now);
//! assert_eq!(session.pick().unwrap().peer.store_id, 2);
//! ```

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use tikv_tower_proto::metapb;

use crate::error::Decision;
use crate::locate::{RegionRoute, RegionVerId, StoreRoute};
use crate::request::ReplicaRead;
use crate::retry::backoff::BackoffKind;

/// How many attempts one replica gets within one shard (client-go `maxReplicaAttempt`).
pub const MAX_REPLICA_ATTEMPT: u32 = 10;

/// Per-replica flags (client-go `replica.flags`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaFlags {
    /// Answered `NotLeader` (`notLeaderFlag`).
    pub not_leader: bool,
    /// Answered `DataIsNotReady` (`dataIsNotReadyFlag`).
    pub data_not_ready: bool,
    /// Answered `ServerIsBusy` (`serverIsBusyFlag`).
    pub server_busy: bool,
    /// Timed out under a configurable read timeout (`deadlineErrUsingConfTimeoutFlag`).
    pub deadline_exceeded: bool,
    /// Sending failed (store unreachable for this shard).
    pub unreachable: bool,
}

/// One peer of the region as the selector tracks it.
#[derive(Debug, Clone)]
pub struct ReplicaSlot {
    /// The peer.
    pub peer: metapb::Peer,
    /// Its store's metadata when the route layer resolved it (address, labels, state).
    pub store: Option<StoreRoute>,
    /// Attempts sent to it in this shard.
    pub attempts: u32,
    /// What it answered.
    pub flags: ReplicaFlags,
}

impl ReplicaSlot {
    fn is_learner(&self) -> bool {
        self.peer.role == metapb::PeerRole::Learner as i32
    }
    /// Whether PD reports the peer's store as tombstoned (never a candidate).
    fn is_tombstone(&self) -> bool {
        self.store
            .as_ref()
            .is_some_and(|s| s.state == metapb::StoreState::Tombstone)
    }
    /// Whether the peer's store carries every label of `labels` (client-go
    /// `replica.store.IsLabelsMatch`); no labels asked = match.
    fn matches(&self, labels: &[metapb::StoreLabel]) -> bool {
        labels.is_empty()
            || self.store.as_ref().is_some_and(|s| {
                labels.iter().all(|want| {
                    s.labels
                        .iter()
                        .any(|l| l.key == want.key && l.value == want.value)
                })
            })
    }
}

/// The selector state of one shard (client-go `replicaSelector` fields), owned and
/// written only by [`ClientGoSession`].
#[derive(Debug, Clone, Default)]
pub struct SelectorState {
    /// The region it was built for.
    pub region: Option<RegionVerId>,
    /// The region's peers.
    pub replicas: Vec<ReplicaSlot>,
    /// Index of the believed leader in `replicas`.
    pub leader: Option<usize>,
    /// Index of the peer the last attempt went to.
    pub target: Option<usize>,
    /// Attempts made by this selector (`replicaSelector.attempts`).
    pub attempts: u32,
    /// The effective read policy (may degrade to `Leader`).
    pub read: ReplicaRead,
    /// Whether the request is read-only (only reads may go to followers).
    pub read_only: bool,
    /// Backoffs to sleep before the next attempt to a store (`pendingBackoffs`).
    pub pending_backoffs: Vec<(u64, BackoffKind, String)>,
    /// Set when the route must be re-resolved before the next attempt.
    pub invalidated: bool,
    /// Allow one more attempt after invalidation (`regionInvalidatedForRetry`).
    pub retry_after_invalidation: bool,
}

impl SelectorState {
    /// Build for `region` under `read` (client-go `newReplicaSelector`); `stores` are the
    /// peers' stores the route layer resolved (any order, possibly incomplete).
    pub fn new(
        region: &RegionRoute,
        stores: &[StoreRoute],
        read: ReplicaRead,
        read_only: bool,
    ) -> Self {
        let replicas: Vec<ReplicaSlot> = region
            .region
            .peers
            .iter()
            .filter(|p| !p.is_witness)
            .map(|p| ReplicaSlot {
                peer: *p,
                store: stores.iter().find(|s| s.id == p.store_id).cloned(),
                attempts: 0,
                flags: ReplicaFlags::default(),
            })
            .collect();
        let leader = region
            .leader
            .as_ref()
            .and_then(|l| replicas.iter().position(|r| r.peer.id == l.id));
        SelectorState {
            region: Some(region.ver_id()),
            replicas,
            leader,
            read: if read_only { read } else { ReplicaRead::Leader },
            read_only,
            ..SelectorState::default()
        }
    }

    /// The peer of the last attempt.
    fn target_slot(&mut self) -> Option<&mut ReplicaSlot> {
        let t = self.target?;
        self.replicas.get_mut(t)
    }

    /// The believed leader.
    pub fn leader_slot(&self) -> Option<&ReplicaSlot> {
        self.leader.and_then(|i| self.replicas.get(i))
    }

    /// Whether the leader may be tried (client-go `isLeaderCandidate`).
    pub fn leader_is_candidate(&self) -> bool {
        self.leader_slot().is_some_and(|l| {
            !l.flags.unreachable
                && !l.flags.not_leader
                && !l.flags.deadline_exceeded
                && l.attempts < MAX_REPLICA_ATTEMPT
        })
    }

    /// Point the leader at `peer` (client-go `baseReplicaSelector.updateLeader`); returns
    /// false when the peer is not in the region (the route is stale).
    fn set_leader(&mut self, peer: &metapb::Peer) -> bool {
        match self
            .replicas
            .iter()
            .position(|r| r.peer.id == peer.id || r.peer.store_id == peer.store_id)
        {
            Some(i) => {
                if self.leader != Some(i) {
                    // A new leader gets a fresh budget (client-go `onUpdateLeader`).
                    let slot = &mut self.replicas[i];
                    slot.flags.not_leader = false;
                    slot.attempts = slot.attempts.min(MAX_REPLICA_ATTEMPT - 1);
                }
                self.leader = Some(i);
                true
            }
            None => false,
        }
    }
}

/// The peer chosen for an attempt and how to read from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pick {
    /// The peer (stamped as `Context.peer`).
    pub peer: metapb::Peer,
    /// `Context.replica_read`.
    pub replica_read: bool,
    /// `Context.stale_read`.
    pub stale_read: bool,
}

/// A replica-related failure reported to the session.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplicaFailure {
    /// `NotLeader`, with the leader if the peer knew it.
    NotLeader(Option<metapb::Peer>),
    /// The store could not be reached.
    Unreachable,
    /// The picked peer's store is unknown to PD or tombstoned: the route is useless.
    StoreUnknown,
    /// The region error said the cached route is stale (epoch, key range, store,
    /// recovery, witness, unknown errors): the session must not be used again.
    RouteStale,
    /// `ServerIsBusy` (estimated wait in ms, 0 if unknown).
    ServerIsBusy {
        /// `estimated_wait_ms`.
        estimated_wait_ms: u32,
    },
    /// `DataIsNotReady` (stale read).
    DataIsNotReady,
    /// `RegionNotFound` from this peer.
    RegionNotFound,
    /// A configurable read timeout fired.
    DeadlineExceeded,
    /// `FlashbackInProgress`.
    FlashbackInProgress,
    /// `StaleCommand`.
    StaleCommand,
}

/// Makes the per-shard [`ReplicaSession`]s (scylla's `LoadBalancingPolicy`, client-go's
/// `replicaSelector` constructor). Shared by all requests of a stack.
pub trait ReplicaPolicy: Send + Sync + fmt::Debug + 'static {
    /// A session for one shard at `region`; `stores` holds the metadata of the peers'
    /// stores the route layer resolved (when [`wants_stores`](Self::wants_stores)).
    fn new_session(
        &self,
        region: &RegionRoute,
        stores: &[StoreRoute],
        read: ReplicaRead,
        read_only: bool,
    ) -> Box<dyn ReplicaSession>;
    /// Whether the route layer should resolve every peer's store before
    /// [`new_session`](Self::new_session) (default: yes). Returning false saves lookups
    /// when only the leader is ever picked.
    fn wants_stores(&self, _read: ReplicaRead, _read_only: bool) -> bool {
        true
    }
}

/// The selection state of one shard at one region: the only writer of that state.
pub trait ReplicaSession: Send {
    /// The region (and epoch) the session was made for.
    fn region(&self) -> RegionVerId;
    /// Whether the session may serve another attempt; false makes the route layer
    /// re-locate and ask the policy for a new session.
    fn is_usable(&self) -> bool {
        true
    }
    /// The peer for the next attempt; `None` when no candidate is left.
    fn pick(&mut self) -> Option<Pick>;
    /// A backoff to sleep before sending to `store_id` (client-go `backoffOnRetry`).
    fn take_pending_backoff(&mut self, _store_id: u64) -> Option<(BackoffKind, String)> {
        None
    }
    /// Every pending backoff, when no candidate is left (client-go `backoffOnNoCandidate`).
    fn drain_pending_backoffs(&mut self) -> Vec<(BackoffKind, String)> {
        Vec::new()
    }
    /// The attempt got a reply without region error (client-go `onSendSuccess`).
    fn on_success(&mut self) {}
    /// The attempt failed (client-go `onNotLeader`, `onSendFailure`, `onServerIsBusy`,
    /// `onDataIsNotReady`, `onRegionNotFound`, `onFlashbackInProgress`): what next.
    fn on_failure(&mut self, failure: &ReplicaFailure) -> Decision;
}

/// client-go's `replicaSelector` for every [`ReplicaRead`] kind (the default policy).
#[derive(Debug, Default)]
pub struct ClientGoSelector {
    round_robin: AtomicUsize,
    match_labels: Vec<metapb::StoreLabel>,
}

impl ClientGoSelector {
    /// A selector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Prefer replicas whose stores carry all of these labels for non-leader reads
    /// (client-go `WithMatchLabels`, e.g. the client's zone).
    pub fn with_match_labels(mut self, labels: Vec<metapb::StoreLabel>) -> Self {
        self.match_labels = labels;
        self
    }
}

impl ReplicaPolicy for ClientGoSelector {
    fn new_session(
        &self,
        region: &RegionRoute,
        stores: &[StoreRoute],
        read: ReplicaRead,
        read_only: bool,
    ) -> Box<dyn ReplicaSession> {
        Box::new(ClientGoSession {
            state: SelectorState::new(region, stores, read, read_only),
            round_robin: self.round_robin.fetch_add(1, Ordering::Relaxed),
            match_labels: self.match_labels.clone(),
        })
    }

    fn wants_stores(&self, read: ReplicaRead, read_only: bool) -> bool {
        read_only && read.is_follower_read()
    }
}

/// The session of [`ClientGoSelector`] (client-go `replicaSelector`).
#[derive(Debug, Clone)]
pub struct ClientGoSession {
    state: SelectorState,
    round_robin: usize,
    match_labels: Vec<metapb::StoreLabel>,
}

impl ClientGoSession {
    /// The selection state (read-only).
    pub fn state(&self) -> &SelectorState {
        &self.state
    }

    fn choose(&mut self, idx: usize, replica_read: bool, stale_read: bool) -> Pick {
        self.state.target = Some(idx);
        let slot = &mut self.state.replicas[idx];
        slot.attempts += 1;
        Pick {
            peer: slot.peer,
            replica_read,
            stale_read,
        }
    }

    /// Round-robin over candidates (each peer at most once), stores matching the labels
    /// first; client-go `ReplicaSelectMixedStrategy.next` without scores.
    fn next_mixed(&mut self, include_leader: bool, learners_only: bool) -> Option<usize> {
        let state = &self.state;
        let n = state.replicas.len();
        if n == 0 {
            return None;
        }
        let start = self.round_robin % n;
        self.round_robin = self.round_robin.wrapping_add(1);
        let candidate = |i: &usize| {
            let r = &state.replicas[*i];
            let is_leader = state.leader == Some(*i);
            (include_leader || !is_leader)
                && (!learners_only || r.is_learner())
                && r.attempts == 0
                && !r.is_tombstone()
                && !r.flags.unreachable
                && !r.flags.data_not_ready
                && !r.flags.server_busy
                && !r.flags.deadline_exceeded
        };
        let order = || (0..n).map(|k| (start + k) % n);
        order()
            .filter(candidate)
            .find(|i| state.replicas[*i].matches(&self.match_labels))
            .or_else(|| order().find(candidate))
    }

    fn leader_or_other(&mut self) -> Option<Pick> {
        if self.state.leader_is_candidate() {
            let i = self.state.leader.unwrap_or_default();
            return Some(self.choose(i, false, false));
        }
        // The leader is unusable: probe the other peers once each with a leader read; a
        // follower answers NotLeader naming the real leader.
        let i = self.next_mixed(false, false)?;
        Some(self.choose(i, false, false))
    }
}

impl ReplicaSession for ClientGoSession {
    fn region(&self) -> RegionVerId {
        self.state.region.unwrap_or_default()
    }

    fn is_usable(&self) -> bool {
        !self.state.invalidated || self.state.retry_after_invalidation
    }

    fn pick(&mut self) -> Option<Pick> {
        if !self.is_usable() {
            return None;
        }
        self.state.retry_after_invalidation = false;
        self.state.attempts += 1;
        let read_only = self.state.read_only;
        match self.state.read {
            ReplicaRead::Leader => self.leader_or_other(),
            ReplicaRead::PreferLeader if self.state.leader_is_candidate() => self.leader_or_other(),
            ReplicaRead::StaleRead => {
                // Second attempt after a failed stale read: the leader, normal read.
                if self.state.attempts >= 2 && self.state.leader_is_candidate() {
                    if let Some(l) = self.state.leader_slot() {
                        if l.attempts == 0 {
                            let i = self.state.leader.unwrap_or_default();
                            return Some(self.choose(i, false, false));
                        }
                    }
                }
                let first = self.state.attempts == 1;
                let i = self.next_mixed(true, false)?;
                let is_leader = self.state.leader == Some(i);
                // Retries use replica read (data may lag); the first attempt is a stale read.
                Some(self.choose(i, !first && !is_leader, first))
            }
            read @ (ReplicaRead::Follower
            | ReplicaRead::Mixed
            | ReplicaRead::Learner
            | ReplicaRead::PreferLeader) => {
                let include_leader = matches!(read, ReplicaRead::Mixed | ReplicaRead::PreferLeader);
                let learners = read == ReplicaRead::Learner;
                match self.next_mixed(include_leader, learners) {
                    Some(i) => {
                        let is_leader = self.state.leader == Some(i);
                        Some(self.choose(i, read_only && !is_leader, false))
                    }
                    // No follower left: the leader (client-go falls back to the leader).
                    None => {
                        self.state.read = ReplicaRead::Leader;
                        self.leader_or_other()
                    }
                }
            }
        }
    }

    fn take_pending_backoff(&mut self, store_id: u64) -> Option<(BackoffKind, String)> {
        let pending = &mut self.state.pending_backoffs;
        let i = pending.iter().position(|(s, _, _)| *s == store_id)?;
        let (_, k, e) = pending.remove(i);
        Some((k, e))
    }

    fn drain_pending_backoffs(&mut self) -> Vec<(BackoffKind, String)> {
        self.state.invalidated = true;
        std::mem::take(&mut self.state.pending_backoffs)
            .into_iter()
            .map(|(_, k, e)| (k, e))
            .collect()
    }

    fn on_success(&mut self) {
        if let Some(t) = self.state.target_slot() {
            t.flags.server_busy = false;
        }
    }

    fn on_failure(&mut self, failure: &ReplicaFailure) -> Decision {
        let state = &mut self.state;
        match failure {
            ReplicaFailure::NotLeader(leader) => {
                if let Some(t) = state.target_slot() {
                    t.flags.not_leader = true;
                }
                match leader {
                    None => Decision::Backoff(BackoffKind::RegionScheduling),
                    Some(peer) => {
                        if !state.set_leader(peer) {
                            state.invalidated = true;
                            return Decision::Relocate(Some(BackoffKind::RegionMiss));
                        }
                        if state.leader_is_candidate() {
                            state.read = ReplicaRead::Leader;
                        }
                        Decision::Now
                    }
                }
            }
            ReplicaFailure::Unreachable => {
                if let Some(t) = state.target_slot() {
                    t.flags.unreachable = true;
                }
                Decision::Backoff(BackoffKind::TiKvRpc)
            }
            ReplicaFailure::StoreUnknown => {
                if let Some(t) = state.target_slot() {
                    t.flags.unreachable = true;
                }
                state.invalidated = true;
                Decision::Relocate(Some(BackoffKind::RegionMiss))
            }
            ReplicaFailure::RouteStale => {
                state.invalidated = true;
                Decision::Relocate(Some(BackoffKind::RegionMiss))
            }
            ReplicaFailure::ServerIsBusy { .. } => {
                let store = state
                    .target
                    .and_then(|t| state.replicas.get(t))
                    .map(|r| r.peer.store_id);
                if let Some(t) = state.target_slot() {
                    t.flags.server_busy = true;
                }
                // client-go `canFastRetry`: only when another replica may serve.
                let fast = state.read != ReplicaRead::Leader || !state.leader_is_candidate();
                if fast && state.read_only {
                    if let Some(s) = store {
                        state.pending_backoffs.push((
                            s,
                            BackoffKind::TiKvServerBusy,
                            "server is busy".into(),
                        ));
                    }
                    Decision::Now
                } else {
                    Decision::Backoff(BackoffKind::TiKvServerBusy)
                }
            }
            ReplicaFailure::DataIsNotReady => {
                if let Some(t) = state.target_slot() {
                    t.flags.data_not_ready = true;
                }
                Decision::Now
            }
            ReplicaFailure::RegionNotFound => {
                let leader_untried = state.leader_slot().is_some_and(|l| l.attempts == 0);
                state.invalidated = true;
                if leader_untried {
                    state.read = ReplicaRead::Leader;
                    state.retry_after_invalidation = true;
                    Decision::Now
                } else {
                    Decision::Relocate(Some(BackoffKind::RegionMiss))
                }
            }
            ReplicaFailure::DeadlineExceeded => {
                if let Some(t) = state.target_slot() {
                    t.flags.deadline_exceeded = true;
                }
                Decision::Now
            }
            ReplicaFailure::FlashbackInProgress => {
                // Retry at the leader only if this was a replica read at a follower.
                let at_follower = state.target.is_some() && state.target != state.leader;
                if state.read != ReplicaRead::Leader && at_follower {
                    state.read = ReplicaRead::Leader;
                    Decision::Now
                } else {
                    Decision::Return
                }
            }
            ReplicaFailure::StaleCommand => Decision::Now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn peer(id: u64, store: u64) -> metapb::Peer {
        metapb::Peer {
            id,
            store_id: store,
            ..Default::default()
        }
    }

    fn route(leader: u64) -> RegionRoute {
        let region = metapb::Region {
            id: 1,
            region_epoch: Some(metapb::RegionEpoch {
                conf_ver: 1,
                version: 1,
            }),
            peers: vec![peer(11, 1), peer(12, 2), peer(13, 3)],
            ..Default::default()
        };
        RegionRoute {
            region: Arc::new(region),
            leader: Some(peer(leader, leader - 10)),
        }
    }

    fn state(read: ReplicaRead, read_only: bool) -> ClientGoSession {
        ClientGoSession {
            state: SelectorState::new(&route(11), &[], read, read_only),
            round_robin: 0,
            match_labels: Vec::new(),
        }
    }

    #[test]
    fn leader_then_new_leader_on_not_leader() {
        let mut s = state(ReplicaRead::Leader, false);
        assert_eq!(s.pick().unwrap().peer.id, 11);
        let v = s.on_failure(&ReplicaFailure::NotLeader(Some(peer(12, 2))));
        assert_eq!(v, Decision::Now);
        assert_eq!(s.pick().unwrap().peer.id, 12);
    }

    #[test]
    fn not_leader_without_leader_backs_off_and_tries_another_peer() {
        let mut s = state(ReplicaRead::Leader, false);
        s.pick();
        assert_eq!(
            s.on_failure(&ReplicaFailure::NotLeader(None)),
            Decision::Backoff(BackoffKind::RegionScheduling)
        );
        let next = s.pick().unwrap();
        assert_ne!(next.peer.id, 11);
        assert!(!next.replica_read);
    }

    #[test]
    fn unreachable_store_moves_to_next_peer_then_exhausts() {
        let mut s = state(ReplicaRead::Leader, false);
        let mut seen = vec![];
        while let Some(pick) = s.pick() {
            seen.push(pick.peer.id);
            s.on_failure(&ReplicaFailure::Unreachable);
        }
        seen.sort();
        assert_eq!(seen, vec![11, 12, 13]);
    }

    #[test]
    fn leader_attempts_are_bounded() {
        let mut s = state(ReplicaRead::Leader, false);
        let mut at_leader = 0;
        while let Some(pick) = s.pick() {
            if pick.peer.id == 11 {
                at_leader += 1;
            }
            s.on_failure(&ReplicaFailure::StaleCommand);
        }
        assert_eq!(at_leader, MAX_REPLICA_ATTEMPT);
    }

    #[test]
    fn follower_read_prefers_followers_then_leader() {
        let mut s = state(ReplicaRead::Follower, true);
        let a = s.pick().unwrap();
        assert_ne!(a.peer.id, 11);
        assert!(a.replica_read);
        s.on_failure(&ReplicaFailure::Unreachable);
        let b = s.pick().unwrap();
        assert_ne!(b.peer.id, 11);
        assert_ne!(b.peer.id, a.peer.id);
        s.on_failure(&ReplicaFailure::Unreachable);
        let c = s.pick().unwrap();
        assert_eq!(c.peer.id, 11);
        assert!(!c.replica_read);
    }

    #[test]
    fn writes_never_use_follower_policy() {
        let mut s = state(ReplicaRead::Follower, false);
        assert_eq!(s.pick().unwrap().peer.id, 11);
    }

    #[test]
    fn stale_read_falls_back_to_leader_on_data_not_ready() {
        let mut s = state(ReplicaRead::StaleRead, true);
        let first = s.pick().unwrap();
        assert!(first.stale_read);
        if first.peer.id == 11 {
            // Landed on the leader: the data is there; nothing to test on this draw.
            return;
        }
        assert_eq!(s.on_failure(&ReplicaFailure::DataIsNotReady), Decision::Now);
        let second = s.pick().unwrap();
        assert_eq!(second.peer.id, 11);
        assert!(!second.stale_read && !second.replica_read);
    }

    #[test]
    fn busy_read_records_pending_backoff_and_moves_on() {
        let mut s = state(ReplicaRead::Mixed, true);
        let a = s.pick().unwrap();
        assert_eq!(
            s.on_failure(&ReplicaFailure::ServerIsBusy {
                estimated_wait_ms: 0
            }),
            Decision::Now
        );
        assert_eq!(s.state().pending_backoffs.len(), 1);
        assert_eq!(s.state().pending_backoffs[0].0, a.peer.store_id);
        let b = s.pick().unwrap();
        assert_ne!(a.peer.id, b.peer.id);
    }

    #[test]
    fn busy_leader_write_backs_off() {
        let mut s = state(ReplicaRead::Leader, false);
        s.pick();
        assert_eq!(
            s.on_failure(&ReplicaFailure::ServerIsBusy {
                estimated_wait_ms: 0
            }),
            Decision::Backoff(BackoffKind::TiKvServerBusy)
        );
    }
}
