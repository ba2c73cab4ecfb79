//! Per-key flags kept beside each buffered entry, and the operations that change them.
//!
//! Mirrors client-go's `kv/keyflags.go` (`KeyFlags`, `FlagsOp`, `ApplyFlagsOps`): same bit
//! set, same operations, same rules (setting presume-not-exists also sets need-check-exists,
//! the assertion pair encodes four states, recording the locked value's existence clears the
//! postponed constraint check, and so on). Flags are a `u16` packed into the entry's record in
//! the key arena, so they cost no allocation per key.

use std::fmt;

/// Flags attached to a buffered key (client-go `kv.KeyFlags`).
///
/// The highest bit is reserved by the buffer for its own bookkeeping and is never visible here.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KeyFlags(u16);

const PRESUME_KNE: u16 = 1 << 0;
const KEY_LOCKED: u16 = 1 << 1;
const NEED_LOCKED: u16 = 1 << 2;
const KEY_LOCKED_VAL_EXIST: u16 = 1 << 3;
const NEED_CHECK_EXISTS: u16 = 1 << 4;
const PREWRITE_ONLY: u16 = 1 << 5;
const IGNORED_IN_2PC: u16 = 1 << 6;
const READABLE: u16 = 1 << 7;
const NEWLY_INSERTED: u16 = 1 << 8;
const ASSERT_EXIST: u16 = 1 << 9;
const ASSERT_NOT_EXIST: u16 = 1 << 10;
const NEED_CONSTRAINT_CHECK_IN_PREWRITE: u16 = 1 << 11;
const PREVIOUS_PRESUME_KNE: u16 = 1 << 12;
const KEY_LOCKED_IN_SHARE_MODE: u16 = 1 << 13;

/// Flags that survive a staging cleanup of the value they came with (client-go
/// `persistentFlags`): the pessimistic-lock state must not be forgotten when a statement is
/// rolled back, because the lock itself stays on the server.
const PERSISTENT: u16 = KEY_LOCKED
    | KEY_LOCKED_VAL_EXIST
    | NEED_CONSTRAINT_CHECK_IN_PREWRITE
    | KEY_LOCKED_IN_SHARE_MODE;

/// All bits a flag operation can produce (bit 15 is the buffer's own).
pub(crate) const VISIBLE_MASK: u16 = 0x7fff;

impl KeyFlags {
    /// No flag set.
    pub const EMPTY: KeyFlags = KeyFlags(0);

    /// The raw bits (client-go's bit layout).
    pub fn bits(self) -> u16 {
        self.0
    }

    /// Builds flags from raw bits; the reserved highest bit is dropped.
    pub fn from_bits(bits: u16) -> KeyFlags {
        KeyFlags(bits & VISIBLE_MASK)
    }

    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flags that survive a cleanup (client-go `AndPersistent`).
    pub fn and_persistent(self) -> KeyFlags {
        KeyFlags(self.0 & PERSISTENT)
    }

    /// Assert-exist is set and assert-not-exist is not (client-go `HasAssertExist`).
    pub fn has_assert_exist(self) -> bool {
        self.0 & ASSERT_EXIST != 0 && self.0 & ASSERT_NOT_EXIST == 0
    }

    /// Assert-not-exist is set and assert-exist is not (client-go `HasAssertNotExist`).
    pub fn has_assert_not_exist(self) -> bool {
        self.0 & ASSERT_NOT_EXIST != 0 && self.0 & ASSERT_EXIST == 0
    }

    /// Both assertion bits: no assertion can be made (client-go `HasAssertUnknown`).
    pub fn has_assert_unknown(self) -> bool {
        self.0 & ASSERT_EXIST != 0 && self.0 & ASSERT_NOT_EXIST != 0
    }

    /// Either assertion bit is set (client-go `HasAssertionFlags`).
    pub fn has_assertion_flags(self) -> bool {
        self.0 & (ASSERT_EXIST | ASSERT_NOT_EXIST) != 0
    }

    /// Existence is checked lazily, now or by a previous statement (client-go
    /// `HasPresumeKeyNotExists`: presume-not-exists or previous-presume-not-exists).
    pub fn has_presume_key_not_exists(self) -> bool {
        self.0 & (PRESUME_KNE | PREVIOUS_PRESUME_KNE) != 0
    }

    /// The key holds a pessimistic lock (client-go `HasLocked`).
    pub fn has_locked(self) -> bool {
        self.0 & KEY_LOCKED != 0
    }

    /// The pessimistic lock is a shared one (client-go `HasLockedInShareMode`).
    pub fn has_locked_in_share_mode(self) -> bool {
        self.0 & KEY_LOCKED_IN_SHARE_MODE != 0
    }

    /// The key still has to be locked (client-go `HasNeedLocked`).
    pub fn has_need_locked(self) -> bool {
        self.0 & NEED_LOCKED != 0
    }

    /// The value existed when the key was locked (client-go `HasLockedValueExists`).
    pub fn has_locked_value_exists(self) -> bool {
        self.0 & KEY_LOCKED_VAL_EXIST != 0
    }

    /// Existence must be checked when the key gets locked (client-go `HasNeedCheckExists`).
    pub fn has_need_check_exists(self) -> bool {
        self.0 & NEED_CHECK_EXISTS != 0
    }

    /// The key is prewritten but not committed (client-go `HasPrewriteOnly`).
    pub fn has_prewrite_only(self) -> bool {
        self.0 & PREWRITE_ONLY != 0
    }

    /// The key is left out of two-phase commit (client-go `HasIgnoredIn2PC`).
    pub fn has_ignored_in_2pc(self) -> bool {
        self.0 & IGNORED_IN_2PC != 0
    }

    /// In-transaction reads may see the key (client-go `HasReadable`).
    pub fn has_readable(self) -> bool {
        self.0 & READABLE != 0
    }

    /// The key was written by an insert (client-go `HasNewlyInserted`).
    pub fn has_newly_inserted(self) -> bool {
        self.0 & NEWLY_INSERTED != 0
    }

    /// The conflict and constraint check is postponed to prewrite (client-go
    /// `HasNeedConstraintCheckInPrewrite`).
    pub fn has_need_constraint_check_in_prewrite(self) -> bool {
        self.0 & NEED_CONSTRAINT_CHECK_IN_PREWRITE != 0
    }

    /// Applies `ops` in order (client-go `ApplyFlagsOps`).
    #[must_use]
    pub fn apply(self, ops: &[FlagsOp]) -> KeyFlags {
        ops.iter().fold(self, |f, op| f.apply_one(*op))
    }

    /// Applies one operation.
    #[must_use]
    pub fn apply_one(self, op: FlagsOp) -> KeyFlags {
        let f = self.0;
        KeyFlags(match op {
            FlagsOp::SetPresumeKeyNotExists => f | PRESUME_KNE | NEED_CHECK_EXISTS,
            FlagsOp::DelPresumeKeyNotExists => f & !(PRESUME_KNE | NEED_CHECK_EXISTS),
            FlagsOp::SetKeyLocked => f | KEY_LOCKED,
            FlagsOp::DelKeyLocked => f & !KEY_LOCKED,
            FlagsOp::SetNeedLocked => f | NEED_LOCKED,
            FlagsOp::DelNeedLocked => f & !NEED_LOCKED,
            FlagsOp::SetKeyLockedValueExists => {
                (f | KEY_LOCKED_VAL_EXIST) & !NEED_CONSTRAINT_CHECK_IN_PREWRITE
            }
            FlagsOp::SetKeyLockedValueNotExists => {
                f & !(KEY_LOCKED_VAL_EXIST | NEED_CONSTRAINT_CHECK_IN_PREWRITE)
            }
            FlagsOp::DelNeedCheckExists => f & !NEED_CHECK_EXISTS,
            FlagsOp::SetPrewriteOnly => f | PREWRITE_ONLY,
            FlagsOp::SetIgnoredIn2PC => f | IGNORED_IN_2PC,
            FlagsOp::SetReadable => f | READABLE,
            FlagsOp::SetNewlyInserted => f | NEWLY_INSERTED,
            FlagsOp::SetAssertExist => (f & !ASSERT_NOT_EXIST) | ASSERT_EXIST,
            FlagsOp::SetAssertNotExist => (f & !ASSERT_EXIST) | ASSERT_NOT_EXIST,
            FlagsOp::SetAssertUnknown => f | ASSERT_EXIST | ASSERT_NOT_EXIST,
            FlagsOp::SetAssertNone => f & !(ASSERT_EXIST | ASSERT_NOT_EXIST),
            FlagsOp::SetNeedConstraintCheckInPrewrite => f | NEED_CONSTRAINT_CHECK_IN_PREWRITE,
            FlagsOp::DelNeedConstraintCheckInPrewrite => f & !NEED_CONSTRAINT_CHECK_IN_PREWRITE,
            FlagsOp::SetPreviousPresumeKNE => f | PREVIOUS_PRESUME_KNE,
            FlagsOp::SetKeyLockedInShareMode => f | KEY_LOCKED_IN_SHARE_MODE,
            FlagsOp::SetKeyLockedInExclusiveMode => f & !KEY_LOCKED_IN_SHARE_MODE,
        })
    }
}

impl fmt::Debug for KeyFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 14] = [
            "PresumeKNE",
            "KeyLocked",
            "NeedLocked",
            "KeyLockedValExist",
            "NeedCheckExists",
            "PrewriteOnly",
            "IgnoredIn2PC",
            "Readable",
            "NewlyInserted",
            "AssertExist",
            "AssertNotExist",
            "NeedConstraintCheckInPrewrite",
            "PreviousPresumeKNE",
            "KeyLockedInShareMode",
        ];
        let mut set = f.debug_set();
        for (i, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                set.entry(name);
            }
        }
        set.finish()
    }
}

/// An operation on [`KeyFlags`] (client-go `kv.FlagsOp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlagsOp {
    /// Existence is checked lazily; also sets need-check-exists.
    SetPresumeKeyNotExists,
    /// Reverts [`FlagsOp::SetPresumeKeyNotExists`] (both bits).
    DelPresumeKeyNotExists,
    /// The key acquired a pessimistic lock.
    SetKeyLocked,
    /// Reverts [`FlagsOp::SetKeyLocked`].
    DelKeyLocked,
    /// The key must be locked.
    SetNeedLocked,
    /// Reverts [`FlagsOp::SetNeedLocked`].
    DelNeedLocked,
    /// The value existed when locked; clears the postponed constraint check.
    SetKeyLockedValueExists,
    /// The value did not exist when locked; clears the postponed constraint check.
    SetKeyLockedValueNotExists,
    /// No existence check is needed when locking.
    DelNeedCheckExists,
    /// Prewrite the key but leave it out of commit.
    SetPrewriteOnly,
    /// Leave the key out of two-phase commit.
    SetIgnoredIn2PC,
    /// In-transaction reads may see the key.
    SetReadable,
    /// The key was written by an insert.
    SetNewlyInserted,
    /// Assert the key exists (clears assert-not-exist).
    SetAssertExist,
    /// Assert the key does not exist (clears assert-exist).
    SetAssertNotExist,
    /// No assertion can be made (both bits).
    SetAssertUnknown,
    /// Clears the assertion (neither bit).
    SetAssertNone,
    /// Postpone the conflict and constraint check to prewrite.
    SetNeedConstraintCheckInPrewrite,
    /// Reverts [`FlagsOp::SetNeedConstraintCheckInPrewrite`].
    DelNeedConstraintCheckInPrewrite,
    /// A previous statement presumed the key not to exist.
    SetPreviousPresumeKNE,
    /// The pessimistic lock is shared.
    SetKeyLockedInShareMode,
    /// The pessimistic lock is exclusive (clears the share-mode bit).
    SetKeyLockedInExclusiveMode,
}

#[cfg(test)]
mod tests {
    use super::*;
    use FlagsOp::*;

    /// Every operation from empty flags and from all-set flags: expected bits.
    #[test]
    fn each_op_table() {
        let all = KeyFlags(VISIBLE_MASK);
        let cases: &[(FlagsOp, u16, u16)] = &[
            (
                SetPresumeKeyNotExists,
                PRESUME_KNE | NEED_CHECK_EXISTS,
                VISIBLE_MASK,
            ),
            (
                DelPresumeKeyNotExists,
                0,
                VISIBLE_MASK & !(PRESUME_KNE | NEED_CHECK_EXISTS),
            ),
            (SetKeyLocked, KEY_LOCKED, VISIBLE_MASK),
            (DelKeyLocked, 0, VISIBLE_MASK & !KEY_LOCKED),
            (SetNeedLocked, NEED_LOCKED, VISIBLE_MASK),
            (DelNeedLocked, 0, VISIBLE_MASK & !NEED_LOCKED),
            (
                SetKeyLockedValueExists,
                KEY_LOCKED_VAL_EXIST,
                VISIBLE_MASK & !NEED_CONSTRAINT_CHECK_IN_PREWRITE,
            ),
            (
                SetKeyLockedValueNotExists,
                0,
                VISIBLE_MASK & !(KEY_LOCKED_VAL_EXIST | NEED_CONSTRAINT_CHECK_IN_PREWRITE),
            ),
            (DelNeedCheckExists, 0, VISIBLE_MASK & !NEED_CHECK_EXISTS),
            (SetPrewriteOnly, PREWRITE_ONLY, VISIBLE_MASK),
            (SetIgnoredIn2PC, IGNORED_IN_2PC, VISIBLE_MASK),
            (SetReadable, READABLE, VISIBLE_MASK),
            (SetNewlyInserted, NEWLY_INSERTED, VISIBLE_MASK),
            (
                SetAssertExist,
                ASSERT_EXIST,
                VISIBLE_MASK & !ASSERT_NOT_EXIST,
            ),
            (
                SetAssertNotExist,
                ASSERT_NOT_EXIST,
                VISIBLE_MASK & !ASSERT_EXIST,
            ),
            (
                SetAssertUnknown,
                ASSERT_EXIST | ASSERT_NOT_EXIST,
                VISIBLE_MASK,
            ),
            (
                SetAssertNone,
                0,
                VISIBLE_MASK & !(ASSERT_EXIST | ASSERT_NOT_EXIST),
            ),
            (
                SetNeedConstraintCheckInPrewrite,
                NEED_CONSTRAINT_CHECK_IN_PREWRITE,
                VISIBLE_MASK,
            ),
            (
                DelNeedConstraintCheckInPrewrite,
                0,
                VISIBLE_MASK & !NEED_CONSTRAINT_CHECK_IN_PREWRITE,
            ),
            (SetPreviousPresumeKNE, PREVIOUS_PRESUME_KNE, VISIBLE_MASK),
            (
                SetKeyLockedInShareMode,
                KEY_LOCKED_IN_SHARE_MODE,
                VISIBLE_MASK,
            ),
            (
                SetKeyLockedInExclusiveMode,
                0,
                VISIBLE_MASK & !KEY_LOCKED_IN_SHARE_MODE,
            ),
        ];
        for &(op, from_empty, from_all) in cases {
            assert_eq!(
                KeyFlags::EMPTY.apply_one(op).bits(),
                from_empty,
                "{op:?} from empty"
            );
            assert_eq!(all.apply_one(op).bits(), from_all, "{op:?} from all");
        }
    }

    #[test]
    fn assertion_states() {
        let e = KeyFlags::EMPTY;
        let rows: &[(&[FlagsOp], bool, bool, bool, bool)] = &[
            // ops, exist, not_exist, unknown, any
            (&[], false, false, false, false),
            (&[SetAssertExist], true, false, false, true),
            (&[SetAssertNotExist], false, true, false, true),
            (&[SetAssertUnknown], false, false, true, true),
            (
                &[SetAssertExist, SetAssertNotExist],
                false,
                true,
                false,
                true,
            ),
            (
                &[SetAssertNotExist, SetAssertExist],
                true,
                false,
                false,
                true,
            ),
            (
                &[SetAssertExist, SetAssertUnknown],
                false,
                false,
                true,
                true,
            ),
            (
                &[SetAssertUnknown, SetAssertNone],
                false,
                false,
                false,
                false,
            ),
        ];
        for (ops, ex, nex, unk, any) in rows {
            let f = e.apply(ops);
            assert_eq!(f.has_assert_exist(), *ex, "{ops:?}");
            assert_eq!(f.has_assert_not_exist(), *nex, "{ops:?}");
            assert_eq!(f.has_assert_unknown(), *unk, "{ops:?}");
            assert_eq!(f.has_assertion_flags(), *any, "{ops:?}");
        }
    }

    #[test]
    fn presume_kne_reads_previous_too() {
        let f = KeyFlags::EMPTY.apply_one(SetPreviousPresumeKNE);
        assert!(f.has_presume_key_not_exists());
        assert!(!f.has_need_check_exists());
        let f = KeyFlags::EMPTY.apply(&[SetPresumeKeyNotExists, DelNeedCheckExists]);
        assert!(f.has_presume_key_not_exists());
        assert!(!f.has_need_check_exists());
    }

    #[test]
    fn persistent_set() {
        let all = KeyFlags(VISIBLE_MASK).and_persistent();
        assert!(all.has_locked());
        assert!(all.has_locked_value_exists());
        assert!(all.has_need_constraint_check_in_prewrite());
        assert!(all.has_locked_in_share_mode());
        assert!(!all.has_presume_key_not_exists());
        assert!(!all.has_need_locked());
        assert!(!all.has_assertion_flags());
        assert!(!all.has_newly_inserted());
        assert_eq!(KeyFlags::from_bits(0xffff).bits(), VISIBLE_MASK);
        assert_eq!(
            format!("{:?}", KeyFlags::EMPTY.apply_one(SetKeyLocked)),
            "{\"KeyLocked\"}"
        );
    }
}
