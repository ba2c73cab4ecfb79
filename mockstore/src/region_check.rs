//! The region checks every region-scoped request passes before its command
//! runs (spec §2.1), in TiKV's order, and the construction of region errors.
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | `ctx.cluster_id != 0` and differs | gRPC `INVALID_ARGUMENT` (`reject_if_cluster_id_mismatch!`) |
//! | 3 | `ctx.peer.store_id` ≠ receiving store | `StoreNotMatch` (raftstore `check_store_id`) |
//! | 4 | region unknown or no peer here | `RegionNotFound` |
//! | 5 | `ctx.peer.id` ≠ local peer (0 included) | `MismatchPeerId` (`check_peer_id`) |
//! | 7 | local peer not leader, request not a replica/stale read | `NotLeader{leader if known}` |
//! | 6 | `ctx.term != 0` and the current term > `term + 1` | `StaleCommand` (`check_term`) |
//! | 8 | no `ctx.region_epoch` | message `missing epoch!` |
//! | 9 | `epoch.version` differs (conf_ver ignored) | `EpochNotMatch{current + siblings}` (`compare_region_epoch`, `collect_sibling_region`) |
//! | 10 | a key outside the region | `KeyNotInRegion` (`check_key_in_region`) |
//! | 11 | write larger than `raft-entry-max-size` | `RaftEntryTooLarge` |
//!
//! Rows are in the order TiKV applies them (raftstore
//! `PeerFsmDelegate::pre_propose_raft_command`: store, peer, leader, term,
//! epoch), numbered as in the spec. Check 2 (a stopped store) is the
//! store's, before any of these. Keys are compared in the request's form
//! ([`ApiVersion::key_form`](crate::cluster::ApiVersion::key_form)): an
//! API-V1 raw key unencoded, a transactional or API-V2 key
//! memcomparable-encoded (TiKV `encode_raw_key` / `Key::from_raw`).
//!
//! The peer-id check is unconditional, as TiKV's `util::check_peer_id` (run
//! by both `pre_propose_raft_command` and `LocalReader`): a request naming
//! the right store but peer id 0 gets `MismatchPeerId`.

use tikv_tower_proto::errorpb;
use tikv_tower_proto::rpc::StoreRequest;

use crate::cluster::{ApiVersion, BoundaryEncoding, ClusterState, Region};
use crate::fault::InjectedError;
use crate::store::request_keys::{request_keys, write_size, KeyCheck};

/// Why a request did not pass the region checks.
#[derive(Debug)]
pub enum CheckFailure {
    /// A gRPC-level failure (cluster id mismatch).
    Status(tonic::Status),
    /// A region error to put into the response.
    Region(Box<errorpb::Error>),
}

/// What a request must match; extracted from the cluster once per request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckParams {
    pub(crate) cluster_id: u64,
    pub(crate) store_id: u64,
    pub(crate) api_version: ApiVersion,
    pub(crate) raft_entry_max_size: u64,
}

/// Runs checks 1 and 3–11 for `req` received by `params.store_id`; returns
/// the addressed region when they pass.
pub(crate) fn check_request(
    state: &ClusterState,
    params: CheckParams,
    req: &StoreRequest,
) -> Result<Region, CheckFailure> {
    let default_ctx = tikv_tower_proto::kvrpcpb::Context::default();
    let ctx = req.context().unwrap_or(&default_ctx);
    check_cluster_id(params.cluster_id, ctx.cluster_id)?;

    let req_peer = ctx.peer.unwrap_or_default();
    if req_peer.store_id != params.store_id {
        return Err(region_err(
            format!(
                "store not match, request store id is {}, but actual store id is {}",
                req_peer.store_id, params.store_id
            ),
            |e| {
                e.store_not_match = Some(errorpb::StoreNotMatch {
                    request_store_id: req_peer.store_id,
                    actual_store_id: params.store_id,
                })
            },
        ));
    }
    let region = state
        .region(ctx.region_id)
        .filter(|r| r.peer_on_store(params.store_id).is_some())
        .ok_or_else(|| region_not_found(ctx.region_id))?;
    let Some(local) = region.peer_on_store(params.store_id).copied() else {
        return Err(region_not_found(ctx.region_id));
    };
    if req_peer.id != local.id {
        return Err(region_err(
            format!("mismatch peer id {} != {}", req_peer.id, local.id),
            |e| {
                e.mismatch_peer_id = Some(errorpb::MismatchPeerId {
                    request_peer_id: req_peer.id,
                    store_peer_id: local.id,
                })
            },
        ));
    }
    let is_leader = region.leader == Some(local.id);
    let follower_read_ok = req.kind().is_read_only() && (ctx.replica_read || ctx.stale_read);
    if !is_leader && !follower_read_ok {
        return Err(not_leader(region));
    }
    if ctx.term != 0 && region.term > ctx.term.saturating_add(1) {
        return Err(stale_command());
    }
    let Some(epoch) = ctx.region_epoch.as_ref() else {
        return Err(region_err("missing epoch!".to_string(), |_| {}));
    };
    if epoch.version != region.epoch.version {
        return Err(epoch_not_match(
            state,
            region,
            params.store_id,
            epoch.version,
        ));
    }
    let form = params.api_version.key_form(req.kind().is_raw());
    for check in request_keys(req) {
        if !key_in_region(form, region, check) {
            let key = match check {
                KeyCheck::Point(k) | KeyCheck::UpperBound(k) | KeyCheck::PrevSeek(k) => k,
            };
            return Err(key_not_in_region(key, region));
        }
    }
    let size = write_size(req);
    if size > params.raft_entry_max_size {
        return Err(region_err(
            format!(
                "raft entry is too large, region {}, entry size {size}",
                region.id
            ),
            |e| {
                e.raft_entry_too_large = Some(errorpb::RaftEntryTooLarge {
                    region_id: region.id,
                    entry_size: size,
                })
            },
        ));
    }
    Ok(region.clone())
}

/// Check 1: `ctx.cluster_id != 0 && != cluster` → `INVALID_ARGUMENT`.
pub(crate) fn check_cluster_id(cluster_id: u64, requested: u64) -> Result<(), CheckFailure> {
    if requested != 0 && requested != cluster_id {
        return Err(CheckFailure::Status(tonic::Status::invalid_argument(format!(
            "cluster id mismatch: request cluster id is {requested}, but the TiKV cluster id is {cluster_id}"
        ))));
    }
    Ok(())
}

/// Whether a request key satisfies `check` against `region`.
pub(crate) fn key_in_region(
    encoding: BoundaryEncoding,
    region: &Region,
    check: KeyCheck<'_>,
) -> bool {
    match check {
        KeyCheck::Point(key) => region.contains(&encoding.to_boundary(key)),
        KeyCheck::UpperBound([]) => region.end_key.is_empty(),
        KeyCheck::UpperBound(key) | KeyCheck::PrevSeek(key) => {
            let enc = encoding.to_boundary(key);
            enc >= region.start_key && (region.end_key.is_empty() || enc <= region.end_key)
        }
    }
}

fn region_err(message: String, set: impl FnOnce(&mut errorpb::Error)) -> CheckFailure {
    CheckFailure::Region(Box::new(build(message, set)))
}

fn build(message: String, set: impl FnOnce(&mut errorpb::Error)) -> errorpb::Error {
    let mut e = errorpb::Error {
        message,
        ..Default::default()
    };
    set(&mut e);
    e
}

fn region_not_found(region_id: u64) -> CheckFailure {
    CheckFailure::Region(Box::new(region_not_found_error(region_id)))
}

fn region_not_found_error(region_id: u64) -> errorpb::Error {
    build(format!("region {region_id} is missing"), |e| {
        e.region_not_found = Some(errorpb::RegionNotFound { region_id })
    })
}

fn stale_command() -> CheckFailure {
    CheckFailure::Region(Box::new(build("stale command".into(), |e| {
        e.stale_command = Some(errorpb::StaleCommand {})
    })))
}

fn not_leader(region: &Region) -> CheckFailure {
    CheckFailure::Region(Box::new(not_leader_error(region, true)))
}

fn not_leader_error(region: &Region, with_leader: bool) -> errorpb::Error {
    let leader = if with_leader {
        region.leader_pb()
    } else {
        None
    };
    build(
        format!(
            "peer is not leader for region {}, leader may {:?}",
            region.id, leader
        ),
        |e| {
            e.not_leader = Some(errorpb::NotLeader {
                region_id: region.id,
                leader,
            })
        },
    )
}

fn epoch_not_match(
    state: &ClusterState,
    region: &Region,
    store_id: u64,
    requested: u64,
) -> CheckFailure {
    CheckFailure::Region(Box::new(epoch_not_match_error(
        state, region, store_id, requested,
    )))
}

fn epoch_not_match_error(
    state: &ClusterState,
    region: &Region,
    store_id: u64,
    requested: u64,
) -> errorpb::Error {
    let current_regions = state
        .epoch_not_match_regions(region, store_id, requested)
        .iter()
        .map(Region::to_pb)
        .collect();
    build(
        format!(
            "epoch not match: current epoch of region {} is {:?}, but you sent version {requested}",
            region.id, region.epoch
        ),
        |e| e.epoch_not_match = Some(errorpb::EpochNotMatch { current_regions }),
    )
}

fn key_not_in_region(key: &[u8], region: &Region) -> CheckFailure {
    CheckFailure::Region(Box::new(build(
        format!(
            "key {key:?} is not in region key range [{:?}, {:?}) for region {}",
            region.start_key, region.end_key, region.id
        ),
        |e| {
            e.key_not_in_region = Some(errorpb::KeyNotInRegion {
                key: key.to_vec().into(),
                region_id: region.id,
                start_key: region.start_key.clone().into(),
                end_key: region.end_key.clone().into(),
            })
        },
    )))
}

/// Builds the region error for an injected fault, filling its payload from
/// the cluster's current state.
pub(crate) fn injected_error(
    state: &ClusterState,
    buckets: impl FnOnce(&crate::cluster::Region) -> Option<tikv_tower_proto::metapb::Buckets>,
    store_id: u64,
    req: &StoreRequest,
    e: &InjectedError,
) -> errorpb::Error {
    let region_id = req.context().map_or(0, |c| c.region_id);
    let region = state.region(region_id);
    let requested_version = req
        .context()
        .and_then(|c| c.region_epoch.as_ref())
        .map_or(0, |e| e.version);
    match e {
        InjectedError::NotLeader => match region {
            Some(r) => not_leader_error(r, true),
            None => region_not_found_error(region_id),
        },
        InjectedError::NotLeaderNoLeader => build(
            format!("peer is not leader for region {region_id}, leader may None"),
            |e| {
                e.not_leader = Some(errorpb::NotLeader {
                    region_id,
                    leader: None,
                })
            },
        ),
        InjectedError::EpochNotMatch => match region {
            Some(r) => epoch_not_match_error(
                state,
                r,
                store_id,
                requested_version.min(r.epoch.version.saturating_sub(1)),
            ),
            None => region_not_found_error(region_id),
        },
        InjectedError::ServerIsBusy { reason, backoff_ms } => {
            build(format!("server is busy: {reason}"), |e| {
                e.server_is_busy = Some(errorpb::ServerIsBusy {
                    reason: reason.clone(),
                    backoff_ms: *backoff_ms,
                    estimated_wait_ms: 0,
                    applied_index: 0,
                })
            })
        }
        InjectedError::StaleCommand => build("stale command".into(), |e| {
            e.stale_command = Some(errorpb::StaleCommand {})
        }),
        InjectedError::RegionNotFound => region_not_found_error(region_id),
        InjectedError::DiskFull => build(format!("disk full on store {store_id}"), |e| {
            e.disk_full = Some(errorpb::DiskFull {
                store_id: vec![store_id],
                reason: "disk full".into(),
            })
        }),
        InjectedError::MaxTimestampNotSynced => build("max timestamp not synced".into(), |e| {
            e.max_timestamp_not_synced = Some(errorpb::MaxTimestampNotSynced {})
        }),
        InjectedError::UndeterminedResult => build("undetermined result".into(), |e| {
            e.undetermined_result = Some(errorpb::UndeterminedResult {
                message: "the command may or may not have been applied".into(),
            })
        }),
        InjectedError::ReadIndexNotReady => build("read index not ready".into(), |e| {
            e.read_index_not_ready = Some(errorpb::ReadIndexNotReady {
                reason: "injected".into(),
                region_id,
            })
        }),
        InjectedError::ProposalInMergingMode => build("proposal in merging mode".into(), |e| {
            e.proposal_in_merging_mode = Some(errorpb::ProposalInMergingMode { region_id })
        }),
        InjectedError::RegionNotInitialized => {
            build(format!("region {region_id} not initialized"), |e| {
                e.region_not_initialized = Some(errorpb::RegionNotInitialized { region_id })
            })
        }
        InjectedError::RecoveryInProgress => build("recovery in progress".into(), |e| {
            e.recovery_in_progress = Some(errorpb::RecoveryInProgress { region_id })
        }),
        InjectedError::FlashbackInProgress => build("flashback in progress".into(), |e| {
            e.flashback_in_progress = Some(errorpb::FlashbackInProgress {
                region_id,
                flashback_start_ts: 0,
            })
        }),
        InjectedError::IsWitness => build("peer is witness".into(), |e| {
            e.is_witness = Some(errorpb::IsWitness { region_id })
        }),
        InjectedError::DataIsNotReady => build("data is not ready".into(), |e| {
            e.data_is_not_ready = Some(errorpb::DataIsNotReady {
                region_id,
                peer_id: region
                    .and_then(|r| r.peer_on_store(store_id))
                    .map_or(0, |p| p.id),
                safe_ts: 0,
            })
        }),
        // Without buckets mode: one bucket over the region, versioned by its epoch.
        InjectedError::BucketVersionNotMatch => match region {
            Some(r) => {
                let latest = buckets(r).unwrap_or_else(|| tikv_tower_proto::metapb::Buckets {
                    region_id: r.id,
                    version: r.epoch.version,
                    keys: vec![r.start_key.clone().into(), r.end_key.clone().into()],
                    ..Default::default()
                });
                crate::cluster::buckets::bucket_version_not_match(&latest)
            }
            None => region_not_found_error(region_id),
        },
        InjectedError::Custom(e) => (**e).clone(),
    }
}
