//! Replica selection: which peer of a region serves the next attempt.
//!
//! The route layer keeps, per shard, a [`SelectorState`]: the region's peers with per-peer
//! attempt counts and flags (answered `NotLeader`, unreachable, busy, data not ready, ...),
//! the believed leader, pending backoffs and the effective read policy. A
//! [`ReplicaPolicy`] decides over that state: [`pick`](ReplicaPolicy::pick) the next peer,
//! [`fallback`](ReplicaPolicy::fallback) when nothing is left, and learns from
//! [`on_success`](ReplicaPolicy::on_success) / [`on_failure`](ReplicaPolicy::on_failure).
//! The state is reset whenever the shard is routed to a different region (or epoch).
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
//!   each peer at most once, and fall back to the leader (`ReplicaSelectMixedStrategy`);
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
//! use tikv_tower_layers::replica::{ClientGoSelector, ReplicaFailure, ReplicaPolicy, ReplicaVerdict, SelectorState};
//! use tikv_tower_layers::{RegionRoute, ReplicaRead};
//! use tikv_tower_proto::metapb;
//!
//! // Region 1 with peers on stores 1, 2, 3; the cache believes store 1 leads.
//! let peers: Vec<_> = (1..=3).map(|s| metapb::Peer { id: 10 + s, store_id: s, ..Default::default() }).collect();
//! let region = metapb::Region { id: 1, peers: peers.clone(), ..Default::default() };
//! let route = RegionRoute { region: Arc::new(region), leader: Some(peers[0]) };
//! let policy = ClientGoSelector::default();
//! let mut state = SelectorState::default();
//!
//! // A follower read goes to a follower, flagged `replica_read`.
//! policy.init(&mut state, &route, ReplicaRead::Follower, true);
//! let pick = policy.pick(&mut state).unwrap();
//! assert!(pick.replica_read && pick.peer.store_id != 1);
//!
//! // A write (not read-only) goes to the leader; `NotLeader` naming store 2 moves it there.
//! policy.init(&mut state, &route, ReplicaRead::Follower, false);
//! assert_eq!(policy.pick(&mut state).unwrap().peer.store_id, 1);
//! let verdict = policy.on_failure(&mut state, &ReplicaFailure::NotLeader(Some(peers[1])));
//! assert_eq!(verdict, ReplicaVerdict::RetryNow);
//! assert_eq!(policy.pick(&mut state).unwrap().peer.store_id, 2);
//! // Custom policies implement ReplicaPolicy and are handed to RouteLayer::with_policy.
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};

use tikv_tower_proto::metapb;

use crate::locate::{RegionRoute, RegionVerId};
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
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaSlot {
    /// The peer.
    pub peer: metapb::Peer,
    /// Attempts sent to it in this shard.
    pub attempts: u32,
    /// What it answered.
    pub flags: ReplicaFlags,
}

impl ReplicaSlot {
    fn is_learner(&self) -> bool {
        self.peer.role == metapb::PeerRole::Learner as i32
    }
}

/// The selector state of one shard (client-go `replicaSelector` fields).
#[derive(Debug, Clone, Default)]
pub struct SelectorState {
    /// The region it was built for (`None` = not initialized).
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
    /// RPCs sent in this shard (drives `is_retry_request`).
    pub sent: u32,
}

impl SelectorState {
    /// Rebuild for `region` under `read` (client-go `newReplicaSelector`).
    pub fn reset(&mut self, region: &RegionRoute, read: ReplicaRead, read_only: bool) {
        let replicas: Vec<ReplicaSlot> = region
            .region
            .peers
            .iter()
            .filter(|p| !p.is_witness)
            .map(|p| ReplicaSlot {
                peer: *p,
                attempts: 0,
                flags: ReplicaFlags::default(),
            })
            .collect();
        let leader = region
            .leader
            .as_ref()
            .and_then(|l| replicas.iter().position(|r| r.peer.id == l.id));
        let sent = self.sent;
        *self = SelectorState {
            region: Some(region.ver_id()),
            replicas,
            leader,
            read: if read_only { read } else { ReplicaRead::Leader },
            read_only,
            sent,
            ..SelectorState::default()
        };
    }

    /// The peer of the last attempt.
    pub fn target_slot(&mut self) -> Option<&mut ReplicaSlot> {
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
    pub fn set_leader(&mut self, peer: &metapb::Peer) -> bool {
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

    /// Take the pending backoff for `store_id` (client-go `backoffOnRetry`).
    pub fn take_pending_backoff(&mut self, store_id: u64) -> Option<(BackoffKind, String)> {
        let i = self
            .pending_backoffs
            .iter()
            .position(|(s, _, _)| *s == store_id)?;
        let (_, k, e) = self.pending_backoffs.remove(i);
        Some((k, e))
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

/// A replica-related failure reported to the policy.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplicaFailure {
    /// `NotLeader`, with the leader if the peer knew it.
    NotLeader(Option<metapb::Peer>),
    /// The store could not be reached.
    Unreachable,
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

/// What the policy wants after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaVerdict {
    /// Try again now (another peer or the new leader).
    RetryNow,
    /// Back off with this kind, then try again.
    Backoff(BackoffKind),
    /// The route is stale (e.g. the named leader is not a peer we know): re-locate.
    Relocate,
    /// The policy cannot help: give up on this error.
    GiveUp,
}

/// Decides which replica serves each attempt. Implementations are shared by all requests
/// (`&self`); per-shard memory lives in [`SelectorState`].
pub trait ReplicaPolicy: Send + Sync + 'static {
    /// Initialize the state for a region (called when the shard's region changes).
    fn init(
        &self,
        state: &mut SelectorState,
        region: &RegionRoute,
        read: ReplicaRead,
        read_only: bool,
    ) {
        state.reset(region, read, read_only);
    }
    /// The peer for the next attempt; `None` when no candidate is left.
    fn pick(&self, state: &mut SelectorState) -> Option<Pick>;
    /// Last resort when `pick` found nothing (default: none, the region is invalidated).
    fn fallback(&self, _state: &mut SelectorState) -> Option<Pick> {
        None
    }
    /// The attempt got a reply without region error (client-go `onSendSuccess`).
    fn on_success(&self, _state: &mut SelectorState) {}
    /// The attempt failed (client-go `onNotLeader`, `onSendFailure`, `onServerIsBusy`,
    /// `onDataIsNotReady`, `onRegionNotFound`, `onFlashbackInProgress`).
    fn on_failure(&self, state: &mut SelectorState, failure: &ReplicaFailure) -> ReplicaVerdict;
}

/// client-go's `replicaSelector` for every [`ReplicaRead`] kind.
#[derive(Debug, Default)]
pub struct ClientGoSelector {
    round_robin: AtomicUsize,
}

impl ClientGoSelector {
    /// A selector.
    pub fn new() -> Self {
        Self::default()
    }

    fn choose(
        &self,
        state: &mut SelectorState,
        idx: usize,
        replica_read: bool,
        stale_read: bool,
    ) -> Pick {
        state.target = Some(idx);
        let slot = &mut state.replicas[idx];
        slot.attempts += 1;
        Pick {
            peer: slot.peer,
            replica_read,
            stale_read,
        }
    }

    /// Round-robin over candidates (each peer at most once), client-go
    /// `ReplicaSelectMixedStrategy.next` without scores.
    fn next_mixed(
        &self,
        state: &SelectorState,
        include_leader: bool,
        learners_only: bool,
    ) -> Option<usize> {
        let n = state.replicas.len();
        if n == 0 {
            return None;
        }
        let start = self.round_robin.fetch_add(1, Ordering::Relaxed) % n;
        (0..n).map(|k| (start + k) % n).find(|&i| {
            let r = &state.replicas[i];
            let is_leader = state.leader == Some(i);
            (include_leader || !is_leader)
                && (!learners_only || r.is_learner())
                && r.attempts == 0
                && !r.flags.unreachable
                && !r.flags.data_not_ready
                && !r.flags.server_busy
                && !r.flags.deadline_exceeded
        })
    }

    fn leader_or_other(&self, state: &mut SelectorState) -> Option<Pick> {
        if state.leader_is_candidate() {
            let i = state.leader.unwrap_or_default();
            return Some(self.choose(state, i, false, false));
        }
        // The leader is unusable: probe the other peers once each with a leader read; a
        // follower answers NotLeader naming the real leader.
        let i = self.next_mixed(state, false, false)?;
        Some(self.choose(state, i, false, false))
    }
}

impl ReplicaPolicy for ClientGoSelector {
    fn pick(&self, state: &mut SelectorState) -> Option<Pick> {
        if state.invalidated && !state.retry_after_invalidation {
            return None;
        }
        state.retry_after_invalidation = false;
        state.attempts += 1;
        let read_only = state.read_only;
        match state.read {
            ReplicaRead::Leader => self.leader_or_other(state),
            ReplicaRead::PreferLeader if state.leader_is_candidate() => self.leader_or_other(state),
            ReplicaRead::StaleRead => {
                // Second attempt after a failed stale read: the leader, normal read.
                if state.attempts >= 2 && state.leader_is_candidate() {
                    if let Some(l) = state.leader_slot() {
                        if l.attempts == 0 {
                            let i = state.leader.unwrap_or_default();
                            return Some(self.choose(state, i, false, false));
                        }
                    }
                }
                let first = state.attempts == 1;
                let i = self.next_mixed(state, true, false)?;
                let is_leader = state.leader == Some(i);
                // Retries use replica read (data may lag); the first attempt is a stale read.
                Some(self.choose(state, i, !first && !is_leader, first))
            }
            read @ (ReplicaRead::Follower
            | ReplicaRead::Mixed
            | ReplicaRead::Learner
            | ReplicaRead::PreferLeader) => {
                let include_leader = matches!(read, ReplicaRead::Mixed | ReplicaRead::PreferLeader);
                let learners = read == ReplicaRead::Learner;
                match self.next_mixed(state, include_leader, learners) {
                    Some(i) => {
                        let is_leader = state.leader == Some(i);
                        Some(self.choose(state, i, read_only && !is_leader, false))
                    }
                    // No follower left: the leader (client-go falls back to the leader).
                    None => {
                        state.read = ReplicaRead::Leader;
                        self.leader_or_other(state)
                    }
                }
            }
        }
    }

    fn on_success(&self, state: &mut SelectorState) {
        if let Some(t) = state.target_slot() {
            t.flags.server_busy = false;
        }
    }

    fn on_failure(&self, state: &mut SelectorState, failure: &ReplicaFailure) -> ReplicaVerdict {
        match failure {
            ReplicaFailure::NotLeader(leader) => {
                if let Some(t) = state.target_slot() {
                    t.flags.not_leader = true;
                }
                match leader {
                    None => ReplicaVerdict::Backoff(BackoffKind::RegionScheduling),
                    Some(peer) => {
                        if !state.set_leader(peer) {
                            state.invalidated = true;
                            return ReplicaVerdict::Relocate;
                        }
                        if state.leader_is_candidate() {
                            state.read = ReplicaRead::Leader;
                        }
                        ReplicaVerdict::RetryNow
                    }
                }
            }
            ReplicaFailure::Unreachable => {
                if let Some(t) = state.target_slot() {
                    t.flags.unreachable = true;
                }
                ReplicaVerdict::Backoff(BackoffKind::TiKvRpc)
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
                    ReplicaVerdict::RetryNow
                } else {
                    ReplicaVerdict::Backoff(BackoffKind::TiKvServerBusy)
                }
            }
            ReplicaFailure::DataIsNotReady => {
                if let Some(t) = state.target_slot() {
                    t.flags.data_not_ready = true;
                }
                ReplicaVerdict::RetryNow
            }
            ReplicaFailure::RegionNotFound => {
                let leader_untried = state.leader_slot().is_some_and(|l| l.attempts == 0);
                if leader_untried {
                    state.read = ReplicaRead::Leader;
                    state.retry_after_invalidation = true;
                    state.invalidated = true;
                    ReplicaVerdict::RetryNow
                } else {
                    state.invalidated = true;
                    ReplicaVerdict::Relocate
                }
            }
            ReplicaFailure::DeadlineExceeded => {
                if let Some(t) = state.target_slot() {
                    t.flags.deadline_exceeded = true;
                }
                ReplicaVerdict::RetryNow
            }
            ReplicaFailure::FlashbackInProgress => {
                // Retry at the leader only if this was a replica read at a follower.
                let at_follower = state.target.is_some() && state.target != state.leader;
                if state.read != ReplicaRead::Leader && at_follower {
                    state.read = ReplicaRead::Leader;
                    ReplicaVerdict::RetryNow
                } else {
                    ReplicaVerdict::GiveUp
                }
            }
            ReplicaFailure::StaleCommand => ReplicaVerdict::RetryNow,
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

    fn state(read: ReplicaRead, read_only: bool) -> (ClientGoSelector, SelectorState) {
        let p = ClientGoSelector::new();
        let mut s = SelectorState::default();
        p.init(&mut s, &route(11), read, read_only);
        (p, s)
    }

    #[test]
    fn leader_then_new_leader_on_not_leader() {
        let (p, mut s) = state(ReplicaRead::Leader, false);
        assert_eq!(p.pick(&mut s).unwrap().peer.id, 11);
        let v = p.on_failure(&mut s, &ReplicaFailure::NotLeader(Some(peer(12, 2))));
        assert_eq!(v, ReplicaVerdict::RetryNow);
        assert_eq!(p.pick(&mut s).unwrap().peer.id, 12);
    }

    #[test]
    fn not_leader_without_leader_backs_off_and_tries_another_peer() {
        let (p, mut s) = state(ReplicaRead::Leader, false);
        p.pick(&mut s);
        assert_eq!(
            p.on_failure(&mut s, &ReplicaFailure::NotLeader(None)),
            ReplicaVerdict::Backoff(BackoffKind::RegionScheduling)
        );
        let next = p.pick(&mut s).unwrap();
        assert_ne!(next.peer.id, 11);
        assert!(!next.replica_read);
    }

    #[test]
    fn unreachable_store_moves_to_next_peer_then_exhausts() {
        let (p, mut s) = state(ReplicaRead::Leader, false);
        let mut seen = vec![];
        while let Some(pick) = p.pick(&mut s) {
            seen.push(pick.peer.id);
            p.on_failure(&mut s, &ReplicaFailure::Unreachable);
        }
        seen.sort();
        assert_eq!(seen, vec![11, 12, 13]);
    }

    #[test]
    fn leader_attempts_are_bounded() {
        let (p, mut s) = state(ReplicaRead::Leader, false);
        let mut at_leader = 0;
        while let Some(pick) = p.pick(&mut s) {
            if pick.peer.id == 11 {
                at_leader += 1;
            }
            p.on_failure(&mut s, &ReplicaFailure::StaleCommand);
        }
        assert_eq!(at_leader, MAX_REPLICA_ATTEMPT);
    }

    #[test]
    fn follower_read_prefers_followers_then_leader() {
        let (p, mut s) = state(ReplicaRead::Follower, true);
        let a = p.pick(&mut s).unwrap();
        assert_ne!(a.peer.id, 11);
        assert!(a.replica_read);
        p.on_failure(&mut s, &ReplicaFailure::Unreachable);
        let b = p.pick(&mut s).unwrap();
        assert_ne!(b.peer.id, 11);
        assert_ne!(b.peer.id, a.peer.id);
        p.on_failure(&mut s, &ReplicaFailure::Unreachable);
        let c = p.pick(&mut s).unwrap();
        assert_eq!(c.peer.id, 11);
        assert!(!c.replica_read);
    }

    #[test]
    fn writes_never_use_follower_policy() {
        let (p, mut s) = state(ReplicaRead::Follower, false);
        assert_eq!(p.pick(&mut s).unwrap().peer.id, 11);
    }

    #[test]
    fn stale_read_falls_back_to_leader_on_data_not_ready() {
        let (p, mut s) = state(ReplicaRead::StaleRead, true);
        let first = p.pick(&mut s).unwrap();
        assert!(first.stale_read);
        if first.peer.id == 11 {
            // Landed on the leader: the data is there; nothing to test on this draw.
            return;
        }
        assert_eq!(
            p.on_failure(&mut s, &ReplicaFailure::DataIsNotReady),
            ReplicaVerdict::RetryNow
        );
        let second = p.pick(&mut s).unwrap();
        assert_eq!(second.peer.id, 11);
        assert!(!second.stale_read && !second.replica_read);
    }

    #[test]
    fn busy_read_records_pending_backoff_and_moves_on() {
        let (p, mut s) = state(ReplicaRead::Mixed, true);
        let a = p.pick(&mut s).unwrap();
        assert_eq!(
            p.on_failure(
                &mut s,
                &ReplicaFailure::ServerIsBusy {
                    estimated_wait_ms: 0
                }
            ),
            ReplicaVerdict::RetryNow
        );
        assert_eq!(s.pending_backoffs.len(), 1);
        assert_eq!(s.pending_backoffs[0].0, a.peer.store_id);
        let b = p.pick(&mut s).unwrap();
        assert_ne!(a.peer.id, b.peer.id);
    }

    #[test]
    fn busy_leader_write_backs_off() {
        let (p, mut s) = state(ReplicaRead::Leader, false);
        p.pick(&mut s);
        assert_eq!(
            p.on_failure(
                &mut s,
                &ReplicaFailure::ServerIsBusy {
                    estimated_wait_ms: 0
                }
            ),
            ReplicaVerdict::Backoff(BackoffKind::TiKvServerBusy)
        );
    }
}
