//! Key codecs between *request key space* and *region key space*.
//!
//! TiKV stores TxnKV data (and, under API V2, every key) under memcomparable-encoded keys,
//! so the region boundaries PD reports, and the keys PD's region lookups expect, are
//! encoded; request keys are not. API V2 also prefixes every request key with its
//! keyspace: a mode byte (`'x'` txn, `'r'` raw) and the 3-byte big-endian keyspace id.
//!
//! [`ApiCodec`] mirrors client-go's `internal/apicodec` (`codecV1` / `codecV2`
//! `EncodeRegionKey`, `DecodeRegionKey`, `DecodeRegionRange`), with one deliberate
//! difference: tikv-tower's request key space *keeps* the keyspace prefix (it is part of the
//! bytes a kvrpcpb request carries), so decoded region bounds keep it too and are clamped
//! to the keyspace's range `[prefix, prefix of id+1)` instead of being stripped.
//!
//! [`encode_bytes`] / [`decode_bytes`] are the memcomparable byte codec (client-go
//! `util/codec.EncodeBytes` / `DecodeBytes`, TiKV `codec::bytes::encode_bytes`).

use tikv_tower_proto::metapb;

/// Errors of decoding a key or region boundary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input ended inside a memcomparable group.
    #[error("memcomparable key truncated at byte {0}")]
    Truncated(usize),
    /// A group's marker byte or padding is not valid.
    #[error("invalid memcomparable marker or padding at byte {0}")]
    InvalidMarker(usize),
    /// A region lies entirely outside the codec's keyspace (client-go `errKeyOutOfBound`).
    #[error("region [{start:?}, {end:?}) lies outside the keyspace")]
    OutOfKeyspace {
        /// Decoded start key.
        start: Vec<u8>,
        /// Decoded end key.
        end: Vec<u8>,
    },
}

pub use tikv_tower_proto::memcomparable::{encode_bytes, encode_bytes_into};

/// Decodes a memcomparable-encoded key, returning the key and the number of input bytes
/// consumed; trailing bytes (e.g. a timestamp suffix) are left alone, as client-go's
/// `codec.DecodeBytes` does.
pub fn decode_bytes(data: &[u8]) -> Result<(Vec<u8>, usize), CodecError> {
    use tikv_tower_proto::memcomparable::{decode_bytes_prefix, DecodeError};
    decode_bytes_prefix(data).map_err(|e| match e {
        DecodeError::Truncated { offset } => CodecError::Truncated(offset),
        DecodeError::InvalidMarker { offset, .. } => CodecError::InvalidMarker(offset),
        // Reported at the group's marker byte, like a bad marker.
        DecodeError::InvalidPadding { offset } => CodecError::InvalidMarker(offset + 8),
    })
}

/// Which key mode a client speaks: raw or transactional (client-go `apicodec.Mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    /// RawKV.
    Raw,
    /// TxnKV.
    Txn,
}

impl KeyMode {
    /// The API V2 prefix byte of this mode (`'r'` or `'x'`).
    pub fn prefix_byte(self) -> u8 {
        match self {
            KeyMode::Raw => b'r',
            KeyMode::Txn => b'x',
        }
    }
}

/// The largest keyspace id (24 bits).
pub const MAX_KEYSPACE_ID: u32 = 0x00FF_FFFF;

/// The 4-byte API V2 prefix of `keyspace_id` in `mode` (client-go `codecV2` prefix).
/// Ids above [`MAX_KEYSPACE_ID`] are truncated to 24 bits.
pub fn keyspace_prefix(mode: KeyMode, keyspace_id: u32) -> [u8; 4] {
    let id = (keyspace_id & MAX_KEYSPACE_ID).to_be_bytes();
    [mode.prefix_byte(), id[1], id[2], id[3]]
}

/// The exclusive end of a keyspace's range: the prefix of the next id, or the next mode
/// byte after the largest id.
pub fn keyspace_end(mode: KeyMode, keyspace_id: u32) -> [u8; 4] {
    let id = keyspace_id & MAX_KEYSPACE_ID;
    if id == MAX_KEYSPACE_ID {
        [mode.prefix_byte() + 1, 0, 0, 0]
    } else {
        keyspace_prefix(mode, id + 1)
    }
}

/// Maps keys and region boundaries between request key space and PD's region key space
/// (client-go `apicodec.Codec`, region-key half).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCodec {
    memcomparable: bool,
    keyspace: Option<(Vec<u8>, Vec<u8>)>,
}

impl ApiCodec {
    /// API V1 RawKV: region keys are raw keys (client-go `NewCodecV1(ModeRaw)`).
    pub fn v1_raw() -> Self {
        ApiCodec {
            memcomparable: false,
            keyspace: None,
        }
    }

    /// API V1 TxnKV: region keys are memcomparable (client-go `NewCodecV1(ModeTxn)`).
    pub fn v1_txn() -> Self {
        ApiCodec {
            memcomparable: true,
            keyspace: None,
        }
    }

    /// API V1 in `mode`.
    pub fn v1(mode: KeyMode) -> Self {
        match mode {
            KeyMode::Raw => Self::v1_raw(),
            KeyMode::Txn => Self::v1_txn(),
        }
    }

    /// API V2 for one keyspace: region keys are memcomparable, request keys carry the
    /// keyspace prefix (client-go `NewCodecV2`).
    pub fn v2(mode: KeyMode, keyspace_id: u32) -> Self {
        ApiCodec {
            memcomparable: true,
            keyspace: Some((
                keyspace_prefix(mode, keyspace_id).to_vec(),
                keyspace_end(mode, keyspace_id).to_vec(),
            )),
        }
    }

    /// Whether region keys are memcomparable-encoded.
    pub fn is_memcomparable(&self) -> bool {
        self.memcomparable
    }

    /// The keyspace range `[prefix, end)` under API V2.
    pub fn keyspace_range(&self) -> Option<(&[u8], &[u8])> {
        self.keyspace
            .as_ref()
            .map(|(s, e)| (s.as_slice(), e.as_slice()))
    }

    /// Encodes a request key for a PD region lookup (client-go `EncodeRegionKey`).
    pub fn encode_region_key(&self, key: &[u8]) -> Vec<u8> {
        if self.memcomparable {
            encode_bytes(key)
        } else {
            key.to_vec()
        }
    }

    /// Encodes a request range `[start, end)` for a PD region scan (client-go
    /// `EncodeRegionRange`): an empty end stays unbounded, except under API V2 where it
    /// becomes the keyspace end; an empty start under API V2 becomes the keyspace prefix.
    pub fn encode_region_range(&self, start: &[u8], end: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let (start, end) = match &self.keyspace {
            Some((prefix, ks_end)) => {
                let s = if start < prefix.as_slice() {
                    prefix.as_slice()
                } else {
                    start
                };
                let e = if end.is_empty() || end > ks_end.as_slice() {
                    ks_end.as_slice()
                } else {
                    end
                };
                (s, e)
            }
            None => (start, end),
        };
        let enc_end = if end.is_empty() {
            Vec::new()
        } else {
            self.encode_region_key(end)
        };
        (self.encode_region_key(start), enc_end)
    }

    /// Decodes one region boundary; empty stays empty (unbounded) (client-go
    /// `DecodeRegionKey`).
    pub fn decode_region_key(&self, key: &[u8]) -> Result<Vec<u8>, CodecError> {
        if key.is_empty() || !self.memcomparable {
            return Ok(key.to_vec());
        }
        decode_bytes(key).map(|(k, _)| k)
    }

    /// Decodes a region's bounds into request key space and clamps them to the keyspace
    /// (client-go `DecodeRegionRange`). Errors when the region lies outside the keyspace.
    pub fn decode_region_range(
        &self,
        start: &[u8],
        end: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), CodecError> {
        let mut start = self.decode_region_key(start)?;
        let mut end = self.decode_region_key(end)?;
        if let Some((prefix, ks_end)) = &self.keyspace {
            if start.as_slice() >= ks_end.as_slice()
                || (!end.is_empty() && end.as_slice() <= prefix.as_slice())
            {
                return Err(CodecError::OutOfKeyspace { start, end });
            }
            if start.as_slice() < prefix.as_slice() {
                start.clone_from(prefix);
            }
            if end.is_empty() || end.as_slice() > ks_end.as_slice() {
                end.clone_from(ks_end);
            }
        }
        Ok((start, end))
    }

    /// Decodes a region's bucket keys into request key space (client-go
    /// `DecodeBucketKeys`): a first key before the keyspace becomes its start, a last key
    /// at or past the keyspace end (or unbounded) becomes its end, keys of other
    /// keyspaces are dropped.
    pub fn decode_bucket_keys(
        &self,
        keys: &[bytes::Bytes],
    ) -> Result<Vec<bytes::Bytes>, CodecError> {
        let mut out = Vec::with_capacity(keys.len());
        let last = keys.len().saturating_sub(1);
        for (i, key) in keys.iter().enumerate() {
            let k = self.decode_region_key(key)?;
            let Some((prefix, ks_end)) = &self.keyspace else {
                out.push(k.into());
                continue;
            };
            if i == 0 && k.as_slice() < prefix.as_slice() {
                out.push(prefix.clone().into());
            } else if i == last && (k.is_empty() || k.as_slice() >= ks_end.as_slice()) {
                out.push(ks_end.clone().into());
            } else if k.starts_with(prefix) {
                out.push(k.into());
            }
        }
        Ok(out)
    }

    /// Decodes a region's bounds in place (see [`ApiCodec::decode_region_range`]).
    pub fn decode_region(&self, mut region: metapb::Region) -> Result<metapb::Region, CodecError> {
        if self.memcomparable || self.keyspace.is_some() {
            let (s, e) = self.decode_region_range(&region.start_key, &region.end_key)?;
            region.start_key = s.into();
            region.end_key = e.into();
        }
        Ok(region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn memcomparable_vectors() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", &[0, 0, 0, 0, 0, 0, 0, 0, 0xF7]),
            (&[1, 2, 3], &[1, 2, 3, 0, 0, 0, 0, 0, 0xFA]),
            (&[1, 2, 3, 0], &[1, 2, 3, 0, 0, 0, 0, 0, 0xFB]),
            (
                &[1, 2, 3, 4, 5, 6, 7, 8],
                &[1, 2, 3, 4, 5, 6, 7, 8, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0xF7],
            ),
            (
                &[1, 2, 3, 4, 5, 6, 7, 8, 9],
                &[1, 2, 3, 4, 5, 6, 7, 8, 0xFF, 9, 0, 0, 0, 0, 0, 0, 0, 0xF8],
            ),
            (b"x\0\0\0", &[b'x', 0, 0, 0, 0, 0, 0, 0, 0xFB]),
        ];
        for (raw, enc) in cases {
            assert_eq!(encode_bytes(raw), enc.to_vec(), "encode {raw:?}");
            assert_eq!(
                decode_bytes(enc).unwrap(),
                (raw.to_vec(), enc.len()),
                "decode {enc:?}"
            );
        }
    }

    #[test]
    fn memcomparable_rejects_bad_input() {
        let cases: &[&[u8]] = &[
            &[1, 2, 3],                      // truncated
            &[1, 2, 3, 0, 0, 0, 0, 0, 0xF0], // pad 15 > 8
            &[1, 2, 3, 0, 0, 0, 0, 1, 0xFA], // non-zero padding
            &[1, 2, 3, 4, 5, 6, 7, 8, 0xFF], // ends after a full group
            &[],                             // empty input is no key
        ];
        for enc in cases {
            assert!(decode_bytes(enc).is_err(), "{enc:?} must not decode");
        }
    }

    /// client-go `codecV2.DecodeBucketKeys`, in request key space: ends clamped to the
    /// keyspace, keys of other keyspaces dropped.
    #[test]
    fn bucket_keys_are_decoded_and_clamped_to_the_keyspace() {
        let codec = ApiCodec::v2(KeyMode::Raw, 1);
        let (prefix, end) = (
            keyspace_prefix(KeyMode::Raw, 1),
            keyspace_end(KeyMode::Raw, 1),
        );
        let mut inside = prefix.to_vec();
        inside.extend_from_slice(b"k");
        let keys: Vec<bytes::Bytes> = [
            b"a".to_vec(),
            inside.clone(),
            b"r\0\0\x05".to_vec(),
            Vec::new(),
        ]
        .iter()
        .map(|k| {
            if k.is_empty() {
                bytes::Bytes::new()
            } else {
                encode_bytes(k).into()
            }
        })
        .collect();
        let decoded = codec.decode_bucket_keys(&keys).unwrap();
        let want: Vec<bytes::Bytes> =
            vec![prefix.to_vec().into(), inside.into(), end.to_vec().into()];
        assert_eq!(decoded, want);
        // API V1 raw: verbatim.
        let raw = ApiCodec::v1_raw();
        assert_eq!(
            raw.decode_bucket_keys(&keys[..1]).unwrap(),
            keys[..1].to_vec()
        );
    }

    #[test]
    fn decode_ignores_trailing_timestamp() {
        let mut enc = encode_bytes(b"key");
        let n = enc.len();
        enc.extend_from_slice(&[0xFF; 8]);
        assert_eq!(decode_bytes(&enc).unwrap(), (b"key".to_vec(), n));
    }

    proptest! {
        #[test]
        fn memcomparable_round_trip_and_order(a in proptest::collection::vec(any::<u8>(), 0..40),
                                              b in proptest::collection::vec(any::<u8>(), 0..40)) {
            let ea = encode_bytes(&a);
            let eb = encode_bytes(&b);
            prop_assert_eq!(decode_bytes(&ea).unwrap(), (a.clone(), ea.len()));
            prop_assert_eq!(a.cmp(&b), ea.cmp(&eb));
        }
    }

    #[test]
    fn keyspace_prefixes() {
        assert_eq!(keyspace_prefix(KeyMode::Raw, 0), *b"r\0\0\0");
        assert_eq!(keyspace_prefix(KeyMode::Txn, 0x010203), [b'x', 1, 2, 3]);
        assert_eq!(keyspace_end(KeyMode::Txn, 0x0102FF), [b'x', 1, 3, 0]);
        assert_eq!(keyspace_end(KeyMode::Raw, MAX_KEYSPACE_ID), [b's', 0, 0, 0]);
    }

    #[test]
    fn v2_region_decoding_clamps_to_keyspace() {
        let c = ApiCodec::v2(KeyMode::Txn, 1);
        let enc = |k: &[u8]| encode_bytes(k);
        // (start, end) as PD reports them -> expected request-space bounds.
        type Bounds = (Vec<u8>, Vec<u8>);
        let cases: Vec<(Vec<u8>, Vec<u8>, Option<Bounds>)> = vec![
            (
                vec![],
                vec![],
                Some((b"x\0\0\x01".to_vec(), b"x\0\0\x02".to_vec())),
            ),
            (
                enc(b"r\0\0\x05"),
                enc(b"x\0\0\x01abc"),
                Some((b"x\0\0\x01".to_vec(), b"x\0\0\x01abc".to_vec())),
            ),
            (
                enc(b"x\0\0\x01abc"),
                enc(b"y"),
                Some((b"x\0\0\x01abc".to_vec(), b"x\0\0\x02".to_vec())),
            ),
            (enc(b"x\0\0\x02"), vec![], None),
            (vec![], enc(b"x\0\0\x01"), None),
        ];
        for (s, e, want) in cases {
            let got = c.decode_region_range(&s, &e).ok();
            assert_eq!(got, want, "decode {s:?}..{e:?}");
        }
    }

    #[test]
    fn v1_codecs() {
        let raw = ApiCodec::v1_raw();
        assert_eq!(raw.encode_region_key(b"k"), b"k".to_vec());
        assert_eq!(
            raw.decode_region_range(b"a", b"b").unwrap(),
            (b"a".to_vec(), b"b".to_vec())
        );
        let txn = ApiCodec::v1_txn();
        assert_eq!(
            txn.decode_region_range(&encode_bytes(b"a"), b"").unwrap(),
            (b"a".to_vec(), vec![])
        );
        assert!(txn.decode_region_range(b"a", b"").is_err());
        assert_eq!(
            txn.encode_region_range(b"a", b""),
            (encode_bytes(b"a"), vec![])
        );
        let v2 = ApiCodec::v2(KeyMode::Raw, 0);
        assert_eq!(
            v2.encode_region_range(b"", b""),
            (encode_bytes(b"r\0\0\0"), encode_bytes(b"r\0\0\x01"))
        );
    }
}
