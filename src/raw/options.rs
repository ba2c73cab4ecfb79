//! Per-call options of the RawKV API (client-go `rawkv.RawOption`).
//!
//! client-go passes variadic `RawOption`s (`SetColumnFamily(cf)`, `ScanKeyOnly()`) to each
//! call and keeps client-wide defaults (`Client.SetColumnFamily`, `SetAtomicForCAS`). Here
//! [`RawOptions`] is a small `Copy` value with builders of the same names; a client scoped
//! to options is a cheap clone ([`crate::RawClient::with_options`],
//! [`crate::RawClient::with_cf`]).

use crate::error::{Error, Result};

/// A TiKV column family a RawKV call may address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ColumnFamily {
    /// `default` (also selected by the empty name).
    #[default]
    Default,
    /// `lock`.
    Lock,
    /// `write`.
    Write,
}

impl ColumnFamily {
    /// The name TiKV expects in a request's `cf` field.
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnFamily::Default => "default",
            ColumnFamily::Lock => "lock",
            ColumnFamily::Write => "write",
        }
    }

    /// Parse a column family name; empty means `default`.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "" | "default" => Ok(ColumnFamily::Default),
            "lock" => Ok(ColumnFamily::Lock),
            "write" => Ok(ColumnFamily::Write),
            other => Err(Error::InvalidColumnFamily(other.to_owned())),
        }
    }
}

impl std::str::FromStr for ColumnFamily {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        ColumnFamily::parse(s)
    }
}

impl std::fmt::Display for ColumnFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options of one RawKV call (client-go `rawOptions`).
///
/// ```
/// use tikv_tower::raw::{ColumnFamily, RawOptions};
/// let opts = RawOptions::scan_key_only().with_column_family(ColumnFamily::Write);
/// assert!(opts.key_only);
/// assert_eq!(opts.column_family, Some(ColumnFamily::Write));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawOptions {
    /// Column family; `None` falls back to the client's (client-go `getColumnFamily`).
    pub column_family: Option<ColumnFamily>,
    /// Scans return keys only, values empty (client-go `ScanKeyOnly`).
    pub key_only: bool,
}

impl RawOptions {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// client-go `SetColumnFamily(cf)`.
    pub fn set_column_family(cf: ColumnFamily) -> Self {
        RawOptions {
            column_family: Some(cf),
            key_only: false,
        }
    }

    /// client-go `ScanKeyOnly()`.
    pub fn scan_key_only() -> Self {
        RawOptions {
            column_family: None,
            key_only: true,
        }
    }

    /// Builder: set the column family.
    pub fn with_column_family(mut self, cf: ColumnFamily) -> Self {
        self.column_family = Some(cf);
        self
    }

    /// Builder: keys only in scans.
    pub fn with_key_only(mut self, key_only: bool) -> Self {
        self.key_only = key_only;
        self
    }

    /// Combine: fields set in `other` win.
    pub fn merge(self, other: RawOptions) -> Self {
        RawOptions {
            column_family: other.column_family.or(self.column_family),
            key_only: self.key_only || other.key_only,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_family_names() {
        for (name, cf) in [
            ("", Some(ColumnFamily::Default)),
            ("default", Some(ColumnFamily::Default)),
            ("lock", Some(ColumnFamily::Lock)),
            ("write", Some(ColumnFamily::Write)),
            ("raft", None),
            ("Default", None),
        ] {
            assert_eq!(ColumnFamily::parse(name).ok(), cf, "{name}");
        }
        assert_eq!(ColumnFamily::Write.to_string(), "write");
    }

    #[test]
    fn merge_prefers_explicit() {
        let base = RawOptions::set_column_family(ColumnFamily::Lock);
        assert_eq!(
            base.merge(RawOptions::scan_key_only()).column_family,
            Some(ColumnFamily::Lock)
        );
        assert!(base.merge(RawOptions::scan_key_only()).key_only);
        let w = base.merge(RawOptions::set_column_family(ColumnFamily::Write));
        assert_eq!(w.column_family, Some(ColumnFamily::Write));
    }
}
