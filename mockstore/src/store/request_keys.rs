//! Which keys of a request must lie in the addressed region, and how large a
//! write it makes.
//!
//! TiKV checks every key a command writes (`check_key_in_region` on apply)
//! and every seek a read makes (`RegionIterator::should_seekable`): point keys
//! must be in `[start, end)`; a forward scan's start must be in `[start,
//! end)`; a reverse scan seeks *before* its (exclusive) upper bound, so that
//! bound may equal the region end (`check_key_in_region_inclusive`). Scan
//! ends are clipped to the region, not checked.

use tikv_tower_proto::rpc::StoreRequest;

/// One key to check against the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyCheck<'a> {
    /// A point key or a forward seek: must be in `[start, end)`.
    Point(&'a [u8]),
    /// A range's exclusive end (delete range): must be in `[start, end]`;
    /// empty means +∞, accepted only by the last region.
    UpperBound(&'a [u8]),
    /// A reverse scan's exclusive upper bound, sought backwards
    /// (`seek_for_prev`): must be in `[start, end]`; taken literally.
    PrevSeek(&'a [u8]),
}

/// The keys of `req` to check, in request order.
pub(crate) fn request_keys(req: &StoreRequest) -> Vec<KeyCheck<'_>> {
    use KeyCheck::{Point, UpperBound};
    match req {
        StoreRequest::Get(r) => vec![Point(&r.key)],
        StoreRequest::BatchGet(r) => r.keys.iter().map(|k| Point(k)).collect(),
        StoreRequest::BufferBatchGet(r) => r.keys.iter().map(|k| Point(k)).collect(),
        StoreRequest::Scan(r) => vec![scan_start(&r.start_key, r.reverse)],
        StoreRequest::Prewrite(r) => r.mutations.iter().map(|m| Point(&m.key)).collect(),
        StoreRequest::Flush(r) => r.mutations.iter().map(|m| Point(&m.key)).collect(),
        StoreRequest::PessimisticLock(r) => r.mutations.iter().map(|m| Point(&m.key)).collect(),
        StoreRequest::Commit(r) => r.keys.iter().map(|k| Point(k)).collect(),
        StoreRequest::Cleanup(r) => vec![Point(&r.key)],
        StoreRequest::BatchRollback(r) => r.keys.iter().map(|k| Point(k)).collect(),
        StoreRequest::PessimisticRollback(r) => r.keys.iter().map(|k| Point(k)).collect(),
        StoreRequest::TxnHeartBeat(r) => vec![Point(&r.primary_lock)],
        StoreRequest::CheckTxnStatus(r) => vec![Point(&r.primary_key)],
        StoreRequest::CheckSecondaryLocks(r) => r.keys.iter().map(|k| Point(k)).collect(),
        StoreRequest::ResolveLock(r) => r.keys.iter().map(|k| Point(k)).collect(),
        // An empty ScanLock start means "from the region start" (GC sends
        // it for the first range); only a given start is sought.
        StoreRequest::ScanLock(r) if r.start_key.is_empty() => Vec::new(),
        StoreRequest::ScanLock(r) => vec![Point(&r.start_key)],
        StoreRequest::DeleteRange(r) => vec![Point(&r.start_key), UpperBound(&r.end_key)],
        StoreRequest::Gc(_) => Vec::new(),
        StoreRequest::RawGet(r) => vec![Point(&r.key)],
        StoreRequest::RawBatchGet(r) => r.keys.iter().map(|k| Point(k)).collect(),
        StoreRequest::RawPut(r) => vec![Point(&r.key)],
        StoreRequest::RawBatchPut(r) => r.pairs.iter().map(|p| Point(&p.key)).collect(),
        StoreRequest::RawDelete(r) => vec![Point(&r.key)],
        StoreRequest::RawBatchDelete(r) => r.keys.iter().map(|k| Point(k)).collect(),
        StoreRequest::RawScan(r) => vec![scan_start(&r.start_key, r.reverse)],
        StoreRequest::RawBatchScan(r) => r
            .ranges
            .iter()
            .map(|range| scan_start(&range.start_key, r.reverse))
            .collect(),
        StoreRequest::RawDeleteRange(r) => vec![Point(&r.start_key), UpperBound(&r.end_key)],
        StoreRequest::RawGetKeyTtl(r) => vec![Point(&r.key)],
        StoreRequest::RawCompareAndSwap(r) => vec![Point(&r.key)],
        StoreRequest::RawChecksum(r) => r
            .ranges
            .iter()
            .map(|range| Point(&range.start_key))
            .collect(),
        StoreRequest::MvccGetByKey(r) => vec![Point(&r.key)],
        StoreRequest::MvccGetByStartTs(_)
        | StoreRequest::SplitRegion(_)
        | StoreRequest::UnsafeDestroyRange(_)
        | StoreRequest::StoreSafeTs(_) => Vec::new(),
    }
}

fn scan_start(start: &[u8], reverse: bool) -> KeyCheck<'_> {
    if reverse {
        KeyCheck::PrevSeek(start)
    } else {
        KeyCheck::Point(start)
    }
}

/// The size of the raft entry a write request would propose (its encoded
/// length), or 0 for reads and store-level commands.
pub(crate) fn write_size(req: &StoreRequest) -> u64 {
    use prost::Message;
    let len = match req {
        StoreRequest::Prewrite(r) => r.encoded_len(),
        StoreRequest::Flush(r) => r.encoded_len(),
        StoreRequest::PessimisticLock(r) => r.encoded_len(),
        StoreRequest::Commit(r) => r.encoded_len(),
        StoreRequest::BatchRollback(r) => r.encoded_len(),
        StoreRequest::PessimisticRollback(r) => r.encoded_len(),
        StoreRequest::ResolveLock(r) => r.encoded_len(),
        StoreRequest::RawPut(r) => r.encoded_len(),
        StoreRequest::RawBatchPut(r) => r.encoded_len(),
        StoreRequest::RawDelete(r) => r.encoded_len(),
        StoreRequest::RawBatchDelete(r) => r.encoded_len(),
        StoreRequest::RawCompareAndSwap(r) => r.encoded_len(),
        _ => 0,
    };
    u64::try_from(len).unwrap_or(u64::MAX)
}
