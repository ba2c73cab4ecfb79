//! The region-error matrix and send-failure handling.
//!
//! [`on_region_error`] mirrors client-go's `RegionRequestSender.onRegionError` case by
//! case: it informs the region cache ([`RegionLocator`]) and the replica session, and says
//! what to do next as a [`Decision`]; terminal errors come back as `Err`.
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
//! | BucketVersionNotMatch | `on_bucket_version_not_match` (cache records the newer buckets) | re-locate (RegionMiss; client-go returns it to the coprocessor client, which backs off RegionMiss and re-splits) |
//! | ServerIsBusy | "deadline is exceeded" on a configurable-timeout read → peer flagged; else pending backoff + next peer for reads, backoff for leader-only | retry now / backoff TiKVServerBusy |
//! | StaleCommand | – | retry now (selector tries the next peer when the leader exhausts) |
//! | StoreNotMatch | invalidate, store marked for re-resolution | re-locate (RegionMiss) |
//! | RaftEntryTooLarge | – | fail ([`Error::RaftEntryTooLarge`] with the configured limit) |
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
//! use tikv_tower_layers::replica::{ClientGoSelector, ReplicaPolicy};
//! use tikv_tower_layers::retry::matrix::{self, Attempt};
//! use tikv_tower_layers::{BackoffKind, Decision, Error, ReplicaRead};
//! use tikv_tower_proto::errorpb;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tikv_tower_layers::Error> {
//! # let locator = StaticLocator::split_at(&[]);
//! // The route layer's view of one attempt: region 1, sent to its leader on store 1.
//! let region = locator.locate_key(b"k").await?;
//! let policy = ClientGoSelector::default();
//! let mut session = policy.new_session(&region, &[], ReplicaRead::Leader, true);
//! let leader = session.pick().unwrap().peer;
//! let at = Attempt { region: region.ver_id(), store_id: leader.store_id, is_read: true, max_execution_duration_ms: 0, entry_limit: 0, attempts: 1 };
//!
//! // NotLeader naming the new leader: retry there at once.
//! let not_leader = Some(errorpb::NotLeader { region_id: 1, leader: Some(region.region.peers[1]) });
//! let err = errorpb::Error { not_leader, ..Default::default() };
//! assert_eq!(matrix::on_region_error(&*locator, &mut *session, &at, &err)?, Decision::Now);
//!
//! // EpochNotMatch the cache learns nothing from: back off RegionMiss, then re-locate.
//! let err = errorpb::Error { epoch_not_match: Some(Default::default()), ..Default::default() };
//! let decision = matrix::on_region_error(&*locator, &mut *session, &at, &err)?;
//! assert_eq!(decision, Decision::Relocate(Some(BackoffKind::RegionMiss)));
//!
//! // UndeterminedResult is terminal.
//! let err = errorpb::Error { undetermined_result: Some(Default::default()), ..Default::default() };
//! let result = matrix::on_region_error(&*locator, &mut *session, &at, &err);
//! assert!(matches!(result, Err(Error::Undetermined(_))));
//! # Ok(())
//! # }
//! ```

use tikv_tower_proto::errorpb;

use crate::call::TransportError;
use crate::error::{Decision, Error, RegionErrorKind};
use crate::locate::{InvalidReason, RegionLocator, RegionVerId};
use crate::replica::{ReplicaFailure, ReplicaSession};
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
    /// TiKV's `raft-entry-max-size` as the client is configured with it (a
    /// `RaftEntryTooLarge` reply carries only the entry size), 0 = unknown.
    pub entry_limit: u64,
    /// Attempts of this shard so far, this one included.
    pub attempts: u32,
}

impl Attempt {
    fn configurable_timeout(&self) -> bool {
        self.is_read
            && self.max_execution_duration_ms != 0
            && self.max_execution_duration_ms < CONFIGURABLE_TIMEOUT_BELOW_MS
    }
}

/// The region is gone from the cache and the session: re-locate after `RegionMiss`.
fn stale(
    locator: &(impl RegionLocator + ?Sized),
    session: &mut dyn ReplicaSession,
    at: &Attempt,
    reason: InvalidReason,
    backoff: BackoffKind,
) -> Decision {
    locator.invalidate_region(at.region, reason);
    session.on_failure(&ReplicaFailure::RouteStale);
    Decision::Relocate(Some(backoff))
}

/// client-go `onRegionError`: effects on cache and replica session, and the next step.
/// Terminal errors come back as `Err`, already typed.
pub fn on_region_error<L>(
    locator: &L,
    session: &mut dyn ReplicaSession,
    at: &Attempt,
    err: &errorpb::Error,
) -> Result<Decision, Error>
where
    L: RegionLocator + ?Sized,
{
    use RegionErrorKind as K;
    let kind = RegionErrorKind::of(err);
    let decision = match kind {
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
            let d = session.on_failure(&ReplicaFailure::NotLeader(leader));
            if matches!(d, Decision::Relocate(_)) {
                locator.invalidate_region(at.region, InvalidReason::NoLeader);
            }
            d
        }
        K::DiskFull => Decision::Backoff(BackoffKind::TiKvDiskFull),
        K::RecoveryInProgress => stale(
            locator,
            session,
            at,
            InvalidReason::Other,
            BackoffKind::RegionRecoveryInProgress,
        ),
        K::IsWitness => stale(
            locator,
            session,
            at,
            InvalidReason::Other,
            BackoffKind::IsWitness,
        ),
        K::FlashbackInProgress => match session.on_failure(&ReplicaFailure::FlashbackInProgress) {
            Decision::Now => Decision::Now,
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
        },
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
            match session.on_failure(&ReplicaFailure::RegionNotFound) {
                Decision::Now => Decision::Now,
                _ => Decision::Relocate(Some(BackoffKind::RegionMiss)),
            }
        }
        K::KeyNotInRegion => stale(
            locator,
            session,
            at,
            InvalidReason::KeyNotInRegion,
            BackoffKind::RegionMiss,
        ),
        K::EpochNotMatch => {
            let current = err
                .epoch_not_match
                .as_ref()
                .map(|e| e.current_regions.as_slice())
                .unwrap_or(&[]);
            let learned = locator.on_epoch_not_match(at.region, current);
            session.on_failure(&ReplicaFailure::RouteStale);
            if learned {
                Decision::Relocate(None)
            } else {
                locator.invalidate_region(at.region, InvalidReason::EpochNotMatch);
                Decision::Relocate(Some(BackoffKind::RegionMiss))
            }
        }
        K::BucketVersionNotMatch => {
            if let Some(b) = &err.bucket_version_not_match {
                locator.on_bucket_version_not_match(at.region, b.version, &b.keys);
            }
            Decision::Relocate(Some(BackoffKind::RegionMiss))
        }
        K::ServerIsBusy => {
            let busy = err.server_is_busy.clone().unwrap_or_default();
            if busy.reason.contains("deadline is exceeded") && at.configurable_timeout() {
                session.on_failure(&ReplicaFailure::DeadlineExceeded)
            } else {
                session.on_failure(&ReplicaFailure::ServerIsBusy {
                    estimated_wait_ms: busy.estimated_wait_ms,
                })
            }
        }
        K::StaleCommand => session.on_failure(&ReplicaFailure::StaleCommand),
        K::StoreNotMatch => {
            locator.on_send_fail(at.region, at.store_id);
            stale(
                locator,
                session,
                at,
                InvalidReason::StoreNotMatch,
                BackoffKind::RegionMiss,
            )
        }
        K::RaftEntryTooLarge => {
            let e = err.raft_entry_too_large.unwrap_or_default();
            return Err(Error::RaftEntryTooLarge {
                region_id: e.region_id,
                entry_size: e.entry_size,
                limit: at.entry_limit,
            });
        }
        K::MaxTimestampNotSynced => Decision::Backoff(BackoffKind::MaxTsNotSynced),
        K::RegionNotInitialized => Decision::Backoff(BackoffKind::MaxRegionNotInitialized),
        K::ReadIndexNotReady | K::ProposalInMergingMode => {
            Decision::Backoff(BackoffKind::RegionScheduling)
        }
        K::DataIsNotReady => session.on_failure(&ReplicaFailure::DataIsNotReady),
        K::DeadlineExceeded if at.configurable_timeout() => {
            session.on_failure(&ReplicaFailure::DeadlineExceeded)
        }
        K::MismatchPeerId | K::DeadlineExceeded | K::Unknown => stale(
            locator,
            session,
            at,
            InvalidReason::Other,
            BackoffKind::RegionMiss,
        ),
    };
    Ok(decision)
}

/// client-go `onSendFail`: the store did not answer.
///
/// Cancellation and a full store (`TokenLimit`) are final. A timeout of a read under a
/// configurable timeout moves to another replica at once. Otherwise the peer is marked unreachable for this shard, the
/// cache is told (`on_send_fail`: store address re-resolved, region reloaded) and the
/// request backs off `BoTiKVRPC` before trying the next peer.
pub fn on_send_fail<L>(
    locator: &L,
    session: &mut dyn ReplicaSession,
    at: &Attempt,
    err: &TransportError,
) -> Decision
where
    L: RegionLocator + ?Sized,
{
    match err {
        TransportError::Canceled | TransportError::TokenLimit { .. } => Decision::Return,
        TransportError::Timeout { .. } if at.configurable_timeout() => {
            session.on_failure(&ReplicaFailure::DeadlineExceeded)
        }
        _ => {
            locator.on_send_fail(at.region, at.store_id);
            match session.on_failure(&ReplicaFailure::Unreachable) {
                Decision::Return => Decision::Return,
                _ => Decision::Backoff(BackoffKind::TiKvRpc),
            }
        }
    }
}
