//! The raw-KV commands (TiKV `Storage::raw_*`, answered as `kv.rs`
//! `future_raw_*` shapes them). The region checks ran before; these get the
//! region's raw range to clip scans to.

use bytes::Bytes;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};

use super::checksum::crc64_pair;
use super::error::RawError;
use super::mode::{key_size, ModeCheck};
use super::store::{RawCf, RawStore};
use crate::cluster::ApiVersion;
use crate::store::bounds::RawBounds;

/// Everything a raw command needs besides its request.
pub(crate) struct RawCtx<'a> {
    pub(crate) store: &'a RawStore,
    pub(crate) api: ApiVersion,
    /// Unix seconds (raw TTL unit).
    pub(crate) now: u64,
    pub(crate) bounds: &'a RawBounds,
}

impl RawCtx<'_> {
    fn expire_ts(&self, ttl: u64) -> u64 {
        if ttl == 0 {
            0
        } else {
            self.now.saturating_add(ttl)
        }
    }

    fn mode(&self, ctx: Option<&kvrpcpb::Context>, cmd: &'static str) -> ModeCheck {
        ModeCheck::new(self.api, ctx, cmd)
    }
}

/// Runs a raw command; `None` if `req` is not one.
pub(crate) fn handle_raw(ctx: &RawCtx<'_>, req: StoreRequest) -> Option<StoreResponse> {
    Some(match req {
        StoreRequest::RawGet(r) => StoreResponse::RawGet(Box::new(raw_get(ctx, *r))),
        StoreRequest::RawBatchGet(r) => {
            StoreResponse::RawBatchGet(Box::new(raw_batch_get(ctx, *r)))
        }
        StoreRequest::RawPut(r) => StoreResponse::RawPut(Box::new(kvrpcpb::RawPutResponse {
            error: err_string(raw_put(ctx, *r)),
            ..Default::default()
        })),
        StoreRequest::RawBatchPut(r) => {
            StoreResponse::RawBatchPut(Box::new(kvrpcpb::RawBatchPutResponse {
                error: err_string(raw_batch_put(ctx, *r)),
                ..Default::default()
            }))
        }
        StoreRequest::RawDelete(r) => {
            StoreResponse::RawDelete(Box::new(kvrpcpb::RawDeleteResponse {
                error: err_string(raw_delete(ctx, *r)),
                ..Default::default()
            }))
        }
        StoreRequest::RawBatchDelete(r) => {
            StoreResponse::RawBatchDelete(Box::new(kvrpcpb::RawBatchDeleteResponse {
                error: err_string(raw_batch_delete(ctx, *r)),
                ..Default::default()
            }))
        }
        StoreRequest::RawScan(r) => StoreResponse::RawScan(Box::new(kvrpcpb::RawScanResponse {
            kvs: pairs_or_error(raw_scan(ctx, *r)),
            ..Default::default()
        })),
        StoreRequest::RawBatchScan(r) => {
            StoreResponse::RawBatchScan(Box::new(kvrpcpb::RawBatchScanResponse {
                kvs: pairs_or_error(raw_batch_scan(ctx, *r)),
                ..Default::default()
            }))
        }
        StoreRequest::RawDeleteRange(r) => {
            StoreResponse::RawDeleteRange(Box::new(kvrpcpb::RawDeleteRangeResponse {
                error: err_string(raw_delete_range(ctx, *r)),
                ..Default::default()
            }))
        }
        StoreRequest::RawGetKeyTtl(r) => {
            StoreResponse::RawGetKeyTtl(Box::new(raw_get_key_ttl(ctx, *r)))
        }
        StoreRequest::RawCompareAndSwap(r) => {
            StoreResponse::RawCompareAndSwap(Box::new(raw_cas(ctx, *r)))
        }
        StoreRequest::RawChecksum(r) => StoreResponse::RawChecksum(Box::new(raw_checksum(ctx, *r))),
        _ => return None,
    })
}

fn err_string(r: Result<(), RawError>) -> String {
    r.err().map(|e| e.to_string()).unwrap_or_default()
}

/// Scans and batch gets report an error as one pair carrying a key error
/// whose `abort` is TiKV's debug text (`extract_kv_pairs`,
/// `extract_key_error`).
fn pairs_or_error(r: Result<Vec<kvrpcpb::KvPair>, RawError>) -> Vec<kvrpcpb::KvPair> {
    r.unwrap_or_else(|e| {
        vec![kvrpcpb::KvPair {
            error: Some(Box::new(kvrpcpb::KeyError {
                abort: e.tikv_debug(),
                ..Default::default()
            })),
            ..Default::default()
        }]
    })
}

fn pair(key: Bytes, value: Bytes) -> kvrpcpb::KvPair {
    kvrpcpb::KvPair {
        key,
        value,
        ..Default::default()
    }
}

/// `RawGet`: the value, or `not_found` (expired counts as absent).
fn raw_get(ctx: &RawCtx<'_>, r: kvrpcpb::RawGetRequest) -> kvrpcpb::RawGetResponse {
    let mode = ctx.mode(r.context.as_ref(), "raw_get");
    let res = mode
        .keys([r.key.as_ref()])
        .and_then(|_| mode.cf(&r.cf))
        .map(|cf| ctx.store.get(cf, &r.key, ctx.now));
    match res {
        Ok(Some(e)) => kvrpcpb::RawGetResponse {
            value: e.value,
            ..Default::default()
        },
        Ok(None) => kvrpcpb::RawGetResponse {
            not_found: true,
            ..Default::default()
        },
        Err(e) => kvrpcpb::RawGetResponse {
            error: e.to_string(),
            ..Default::default()
        },
    }
}

/// `RawBatchGet`: pairs of existing keys only, in request order.
fn raw_batch_get(ctx: &RawCtx<'_>, r: kvrpcpb::RawBatchGetRequest) -> kvrpcpb::RawBatchGetResponse {
    let mode = ctx.mode(r.context.as_ref(), "raw_batch_get");
    let res = mode
        .keys(r.keys.iter().map(|k| &k[..]))
        .and_then(|_| mode.cf(&r.cf))
        .map(|cf| {
            r.keys
                .into_iter()
                .filter_map(|k| {
                    let e = ctx.store.get(cf, &k, ctx.now)?;
                    Some(pair(k, e.value))
                })
                .collect()
        });
    kvrpcpb::RawBatchGetResponse {
        pairs: pairs_or_error(res),
        ..Default::default()
    }
}

/// The key-size check of the non-atomic raw writes (`check_key_size!` in
/// TiKV `Storage::raw_put` / `raw_batch_put` / `raw_delete` /
/// `raw_batch_delete`). Atomic-mode writes (`for_cas`) go through
/// `raw_batch_put_atomic` / `raw_batch_delete_atomic`, which skip it.
fn unless_atomic<'k>(
    for_cas: bool,
    keys: impl IntoIterator<Item = &'k [u8]>,
) -> Result<(), RawError> {
    if for_cas {
        Ok(())
    } else {
        key_size(keys)
    }
}

fn raw_put(ctx: &RawCtx<'_>, r: kvrpcpb::RawPutRequest) -> Result<(), RawError> {
    let mode = ctx.mode(r.context.as_ref(), "raw_put");
    mode.keys([r.key.as_ref()])?;
    // TiKV `raw_put`: key size, TTL, then column family; `for_cas` goes to
    // `raw_batch_put_atomic` with one TTL: column family, then TTL.
    let cf = if r.for_cas {
        let cf = mode.cf(&r.cf)?;
        check_ttl_valid(&mode, 1, &[r.ttl])?;
        cf
    } else {
        key_size([r.key.as_ref()])?;
        mode.ttl(r.ttl)?;
        mode.cf(&r.cf)?
    };
    let _latch = ctx.store.latch(&r.key);
    ctx.store.put(cf, r.key, r.value, ctx.expire_ts(r.ttl));
    Ok(())
}

/// `RawBatchPut` (TiKV `future_raw_batch_put` → `Storage::raw_batch_put`, or
/// `raw_batch_put_atomic` when `for_cas`). `ttls` empty = no TTL, one = for
/// every pair, else taken as sent; both paths then run `check_ttl_valid`
/// (the atomic one skips only the key-size check). As in TiKV the checks run
/// in the order API version, column family, key size, TTL, and pairs are
/// zipped with their TTLs.
fn raw_batch_put(ctx: &RawCtx<'_>, r: kvrpcpb::RawBatchPutRequest) -> Result<(), RawError> {
    let mode = ctx.mode(r.context.as_ref(), "raw_batch_put");
    mode.keys(r.pairs.iter().map(|p| p.key.as_ref()))?;
    let cf = mode.cf(&r.cf)?;
    unless_atomic(r.for_cas, r.pairs.iter().map(|p| p.key.as_ref()))?;
    let ttls: Vec<u64> = match r.ttls.len() {
        0 => vec![0; r.pairs.len()],
        1 => vec![r.ttls[0]; r.pairs.len()],
        _ => r.ttls.clone(),
    };
    check_ttl_valid(&mode, r.pairs.len(), &ttls)?;
    // `raw_batch_put_requests_to_modifies` zips: with TTL disabled a list of
    // zeros of another length passes the check and bounds what is written.
    for (p, ttl) in r.pairs.into_iter().zip(ttls) {
        let _latch = ctx.store.latch(&p.key);
        ctx.store.put(cf, p.key, p.value, ctx.expire_ts(ttl));
    }
    Ok(())
}

/// TiKV `Storage::check_ttl_valid`: without TTL support any non-zero TTL is
/// `TtlNotEnabled` (whatever the list's length); with it, one TTL per pair
/// (`TtlLenNotEqualsToPairs`).
fn check_ttl_valid(mode: &ModeCheck, key_cnt: usize, ttls: &[u64]) -> Result<(), RawError> {
    if !mode.ttl_enabled() {
        if let Some(&ttl) = ttls.iter().find(|&&t| t != 0) {
            return mode.ttl(ttl);
        }
    } else if ttls.len() != key_cnt {
        return Err(RawError::TtlLenNotEqualsToPairs);
    }
    Ok(())
}

fn raw_delete(ctx: &RawCtx<'_>, r: kvrpcpb::RawDeleteRequest) -> Result<(), RawError> {
    let mode = ctx.mode(r.context.as_ref(), "raw_delete");
    mode.keys([r.key.as_ref()])?;
    unless_atomic(r.for_cas, [r.key.as_ref()])?;
    let cf = mode.cf(&r.cf)?;
    let _latch = ctx.store.latch(&r.key);
    ctx.store.delete(cf, &r.key);
    Ok(())
}

fn raw_batch_delete(ctx: &RawCtx<'_>, r: kvrpcpb::RawBatchDeleteRequest) -> Result<(), RawError> {
    let mode = ctx.mode(r.context.as_ref(), "raw_batch_delete");
    mode.keys(r.keys.iter().map(|k| &k[..]))?;
    unless_atomic(r.for_cas, r.keys.iter().map(|k| &k[..]))?;
    let cf = mode.cf(&r.cf)?;
    for k in &r.keys {
        let _latch = ctx.store.latch(k);
        ctx.store.delete(cf, k);
    }
    Ok(())
}

/// One scan in TiKV's shape: forward `[start, end)`, reverse `[end, start)`
/// descending (`end` empty = the region's edge); clipped to the region.
fn scan_range(
    ctx: &RawCtx<'_>,
    cf: RawCf,
    start: &[u8],
    end: &[u8],
    reverse: bool,
    limit: usize,
    key_only: bool,
) -> Vec<kvrpcpb::KvPair> {
    let (lower, upper) = if reverse { (end, start) } else { (start, end) };
    let (lo, hi) = if reverse && upper.is_empty() {
        // A reverse scan seeks before its upper bound: an empty one finds
        // nothing (TiKV `reverse_raw_scan` from the smallest key).
        return Vec::new();
    } else {
        ctx.bounds.clip(lower, upper)
    };
    ctx.store
        .scan(cf, (lo, hi), reverse, limit, ctx.now, |k| {
            ctx.bounds.contains(k)
        })
        .into_iter()
        .map(|(k, e)| pair(k, if key_only { Bytes::new() } else { e.value }))
        .collect()
}

fn raw_scan(
    ctx: &RawCtx<'_>,
    r: kvrpcpb::RawScanRequest,
) -> Result<Vec<kvrpcpb::KvPair>, RawError> {
    let mode = ctx.mode(r.context.as_ref(), "raw_scan");
    let end = (!r.end_key.is_empty()).then_some(r.end_key.as_ref());
    mode.ranges([(r.start_key.as_ref(), end)])?;
    let cf = mode.cf(&r.cf)?;
    let limit = usize::try_from(r.limit).unwrap_or(usize::MAX);
    Ok(scan_range(
        ctx,
        cf,
        &r.start_key,
        &r.end_key,
        r.reverse,
        limit,
        r.key_only,
    ))
}

/// `RawBatchScan`: each range scanned up to `each_limit`; an empty end
/// means the next range's start (the last: the region's edge); ranges must
/// be ordered in the scan direction ("Invalid KeyRanges").
fn raw_batch_scan(
    ctx: &RawCtx<'_>,
    r: kvrpcpb::RawBatchScanRequest,
) -> Result<Vec<kvrpcpb::KvPair>, RawError> {
    let mode = ctx.mode(r.context.as_ref(), "raw_batch_scan");
    mode.ranges(
        r.ranges
            .iter()
            .map(|x| (x.start_key.as_ref(), Some(x.end_key.as_ref()))),
    )?;
    let cf = mode.cf(&r.cf)?;
    let n = r.ranges.len();
    let end_of = |i: usize| -> &[u8] {
        let end = r.ranges[i].end_key.as_ref();
        if end.is_empty() && i + 1 < n {
            r.ranges[i + 1].start_key.as_ref()
        } else {
            end
        }
    };
    for i in 0..n {
        let (start, end) = (r.ranges[i].start_key.as_ref(), end_of(i));
        if !end.is_empty() && ((!r.reverse && start >= end) || (r.reverse && start <= end)) {
            return Err(RawError::InvalidKeyRanges);
        }
    }
    let limit = usize::try_from(r.each_limit).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for i in 0..n {
        out.extend(scan_range(
            ctx,
            cf,
            &r.ranges[i].start_key,
            end_of(i),
            r.reverse,
            limit,
            r.key_only,
        ));
    }
    Ok(out)
}

fn raw_delete_range(ctx: &RawCtx<'_>, r: kvrpcpb::RawDeleteRangeRequest) -> Result<(), RawError> {
    let mode = ctx.mode(r.context.as_ref(), "raw_delete_range");
    mode.ranges([(r.start_key.as_ref(), Some(r.end_key.as_ref()))])?;
    key_size([r.start_key.as_ref(), r.end_key.as_ref()])?;
    let cf = mode.cf(&r.cf)?;
    let (lo, hi) = ctx.bounds.clip(&r.start_key, &r.end_key);
    ctx.store
        .delete_range(cf, lo, hi, |k| ctx.bounds.contains(k));
    Ok(())
}

/// `RawGetKeyTTL`: seconds left, 0 without TTL, `not_found` when absent.
fn raw_get_key_ttl(
    ctx: &RawCtx<'_>,
    r: kvrpcpb::RawGetKeyTtlRequest,
) -> kvrpcpb::RawGetKeyTtlResponse {
    let mode = ctx.mode(r.context.as_ref(), "raw_get_key_ttl");
    let res = mode
        .keys([r.key.as_ref()])
        .and_then(|_| {
            if ctx.api.ttl_enabled() {
                Ok(())
            } else {
                Err(RawError::TtlNotEnabledForGet)
            }
        })
        .and_then(|_| mode.cf(&r.cf))
        .map(|cf| ctx.store.get(cf, &r.key, ctx.now));
    match res {
        Ok(Some(e)) => kvrpcpb::RawGetKeyTtlResponse {
            ttl: if e.expire_ts == 0 {
                0
            } else {
                e.expire_ts.saturating_sub(ctx.now)
            },
            ..Default::default()
        },
        Ok(None) => kvrpcpb::RawGetKeyTtlResponse {
            not_found: true,
            ..Default::default()
        },
        Err(e) => kvrpcpb::RawGetKeyTtlResponse {
            error: e.to_string(),
            ..Default::default()
        },
    }
}

/// `RawCompareAndSwap`: no key-size check (TiKV
/// `Storage::raw_compare_and_swap_atomic` never calls `check_key_size!`);
/// succeed iff the current value (None if absent or
/// expired) equals `previous_not_exist ? None : Some(previous_value)`; then
/// delete (`delete`) or put `value` with `ttl`. Atomic under the key latch.
fn raw_cas(ctx: &RawCtx<'_>, r: kvrpcpb::RawCasRequest) -> kvrpcpb::RawCasResponse {
    let mode = ctx.mode(r.context.as_ref(), "raw_compare_and_swap");
    let checked = mode
        .keys([r.key.as_ref()])
        .and_then(|_| mode.ttl(r.ttl))
        .and_then(|_| mode.cf(&r.cf));
    let cf = match checked {
        Ok(cf) => cf,
        Err(e) => {
            return kvrpcpb::RawCasResponse {
                error: e.to_string(),
                ..Default::default()
            }
        }
    };
    let _latch = ctx.store.latch(&r.key);
    let current = ctx.store.get(cf, &r.key, ctx.now).map(|e| e.value);
    let expected = (!r.previous_not_exist).then_some(&r.previous_value);
    let succeed = current.as_ref() == expected;
    if succeed {
        if r.delete {
            ctx.store.delete(cf, &r.key);
        } else {
            ctx.store
                .put(cf, r.key.clone(), r.value, ctx.expire_ts(r.ttl));
        }
    }
    kvrpcpb::RawCasResponse {
        succeed,
        previous_not_exist: current.is_none(),
        previous_value: current.unwrap_or_default(),
        ..Default::default()
    }
}

/// `RawChecksum`: xor of CRC-64/XZ over `key ‖ value` of every live pair in
/// the ranges (clipped to the region), with counts.
fn raw_checksum(ctx: &RawCtx<'_>, r: kvrpcpb::RawChecksumRequest) -> kvrpcpb::RawChecksumResponse {
    let mode = ctx.mode(r.context.as_ref(), "raw_checksum");
    let checked = mode
        .ranges(
            r.ranges
                .iter()
                .map(|x| (x.start_key.as_ref(), Some(x.end_key.as_ref()))),
        )
        .and_then(|()| check_algorithm(r.algorithm));
    if let Err(e) = checked {
        return kvrpcpb::RawChecksumResponse {
            error: e.to_string(),
            ..Default::default()
        };
    }
    let mut resp = kvrpcpb::RawChecksumResponse::default();
    for range in &r.ranges {
        let (lo, hi) = ctx.bounds.clip(&range.start_key, &range.end_key);
        for (k, e) in ctx
            .store
            .scan(RawCf::Default, (lo, hi), false, usize::MAX, ctx.now, |k| {
                ctx.bounds.contains(k)
            })
        {
            resp.checksum ^= crc64_pair(&k, &e.value);
            resp.total_kvs += 1;
            resp.total_bytes += (k.len() + e.value.len()) as u64;
        }
    }
    resp
}

fn check_algorithm(algorithm: i32) -> Result<(), RawError> {
    if algorithm == kvrpcpb::ChecksumAlgorithm::Crc64Xor as i32 {
        Ok(())
    } else {
        Err(RawError::UnknownChecksumAlgorithm(algorithm))
    }
}
