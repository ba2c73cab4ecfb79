//! Key encodings shared by regions, PD and the storage layers.
//!
//! * **Memcomparable bytes** (TiKV `codec::bytes::encode_bytes`, the encoding
//!   behind `Key::from_raw`): the input is cut into 8-byte groups; every group
//!   is written padded with `0x00` to 8 bytes and followed by a marker byte
//!   `0xFF - pad`. A full group has marker `0xFF` and is followed by another
//!   group; the last group has fewer than 8 real bytes (possibly 0), so the
//!   empty input encodes to `00 00 00 00 00 00 00 00 F7`. The encoding
//!   preserves order, so region boundaries (which are encoded for TxnKV and
//!   API-V2 RawKV) can be compared with encoded request keys.
//! * **Keyspace prefixes** (API V2, kvproto `APIVersion`): a key starts with a
//!   mode byte (`x` for TxnKV, `r` for RawKV) followed by the 3-byte
//!   big-endian keyspace id.

use thiserror::Error;
use tikv_tower_proto::memcomparable::{self, DecodeError};

/// Mode byte of API-V2 transactional keys.
pub const TXN_MODE_PREFIX: u8 = b'x';
/// Mode byte of API-V2 raw keys.
pub const RAW_MODE_PREFIX: u8 = b'r';
/// Largest keyspace id (24 bits).
pub const MAX_KEYSPACE_ID: u32 = 0x00FF_FFFF;

/// Why a byte string is not a valid memcomparable encoding.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// The input ended inside a group.
    #[error("memcomparable: truncated input at offset {offset}")]
    Truncated {
        /// Offset of the group that was cut short.
        offset: usize,
    },
    /// A marker byte claims more padding than a group holds.
    #[error("memcomparable: invalid marker {marker:#04x} at offset {offset}")]
    InvalidMarker {
        /// The marker byte.
        marker: u8,
        /// Offset of the marker.
        offset: usize,
    },
    /// A padding byte is not zero.
    #[error("memcomparable: non-zero padding at offset {offset}")]
    InvalidPadding {
        /// Offset of the group.
        offset: usize,
    },
    /// Bytes were left over after the encoded key (only for exact decoding).
    #[error("memcomparable: {extra} trailing bytes after the key")]
    TrailingBytes {
        /// Number of bytes left.
        extra: usize,
    },
}

/// Encodes `raw` in the memcomparable format (TiKV `encode_bytes`).
pub use tikv_tower_proto::memcomparable::encode_bytes;

impl From<DecodeError> for CodecError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Truncated { offset } => CodecError::Truncated { offset },
            DecodeError::InvalidMarker { marker, offset } => {
                CodecError::InvalidMarker { marker, offset }
            }
            DecodeError::InvalidPadding { offset } => CodecError::InvalidPadding { offset },
        }
    }
}

/// Decodes a memcomparable prefix of `enc`; returns the raw key and the number of input
/// bytes it used (TiKV `decode_bytes`).
pub fn decode_bytes_prefix(enc: &[u8]) -> Result<(Vec<u8>, usize), CodecError> {
    Ok(memcomparable::decode_bytes_prefix(enc)?)
}

/// Decodes `enc`, which must be exactly one memcomparable-encoded key.
pub fn decode_bytes(enc: &[u8]) -> Result<Vec<u8>, CodecError> {
    let (raw, used) = decode_bytes_prefix(enc)?;
    if used != enc.len() {
        return Err(CodecError::TrailingBytes {
            extra: enc.len() - used,
        });
    }
    Ok(raw)
}

/// Decodes a region boundary: the empty boundary (−∞ / +∞) stays empty.
pub fn decode_boundary(enc: &[u8]) -> Result<Vec<u8>, CodecError> {
    if enc.is_empty() {
        Ok(Vec::new())
    } else {
        decode_bytes(enc)
    }
}

/// Encodes a region boundary: the empty boundary (−∞ / +∞) stays empty.
pub fn encode_boundary(raw: &[u8]) -> Vec<u8> {
    if raw.is_empty() {
        Vec::new()
    } else {
        encode_bytes(raw)
    }
}

/// The 4-byte API-V2 prefix of keyspace `keyspace_id` in the given mode
/// (`mode` is [`TXN_MODE_PREFIX`] or [`RAW_MODE_PREFIX`]); the id is truncated
/// to 24 bits.
pub fn keyspace_prefix(mode: u8, keyspace_id: u32) -> [u8; 4] {
    let id = (keyspace_id & MAX_KEYSPACE_ID).to_be_bytes();
    [mode, id[1], id[2], id[3]]
}

/// The exclusive upper bound of keyspace `keyspace_id` in the given mode: the
/// prefix of `keyspace_id + 1` (for the last id, the next mode byte), which is
/// how clients encode an unbounded end.
pub fn keyspace_end(mode: u8, keyspace_id: u32) -> [u8; 4] {
    let id = keyspace_id & MAX_KEYSPACE_ID;
    if id == MAX_KEYSPACE_ID {
        [mode.wrapping_add(1), 0, 0, 0]
    } else {
        keyspace_prefix(mode, id + 1)
    }
}

/// Splits an API-V2 key into its mode byte, keyspace id and user key, or
/// `None` when the key is shorter than a prefix.
pub fn parse_keyspace_key(key: &[u8]) -> Option<(u8, u32, &[u8])> {
    if key.len() < 4 {
        return None;
    }
    let id = u32::from_be_bytes([0, key[1], key[2], key[3]]);
    Some((key[0], id, &key[4..]))
}

/// Decodes hex digits (either case) into bytes; `None` for an odd length or
/// a non-hex digit (the control API's keys, `--split-key 0x...`).
pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|d| u8::from_str_radix(d, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_matches_tikv_examples() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", &[0, 0, 0, 0, 0, 0, 0, 0, 0xF7]),
            (b"\x01\x02\x03", &[1, 2, 3, 0, 0, 0, 0, 0, 0xFA]),
            (
                b"\x01\x02\x03\x04\x05\x06\x07\x08",
                &[1, 2, 3, 4, 5, 6, 7, 8, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0xF7],
            ),
            (
                b"\x01\x02\x03\x04\x05\x06\x07\x08\x09",
                &[1, 2, 3, 4, 5, 6, 7, 8, 0xFF, 9, 0, 0, 0, 0, 0, 0, 0, 0xF8],
            ),
        ];
        for (raw, enc) in cases {
            assert_eq!(encode_bytes(raw), *enc, "encode {raw:?}");
            assert_eq!(decode_bytes(enc).as_deref(), Ok(*raw), "decode {enc:?}");
        }
    }

    #[test]
    fn encoding_preserves_order() {
        let keys: Vec<&[u8]> = vec![b"", b"\0", b"a", b"a\0", b"aaaaaaaa", b"aaaaaaaa\0", b"b"];
        for w in keys.windows(2) {
            assert!(
                encode_bytes(w[0]) < encode_bytes(w[1]),
                "{:?} < {:?}",
                w[0],
                w[1]
            );
        }
    }

    #[test]
    fn decode_rejects_bad_input() {
        assert!(matches!(
            decode_bytes(b"abc"),
            Err(CodecError::Truncated { .. })
        ));
        assert!(matches!(
            decode_bytes(&[0, 0, 0, 0, 0, 0, 0, 0, 0x10]),
            Err(CodecError::InvalidMarker { .. })
        ));
        assert!(matches!(
            decode_bytes(&[1, 2, 3, 0, 0, 0, 0, 9, 0xFA]),
            Err(CodecError::InvalidPadding { .. })
        ));
        let mut enc = encode_bytes(b"k");
        enc.push(1);
        assert_eq!(
            decode_bytes(&enc),
            Err(CodecError::TrailingBytes { extra: 1 })
        );
        let (raw, used) = decode_bytes_prefix(&enc).expect("prefix decodes");
        assert_eq!((raw.as_slice(), used), (&b"k"[..], 9));
    }

    #[test]
    fn keyspace_prefixes() {
        assert_eq!(keyspace_prefix(RAW_MODE_PREFIX, 0), *b"r\0\0\0");
        assert_eq!(
            keyspace_prefix(TXN_MODE_PREFIX, 0x010203),
            *b"x\x01\x02\x03"
        );
        assert_eq!(keyspace_end(RAW_MODE_PREFIX, 0), *b"r\0\0\x01");
        assert_eq!(keyspace_end(TXN_MODE_PREFIX, MAX_KEYSPACE_ID), *b"y\0\0\0");
        assert_eq!(
            parse_keyspace_key(b"r\0\0\x05abc"),
            Some((b'r', 5, &b"abc"[..]))
        );
        assert_eq!(parse_keyspace_key(b"r\0"), None);
    }

    proptest::proptest! {
        #[test]
        fn roundtrip_and_order(a in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
                               b in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            let (ea, eb) = (encode_bytes(&a), encode_bytes(&b));
            proptest::prop_assert_eq!(decode_bytes(&ea), Ok(a.clone()));
            proptest::prop_assert_eq!(a.cmp(&b), ea.cmp(&eb));
        }

        #[test]
        fn decode_never_panics(x in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            let _ = decode_bytes(&x);
            let _ = decode_bytes_prefix(&x);
        }
    }
}
