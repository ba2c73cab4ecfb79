//! A region's range in raw key space, for the storage layers.
//!
//! Region boundaries are kept in boundary form (memcomparable or raw, see
//! [`BoundaryEncoding`]); the engines store raw keys, so a request's scan is
//! clipped with the *decoded* boundaries. Mock-made boundaries always decode;
//! a boundary that does not (set by a test through
//! [`MockCluster::split_region`](crate::MockCluster::split_region) with
//! arbitrary bytes) is approximated by its decodable prefix, and every key
//! is still filtered with the exact [`RawBounds::contains`].

use std::ops::Bound;

use crate::cluster::{BoundaryEncoding, Region};
use crate::codec;

/// A region's `[start, end)` in raw key space (empty `end` = +∞).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawBounds {
    /// Inclusive raw start.
    pub start: Vec<u8>,
    /// Exclusive raw end; empty = unbounded.
    pub end: Vec<u8>,
    encoding: BoundaryEncoding,
    enc_start: Vec<u8>,
    enc_end: Vec<u8>,
}

impl RawBounds {
    /// The raw range of `region` under `encoding`.
    pub fn of(region: &Region, encoding: BoundaryEncoding) -> Self {
        let decode = |b: &[u8]| match encoding {
            BoundaryEncoding::Raw => b.to_vec(),
            BoundaryEncoding::Memcomparable => codec::decode_boundary(b)
                .or_else(|_| codec::decode_bytes_prefix(b).map(|(k, _)| k))
                .unwrap_or_default(),
        };
        RawBounds {
            start: decode(&region.start_key),
            end: decode(&region.end_key),
            encoding,
            enc_start: region.start_key.clone(),
            enc_end: region.end_key.clone(),
        }
    }

    /// The whole key space.
    pub fn unbounded() -> Self {
        RawBounds {
            start: Vec::new(),
            end: Vec::new(),
            encoding: BoundaryEncoding::Raw,
            enc_start: Vec::new(),
            enc_end: Vec::new(),
        }
    }

    /// Whether raw `key` is in the region.
    pub fn contains(&self, key: &[u8]) -> bool {
        let k = self.encoding.to_boundary(key);
        k >= self.enc_start && (self.enc_end.is_empty() || k < self.enc_end)
    }

    /// As the engine's `(start, end)` pair.
    pub fn as_pair(&self) -> (&[u8], &[u8]) {
        (&self.start, &self.end)
    }

    /// Intersects `[lower, upper)` (empty `upper` = +∞) with the region,
    /// as skip-list bounds.
    pub fn clip<'a>(
        &'a self,
        lower: &'a [u8],
        upper: &'a [u8],
    ) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
        let lo: &[u8] = if lower > self.start.as_slice() {
            lower
        } else {
            &self.start
        };
        let hi: Option<&[u8]> = match (upper.is_empty(), self.end.is_empty()) {
            (true, true) => None,
            (true, false) => Some(&self.end),
            (false, true) => Some(upper),
            (false, false) => Some(if upper < self.end.as_slice() {
                upper
            } else {
                &self.end
            }),
        };
        (
            Bound::Included(lo),
            hi.map_or(Bound::Unbounded, Bound::Excluded),
        )
    }
}
