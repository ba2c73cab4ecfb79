//! The API-version / key-mode check of transactional commands (TiKV
//! `Storage::check_api_version`, spec §2.6), which is not a region error: a
//! failing command answers a `KeyError` whose `abort` is TiKV's debug text
//! of the storage error.
//!
//! TiKV checks only the commands that read or lock keys: `KvGet`,
//! `KvBatchGet`, `KvScan` (its range), `KvPrewrite`, `KvFlush`,
//! `KvPessimisticLock`. Rules: V1 storage takes V1 requests; V1TTL storage
//! takes no transactional request; V2 storage takes V2 requests on `x` keys
//! and, for compatibility, V1 requests on TiDB keys (`m`, `t`).

use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};

use crate::cluster::ApiVersion;
use crate::codec::TXN_MODE_PREFIX;
use crate::raw::error::hex_upper;
use crate::raw::mode::{request_version_name, version_name};

/// Which keys the request's API version lets through on V2 storage.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Allowed {
    Any,
    Txn,
    Tidb,
}

/// A scan's `(start, end)`.
type KeyRange<'a> = (&'a [u8], &'a [u8]);

fn key_ok(allowed: Allowed, key: &[u8]) -> bool {
    match allowed {
        Allowed::Any => true,
        Allowed::Txn => key.first() == Some(&TXN_MODE_PREFIX),
        Allowed::Tidb => matches!(key.first(), Some(b'm') | Some(b't')),
    }
}

/// The error response of `req` if its API version or key mode is refused.
pub(crate) fn check_txn_api(storage: ApiVersion, req: &StoreRequest) -> Option<StoreResponse> {
    let (cmd, keys, range): (&str, Vec<&[u8]>, Option<KeyRange<'_>>) = match req {
        StoreRequest::Get(r) => ("get", vec![&r.key], None),
        StoreRequest::BatchGet(r) => ("batch_get", r.keys.iter().map(|k| &k[..]).collect(), None),
        StoreRequest::Scan(r) => ("scan", Vec::new(), Some((&r.start_key, &r.end_key))),
        StoreRequest::Prewrite(r) => (
            "prewrite",
            r.mutations.iter().map(|m| m.key.as_ref()).collect(),
            None,
        ),
        StoreRequest::Flush(r) => (
            "flush",
            r.mutations.iter().map(|m| m.key.as_ref()).collect(),
            None,
        ),
        StoreRequest::PessimisticLock(r) => (
            "acquire_pessimistic_lock",
            r.mutations.iter().map(|m| m.key.as_ref()).collect(),
            None,
        ),
        _ => return None,
    };
    let request = req.context().map_or(0, |c| c.api_version);
    let allowed = match (storage, request) {
        (ApiVersion::V1, 0) => Allowed::Any,
        (ApiVersion::V2, 0) => Allowed::Tidb,
        (ApiVersion::V2, 2) => Allowed::Txn,
        _ => {
            return Some(abort(
                req,
                format!(
                    "Error(ApiVersionNotMatched {{ cmd: {cmd}, storage_api_version: {}, req_api_version: {} }})",
                    version_name(storage),
                    request_version_name(request)
                ),
            ))
        }
    };
    if allowed == Allowed::Any {
        return None;
    }
    if let Some(bad) = keys.iter().find(|k| !key_ok(allowed, k)) {
        return Some(abort(
            req,
            format!(
                "Error(InvalidKeyMode {{ cmd: {cmd}, storage_api_version: {}, key: \"{}\" }})",
                version_name(storage),
                hex_upper(bad)
            ),
        ));
    }
    if let Some((start, end)) = range {
        // TiKV `parse_range_mode`: both ends non-empty, same mode byte (or
        // the end is the byte after the mode).
        let ok = !start.is_empty()
            && !end.is_empty()
            && (start[0] == end[0] || end == [start[0].wrapping_add(1)])
            && key_ok(allowed, start);
        if !ok {
            let end_text = if end.is_empty() {
                "None".to_string()
            } else {
                format!("Some(\"{}\")", hex_upper(end))
            };
            return Some(abort(
                req,
                format!(
                    "Error(InvalidKeyRangeMode {{ cmd: {cmd}, storage_api_version: {}, range: (Some(\"{}\"), {end_text}) }})",
                    version_name(storage),
                    hex_upper(start)
                ),
            ));
        }
    }
    None
}

fn abort(req: &StoreRequest, text: String) -> StoreResponse {
    let err = kvrpcpb::KeyError {
        abort: text,
        ..Default::default()
    };
    let mut resp = StoreResponse::default_for(req.kind());
    match &mut resp {
        StoreResponse::Get(r) => r.error = Some(err),
        StoreResponse::BatchGet(r) => r.error = Some(err),
        StoreResponse::Scan(r) => r.error = Some(err),
        StoreResponse::Prewrite(r) => r.errors = vec![err],
        StoreResponse::Flush(r) => r.errors = vec![err],
        StoreResponse::PessimisticLock(r) => r.errors = vec![err],
        _ => {}
    }
    resp
}
