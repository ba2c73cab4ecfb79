//! Values of the RawKV API: key and value arguments, key ranges, pairs, checksums.
//!
//! Keys and values are [`Bytes`] inside the client, in the protocol messages and in what the
//! client returns: a buffer handed over by value (`Vec<u8>`, `String`, `Bytes`) travels to
//! the transport without a copy, and values read come back as slices of the reply (or, in
//! process, of the mock store) without a copy either. [`IntoBytes`] is the one conversion
//! the API takes, so callers keep passing what they have (`"k"`, `b"k"`, `Vec<u8>`,
//! `String`, `&[u8]`, `Bytes`).

use std::ops::{Bound, RangeBounds};

use bytes::Bytes;

use crate::error::{Error, Result};

/// A key or value argument of [`RawClient`](super::RawClient): anything a [`Bytes`] can be
/// made from. Owned buffers (`Bytes`, `Vec<u8>`, `String`, `Box<[u8]>`) are moved in
/// without copying; borrowed ones (`&[u8]`, `&str`, `b"..."`, `&Vec<u8>`, `&String`) are
/// copied once, as `Into<Vec<u8>>` did; `&Bytes` is a reference-count bump.
///
/// (`Into<Bytes>` alone would refuse `b"..."` literals and non-`'static` borrows, and copy
/// nothing less.)
pub trait IntoBytes {
    /// The bytes, moved or copied as described on the trait.
    fn into_bytes(self) -> Bytes;
}

impl IntoBytes for Bytes {
    fn into_bytes(self) -> Bytes {
        self
    }
}

impl IntoBytes for &Bytes {
    fn into_bytes(self) -> Bytes {
        self.clone()
    }
}

macro_rules! into_bytes_moved {
    ($($t:ty),*) => {$(
        impl IntoBytes for $t {
            fn into_bytes(self) -> Bytes {
                Bytes::from(self)
            }
        }
    )*};
}
into_bytes_moved!(Vec<u8>, String, Box<[u8]>);

macro_rules! into_bytes_copied {
    ($($t:ty),*) => {$(
        impl IntoBytes for $t {
            fn into_bytes(self) -> Bytes {
                Bytes::copy_from_slice(self.as_ref())
            }
        }
    )*};
}
into_bytes_copied!(&[u8], &str, &Vec<u8>, &String);

impl<const N: usize> IntoBytes for &[u8; N] {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl<const N: usize> IntoBytes for [u8; N] {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(&self)
    }
}

/// A key-value pair, given to batch puts and returned by scans.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KvPair {
    /// The key (keyspace prefix removed).
    pub key: Bytes,
    /// The value (empty for key-only scans).
    pub value: Bytes,
}

impl KvPair {
    /// A pair.
    pub fn new(key: impl IntoBytes, value: impl IntoBytes) -> Self {
        KvPair {
            key: key.into_bytes(),
            value: value.into_bytes(),
        }
    }
}

impl<K: IntoBytes, V: IntoBytes> From<(K, V)> for KvPair {
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
/// Built from Rust ranges over anything that is `AsRef<[u8]>` (copied): `a..b`, `a..`, `..b`,
/// `..`, `a..=b` (inclusive ends become `b + "\0"`, as client-go's doc comments advise), or
/// from a pair `(start, end)` of [`IntoBytes`] where an empty end means unbounded
/// (client-go's convention).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyRange {
    /// Inclusive start (empty = from the first key).
    pub start: Bytes,
    /// Exclusive end (`None` = to the last key).
    pub end: Option<Bytes>,
}

impl KeyRange {
    /// `[start, end)`; an empty `end` means unbounded (client-go convention).
    pub fn new(start: impl IntoBytes, end: impl IntoBytes) -> Self {
        let end = end.into_bytes();
        KeyRange {
            start: start.into_bytes(),
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
                start: self.start.to_vec(),
                end: e.to_vec(),
            }),
            _ => Ok(()),
        }
    }

    fn from_bounds<T: AsRef<[u8]>>(r: &impl RangeBounds<T>) -> Self {
        let start = match r.start_bound() {
            Bound::Included(s) => Bytes::copy_from_slice(s.as_ref()),
            Bound::Excluded(s) => {
                let mut s = s.as_ref().to_vec();
                s.push(0);
                s.into()
            }
            Bound::Unbounded => Bytes::new(),
        };
        let end = match r.end_bound() {
            Bound::Excluded(e) => Some(Bytes::copy_from_slice(e.as_ref())),
            Bound::Included(e) => {
                let mut e = e.as_ref().to_vec();
                e.push(0);
                Some(e.into())
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

impl<S: IntoBytes, E: IntoBytes> From<(S, E)> for KeyRange {
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
