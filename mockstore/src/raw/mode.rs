//! Request checks shared by the raw commands: API version and key mode
//! (TiKV `Storage::check_api_version` / `check_api_version_ranges`), column
//! family (`Storage::rawkv_cf`), key size (`check_key_size!`) and TTL
//! (`F::IS_TTL_ENABLED`).

use tikv_tower_proto::kvrpcpb;

use super::error::{hex_upper, RawError, MAX_KEY_SIZE};
use super::store::RawCf;
use crate::cluster::ApiVersion;
use crate::codec::RAW_MODE_PREFIX;

/// The storage API version as TiKV names it in mode errors.
pub(crate) fn version_name(v: ApiVersion) -> &'static str {
    match v {
        ApiVersion::V1 => "V1",
        ApiVersion::V1Ttl => "V1ttl",
        ApiVersion::V2 => "V2",
    }
}

/// A request's `Context.api_version` as TiKV names it in mode errors.
pub(crate) fn request_version_name(v: i32) -> &'static str {
    match v {
        0 => "V1",
        1 => "V1ttl",
        2 => "V2",
        3 => "V3",
        _ => "Unknown",
    }
}

/// The raw-command checks for one request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ModeCheck {
    pub(crate) storage: ApiVersion,
    pub(crate) request: i32,
    pub(crate) cmd: &'static str,
}

impl ModeCheck {
    /// For `cmd` (TiKV `CommandKind` name) under `ctx`.
    pub(crate) fn new(
        storage: ApiVersion,
        ctx: Option<&kvrpcpb::Context>,
        cmd: &'static str,
    ) -> Self {
        ModeCheck {
            storage,
            request: ctx.map_or(0, |c| c.api_version),
            cmd,
        }
    }

    fn versions_ok(&self) -> Result<bool, RawError> {
        match (self.storage, self.request) {
            (ApiVersion::V1, 0) | (ApiVersion::V1Ttl, 0) => Ok(false),
            (ApiVersion::V2, 2) => Ok(true),
            _ => Err(RawError::ApiVersionNotMatched {
                cmd: self.cmd,
                storage: version_name(self.storage),
                request: request_version_name(self.request),
            }),
        }
    }

    /// Checks the API version and, in V2, that every key is a raw-mode key.
    pub(crate) fn keys<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k [u8]>,
    ) -> Result<(), RawError> {
        if !self.versions_ok()? {
            return Ok(());
        }
        for key in keys {
            if key.first() != Some(&RAW_MODE_PREFIX) {
                return Err(RawError::InvalidKeyMode {
                    cmd: self.cmd,
                    storage: version_name(self.storage),
                    key: hex_upper(key),
                });
            }
        }
        Ok(())
    }

    /// Checks the API version and, in V2, that every range lies in the raw
    /// mode (TiKV `ApiV2::parse_range_mode`: both ends non-empty with the same
    /// mode byte, or the end is the byte after the mode).
    pub(crate) fn ranges<'k>(
        &self,
        ranges: impl IntoIterator<Item = (&'k [u8], Option<&'k [u8]>)>,
    ) -> Result<(), RawError> {
        if !self.versions_ok()? {
            return Ok(());
        }
        for (start, end) in ranges {
            let ok = match end {
                Some(end) if !start.is_empty() && !end.is_empty() => {
                    (start[0] == end[0] || end == [start[0].wrapping_add(1)])
                        && start[0] == RAW_MODE_PREFIX
                }
                _ => false,
            };
            if !ok {
                return Err(RawError::InvalidKeyRangeMode {
                    cmd: self.cmd,
                    storage: version_name(self.storage),
                    start: Some(hex_upper(start)),
                    end: end.map(hex_upper),
                });
            }
        }
        Ok(())
    }

    /// The column family named `cf` (TiKV `rawkv_cf`).
    pub(crate) fn cf(&self, cf: &str) -> Result<RawCf, RawError> {
        match self.storage {
            ApiVersion::V2 if cf.is_empty() => Ok(RawCf::Default),
            ApiVersion::V2 => Err(RawError::CfDeprecated(cf.to_owned())),
            _ => match cf {
                "" | "default" => Ok(RawCf::Default),
                "lock" => Ok(RawCf::Lock),
                "write" => Ok(RawCf::Write),
                other => Err(RawError::InvalidCf(other.to_owned())),
            },
        }
    }

    /// Whether the storage keeps TTLs (TiKV `F::IS_TTL_ENABLED`).
    pub(crate) fn ttl_enabled(&self) -> bool {
        self.storage.ttl_enabled()
    }

    /// TTL is accepted only when the storage enables it.
    pub(crate) fn ttl(&self, ttl: u64) -> Result<(), RawError> {
        if ttl != 0 && !self.storage.ttl_enabled() {
            return Err(RawError::TtlNotEnabled);
        }
        Ok(())
    }
}

/// Every key must be at most [`MAX_KEY_SIZE`] bytes.
pub(crate) fn key_size<'k>(keys: impl IntoIterator<Item = &'k [u8]>) -> Result<(), RawError> {
    for k in keys {
        if k.len() > MAX_KEY_SIZE {
            return Err(RawError::KeyTooLarge {
                size: k.len(),
                limit: MAX_KEY_SIZE,
            });
        }
    }
    Ok(())
}
