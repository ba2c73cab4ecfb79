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
    /// Both boundaries decoded exactly, so raw comparisons are exact.
    exact: bool,
}

impl RawBounds {
    /// The raw range of `region` under `encoding`.
    pub fn of(region: &Region, encoding: BoundaryEncoding) -> Self {
        let mut exact = true;
        let mut decode = |b: &[u8]| match encoding {
            BoundaryEncoding::Raw => b.to_vec(),
            BoundaryEncoding::Memcomparable => codec::decode_boundary(b).unwrap_or_else(|_| {
                exact = false;
                codec::decode_bytes_prefix(b)
                    .map(|(k, _)| k)
                    .unwrap_or_default()
            }),
        };
        let start = decode(&region.start_key);
        let end = decode(&region.end_key);
        RawBounds {
            start,
            end,
            encoding,
            enc_start: region.start_key.clone(),
            enc_end: region.end_key.clone(),
            exact,
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
            exact: true,
        }
    }

    /// Whether raw `key` is in the region.
    pub fn contains(&self, key: &[u8]) -> bool {
        if self.exact {
            // Memcomparable encoding preserves order, so the decoded
            // boundaries compare exactly with raw keys.
            return key >= self.start.as_slice()
                && (self.end.is_empty() || key < self.end.as_slice());
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::RegionEpoch;

    fn region(start: &[u8], end: &[u8]) -> Region {
        Region {
            id: 1,
            start_key: start.to_vec(),
            end_key: end.to_vec(),
            epoch: RegionEpoch::default(),
            peers: Vec::new(),
            leader: None,
            term: 0,
            down_peers: Vec::new(),
            pending_peers: Vec::new(),
        }
    }

    #[test]
    fn decoded_and_undecodable_boundaries_agree_with_encoded_comparison() {
        let enc = BoundaryEncoding::Memcomparable;
        let cases: &[(&[u8], &[u8])] = &[
            (&[], &[]),
            (b"", b"abc"),
            (b"b", b""),
            // Not valid encodings: compared encoded, key by key.
            (b"\x01\x02", b"zz"),
        ];
        let keys: &[&[u8]] = &[b"", b"\x01", b"\x01\x02\x03", b"a", b"abc", b"b", b"zzz"];
        for (s, e) in cases {
            let s = if s.len() == 2 {
                s.to_vec()
            } else {
                codec::encode_boundary(s)
            };
            let e = if e == b"zz" {
                e.to_vec()
            } else {
                codec::encode_boundary(e)
            };
            let r = region(&s, &e);
            let b = RawBounds::of(&r, enc);
            for k in keys {
                assert_eq!(
                    b.contains(k),
                    r.contains(&enc.to_boundary(k)),
                    "{s:?}..{e:?} {k:?}"
                );
            }
        }
    }

    #[test]
    fn clip_intersects() {
        let b = RawBounds::of(&region(b"b", b"m"), BoundaryEncoding::Raw);
        assert_eq!(
            b.clip(b"a", b""),
            (Bound::Included(&b"b"[..]), Bound::Excluded(&b"m"[..]))
        );
        assert_eq!(
            b.clip(b"c", b"d"),
            (Bound::Included(&b"c"[..]), Bound::Excluded(&b"d"[..]))
        );
        let all = RawBounds::unbounded();
        assert_eq!(
            all.clip(b"", b""),
            (Bound::Included(&b""[..]), Bound::Unbounded)
        );
    }
}
