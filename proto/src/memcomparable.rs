//! The memcomparable byte encoding of TiKV keys (TiKV `codec::bytes::encode_bytes`, the
//! encoding behind `Key::from_raw`; client-go `util/codec.EncodeBytes` / `DecodeBytes`).
//!
//! The input is cut into 8-byte groups; each group is written zero-padded to 8 bytes and
//! followed by a marker byte `0xFF - padding`. A full group has marker `0xFF` and is
//! followed by another group; the last group holds fewer than 8 real bytes (possibly 0),
//! so the empty input encodes to `00 00 00 00 00 00 00 00 F7`. The encoding preserves
//! order. TiKV stores TxnKV keys (and, under API V2, every key) encoded this way, so region
//! boundaries are in this form: the client decodes them and mockstore checks against them.
//! It lives here, beside the wire definitions, so client and mockstore share one copy.

use std::fmt;

/// Size of one group.
const GROUP: usize = 8;
/// Marker byte of a full group.
const MARKER: u8 = 0xFF;
/// Padding byte.
const PAD: u8 = 0x00;

/// Why bytes are not a valid memcomparable encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside the group that starts at `offset`.
    Truncated {
        /// Offset of the group cut short.
        offset: usize,
    },
    /// The marker at `offset` claims more padding than a group holds.
    InvalidMarker {
        /// The marker byte.
        marker: u8,
        /// Offset of the marker byte.
        offset: usize,
    },
    /// A padding byte of the group that starts at `offset` is not zero.
    InvalidPadding {
        /// Offset of the group.
        offset: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { offset } => {
                write!(f, "memcomparable: truncated input at offset {offset}")
            }
            DecodeError::InvalidMarker { marker, offset } => {
                write!(
                    f,
                    "memcomparable: invalid marker {marker:#04x} at offset {offset}"
                )
            }
            DecodeError::InvalidPadding { offset } => {
                write!(f, "memcomparable: non-zero padding at offset {offset}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Encodes `raw`.
pub fn encode_bytes(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity((raw.len() / GROUP + 1) * (GROUP + 1));
    encode_bytes_into(raw, &mut out);
    out
}

/// [`encode_bytes`], appending to `out`.
pub fn encode_bytes_into(raw: &[u8], out: &mut Vec<u8>) {
    let mut chunks = raw.chunks_exact(GROUP);
    for group in &mut chunks {
        out.extend_from_slice(group);
        out.push(MARKER);
    }
    let rest = chunks.remainder();
    let pad = GROUP - rest.len();
    out.extend_from_slice(rest);
    out.extend(std::iter::repeat_n(PAD, pad));
    // pad <= 8, so the cast cannot truncate and the subtraction cannot underflow.
    out.push(MARKER - pad as u8);
}

/// Decodes the encoded key at the start of `enc`; returns it and the number of bytes it
/// took. Bytes after it (e.g. a timestamp suffix) are left alone.
pub fn decode_bytes_prefix(enc: &[u8]) -> Result<(Vec<u8>, usize), DecodeError> {
    let mut out = Vec::with_capacity(enc.len() / (GROUP + 1) * GROUP);
    let mut offset = 0;
    loop {
        let end = offset + GROUP + 1;
        let group = enc
            .get(offset..end)
            .ok_or(DecodeError::Truncated { offset })?;
        let marker = group[GROUP];
        let pad = usize::from(MARKER - marker);
        if pad == 0 {
            out.extend_from_slice(&group[..GROUP]);
            offset = end;
            continue;
        }
        if pad > GROUP {
            return Err(DecodeError::InvalidMarker {
                marker,
                offset: offset + GROUP,
            });
        }
        let real = GROUP - pad;
        if group[real..GROUP].iter().any(|b| *b != PAD) {
            return Err(DecodeError::InvalidPadding { offset });
        }
        out.extend_from_slice(&group[..real]);
        return Ok((out, end));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(encode_bytes(b""), [0, 0, 0, 0, 0, 0, 0, 0, 0xF7]);
        assert_eq!(
            encode_bytes(b"abc"),
            [b'a', b'b', b'c', 0, 0, 0, 0, 0, 0xFA]
        );
        assert_eq!(
            encode_bytes(b"12345678"),
            [b'1', b'2', b'3', b'4', b'5', b'6', b'7', b'8', 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0xF7]
        );
    }

    #[test]
    fn round_trip_keeps_the_suffix() {
        for key in [&b""[..], b"a", b"12345678", b"123456789", &[0xFF; 20]] {
            let mut enc = encode_bytes(key);
            let used = enc.len();
            enc.extend_from_slice(b"suffix");
            assert_eq!(decode_bytes_prefix(&enc), Ok((key.to_vec(), used)));
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            decode_bytes_prefix(b"abc"),
            Err(DecodeError::Truncated { offset: 0 })
        );
        let mut bad = encode_bytes(b"a");
        bad[8] = 0x00;
        assert_eq!(
            decode_bytes_prefix(&bad),
            Err(DecodeError::InvalidMarker {
                marker: 0,
                offset: 8
            })
        );
        let mut pad = encode_bytes(b"a");
        pad[5] = 1;
        assert_eq!(
            decode_bytes_prefix(&pad),
            Err(DecodeError::InvalidPadding { offset: 0 })
        );
    }
}
