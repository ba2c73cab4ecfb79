//! PD's GC state: txn safe point, GC safe point and GC barriers per keyspace, plus
//! global GC barriers.
//!
//! Mirrors PD's `GCStateManager` (`pkg/gc/gc_state_manager.go`):
//! - the **txn safe point** only moves forward; `AdvanceTxnSafePoint(target)` fails if
//!   `target < current`, otherwise moves to `max(current, min(target, live barriers))`
//!   and names the blocking barrier when it stops short;
//! - the **GC safe point** only moves forward and never passes the txn safe point
//!   (`AdvanceGCSafePoint`); the legacy `UpdateGCSafePoint` ignores a smaller value
//!   instead of failing;
//! - **GC barriers** (`SetGCBarrier`) must be at or above the txn safe point, have a
//!   non-empty id other than the reserved `gc_worker` and a positive TTL; they expire
//!   lazily (dropped when the txn safe point is advanced);
//! - legacy **service safe points** (`UpdateServiceGCSafePoint`) map onto the above:
//!   `gc_worker` advances the txn safe point, any other service id sets (TTL > 0) or
//!   deletes (TTL <= 0) a GC barrier;
//! - keyspace scopes (`redirectKeyspace`): an id outside the 24-bit keyspace range is
//!   the *null keyspace* (cluster-level, "unified" GC). A keyspace whose config says
//!   `gc_management_type = keyspace_level` has a GC state of its own: every API acts on
//!   it. For any other keyspace user APIs (barriers, reads) are redirected to the null
//!   keyspace and management APIs (advancing safe points) fail.

use std::collections::{BTreeMap, HashMap};

use tikv_tower_proto::pdpb;

/// The keyspace id PD uses for cluster-level GC state.
pub const NULL_KEYSPACE_ID: u32 = u32::MAX;
/// Ids with bits outside this mask are not keyspace ids.
const VALID_KEYSPACE_MASK: u32 = 0x00FF_FFFF;
/// The reserved service id of the GC worker.
pub const GC_WORKER_SERVICE_ID: &str = "gc_worker";

/// Why a GC state operation was refused (reported in the PD response header).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GcError {
    /// The txn safe point would move backwards.
    #[error(
        "trying to update txn safe point to a smaller value, current value: {old}, given: {target}"
    )]
    DecreasingTxnSafePoint {
        /// Current value.
        old: u64,
        /// Requested value.
        target: u64,
    },
    /// The GC safe point would move backwards.
    #[error(
        "trying to update GC safe point to a smaller value, current value: {old}, given: {target}"
    )]
    DecreasingGcSafePoint {
        /// Current value.
        old: u64,
        /// Requested value.
        target: u64,
    },
    /// The GC safe point would pass the txn safe point.
    #[error("trying to update GC safe point to a too large value, current value: {old}, given: {target}, current txn safe point: {txn}")]
    GcSafePointExceedsTxnSafePoint {
        /// Current value.
        old: u64,
        /// Requested value.
        target: u64,
        /// Current txn safe point.
        txn: u64,
    },
    /// A barrier below the txn safe point.
    #[error(
        "trying to set a GC barrier on ts {ts} which is already behind the txn safe point {txn}"
    )]
    BarrierBehindTxnSafePoint {
        /// Requested barrier ts.
        ts: u64,
        /// Current txn safe point.
        txn: u64,
    },
    /// The barrier id is reserved.
    #[error("GC barrier ID {0:?} is reserved")]
    ReservedBarrierId(String),
    /// A malformed argument.
    #[error("invalid argument {0}: {1}")]
    InvalidArgument(&'static str, String),
    /// The keyspace does not use keyspace-level GC.
    #[error("trying to manage GC in keyspace {0} where keyspace level GC is not enabled")]
    GcOnInvalidKeyspace(u32),
    /// The keyspace does not exist.
    #[error("keyspace {0} not found")]
    KeyspaceNotFound(u32),
    /// `gc_worker`'s service safe point must have an infinite TTL.
    #[error("TTL of gc_worker's service safe point must be infinity")]
    GcWorkerTtl,
}

#[derive(Debug, Clone, Copy)]
struct Barrier {
    ts: u64,
    /// Unix milliseconds after which the barrier is dead; `None` = never.
    expire_at_ms: Option<u64>,
}

impl Barrier {
    fn new(ts: u64, ttl_secs: i64, now_ms: u64) -> Self {
        let expire_at_ms = (ttl_secs != i64::MAX).then(|| {
            let ms = u64::try_from(ttl_secs).unwrap_or(0).saturating_mul(1000);
            now_ms.saturating_add(ms)
        });
        Barrier { ts, expire_at_ms }
    }

    fn expired(&self, now_ms: u64) -> bool {
        self.expire_at_ms.is_some_and(|t| now_ms > t)
    }

    /// Remaining TTL in whole seconds (`i64::MAX` for none).
    fn ttl_left(&self, now_ms: u64) -> i64 {
        match self.expire_at_ms {
            None => i64::MAX,
            Some(t) => i64::try_from(t.saturating_sub(now_ms) / 1000).unwrap_or(i64::MAX),
        }
    }

    fn info(&self, id: &str, now_ms: u64) -> pdpb::GcBarrierInfo {
        pdpb::GcBarrierInfo {
            barrier_id: id.to_string(),
            barrier_ts: self.ts,
            ttl_seconds: self.ttl_left(now_ms),
        }
    }

    fn global_info(&self, id: &str, now_ms: u64) -> pdpb::GlobalGcBarrierInfo {
        pdpb::GlobalGcBarrierInfo {
            barrier_id: id.to_string(),
            barrier_ts: self.ts,
            ttl_seconds: self.ttl_left(now_ms),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct KeyspaceGc {
    txn_safe_point: u64,
    gc_safe_point: u64,
    barriers: BTreeMap<String, Barrier>,
}

/// Outcome of advancing the txn safe point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnAdvance {
    /// Value before the call.
    pub old: u64,
    /// Value after the call.
    pub new: u64,
    /// Why it stopped short of the target (empty if it did not).
    pub blocker: String,
    /// For the legacy service-safe-point API: the id that blocked it.
    pub blocker_id: Option<String>,
}

/// The GC state of every keyspace (see the module docs).
#[derive(Debug, Default)]
pub struct GcStates {
    keyspaces: HashMap<u32, KeyspaceGc>,
    global: BTreeMap<String, Barrier>,
}

impl GcStates {
    /// Resolves a request's keyspace scope (`None` = unset) to the keyspace whose state
    /// is used (PD `GCStateManager.redirectKeyspace`). `level_gc(id)` is `None` for an
    /// unknown keyspace, else whether it has keyspace-level GC; `user_api` selects
    /// redirection (barriers, reads) over refusal (advancing safe points) for a keyspace
    /// without it.
    pub fn redirect(
        scope: Option<&pdpb::KeyspaceScope>,
        level_gc: impl Fn(u32) -> Option<bool>,
        user_api: bool,
    ) -> Result<u32, GcError> {
        let id = match scope.and_then(|s| s.keyspace.as_ref()) {
            None => return Ok(NULL_KEYSPACE_ID),
            Some(pdpb::keyspace_scope::Keyspace::KeyspaceId(id)) => *id,
            Some(pdpb::keyspace_scope::Keyspace::KeyspaceIdentity(k)) => k.keyspace_id,
        };
        if id & !VALID_KEYSPACE_MASK != 0 {
            return Ok(NULL_KEYSPACE_ID);
        }
        match level_gc(id) {
            None => return Err(GcError::KeyspaceNotFound(id)),
            Some(true) => return Ok(id),
            Some(false) => {}
        }
        if user_api {
            Ok(NULL_KEYSPACE_ID)
        } else {
            Err(GcError::GcOnInvalidKeyspace(id))
        }
    }

    fn ks(&mut self, id: u32) -> &mut KeyspaceGc {
        self.keyspaces.entry(id).or_default()
    }

    /// The current `(txn_safe_point, gc_safe_point)` of a keyspace.
    pub fn safe_points(&self, id: u32) -> (u64, u64) {
        self.keyspaces
            .get(&id)
            .map_or((0, 0), |k| (k.txn_safe_point, k.gc_safe_point))
    }

    /// `AdvanceTxnSafePoint`: see the module docs.
    pub fn advance_txn_safe_point(
        &mut self,
        id: u32,
        target: u64,
        now_ms: u64,
    ) -> Result<TxnAdvance, GcError> {
        let old = self.safe_points(id).0;
        if target < old {
            return Err(GcError::DecreasingTxnSafePoint { old, target });
        }
        let mut min = target;
        let mut blocker = String::new();
        let mut blocker_id = None;
        let ks = self.ks(id);
        ks.barriers.retain(|_, b| !b.expired(now_ms));
        for (bid, b) in &ks.barriers {
            if b.ts < min {
                min = b.ts;
                blocker = format!("GCBarrier {{ BarrierID: {bid:?}, BarrierTS: {} }}", b.ts);
                blocker_id = Some(bid.clone());
            }
        }
        self.global.retain(|_, b| !b.expired(now_ms));
        for (bid, b) in &self.global {
            if b.ts < min {
                min = b.ts;
                blocker = format!(
                    "GlobalGCBarrier {{ BarrierID: {bid:?}, BarrierTS: {} }}",
                    b.ts
                );
                blocker_id = Some(bid.clone());
            }
        }
        let new = old.max(min);
        self.ks(id).txn_safe_point = new;
        if new == target {
            blocker.clear();
            blocker_id = None;
        }
        Ok(TxnAdvance {
            old,
            new,
            blocker,
            blocker_id,
        })
    }

    /// `AdvanceGCSafePoint` (`compatible = false`) and the legacy `UpdateGCSafePoint`
    /// (`compatible = true`: a smaller target is ignored). Returns `(old, new)`.
    pub fn advance_gc_safe_point(
        &mut self,
        id: u32,
        target: u64,
        compatible: bool,
    ) -> Result<(u64, u64), GcError> {
        let (txn, old) = self.safe_points(id);
        if target < old {
            if compatible {
                return Ok((old, old));
            }
            return Err(GcError::DecreasingGcSafePoint { old, target });
        }
        if target > txn {
            return Err(GcError::GcSafePointExceedsTxnSafePoint { old, target, txn });
        }
        self.ks(id).gc_safe_point = target;
        Ok((old, target))
    }

    /// `SetGCBarrier`.
    pub fn set_barrier(
        &mut self,
        id: u32,
        barrier_id: &str,
        ts: u64,
        ttl_secs: i64,
        now_ms: u64,
    ) -> Result<pdpb::GcBarrierInfo, GcError> {
        if ttl_secs <= 0 {
            return Err(GcError::InvalidArgument("ttl", ttl_secs.to_string()));
        }
        if barrier_id == GC_WORKER_SERVICE_ID {
            return Err(GcError::ReservedBarrierId(barrier_id.to_string()));
        }
        if barrier_id.is_empty() {
            return Err(GcError::InvalidArgument("barrierID", String::new()));
        }
        let txn = self.safe_points(id).0;
        if ts < txn {
            return Err(GcError::BarrierBehindTxnSafePoint { ts, txn });
        }
        let b = Barrier::new(ts, ttl_secs, now_ms);
        self.ks(id).barriers.insert(barrier_id.to_string(), b);
        Ok(b.info(barrier_id, now_ms))
    }

    /// `DeleteGCBarrier`: returns the deleted barrier, if there was one.
    pub fn delete_barrier(
        &mut self,
        id: u32,
        barrier_id: &str,
        now_ms: u64,
    ) -> Result<Option<pdpb::GcBarrierInfo>, GcError> {
        if barrier_id == GC_WORKER_SERVICE_ID {
            return Err(GcError::ReservedBarrierId(barrier_id.to_string()));
        }
        if barrier_id.is_empty() {
            return Err(GcError::InvalidArgument("barrierID", String::new()));
        }
        Ok(self
            .ks(id)
            .barriers
            .remove(barrier_id)
            .map(|b| b.info(barrier_id, now_ms)))
    }

    /// `SetGlobalGCBarrier`: must not be below any keyspace's txn safe point.
    pub fn set_global_barrier(
        &mut self,
        barrier_id: &str,
        ts: u64,
        ttl_secs: i64,
        now_ms: u64,
    ) -> Result<pdpb::GlobalGcBarrierInfo, GcError> {
        if ttl_secs <= 0 {
            return Err(GcError::InvalidArgument("ttl", ttl_secs.to_string()));
        }
        if barrier_id.is_empty() {
            return Err(GcError::InvalidArgument("barrierID", String::new()));
        }
        let max_txn = self
            .keyspaces
            .values()
            .map(|k| k.txn_safe_point)
            .max()
            .unwrap_or(0);
        if ts < max_txn {
            return Err(GcError::BarrierBehindTxnSafePoint { ts, txn: max_txn });
        }
        let b = Barrier::new(ts, ttl_secs, now_ms);
        self.global.insert(barrier_id.to_string(), b);
        Ok(b.global_info(barrier_id, now_ms))
    }

    /// `DeleteGlobalGCBarrier`.
    pub fn delete_global_barrier(
        &mut self,
        barrier_id: &str,
        now_ms: u64,
    ) -> Result<Option<pdpb::GlobalGcBarrierInfo>, GcError> {
        if barrier_id.is_empty() {
            return Err(GcError::InvalidArgument("barrierID", String::new()));
        }
        Ok(self
            .global
            .remove(barrier_id)
            .map(|b| b.global_info(barrier_id, now_ms)))
    }

    /// The `GCState` message of a keyspace.
    pub fn state(&self, id: u32, exclude_barriers: bool, now_ms: u64) -> pdpb::GcState {
        let ks = self.keyspaces.get(&id).cloned().unwrap_or_default();
        pdpb::GcState {
            keyspace_scope: Some(pdpb::KeyspaceScope {
                keyspace: Some(pdpb::keyspace_scope::Keyspace::KeyspaceId(id)),
            }),
            is_keyspace_level_gc: id != NULL_KEYSPACE_ID,
            txn_safe_point: ks.txn_safe_point,
            gc_safe_point: ks.gc_safe_point,
            gc_barriers: if exclude_barriers {
                Vec::new()
            } else {
                ks.barriers
                    .iter()
                    .filter(|(_, b)| !b.expired(now_ms))
                    .map(|(bid, b)| b.info(bid, now_ms))
                    .collect()
            },
        }
    }

    /// Every live global barrier.
    pub fn global_barriers(&self, now_ms: u64) -> Vec<pdpb::GlobalGcBarrierInfo> {
        self.global
            .iter()
            .filter(|(_, b)| !b.expired(now_ms))
            .map(|(bid, b)| b.global_info(bid, now_ms))
            .collect()
    }

    /// Legacy `UpdateServiceGCSafePoint` on the null keyspace. Returns the "minimum
    /// service safe point" `(service_id, ttl, safe_point)` PD reports back.
    pub fn update_service_safe_point(
        &mut self,
        service_id: &str,
        safe_point: u64,
        ttl: i64,
        now_ms: u64,
    ) -> Result<(String, i64, u64), GcError> {
        let id = NULL_KEYSPACE_ID;
        if service_id == GC_WORKER_SERVICE_ID {
            if ttl != i64::MAX {
                return Err(GcError::GcWorkerTtl);
            }
            let r = self.advance_txn_safe_point(id, safe_point, now_ms)?;
            let sid = r
                .blocker_id
                .unwrap_or_else(|| GC_WORKER_SERVICE_ID.to_string());
            return Ok((sid, i64::MAX, r.new));
        }
        let res = if ttl > 0 {
            self.set_barrier(id, service_id, safe_point, ttl, now_ms)
                .map(|_| ())
        } else {
            self.delete_barrier(id, service_id, now_ms).map(|_| ())
        };
        match res {
            Ok(()) | Err(GcError::BarrierBehindTxnSafePoint { .. }) => {}
            Err(e) => return Err(e),
        }
        Ok((
            GC_WORKER_SERVICE_ID.to_string(),
            i64::MAX,
            self.safe_points(id).0,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: u32 = NULL_KEYSPACE_ID;

    #[test]
    fn txn_safe_point_rules() {
        let mut gc = GcStates::default();
        let r = gc.advance_txn_safe_point(N, 100, 0).unwrap();
        assert_eq!((r.old, r.new, r.blocker.as_str()), (0, 100, ""));
        assert_eq!(
            gc.advance_txn_safe_point(N, 50, 0),
            Err(GcError::DecreasingTxnSafePoint {
                old: 100,
                target: 50
            })
        );
        gc.set_barrier(N, "br", 150, 60, 0).unwrap();
        let r = gc.advance_txn_safe_point(N, 200, 0).unwrap();
        assert_eq!((r.old, r.new), (100, 150));
        assert!(r.blocker.contains("br"), "{}", r.blocker);
        // Barrier expires after 60 s: no longer blocks.
        let r = gc.advance_txn_safe_point(N, 200, 61_000).unwrap();
        assert_eq!((r.new, r.blocker.as_str()), (200, ""));
        // Global barriers block too.
        gc.set_global_barrier("g", 250, i64::MAX, 0).unwrap();
        let r = gc.advance_txn_safe_point(N, 300, 0).unwrap();
        assert_eq!(r.new, 250);
        assert_eq!(gc.global_barriers(0).len(), 1);
    }

    #[test]
    fn gc_safe_point_rules() {
        let mut gc = GcStates::default();
        gc.advance_txn_safe_point(N, 100, 0).unwrap();
        type Case = (u64, bool, Result<(u64, u64), GcError>);
        let cases: &[Case] = &[
            (50, false, Ok((0, 50))),
            (
                40,
                false,
                Err(GcError::DecreasingGcSafePoint {
                    old: 50,
                    target: 40,
                }),
            ),
            (40, true, Ok((50, 50))),
            (
                101,
                false,
                Err(GcError::GcSafePointExceedsTxnSafePoint {
                    old: 50,
                    target: 101,
                    txn: 100,
                }),
            ),
            (
                101,
                true,
                Err(GcError::GcSafePointExceedsTxnSafePoint {
                    old: 50,
                    target: 101,
                    txn: 100,
                }),
            ),
            (100, true, Ok((50, 100))),
        ];
        for (target, compat, want) in cases {
            assert_eq!(
                &gc.advance_gc_safe_point(N, *target, *compat),
                want,
                "target {target}"
            );
        }
    }

    #[test]
    fn barrier_validation() {
        let mut gc = GcStates::default();
        gc.advance_txn_safe_point(N, 100, 0).unwrap();
        assert!(matches!(
            gc.set_barrier(N, "a", 10, 0, 0),
            Err(GcError::InvalidArgument(..))
        ));
        assert!(matches!(
            gc.set_barrier(N, "", 200, 5, 0),
            Err(GcError::InvalidArgument(..))
        ));
        assert!(matches!(
            gc.set_barrier(N, "gc_worker", 200, 5, 0),
            Err(GcError::ReservedBarrierId(_))
        ));
        assert_eq!(
            gc.set_barrier(N, "a", 99, 5, 0),
            Err(GcError::BarrierBehindTxnSafePoint { ts: 99, txn: 100 })
        );
        let info = gc.set_barrier(N, "a", 100, 5, 0).unwrap();
        assert_eq!((info.barrier_ts, info.ttl_seconds), (100, 5));
        assert_eq!(gc.state(N, false, 1000).gc_barriers[0].ttl_seconds, 4);
        assert!(gc.state(N, true, 0).gc_barriers.is_empty());
        assert_eq!(
            gc.delete_barrier(N, "a", 0).unwrap().map(|b| b.barrier_ts),
            Some(100)
        );
        assert_eq!(gc.delete_barrier(N, "a", 0).unwrap(), None);
    }

    #[test]
    fn service_safe_points() {
        let mut gc = GcStates::default();
        assert_eq!(
            gc.update_service_safe_point("gc_worker", 10, 5, 0),
            Err(GcError::GcWorkerTtl)
        );
        gc.update_service_safe_point("br", 50, 100, 0).unwrap();
        let (sid, _, sp) = gc
            .update_service_safe_point("gc_worker", 80, i64::MAX, 0)
            .unwrap();
        assert_eq!((sid.as_str(), sp), ("br", 50));
        // A service below the txn safe point is not taken, without error.
        let (_, _, sp) = gc.update_service_safe_point("late", 10, 100, 0).unwrap();
        assert_eq!(sp, 50);
        // Removing the blocker lets gc_worker through.
        gc.update_service_safe_point("br", 0, 0, 0).unwrap();
        let (sid, _, sp) = gc
            .update_service_safe_point("gc_worker", 80, i64::MAX, 0)
            .unwrap();
        assert_eq!((sid.as_str(), sp), ("gc_worker", 80));
    }

    #[test]
    fn keyspace_redirection() {
        let exists = |id: u32| (id == 0 || id == 1 || id == 2).then_some(id == 2);
        let scope = |id| pdpb::KeyspaceScope {
            keyspace: Some(pdpb::keyspace_scope::Keyspace::KeyspaceId(id)),
        };
        assert_eq!(GcStates::redirect(None, exists, false), Ok(N));
        assert_eq!(GcStates::redirect(Some(&scope(N)), exists, false), Ok(N));
        assert_eq!(GcStates::redirect(Some(&scope(1)), exists, true), Ok(N));
        assert_eq!(
            GcStates::redirect(Some(&scope(1)), exists, false),
            Err(GcError::GcOnInvalidKeyspace(1))
        );
        assert_eq!(
            GcStates::redirect(Some(&scope(7)), exists, true),
            Err(GcError::KeyspaceNotFound(7))
        );
        // Keyspace-level GC: its own state, for user and management APIs alike.
        assert_eq!(GcStates::redirect(Some(&scope(2)), exists, true), Ok(2));
        assert_eq!(GcStates::redirect(Some(&scope(2)), exists, false), Ok(2));
    }
}
