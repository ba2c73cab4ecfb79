//! User keys ↔ request keys for RawKV (client-go `apicodec` codecV1 / codecV2, raw mode).
//!
//! Under API V1 a user key is sent as is. Under API V2 every raw key carries the 4-byte
//! keyspace prefix `'r'` + 24-bit big-endian keyspace id: the client adds it to every key
//! and range bound it sends and strips it from every key it returns. Range bounds are
//! clamped to the keyspace (`[prefix, prefix of id + 1)`), so an unbounded scan never
//! leaves the keyspace (client-go `codecV2.EncodeRange` / `DecodeKey`).

use bytes::Bytes;

use crate::pd::codec::{keyspace_end, keyspace_prefix, KeyMode};

/// Adds and strips the keyspace prefix of raw keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawKeyCodec {
    keyspace: Option<([u8; 4], [u8; 4])>,
}

impl RawKeyCodec {
    /// API V1 / V1TTL: keys unchanged.
    pub fn v1() -> Self {
        RawKeyCodec { keyspace: None }
    }

    /// API V2 in keyspace `id`.
    pub fn v2(keyspace_id: u32) -> Self {
        Self::v2_mode(KeyMode::Raw, keyspace_id)
    }

    /// API V2 in keyspace `id` for `mode`'s key space: `'r'` prefixes for raw keys, `'x'`
    /// for transactional ones (client-go `codecV2` in `ModeRaw` / `ModeTxn`).
    pub fn v2_mode(mode: KeyMode, keyspace_id: u32) -> Self {
        RawKeyCodec {
            keyspace: Some((
                keyspace_prefix(mode, keyspace_id),
                keyspace_end(mode, keyspace_id),
            )),
        }
    }

    /// The prefix added under API V2.
    pub fn prefix(&self) -> Option<&[u8]> {
        self.keyspace.as_ref().map(|(p, _)| p.as_slice())
    }

    /// The request key for a user key (a copy: the caller's key is borrowed).
    pub fn encode_key(&self, key: &[u8]) -> Bytes {
        match &self.keyspace {
            None => Bytes::copy_from_slice(key),
            Some((p, _)) => {
                let mut out = Vec::with_capacity(p.len() + key.len());
                out.extend_from_slice(p);
                out.extend_from_slice(key);
                out.into()
            }
        }
    }

    /// Like [`RawKeyCodec::encode_key`], consuming the key (no copy under API V1).
    pub fn encode_owned(&self, key: Bytes) -> Bytes {
        match &self.keyspace {
            None => key,
            Some(_) => self.encode_key(&key),
        }
    }

    /// The request range for a user range: `(start, end)`, where an empty `end` means
    /// unbounded under API V1; under API V2 an unbounded end becomes the keyspace end.
    /// Under API V1 the bounds are shared, not copied.
    pub fn encode_range(&self, start: &Bytes, end: Option<&Bytes>) -> (Bytes, Bytes) {
        match &self.keyspace {
            None => (start.clone(), end.cloned().unwrap_or_default()),
            Some((_, ks_end)) => {
                let e = match end {
                    Some(e) => self.encode_key(e),
                    None => Bytes::copy_from_slice(ks_end),
                };
                (self.encode_key(start), e)
            }
        }
    }

    /// The user key of a request key returned by the server; `Err(key)` when the key lies
    /// outside the keyspace (a server bug, which the caller reports as an error). The user
    /// key shares the request key's buffer (no copy, prefix or not).
    pub fn decode_key(&self, key: Bytes) -> Result<Bytes, Bytes> {
        match &self.keyspace {
            None => Ok(key),
            Some((p, _)) if key.starts_with(p) => Ok(key.slice(p.len()..)),
            Some(_) => Err(key),
        }
    }

    /// The user range a request range covers (start clamped to the keyspace start,
    /// end = `None` when it reaches the keyspace end) — used to continue scans.
    pub fn decode_bound(&self, key: &[u8]) -> Option<Vec<u8>> {
        match &self.keyspace {
            None => (!key.is_empty()).then(|| key.to_vec()),
            Some((p, e)) => {
                if key.is_empty() || key >= e.as_slice() {
                    None
                } else if key <= p.as_slice() {
                    Some(Vec::new())
                } else {
                    key.strip_prefix(p.as_slice()).map(<[u8]>::to_vec)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &'static [u8]) -> Bytes {
        Bytes::from_static(s)
    }

    #[test]
    fn v1_is_identity() {
        let c = RawKeyCodec::v1();
        assert_eq!(c.encode_key(b"k"), b(b"k"));
        assert_eq!(c.encode_range(&b(b"a"), None), (b(b"a"), Bytes::new()));
        assert_eq!(c.decode_key(b(b"k")), Ok(b(b"k")));
        assert_eq!(c.decode_bound(b""), None);
    }

    #[test]
    fn v2_prefixes_and_clamps() {
        let c = RawKeyCodec::v2(0x010203);
        assert_eq!(c.encode_key(b"k"), b(b"r\x01\x02\x03k"));
        assert_eq!(
            c.encode_range(&Bytes::new(), None),
            (b(b"r\x01\x02\x03"), b(b"r\x01\x02\x04"))
        );
        assert_eq!(
            c.encode_range(&b(b"a"), Some(&b(b"b"))),
            (b(b"r\x01\x02\x03a"), b(b"r\x01\x02\x03b"))
        );
        assert_eq!(c.decode_key(b(b"r\x01\x02\x03k")), Ok(b(b"k")));
        assert_eq!(
            c.decode_key(b(b"r\x01\x02\x04k")),
            Err(b(b"r\x01\x02\x04k"))
        );
        assert_eq!(c.decode_bound(b"r\x01\x02\x04"), None);
        assert_eq!(c.decode_bound(b"r\x01\x02\x03m"), Some(b"m".to_vec()));
        assert_eq!(c.decode_bound(b"r\x01"), Some(vec![]));
        let last = RawKeyCodec::v2(0xFF_FFFF);
        assert_eq!(last.encode_range(&Bytes::new(), None).1, b(b"s\0\0\0"));
    }
}
