//! Raw-KV errors, worded as TiKV's `storage::errors::ErrorInner` displays
//! them: raw commands report them in the response's string `error` field
//! (scans and batch gets, which have none, in one `KvPair.error.abort`).

use thiserror::Error;

/// Largest key TiKV accepts (`max-key-size`, 8 KiB).
pub const MAX_KEY_SIZE: usize = 8 * 1024;

/// Why a raw command failed (not a region error).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RawError {
    /// A key is larger than [`MAX_KEY_SIZE`].
    #[error("max key size exceeded, size: {size}, limit: {limit}")]
    KeyTooLarge {
        /// Key size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Unknown column family (API V1).
    #[error("invalid cf name: {0}")]
    InvalidCf(String),
    /// A column family was named in API V2.
    #[error("cf is deprecated in API V2, cf name: {0}")]
    CfDeprecated(String),
    /// A TTL on a cluster without TTL (API V1).
    #[error("ttl is not enabled, but get put request with ttl")]
    TtlNotEnabled,
    /// `RawGetKeyTTL` on a cluster without TTL (TiKV panics; the mock answers).
    #[error("TTL is not enabled")]
    TtlNotEnabledForGet,
    /// `ttls` of a batch put neither empty, of length 1, nor one per pair.
    #[error("The length of ttls does not equal to the length of pairs")]
    TtlLenNotEqualsToPairs,
    /// The request's API version does not fit the storage.
    #[error("Api version in request does not match with TiKV storage, cmd: {cmd}, storage: {storage}, request: {request}")]
    ApiVersionNotMatched {
        /// Command name (TiKV `CommandKind`).
        cmd: &'static str,
        /// Storage API version name.
        storage: &'static str,
        /// Request API version name.
        request: &'static str,
    },
    /// A key without the raw-mode prefix in API V2.
    #[error(
        "Key mode mismatched with the request mode, cmd: {cmd}, storage: {storage}, key: {key}"
    )]
    InvalidKeyMode {
        /// Command name.
        cmd: &'static str,
        /// Storage API version name.
        storage: &'static str,
        /// The key in upper-case hex.
        key: String,
    },
    /// A range not within the raw mode in API V2.
    #[error("Key mode mismatched with the request mode, cmd: {cmd}, storage: {storage}, range: ({start:?}, {end:?})")]
    InvalidKeyRangeMode {
        /// Command name.
        cmd: &'static str,
        /// Storage API version name.
        storage: &'static str,
        /// Range start in upper-case hex.
        start: Option<String>,
        /// Range end in upper-case hex.
        end: Option<String>,
    },
    /// Batch-scan ranges out of order for the scan direction.
    #[error("Invalid KeyRanges")]
    InvalidKeyRanges,
    /// An unknown checksum algorithm.
    #[error("unknown checksum algorithm {0}")]
    UnknownChecksumAlgorithm(i32),
}

impl RawError {
    /// The error as TiKV's `extract_key_error` words it in `KeyError.abort`:
    /// the `Debug` text of its storage error (`Error(InvalidCf("x"))`).
    pub fn tikv_debug(&self) -> String {
        let inner = match self {
            RawError::KeyTooLarge { size, limit } => format!("KeyTooLarge {{ size: {size}, limit: {limit} }}"),
            RawError::InvalidCf(cf) => format!("InvalidCf({cf:?})"),
            RawError::CfDeprecated(cf) => format!("CfDeprecated({cf:?})"),
            RawError::TtlNotEnabled | RawError::TtlNotEnabledForGet => "TtlNotEnabled".to_string(),
            RawError::TtlLenNotEqualsToPairs => "TtlLenNotEqualsToPairs".to_string(),
            RawError::ApiVersionNotMatched { cmd, storage, request } => format!(
                "ApiVersionNotMatched {{ cmd: {cmd}, storage_api_version: {storage}, req_api_version: {request} }}"
            ),
            RawError::InvalidKeyMode { cmd, storage, key } => {
                format!("InvalidKeyMode {{ cmd: {cmd}, storage_api_version: {storage}, key: {key:?} }}")
            }
            RawError::InvalidKeyRangeMode { cmd, storage, start, end } => format!(
                "InvalidKeyRangeMode {{ cmd: {cmd}, storage_api_version: {storage}, range: ({start:?}, {end:?}) }}"
            ),
            RawError::InvalidKeyRanges => "Other(\"Invalid KeyRanges\")".to_string(),
            RawError::UnknownChecksumAlgorithm(a) => format!("Other(\"unknown checksum algorithm {a}\")"),
        };
        format!("Error({inner})")
    }
}

/// Upper-case hex, as TiKV's `log_wrappers::hex_encode_upper`.
pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02X}");
    }
    s
}
