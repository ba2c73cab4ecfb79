//! Lowering the buffer into prewrite mutations (client-go
//! `twoPhaseCommitter.initKeysAndMutations`, `checkAssertionByPessimisticLockResults` and the
//! per-mutation part of `buildPrewriteRequest`).
//!
//! For each buffered entry in key order (flags-only entries included):
//!
//! | entry | op |
//! |---|---|
//! | flags only, not locked | skipped |
//! | flags only, locked | `Lock` (`SharedLock` if locked in share mode) |
//! | value, filter says unnecessary, not locked | skipped |
//! | value, filter says unnecessary, locked | `Lock` / `SharedLock` |
//! | value | `Insert` if presume-not-exists (this or a previous statement), else `Put` |
//! | tombstone, filter says unnecessary | skipped |
//! | tombstone, optimistic txn, presume-not-exists | `CheckNotExists`, and the key is marked prewrite-only in the buffer |
//! | tombstone, newly inserted, not locked | skipped |
//! | tombstone, newly inserted, locked | `Lock` / `SharedLock` |
//! | tombstone otherwise | `Del` |
//!
//! Assertion: `Exist` / `NotExist` from the assertion flags, `None` otherwise or when the
//! assertion level is `Off`. Pessimistic action: `DoPessimisticCheck` for a locked key of a
//! pessimistic transaction, else `DoConstraintCheck` if the constraint check was postponed to
//! prewrite, else `SkipPessimisticCheck`. The primary is the first mutation that is neither
//! `CheckNotExists` nor a shared lock; a shared lock may never be the primary.

use tikv_tower_proto::kvrpcpb::{
    self, prewrite_request::PessimisticAction, Assertion, AssertionLevel, Op,
};

use super::flags::{FlagsOp, KeyFlags};
use super::membuffer::MemBuffer;

/// Decides that a buffered pair need not be committed (client-go `KVFilter`).
pub trait KvFilter {
    /// Whether `key` = `value` with `flags` is unnecessary to commit.
    fn is_unnecessary(
        &self,
        key: &[u8],
        value: &[u8],
        flags: KeyFlags,
    ) -> Result<bool, Box<dyn std::error::Error + Send + Sync>>;
}

/// How to lower the buffer.
#[derive(Clone, Copy, Debug)]
pub struct LoweringOptions<'a> {
    /// Whether the transaction is pessimistic.
    pub pessimistic: bool,
    /// The transaction's assertion level; `Off` drops every assertion.
    pub assertion_level: AssertionLevel,
    /// A primary key chosen beforehand, if any; otherwise the first eligible mutation's key.
    pub primary_key: Option<&'a [u8]>,
}

impl Default for LoweringOptions<'_> {
    fn default() -> Self {
        LoweringOptions {
            pessimistic: false,
            assertion_level: AssertionLevel::Off,
            primary_key: None,
        }
    }
}

/// One prewrite mutation and its per-key prewrite parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrewriteMutation {
    /// The operation.
    pub op: Op,
    /// The key.
    pub key: Vec<u8>,
    /// The value (empty unless the op is `Put` or `Insert`).
    pub value: Vec<u8>,
    /// The existence assertion checked by TiKV.
    pub assertion: Assertion,
    /// What TiKV checks about a pessimistic lock on the key (`PrewriteRequest.pessimistic_actions`).
    pub pessimistic_action: PessimisticAction,
    /// The key's flags when lowered.
    pub flags: KeyFlags,
}

impl PrewriteMutation {
    /// The wire form (`kvrpcpb::Mutation`); the pessimistic action goes to the request's
    /// parallel `pessimistic_actions` list.
    pub fn to_proto(&self) -> kvrpcpb::Mutation {
        kvrpcpb::Mutation {
            op: self.op as i32,
            key: self.key.clone().into(),
            value: self.value.clone().into(),
            assertion: self.assertion as i32,
        }
    }

    /// The wire form, moving key and value.
    pub fn into_proto(self) -> (kvrpcpb::Mutation, PessimisticAction) {
        (
            kvrpcpb::Mutation {
                op: self.op as i32,
                key: self.key.into(),
                value: self.value.into(),
                assertion: self.assertion as i32,
            },
            self.pessimistic_action,
        )
    }
}

/// A pessimistic-lock read result that contradicts a key's assertion (client-go
/// `checkAssertionByPessimisticLockResults`): the committer checks the schema, then fails with
/// an assertion error, but only after prewrite so the locks are cleaned up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssertionConflict {
    /// The key.
    pub key: Vec<u8>,
    /// The assertion the lock result contradicts.
    pub assertion: Assertion,
}

/// Counts by kind (client-go's `putCnt`, `delCnt`, `lockCnt`, `sharedLockCnt`, `checkCnt`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MutationCounts {
    /// `Put` and `Insert`.
    pub put: usize,
    /// `Del`.
    pub del: usize,
    /// `Lock` and `SharedLock`.
    pub lock: usize,
    /// `SharedLock` alone.
    pub shared_lock: usize,
    /// `CheckNotExists`.
    pub check: usize,
}

/// The buffer lowered for prewrite.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MutationPlan {
    /// Mutations in key order.
    pub mutations: Vec<PrewriteMutation>,
    /// Index of the primary in `mutations`, if one was chosen from them.
    pub primary: Option<usize>,
    /// Sum of key and value bytes sent (client-go `txnSize`).
    pub size: usize,
    /// Counts by kind.
    pub counts: MutationCounts,
    /// The first assertion contradicted by a pessimistic lock result, when assertions are on.
    /// client-go stashes it, disables async commit and 1PC, and returns it after prewrite.
    pub assertion_conflict: Option<AssertionConflict>,
}

/// Why lowering failed.
#[derive(Debug, thiserror::Error)]
pub enum LowerError {
    /// The [`KvFilter`] failed.
    #[error("kv filter failed: {0}")]
    Filter(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The primary would be a shared lock, which TiKV does not allow.
    #[error("shared lock key cannot be used as transaction primary key")]
    SharedLockPrimary,
}

fn lock_op(flags: KeyFlags) -> Op {
    if flags.has_locked_in_share_mode() {
        Op::SharedLock
    } else {
        Op::Lock
    }
}

/// Turns the buffer into prewrite mutations (client-go `initKeysAndMutations`). Keys lowered
/// to `CheckNotExists` get [`FlagsOp::SetPrewriteOnly`] in the buffer, as in client-go, since no
/// lock is written for them and commit must skip them.
pub fn lower_mutations(
    buf: &mut MemBuffer,
    opts: &LoweringOptions<'_>,
    filter: Option<&dyn KvFilter>,
) -> Result<MutationPlan, LowerError> {
    let mut plan = MutationPlan::default();
    let mut prewrite_only = Vec::new();
    let assertions_on = opts.assertion_level != AssertionLevel::Off;
    let mut primary_is_shared = false;
    for e in buf.iter_with_flags(b"", b"") {
        let flags = e.flags;
        let mut value: &[u8] = &[];
        let op = match e.value {
            None => {
                if !flags.has_locked() {
                    continue;
                }
                lock_op(flags)
            }
            Some(v) => {
                let unnecessary = match filter {
                    Some(f) => f
                        .is_unnecessary(e.key, v, flags)
                        .map_err(LowerError::Filter)?,
                    None => false,
                };
                if !v.is_empty() {
                    if unnecessary {
                        if !flags.has_locked() {
                            continue;
                        }
                        lock_op(flags)
                    } else {
                        value = v;
                        if flags.has_presume_key_not_exists() {
                            Op::Insert
                        } else {
                            Op::Put
                        }
                    }
                } else if unnecessary {
                    continue;
                } else if !opts.pessimistic && flags.has_presume_key_not_exists() {
                    prewrite_only.push(plan.mutations.len());
                    Op::CheckNotExists
                } else if flags.has_newly_inserted() {
                    if !flags.has_locked() {
                        continue;
                    }
                    lock_op(flags)
                } else {
                    Op::Del
                }
            }
        };
        match op {
            Op::Put | Op::Insert => plan.counts.put += 1,
            Op::Del => plan.counts.del += 1,
            Op::CheckNotExists => plan.counts.check += 1,
            Op::SharedLock => {
                plan.counts.lock += 1;
                plan.counts.shared_lock += 1;
            }
            _ => plan.counts.lock += 1,
        }
        let is_pessimistic_lock = flags.has_locked() && opts.pessimistic;
        let (must_exist, must_not_exist) = if assertions_on {
            (flags.has_assert_exist(), flags.has_assert_not_exist())
        } else {
            (false, false)
        };
        let assertion = if must_not_exist {
            Assertion::NotExist
        } else if must_exist {
            Assertion::Exist
        } else {
            Assertion::None
        };
        let pessimistic_action = if is_pessimistic_lock {
            PessimisticAction::DoPessimisticCheck
        } else if flags.has_need_constraint_check_in_prewrite() {
            PessimisticAction::DoConstraintCheck
        } else {
            PessimisticAction::SkipPessimisticCheck
        };
        if assertions_on && is_pessimistic_lock && plan.assertion_conflict.is_none() {
            let contradicted = if flags.has_locked_value_exists() && must_not_exist {
                Some(Assertion::NotExist)
            } else if !flags.has_locked_value_exists() && must_exist {
                Some(Assertion::Exist)
            } else {
                None
            };
            plan.assertion_conflict = contradicted.map(|assertion| AssertionConflict {
                key: e.key.to_vec(),
                assertion,
            });
        }
        if op == Op::SharedLock && opts.primary_key == Some(e.key) {
            primary_is_shared = true;
        }
        if opts.primary_key.is_none()
            && plan.primary.is_none()
            && op != Op::CheckNotExists
            && op != Op::SharedLock
        {
            plan.primary = Some(plan.mutations.len());
        }
        plan.size += e.key.len() + value.len();
        plan.mutations.push(PrewriteMutation {
            op,
            key: e.key.to_vec(),
            value: value.to_vec(),
            assertion,
            pessimistic_action,
            flags,
        });
    }
    for i in prewrite_only {
        let m = &mut plan.mutations[i];
        // Only a key over MAX_KEY_LEN fails, and this key is already in the buffer.
        let _ = buf.update_flags(&m.key, &[FlagsOp::SetPrewriteOnly]);
        m.flags = m.flags.apply_one(FlagsOp::SetPrewriteOnly);
    }
    if plan.mutations.is_empty() {
        return Ok(plan);
    }
    let no_primary = opts.primary_key.is_none() && plan.primary.is_none();
    if primary_is_shared || (no_primary && plan.counts.shared_lock > 0) {
        return Err(LowerError::SharedLockPrimary);
    }
    Ok(plan)
}
