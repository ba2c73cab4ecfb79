//! Values of the RawKV API: key ranges, pairs, checksums.

use std::ops::{Bound, RangeBounds};

use crate::error::{Error, Result};

/// A key-value pair returned by scans.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KvPair {
    /// The key (keyspace prefix removed).
    pub key: Vec<u8>,
    /// The value (empty for key-only scans).
    pub value: Vec<u8>,
}

impl KvPair {
    /// A pair.
    pub fn new(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        KvPair {
            key: key.into(),
            value: value.into(),
        }
    }
}

impl<K: Into<Vec<u8>>, V: Into<Vec<u8>>> From<(K, V)> for KvPair {
    fn from((k, v): (K, V)) -> Self {
        KvPair::new(k, v)
    }
}

/// The checksum of the raw pairs in a range (client-go `rawkv.RawChecksum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawChecksum {
    /// XOR of the per-pair CRC64 checksums.
    pub crc64_xor: u64,
    /// Number of pairs.
    pub total_kvs: u64,
    /// Bytes of keys and values (keyspace prefix included under API V2, as in client-go).
    pub total_bytes: u64,
}

impl RawChecksum {
    /// Fold one region's checksum in (XOR and sums, like client-go's loop).
    pub fn merge(&mut self, other: RawChecksum) {
        self.crc64_xor ^= other.crc64_xor;
        self.total_kvs += other.total_kvs;
        self.total_bytes += other.total_bytes;
    }
}

/// A half-open key range `[start, end)`; `end == None` means unbounded.
///
/// Built from Rust ranges over anything that converts into `Vec<u8>`: `a..b`, `a..`, `..b`,
/// `..`, `a..=b` (inclusive ends become `b + "\0"`, as client-go's doc comments advise), or
/// from a pair `(start, end)` where an empty end means unbounded (client-go's convention).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyRange {
    /// Inclusive start (empty = from the first key).
    pub start: Vec<u8>,
    /// Exclusive end (`None` = to the last key).
    pub end: Option<Vec<u8>>,
}

impl KeyRange {
    /// `[start, end)`; an empty `end` means unbounded (client-go convention).
    pub fn new(start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) -> Self {
        let end = end.into();
        KeyRange {
            start: start.into(),
            end: if end.is_empty() { None } else { Some(end) },
        }
    }

    /// The whole key space.
    pub fn all() -> Self {
        KeyRange::default()
    }

    /// Whether no key can be in the range (`start >= end`).
    pub fn is_empty(&self) -> bool {
        self.end.as_ref().is_some_and(|e| self.start >= *e)
    }

    /// Reject `start > end` (typed [`Error::InvalidRange`]); `start == end` is an empty range.
    pub fn validate(&self) -> Result<()> {
        match &self.end {
            Some(e) if self.start > *e => Err(Error::InvalidRange {
                start: self.start.clone(),
                end: e.clone(),
            }),
            _ => Ok(()),
        }
    }

    fn from_bounds<T: AsRef<[u8]>>(r: &impl RangeBounds<T>) -> Self {
        let start = match r.start_bound() {
            Bound::Included(s) => s.as_ref().to_vec(),
            Bound::Excluded(s) => {
                let mut s = s.as_ref().to_vec();
                s.push(0);
                s
            }
            Bound::Unbounded => Vec::new(),
        };
        let end = match r.end_bound() {
            Bound::Excluded(e) => Some(e.as_ref().to_vec()),
            Bound::Included(e) => {
                let mut e = e.as_ref().to_vec();
                e.push(0);
                Some(e)
            }
            Bound::Unbounded => None,
        };
        KeyRange { start, end }
    }
}

macro_rules! range_from {
    ($($t:ty),*) => {$(
        impl<T: AsRef<[u8]>> From<$t> for KeyRange {
            fn from(r: $t) -> Self {
                KeyRange::from_bounds(&r)
            }
        }
    )*};
}
range_from!(
    std::ops::Range<T>,
    std::ops::RangeFrom<T>,
    std::ops::RangeTo<T>,
    std::ops::RangeInclusive<T>,
    std::ops::RangeToInclusive<T>
);

impl From<std::ops::RangeFull> for KeyRange {
    fn from(_: std::ops::RangeFull) -> Self {
        KeyRange::all()
    }
}

impl<S: Into<Vec<u8>>, E: Into<Vec<u8>>> From<(S, E)> for KeyRange {
    fn from((s, e): (S, E)) -> Self {
        KeyRange::new(s, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_from_rust_syntax() {
        type Row = (KeyRange, &'static [u8], Option<&'static [u8]>);
        let table: Vec<Row> = vec![
            (("a".."c").into(), b"a", Some(b"c")),
            (("a"..).into(), b"a", None),
            ((.."c").into(), b"", Some(b"c")),
            (("a"..="c").into(), b"a", Some(b"c\0")),
            ((..="c").into(), b"", Some(b"c\0")),
            ((..).into(), b"", None),
            (("a", "").into(), b"a", None),
            ((b"a".to_vec(), b"b".to_vec()).into(), b"a", Some(b"b")),
        ];
        for (r, s, e) in table {
            assert_eq!(r.start, s);
            assert_eq!(r.end.as_deref(), e);
        }
    }

    #[test]
    fn validation() {
        assert!(KeyRange::from("b".."a").validate().is_err());
        assert!(KeyRange::from("a".."a").validate().is_ok());
        assert!(KeyRange::from("a".."a").is_empty());
        assert!(!KeyRange::from("a"..).is_empty());
        assert!(matches!(
            KeyRange::from("b".."a").validate(),
            Err(Error::InvalidRange { .. })
        ));
    }

    #[test]
    fn checksum_merge() {
        let mut c = RawChecksum {
            crc64_xor: 0b1010,
            total_kvs: 1,
            total_bytes: 5,
        };
        c.merge(RawChecksum {
            crc64_xor: 0b0110,
            total_kvs: 2,
            total_bytes: 7,
        });
        assert_eq!(
            c,
            RawChecksum {
                crc64_xor: 0b1100,
                total_kvs: 3,
                total_bytes: 12
            }
        );
    }
}
