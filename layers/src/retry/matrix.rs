//! The region-error matrix and send-failure handling.
//!
//! [`on_region_error`] mirrors client-go's `RegionRequestSender.onRegionError` case by
//! case: it informs the region cache ([`RegionLocator`]) and the replica policy, and says
//! what to do next as a [`RetryHint`]; terminal errors come back as `Err`.
//! [`on_send_fail`] mirrors `RegionRequestSender.onSendFail`.
//!
//! | region error | cache / selector effect | next |
//! |---|---|---|
//! | UndeterminedResult | – | fail ([`Error::Undetermined`]) |
//! | NotLeader + leader | `update_leader`, selector moves to it | retry now |
//! | NotLeader, no leader | `update_leader(None)`, peer flagged | backoff RegionScheduling, next peer |
//! | DiskFull | – | backoff TiKVDiskFull |
//! | RecoveryInProgress | invalidate | backoff RegionRecoveryInProgress, re-locate |
//! | IsWitness | invalidate | backoff IsWitness, re-locate |
//! | FlashbackInProgress | follower replica read → leader | retry now, else fail |
//! | FlashbackNotPrepared | – | fail |
//! | RegionNotFound | invalidate; leader untried → one retry at the leader | retry now / re-locate (RegionMiss) |
//! | KeyNotInRegion | invalidate | re-locate (RegionMiss) |
//! | EpochNotMatch | `on_epoch_not_match(current_regions)` | re-locate (no backoff if the cache learned something, else RegionMiss) |
//! | BucketVersionNotMatch | – | re-locate (RegionMiss) |
//! | ServerIsBusy | "deadline is exceeded" on a configurable-timeout read → peer flagged; else pending backoff + next peer for reads, backoff for leader-only | retry now / backoff TiKVServerBusy |
//! | StaleCommand | – | retry now (selector tries the next peer when the leader exhausts) |
//! | StoreNotMatch | invalidate, store marked for re-resolution | re-locate (RegionMiss) |
//! | RaftEntryTooLarge | – | fail |
//! | MaxTimestampNotSynced | – | backoff MaxTsNotSynced |
//! | RegionNotInitialized | – | backoff MaxRegionNotInitialized |
//! | ReadIndexNotReady, ProposalInMergingMode | – | backoff RegionScheduling |
//! | DataIsNotReady | peer flagged (stale read → leader) | retry now |
//! | server deadline exceeded on a configurable-timeout read | peer flagged | retry now |
//! | MismatchPeerId | invalidate | re-locate (RegionMiss) |
//! | unknown | invalidate | re-locate (RegionMiss) |
//!
//! # Example
//!
//! ```
//! # use std::sync::Arc;
//! # use tikv_tower_proto::metapb;
//! # use tikv_tower_layers::testing::StaticLocator;
//! # use tikv_tower_layers::RegionLocator;
//! use tikv_tower_layers::replica::{ClientGoSelector, ReplicaPolicy, SelectorState};
//! use tikv_tower_layers::retry::matrix::{self, Attempt};
//! use tikv_tower_layers::{BackoffKind, Error, ReplicaRead, RetryHint};
//! use tikv_tower_proto::errorpb;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tikv_tower_layers::Error> {
//! # let locator = StaticLocator::split_at(&[]);
//! // The route layer's view of one attempt: region 1, sent to its leader on store 1.
//! let region = locator.locate_key(b"k").await?;
//! let policy = ClientGoSelector::default();
//! let mut state = SelectorState::default();
//! policy.init(&mut state, &region, ReplicaRead::Leader, true);
//! let leader = policy.pick(&mut state).unwrap().peer;
//! let at = Attempt { region: region.ver_id(), store_id: leader.store_id, is_read: true, max_execution_duration_ms: 0 };
//!
//! // NotLeader naming the new leader: retry there at once.
//! let not_leader = Some(errorpb::NotLeader { region_id: 1, leader: Some(region.region.peers[1]) });
//! let err = errorpb::Error { not_leader, ..Default::default() };
//! assert_eq!(matrix::on_region_error(&*locator, &policy, &mut state, &at, &err)?, RetryHint::Now);
//!
//! // EpochNotMatch the cache learns nothing from: back off RegionMiss, then re-locate.
//! let err = errorpb::Error { epoch_not_match: Some(Default::default()), ..Default::default() };
//! let hint = matrix::on_region_error(&*locator, &policy, &mut state, &at, &err)?;
//! assert_eq!(hint, RetryHint::Relocate(Some(BackoffKind::RegionMiss)));
//!
//! // UndeterminedResult is terminal.
//! let err = errorpb::Error { undetermined_result: Some(Default::default()), ..Default::default() };
//! let result = matrix::on_region_error(&*locator, &policy, &mut state, &at, &err);
//! assert!(matches!(result, Err(Error::Undetermined(_))));
//! # Ok(())
//! # }
//! ```

use tikv_tower_proto::errorpb;

use crate::call::TransportError;
use crate::error::{Error, RegionErrorKind, RetryHint};
use crate::locate::{InvalidReason, RegionLocator, RegionVerId};
use crate::replica::{ReplicaFailure, ReplicaPolicy, ReplicaVerdict, SelectorState};
use crate::retry::backoff::BackoffKind;

/// client-go `ReadTimeoutShort` in ms: a read whose `max_execution_duration_ms` is below
/// this uses a *configurable* timeout, and a timeout moves it to another replica without
/// backoff (client-go `isReadReqConfigurableTimeout`).
const CONFIGURABLE_TIMEOUT_BELOW_MS: u64 = 30_000;

/// What the matrix needs to know about the failed attempt.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    /// Region the attempt was routed to.
    pub region: RegionVerId,
    /// Store it was sent to.
    pub store_id: u64,
    /// Whether the request is a read that may use a configurable timeout
    /// (Get / BatchGet / Scan family).
    pub is_read: bool,
    /// `Context.max_execution_duration_ms` of the attempt (0 = unset).
    pub max_execution_duration_ms: u64,
}

impl Attempt {
    fn configurable_timeout(&self) -> bool {
        self.is_read
            && self.max_execution_duration_ms != 0
            && self.max_execution_duration_ms < CONFIGURABLE_TIMEOUT_BELOW_MS
    }
}

fn verdict_to_hint(v: ReplicaVerdict) -> RetryHint {
    match v {
        ReplicaVerdict::RetryNow => RetryHint::Now,
        ReplicaVerdict::Backoff(k) => RetryHint::Backoff(k),
        ReplicaVerdict::Relocate => RetryHint::Relocate(Some(BackoffKind::RegionMiss)),
        ReplicaVerdict::GiveUp => RetryHint::Fail,
    }
}

/// client-go `onRegionError`: effects on cache and selector, and the next step.
pub fn on_region_error<L, P>(
    locator: &L,
    policy: &P,
    state: &mut SelectorState,
    at: &Attempt,
    err: &errorpb::Error,
) -> Result<RetryHint, Error>
where
    L: RegionLocator + ?Sized,
    P: ReplicaPolicy + ?Sized,
{
    use RegionErrorKind as K;
    let kind = RegionErrorKind::of(err);
    let miss = RetryHint::Relocate(Some(BackoffKind::RegionMiss));
    let hint = match kind {
        K::UndeterminedResult => {
            let msg = err
                .undetermined_result
                .as_ref()
                .map(|u| u.message.clone())
                .unwrap_or_default();
            return Err(Error::Undetermined(if msg.is_empty() {
                err.message.clone()
            } else {
                msg
            }));
        }
        K::NotLeader => {
            let leader = err.not_leader.as_ref().and_then(|n| n.leader);
            locator.update_leader(at.region, leader);
            let v = policy.on_failure(state, &ReplicaFailure::NotLeader(leader));
            if v == ReplicaVerdict::Relocate {
                locator.invalidate_region(at.region, InvalidReason::NoLeader);
            }
            verdict_to_hint(v)
        }
        K::DiskFull => RetryHint::Backoff(BackoffKind::TiKvDiskFull),
        K::RecoveryInProgress => {
            locator.invalidate_region(at.region, InvalidReason::Other);
            state.invalidated = true;
            RetryHint::Relocate(Some(BackoffKind::RegionRecoveryInProgress))
        }
        K::IsWitness => {
            locator.invalidate_region(at.region, InvalidReason::Other);
            state.invalidated = true;
            RetryHint::Relocate(Some(BackoffKind::IsWitness))
        }
        K::FlashbackInProgress => {
            match policy.on_failure(state, &ReplicaFailure::FlashbackInProgress) {
                ReplicaVerdict::RetryNow => RetryHint::Now,
                _ => {
                    let f = err.flashback_in_progress.unwrap_or_default();
                    return Err(Error::Flashback {
                        region_id: f.region_id,
                        message: format!(
                            "in flashback progress, flashback start ts {}",
                            f.flashback_start_ts
                        ),
                    });
                }
            }
        }
        K::FlashbackNotPrepared => {
            let region_id = err
                .flashback_not_prepared
                .as_ref()
                .map_or(at.region.id, |f| f.region_id);
            return Err(Error::Flashback {
                region_id,
                message: "not prepared for the flashback".into(),
            });
        }
        K::RegionNotFound => {
            locator.invalidate_region(at.region, InvalidReason::RegionNotFound);
            match policy.on_failure(state, &ReplicaFailure::RegionNotFound) {
                ReplicaVerdict::RetryNow => RetryHint::Now,
                _ => miss,
            }
        }
        K::KeyNotInRegion => {
            locator.invalidate_region(at.region, InvalidReason::KeyNotInRegion);
            state.invalidated = true;
            miss
        }
        K::EpochNotMatch => {
            let current = err
                .epoch_not_match
                .as_ref()
                .map(|e| e.current_regions.as_slice())
                .unwrap_or(&[]);
            let learned = locator.on_epoch_not_match(at.region, current);
            state.invalidated = true;
            if learned {
                RetryHint::Relocate(None)
            } else {
                locator.invalidate_region(at.region, InvalidReason::EpochNotMatch);
                miss
            }
        }
        K::BucketVersionNotMatch => miss,
        K::ServerIsBusy => {
            let busy = err.server_is_busy.clone().unwrap_or_default();
            if busy.reason.contains("deadline is exceeded") && at.configurable_timeout() {
                verdict_to_hint(policy.on_failure(state, &ReplicaFailure::DeadlineExceeded))
            } else {
                verdict_to_hint(policy.on_failure(
                    state,
                    &ReplicaFailure::ServerIsBusy {
                        estimated_wait_ms: busy.estimated_wait_ms,
                    },
                ))
            }
        }
        K::StaleCommand => verdict_to_hint(policy.on_failure(state, &ReplicaFailure::StaleCommand)),
        K::StoreNotMatch => {
            locator.on_send_fail(at.region, at.store_id);
            locator.invalidate_region(at.region, InvalidReason::StoreNotMatch);
            state.invalidated = true;
            miss
        }
        K::RaftEntryTooLarge => {
            let e = err.raft_entry_too_large.unwrap_or_default();
            return Err(Error::RaftEntryTooLarge {
                region_id: e.region_id,
                entry_size: e.entry_size,
            });
        }
        K::MaxTimestampNotSynced => RetryHint::Backoff(BackoffKind::MaxTsNotSynced),
        K::RegionNotInitialized => RetryHint::Backoff(BackoffKind::MaxRegionNotInitialized),
        K::ReadIndexNotReady | K::ProposalInMergingMode => {
            RetryHint::Backoff(BackoffKind::RegionScheduling)
        }
        K::DataIsNotReady => {
            verdict_to_hint(policy.on_failure(state, &ReplicaFailure::DataIsNotReady))
        }
        K::DeadlineExceeded if at.configurable_timeout() => {
            verdict_to_hint(policy.on_failure(state, &ReplicaFailure::DeadlineExceeded))
        }
        K::MismatchPeerId | K::DeadlineExceeded | K::Unknown => {
            locator.invalidate_region(at.region, InvalidReason::Other);
            state.invalidated = true;
            miss
        }
    };
    Ok(hint)
}

/// client-go `onSendFail`: the store did not answer.
///
/// Cancellation and a full store (`TokenLimit`) are final. A timeout of a read under a
/// configurable timeout moves to another replica at once. Otherwise the peer is marked unreachable for this shard, the
/// cache is told (`on_send_fail`: store address re-resolved, region reloaded) and the
/// request backs off `BoTiKVRPC` before trying the next peer.
pub fn on_send_fail<L, P>(
    locator: &L,
    policy: &P,
    state: &mut SelectorState,
    at: &Attempt,
    err: &TransportError,
) -> RetryHint
where
    L: RegionLocator + ?Sized,
    P: ReplicaPolicy + ?Sized,
{
    match err {
        // client-go `sendReqToRegion` returns `ErrTokenLimit` to the caller at once.
        TransportError::Canceled | TransportError::TokenLimit { .. } => RetryHint::Fail,
        TransportError::Timeout { .. } if at.configurable_timeout() => {
            verdict_to_hint(policy.on_failure(state, &ReplicaFailure::DeadlineExceeded))
        }
        _ => {
            locator.on_send_fail(at.region, at.store_id);
            match policy.on_failure(state, &ReplicaFailure::Unreachable) {
                ReplicaVerdict::GiveUp => RetryHint::Fail,
                _ => RetryHint::Backoff(BackoffKind::TiKvRpc),
            }
        }
    }
}
