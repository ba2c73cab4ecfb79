//! How each kvrpcpb request kind is split by region and how its replies are merged.
//!
//! [`Shardable`] is implemented for every request message that carries keys (batch
//! kinds: split by item, any order) or a range (scans and delete-range: narrowed to a
//! region's part of the range); [`Mergeable`] for their responses (item replies are put
//! back in request order; scans concatenate in visiting order; scalar errors keep the
//! first). The free functions dispatch over [`StoreRequest`] / [`StoreResponse`].
//!
//! client-go counterpart: the per-command `GroupKeysByRegion` / batch builders of
//! `rawkv` and `txnkv` (e.g. `appendBatchMutationsBySize`, `sendBatchReq`) and the scan
//! loops of `rawkv.Scan` / `txnsnapshot.Scanner`.
//!
//! # Example
//!
//! ```
//! use tikv_tower_layers::shard::kinds::Shardable;
//! use tikv_tower_proto::kvrpcpb::BatchGetRequest;
//!
//! let mut req = BatchGetRequest {
//!     keys: vec!["c".into(), "a".into(), "b".into()],
//!     version: 7,
//!     ..Default::default()
//! };
//! assert_eq!(req.keys().unwrap(), vec![&b"c"[..], b"a", b"b"]);
//! // The non-item fields once (the keys are not copied) ...
//! let header = req.header().unwrap();
//! assert!(header.keys.is_empty());
//! // ... then each part: the header plus its own keys only.
//! let part = req.select(&header, &[1, 2]).unwrap();
//! assert_eq!(part.keys, vec!["a", "b"]);
//! assert_eq!(part.version, 7);
//! ```
//!
//! # Cost of a split
//!
//! A batch of N items over R regions is split with O(N) copying plus one header per
//! region: [`Shardable::header`] takes the item lists out of the request, clones what is
//! left and puts the lists back, and [`Shardable::select`] clones that header and exactly
//! the part's own items. (Cloning the whole request per part and then replacing its
//! list would copy every key and value R times.) Each item is still copied once per part
//! that carries it: the original request is kept whole until its reply is merged, since a
//! part that went stale is re-split from it and the merge orders replies by its keys.

use std::collections::HashMap;

use bytes::Bytes;

use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};

use crate::error::Error;
use crate::request::{KeyRange, Target};

/// A request that can be split by region.
pub trait Shardable: Sized {
    /// The routing keys, in request order (batch kinds).
    fn keys(&self) -> Option<Vec<&[u8]>> {
        None
    }
    /// The routing key of the item at position `i` (`None` past the end, or for kinds
    /// not split by key): one entry of [`keys`](Self::keys) without building the list.
    fn key(&self, _i: usize) -> Option<&[u8]> {
        None
    }
    /// How many items the request carries (`None` for kinds not split by key): the
    /// length of [`keys`](Self::keys) without building the list.
    fn key_count(&self) -> Option<usize> {
        self.keys().map(|k| k.len())
    }
    /// The request without its items: every field but the per-item lists (keys,
    /// mutations, pairs and the lists aligned with them) is copied, the lists of the copy
    /// are empty. The lists are taken out of `self` while cloning and put back, so their
    /// contents are not copied. `None` for kinds not split by key.
    fn header(&mut self) -> Option<Self> {
        None
    }
    /// The part holding only the items at `idx` (positions into [`keys`](Self::keys)),
    /// in `idx` order: a clone of `header` (from [`header`](Self::header)) with clones of
    /// exactly those items. Lists aligned with the items (e.g. TTLs, pessimistic
    /// actions) are picked alongside when they have one entry per item and carried whole
    /// otherwise, as the unsplit request had them.
    fn select(&self, _header: &Self, _idx: &[usize]) -> Option<Self> {
        None
    }
    /// The addressed range (range kinds).
    fn range(&self) -> Option<KeyRange> {
        None
    }
    /// A copy restricted to `[start, end)` with at most `limit` results.
    fn narrow(&self, _start: &Bytes, _end: &Bytes, _limit: Option<u32>) -> Option<Self> {
        None
    }
}

/// A response that can be merged from parts.
pub trait Mergeable: Sized + Default {
    /// Merge part replies. `parts` pairs each reply with the request positions its part
    /// carried (empty for range parts, which arrive in key-visiting order); `keys` are
    /// the whole request's keys (empty for range kinds).
    fn merge_parts(parts: Vec<(Vec<usize>, Self)>, keys: &[&[u8]]) -> Self;
    /// Results in this reply (limit accounting for scans).
    fn count(&self) -> usize {
        0
    }
}

/// Clones of the items of `v` at `idx`, in `idx` order (out-of-range positions skipped).
fn pick<T: Clone>(v: &[T], idx: &[usize]) -> Vec<T> {
    let mut out = Vec::with_capacity(idx.len());
    out.extend(idx.iter().filter_map(|&i| v.get(i).cloned()));
    out
}

/// A copy of `req` with the lists `take` empties (and `put` restores) left out: the lists
/// are moved out for the clone and moved back, so only the rest is copied.
fn header_of<R: Clone, L>(
    req: &mut R,
    take: impl FnOnce(&mut R) -> L,
    put: impl FnOnce(&mut R, L),
) -> R {
    let lists = take(req);
    let header = req.clone();
    put(req, lists);
    header
}

/// Folds part replies into one, starting from the default reply.
fn fold<R: Default>(parts: Vec<(Vec<usize>, R)>, mut add: impl FnMut(&mut R, R)) -> R {
    let mut out = R::default();
    for (_, p) in parts {
        add(&mut out, p);
    }
    out
}

fn first_some<T>(slot: &mut Option<T>, v: Option<T>) {
    if slot.is_none() {
        *slot = v;
    }
}

fn first_nonempty(slot: &mut String, v: String) {
    if slot.is_empty() {
        *slot = v;
    }
}

/// Sort key-carrying items into request order.
fn order_by_keys<T>(items: &mut [T], keys: &[&[u8]], key_of: impl Fn(&T) -> &[u8]) {
    let mut pos: HashMap<&[u8], usize> = HashMap::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        pos.entry(*k).or_insert(i);
    }
    items.sort_by_key(|it| pos.get(key_of(it)).copied().unwrap_or(usize::MAX));
}

/// Place positional per-item values of the parts at their request positions (moved, not
/// copied).
fn scatter<T: Default>(parts: Vec<(Vec<usize>, Vec<T>)>, total: usize) -> Vec<T> {
    if parts
        .iter()
        .all(|(idx, v)| v.is_empty() || idx.len() != v.len())
    {
        // Not positional (e.g. values not requested): concatenate.
        return parts.into_iter().flat_map(|(_, v)| v).collect();
    }
    let mut out = Vec::with_capacity(total);
    out.resize_with(total, T::default);
    for (idx, vals) in parts {
        if idx.len() == vals.len() {
            for (i, v) in idx.into_iter().zip(vals) {
                if let Some(slot) = out.get_mut(i) {
                    *slot = v;
                }
            }
        }
    }
    out
}

/// A request sharded by one list field: of keys, or of items whose `.key` is the key.
macro_rules! keyed_request {
    ($ty:ty, $field:ident) => {
        keyed_request!($ty, $field, |k| &k[..]);
    };
    ($ty:ty, $field:ident, |$item:ident| $key:expr) => {
        impl Shardable for $ty {
            fn keys(&self) -> Option<Vec<&[u8]>> {
                Some(self.$field.iter().map(|$item| $key).collect())
            }
            fn key(&self, i: usize) -> Option<&[u8]> {
                self.$field.get(i).map(|$item| $key)
            }
            fn key_count(&self) -> Option<usize> {
                Some(self.$field.len())
            }
            fn header(&mut self) -> Option<Self> {
                Some(header_of(
                    self,
                    |r| std::mem::take(&mut r.$field),
                    |r, items| r.$field = items,
                ))
            }
            fn select(&self, header: &Self, idx: &[usize]) -> Option<Self> {
                let mut part = header.clone();
                part.$field = pick(&self.$field, idx);
                Some(part)
            }
        }
    };
}

keyed_request!(kvrpcpb::BatchGetRequest, keys);
keyed_request!(kvrpcpb::BufferBatchGetRequest, keys);
keyed_request!(kvrpcpb::CommitRequest, keys);
keyed_request!(kvrpcpb::BatchRollbackRequest, keys);
keyed_request!(kvrpcpb::PessimisticRollbackRequest, keys);
keyed_request!(kvrpcpb::CheckSecondaryLocksRequest, keys);
keyed_request!(kvrpcpb::ResolveLockRequest, keys);
keyed_request!(kvrpcpb::RawBatchGetRequest, keys);
keyed_request!(kvrpcpb::RawBatchDeleteRequest, keys);
keyed_request!(kvrpcpb::PessimisticLockRequest, mutations, |m| &m.key[..]);
keyed_request!(kvrpcpb::FlushRequest, mutations, |m| &m.key[..]);

impl Shardable for kvrpcpb::PrewriteRequest {
    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(self.mutations.iter().map(|m| &m.key[..]).collect())
    }
    fn key(&self, i: usize) -> Option<&[u8]> {
        self.mutations.get(i).map(|m| &m.key[..])
    }
    fn key_count(&self) -> Option<usize> {
        Some(self.mutations.len())
    }
    fn header(&mut self) -> Option<Self> {
        Some(header_of(
            self,
            |r| {
                (
                    std::mem::take(&mut r.mutations),
                    std::mem::take(&mut r.pessimistic_actions),
                    std::mem::take(&mut r.for_update_ts_constraints),
                )
            },
            |r, (mutations, actions, constraints)| {
                r.mutations = mutations;
                r.pessimistic_actions = actions;
                r.for_update_ts_constraints = constraints;
            },
        ))
    }
    fn select(&self, header: &Self, idx: &[usize]) -> Option<Self> {
        let mut part = header.clone();
        part.mutations = pick(&self.mutations, idx);
        part.pessimistic_actions = if self.pessimistic_actions.len() == self.mutations.len() {
            pick(&self.pessimistic_actions, idx)
        } else {
            self.pessimistic_actions.clone()
        };
        // Constraints refer to mutation positions: keep those in the part, renumbered to
        // the first place the position takes in the part.
        if !self.for_update_ts_constraints.is_empty() {
            let mut new_pos: HashMap<usize, u32> = HashMap::with_capacity(idx.len());
            for (new, &i) in idx.iter().enumerate() {
                new_pos.entry(i).or_insert(new as u32);
            }
            part.for_update_ts_constraints = self
                .for_update_ts_constraints
                .iter()
                .filter_map(|c| {
                    new_pos.get(&(c.index as usize)).map(|&new| {
                        let mut c = *c;
                        c.index = new;
                        c
                    })
                })
                .collect();
        }
        Some(part)
    }
}

impl Shardable for kvrpcpb::RawBatchPutRequest {
    fn keys(&self) -> Option<Vec<&[u8]>> {
        Some(self.pairs.iter().map(|p| &p.key[..]).collect())
    }
    fn key(&self, i: usize) -> Option<&[u8]> {
        self.pairs.get(i).map(|p| &p.key[..])
    }
    fn key_count(&self) -> Option<usize> {
        Some(self.pairs.len())
    }
    fn header(&mut self) -> Option<Self> {
        Some(header_of(
            self,
            |r| (std::mem::take(&mut r.pairs), std::mem::take(&mut r.ttls)),
            |r, (pairs, ttls)| {
                r.pairs = pairs;
                r.ttls = ttls;
            },
        ))
    }
    fn select(&self, header: &Self, idx: &[usize]) -> Option<Self> {
        let mut part = header.clone();
        part.pairs = pick(&self.pairs, idx);
        part.ttls = if self.ttls.len() == self.pairs.len() {
            pick(&self.ttls, idx)
        } else {
            self.ttls.clone()
        };
        Some(part)
    }
}

/// Scans keep the upper bound in `start_key` when reversed.
macro_rules! scan_request {
    ($ty:ty) => {
        impl Shardable for $ty {
            fn range(&self) -> Option<KeyRange> {
                let (start, end) = if self.reverse {
                    (self.end_key.clone(), self.start_key.clone())
                } else {
                    (self.start_key.clone(), self.end_key.clone())
                };
                Some(KeyRange {
                    start,
                    end,
                    reverse: self.reverse,
                    limit: Some(self.limit),
                })
            }
            fn narrow(&self, start: &Bytes, end: &Bytes, limit: Option<u32>) -> Option<Self> {
                let mut part = self.clone();
                if self.reverse {
                    part.start_key = end.clone();
                    part.end_key = start.clone();
                } else {
                    part.start_key = start.clone();
                    part.end_key = end.clone();
                }
                if let Some(l) = limit {
                    part.limit = l;
                }
                Some(part)
            }
        }
    };
}

scan_request!(kvrpcpb::ScanRequest);
scan_request!(kvrpcpb::RawScanRequest);

impl Shardable for kvrpcpb::ScanLockRequest {
    fn range(&self) -> Option<KeyRange> {
        Some(KeyRange {
            start: self.start_key.clone(),
            end: self.end_key.clone(),
            reverse: false,
            limit: (self.limit != 0).then_some(self.limit),
        })
    }
    fn narrow(&self, start: &Bytes, end: &Bytes, limit: Option<u32>) -> Option<Self> {
        let mut part = self.clone();
        part.start_key = start.clone();
        part.end_key = end.clone();
        part.limit = limit.unwrap_or(0);
        Some(part)
    }
}

macro_rules! range_request {
    ($ty:ty) => {
        impl Shardable for $ty {
            fn range(&self) -> Option<KeyRange> {
                Some(KeyRange::new(self.start_key.clone(), self.end_key.clone()))
            }
            fn narrow(&self, start: &Bytes, end: &Bytes, _limit: Option<u32>) -> Option<Self> {
                let mut part = self.clone();
                part.start_key = start.clone();
                part.end_key = end.clone();
                Some(part)
            }
        }
    };
}

/// Raw checksum over one range (client-go `RawKVClient.Checksum`); several ranges are
/// not split.
impl Shardable for kvrpcpb::RawChecksumRequest {
    fn range(&self) -> Option<KeyRange> {
        match self.ranges.as_slice() {
            [r] => Some(KeyRange::new(r.start_key.clone(), r.end_key.clone())),
            _ => None,
        }
    }
    fn narrow(&self, start: &Bytes, end: &Bytes, _limit: Option<u32>) -> Option<Self> {
        let mut part = self.clone();
        part.ranges = vec![kvrpcpb::KeyRange {
            start_key: start.clone(),
            end_key: end.clone(),
        }];
        Some(part)
    }
}

impl Mergeable for kvrpcpb::RawChecksumResponse {
    /// Checksums are CRC64-XOR over pairs: parts combine by XOR, counts add.
    fn merge_parts(parts: Vec<(Vec<usize>, Self)>, _keys: &[&[u8]]) -> Self {
        fold(parts, |out, p| {
            first_nonempty(&mut out.error, p.error);
            out.checksum ^= p.checksum;
            out.total_kvs += p.total_kvs;
            out.total_bytes += p.total_bytes;
        })
    }
}

range_request!(kvrpcpb::DeleteRangeRequest);
range_request!(kvrpcpb::RawDeleteRangeRequest);

// ---- responses ----

macro_rules! batch_get_response {
    ($ty:ty) => {
        impl Mergeable for $ty {
            fn merge_parts(parts: Vec<(Vec<usize>, Self)>, keys: &[&[u8]]) -> Self {
                let mut out = fold(parts, |out, p| {
                    out.pairs.extend(p.pairs);
                    first_some(&mut out.error, p.error);
                    first_some(&mut out.exec_details_v2, p.exec_details_v2);
                });
                order_by_keys(&mut out.pairs, keys, |p| &p.key);
                out
            }
            fn count(&self) -> usize {
                self.pairs.len()
            }
        }
    };
}

batch_get_response!(kvrpcpb::BatchGetResponse);
batch_get_response!(kvrpcpb::BufferBatchGetResponse);

impl Mergeable for kvrpcpb::RawBatchGetResponse {
    fn merge_parts(parts: Vec<(Vec<usize>, Self)>, keys: &[&[u8]]) -> Self {
        let mut out = fold(parts, |out, p| {
            out.pairs.extend(p.pairs);
        });
        order_by_keys(&mut out.pairs, keys, |p| &p.key);
        out
    }
    fn count(&self) -> usize {
        self.pairs.len()
    }
}

impl Mergeable for kvrpcpb::PrewriteResponse {
    fn merge_parts(parts: Vec<(Vec<usize>, Self)>, _keys: &[&[u8]]) -> Self {
        let mut out = Self::default();
        let n = parts.len();
        for (i, (_, p)) in parts.into_iter().enumerate() {
            out.errors.extend(p.errors);
            out.min_commit_ts = out.min_commit_ts.max(p.min_commit_ts);
            // 1PC succeeded only if every part committed in one phase.
            out.one_pc_commit_ts = if i == 0 {
                p.one_pc_commit_ts
            } else if p.one_pc_commit_ts == 0 || out.one_pc_commit_ts == 0 {
                0
            } else {
                out.one_pc_commit_ts.max(p.one_pc_commit_ts)
            };
            first_some(&mut out.exec_details_v2, p.exec_details_v2);
        }
        if n == 0 {
            out.one_pc_commit_ts = 0;
        }
        out
    }
}

impl Mergeable for kvrpcpb::PessimisticLockResponse {
    fn merge_parts(parts: Vec<(Vec<usize>, Self)>, keys: &[&[u8]]) -> Self {
        let mut out = Self::default();
        let mut values = Vec::new();
        let mut not_founds = Vec::new();
        let mut results = Vec::new();
        for (idx, p) in parts {
            out.errors.extend(p.errors);
            first_some(&mut out.exec_details_v2, p.exec_details_v2);
            values.push((idx.clone(), p.values));
            not_founds.push((idx.clone(), p.not_founds));
            results.push((idx, p.results));
        }
        out.values = scatter(values, keys.len());
        out.not_founds = scatter(not_founds, keys.len());
        out.results = scatter(results, keys.len());
        out
    }
}

macro_rules! key_error_errors_response {
    ($ty:ty) => {
        impl Mergeable for $ty {
            fn merge_parts(parts: Vec<(Vec<usize>, Self)>, _keys: &[&[u8]]) -> Self {
                fold(parts, |out, p| {
                    out.errors.extend(p.errors);
                    first_some(&mut out.exec_details_v2, p.exec_details_v2);
                })
            }
        }
    };
}

key_error_errors_response!(kvrpcpb::PessimisticRollbackResponse);
key_error_errors_response!(kvrpcpb::FlushResponse);

impl Mergeable for kvrpcpb::CommitResponse {
    fn merge_parts(parts: Vec<(Vec<usize>, Self)>, _keys: &[&[u8]]) -> Self {
        fold(parts, |out, p| {
            first_some(&mut out.error, p.error);
            out.commit_version = out.commit_version.max(p.commit_version);
            first_some(&mut out.exec_details_v2, p.exec_details_v2);
        })
    }
}

macro_rules! key_error_response {
    ($ty:ty) => {
        impl Mergeable for $ty {
            fn merge_parts(parts: Vec<(Vec<usize>, Self)>, _keys: &[&[u8]]) -> Self {
                fold(parts, |out, p| {
                    first_some(&mut out.error, p.error);
                    first_some(&mut out.exec_details_v2, p.exec_details_v2);
                })
            }
        }
    };
}

key_error_response!(kvrpcpb::BatchRollbackResponse);
key_error_response!(kvrpcpb::ResolveLockResponse);

impl Mergeable for kvrpcpb::CheckSecondaryLocksResponse {
    fn merge_parts(parts: Vec<(Vec<usize>, Self)>, _keys: &[&[u8]]) -> Self {
        fold(parts, |out, p| {
            first_some(&mut out.error, p.error);
            out.locks.extend(p.locks);
            out.commit_ts = out.commit_ts.max(p.commit_ts);
            first_some(&mut out.exec_details_v2, p.exec_details_v2);
        })
    }
}

macro_rules! string_error_response {
    ($ty:ty) => {
        impl Mergeable for $ty {
            fn merge_parts(parts: Vec<(Vec<usize>, Self)>, _keys: &[&[u8]]) -> Self {
                fold(parts, |out, p| {
                    first_nonempty(&mut out.error, p.error);
                })
            }
        }
    };
}

string_error_response!(kvrpcpb::RawBatchPutResponse);
string_error_response!(kvrpcpb::RawBatchDeleteResponse);
string_error_response!(kvrpcpb::DeleteRangeResponse);
string_error_response!(kvrpcpb::RawDeleteRangeResponse);

impl Mergeable for kvrpcpb::ScanResponse {
    fn merge_parts(parts: Vec<(Vec<usize>, Self)>, _keys: &[&[u8]]) -> Self {
        fold(parts, |out, p| {
            out.pairs.extend(p.pairs);
            first_some(&mut out.error, p.error);
        })
    }
    fn count(&self) -> usize {
        self.pairs.len()
    }
}

impl Mergeable for kvrpcpb::RawScanResponse {
    fn merge_parts(parts: Vec<(Vec<usize>, Self)>, _keys: &[&[u8]]) -> Self {
        fold(parts, |out, p| {
            out.kvs.extend(p.kvs);
        })
    }
    fn count(&self) -> usize {
        self.kvs.len()
    }
}

impl Mergeable for kvrpcpb::ScanLockResponse {
    fn merge_parts(parts: Vec<(Vec<usize>, Self)>, _keys: &[&[u8]]) -> Self {
        fold(parts, |out, p| {
            first_some(&mut out.error, p.error);
            out.locks.extend(p.locks);
            first_some(&mut out.exec_details_v2, p.exec_details_v2);
        })
    }
    fn count(&self) -> usize {
        self.locks.len()
    }
}

// ---- dispatch over the enums ----

macro_rules! dispatch {
    ($($v:ident),* $(,)?) => {
        /// The routing keys of a batch request, in request order.
        pub fn keys(req: &StoreRequest) -> Option<Vec<&[u8]>> {
            match req {
                $(StoreRequest::$v(r) => r.keys(),)*
                _ => None,
            }
        }
        /// The routing key of the item at position `i` of a batch request.
        pub fn key(req: &StoreRequest, i: usize) -> Option<&[u8]> {
            match req {
                $(StoreRequest::$v(r) => r.key(i),)*
                _ => None,
            }
        }
        /// How many items a batch request carries.
        pub fn key_count(req: &StoreRequest) -> Option<usize> {
            match req {
                $(StoreRequest::$v(r) => r.key_count(),)*
                _ => None,
            }
        }
        /// A batch request without its items (see [`Shardable::header`]).
        pub fn header(req: &mut StoreRequest) -> Option<StoreRequest> {
            match req {
                $(StoreRequest::$v(r) => r.header().map(|h| StoreRequest::$v(Box::new(h))),)*
                _ => None,
            }
        }
        /// The part of a batch request holding the items at `idx`, built on `header`
        /// (from [`header`] of the same request; `None` when the kinds differ).
        pub fn select(req: &StoreRequest, header: &StoreRequest, idx: &[usize]) -> Option<StoreRequest> {
            match (req, header) {
                $((StoreRequest::$v(r), StoreRequest::$v(h)) => r.select(h, idx).map(|p| StoreRequest::$v(Box::new(p))),)*
                _ => None,
            }
        }
        /// The range of a range request.
        pub fn range(req: &StoreRequest) -> Option<KeyRange> {
            match req {
                $(StoreRequest::$v(r) => r.range(),)*
                _ => None,
            }
        }
        /// The part of a range request within `[start, end)`, with a limit.
        pub fn narrow(req: &StoreRequest, start: &Bytes, end: &Bytes, limit: Option<u32>) -> Option<StoreRequest> {
            match req {
                $(StoreRequest::$v(r) => r.narrow(start, end, limit).map(|p| StoreRequest::$v(Box::new(p))),)*
                _ => None,
            }
        }
        /// Merge part replies of one kind (all parts must be of that kind).
        pub fn merge(parts: Vec<(Vec<usize>, StoreResponse)>, keys: &[&[u8]]) -> Result<StoreResponse, Error> {
            let Some(first) = parts.first() else {
                return Err(Error::Unexpected("nothing to merge".into()));
            };
            match first.1 {
                $(StoreResponse::$v(_) => {
                    let mut typed = Vec::with_capacity(parts.len());
                    for (idx, p) in parts {
                        match p {
                            StoreResponse::$v(r) => typed.push((idx, *r)),
                            other => return Err(Error::Unexpected(format!("mixed reply kinds: {}", other.kind()))),
                        }
                    }
                    Ok(StoreResponse::$v(Box::new(Mergeable::merge_parts(typed, keys))))
                })*
                ref other => Err(Error::Unexpected(format!("{} replies cannot be merged", other.kind()))),
            }
        }
        /// Results in a reply (scan limit accounting).
        pub fn count(resp: &StoreResponse) -> usize {
            match resp {
                $(StoreResponse::$v(r) => r.count(),)*
                _ => 0,
            }
        }
    };
}

dispatch!(
    BatchGet,
    BufferBatchGet,
    Commit,
    BatchRollback,
    PessimisticRollback,
    CheckSecondaryLocks,
    ResolveLock,
    RawBatchGet,
    RawBatchDelete,
    Prewrite,
    PessimisticLock,
    Flush,
    RawBatchPut,
    Scan,
    RawScan,
    ScanLock,
    DeleteRange,
    RawDeleteRange,
    RawChecksum,
);

/// The target implied by a request's kind (see [`Target::infer`]).
pub fn infer_target(req: &StoreRequest) -> Target {
    match req {
        StoreRequest::Get(r) => Target::Key(r.key.clone()),
        StoreRequest::RawGet(r) => Target::Key(r.key.clone()),
        StoreRequest::RawPut(r) => Target::Key(r.key.clone()),
        StoreRequest::RawDelete(r) => Target::Key(r.key.clone()),
        StoreRequest::RawGetKeyTtl(r) => Target::Key(r.key.clone()),
        StoreRequest::RawCompareAndSwap(r) => Target::Key(r.key.clone()),
        StoreRequest::Cleanup(r) => Target::Key(r.key.clone()),
        StoreRequest::TxnHeartBeat(r) => Target::Key(r.primary_lock.clone()),
        StoreRequest::CheckTxnStatus(r) => Target::Key(r.primary_key.clone()),
        StoreRequest::MvccGetByKey(r) => Target::Key(r.key.clone()),
        StoreRequest::ResolveLock(r) if r.keys.is_empty() => Target::Unrouted,
        StoreRequest::Scan(_) | StoreRequest::RawScan(_) | StoreRequest::ScanLock(_) => {
            range(req).map_or(Target::Unrouted, Target::Range)
        }
        StoreRequest::DeleteRange(_)
        | StoreRequest::RawDeleteRange(_)
        | StoreRequest::RawChecksum(_) => range(req).map_or(Target::Unrouted, Target::EachRegion),
        _ if keys(req).is_some() => Target::Keys,
        _ => Target::Unrouted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str) -> kvrpcpb::KvPair {
        kvrpcpb::KvPair {
            key: k.as_bytes().to_vec().into(),
            value: k.as_bytes().to_vec().into(),
            ..Default::default()
        }
    }

    #[test]
    fn infer_targets() {
        let cases: Vec<(StoreRequest, Target)> = vec![
            (
                kvrpcpb::GetRequest {
                    key: "k".into(),
                    ..Default::default()
                }
                .into(),
                Target::Key("k".into()),
            ),
            (kvrpcpb::RawBatchGetRequest::default().into(), Target::Keys),
            (kvrpcpb::PrewriteRequest::default().into(), Target::Keys),
            (
                kvrpcpb::RawScanRequest {
                    start_key: "z".into(),
                    end_key: "a".into(),
                    reverse: true,
                    limit: 5,
                    ..Default::default()
                }
                .into(),
                Target::Range(KeyRange {
                    start: "a".into(),
                    end: "z".into(),
                    reverse: true,
                    limit: Some(5),
                }),
            ),
            (
                kvrpcpb::DeleteRangeRequest {
                    start_key: "a".into(),
                    end_key: "b".into(),
                    ..Default::default()
                }
                .into(),
                Target::EachRegion(KeyRange::new(b"a".to_vec(), b"b".to_vec())),
            ),
            (
                kvrpcpb::ResolveLockRequest::default().into(),
                Target::Unrouted,
            ),
            (
                kvrpcpb::SplitRegionRequest::default().into(),
                Target::Unrouted,
            ),
        ];
        for (req, want) in cases {
            assert_eq!(infer_target(&req), want, "{}", req.kind());
        }
    }

    #[test]
    fn prewrite_select_renumbers_constraints() {
        let mut req = kvrpcpb::PrewriteRequest {
            mutations: ["a", "b", "c"]
                .iter()
                .map(|k| kvrpcpb::Mutation {
                    key: k.as_bytes().to_vec().into(),
                    ..Default::default()
                })
                .collect(),
            pessimistic_actions: vec![0, 1, 0],
            for_update_ts_constraints: vec![kvrpcpb::prewrite_request::ForUpdateTsConstraint {
                index: 2,
                expected_for_update_ts: 9,
            }],
            ..Default::default()
        };
        let header = req.header().unwrap();
        let part = req.select(&header, &[2, 0]).unwrap();
        assert_eq!(part.mutations[0].key, "c");
        assert_eq!(part.pessimistic_actions, vec![0, 0]);
        assert_eq!(part.for_update_ts_constraints[0].index, 0);
    }

    #[test]
    fn batch_get_merge_keeps_request_order() {
        let keys: Vec<&[u8]> = vec![b"c", b"a", b"b"];
        let p1 = kvrpcpb::BatchGetResponse {
            pairs: vec![kv("a"), kv("b")],
            ..Default::default()
        };
        let p2 = kvrpcpb::BatchGetResponse {
            pairs: vec![kv("c")],
            ..Default::default()
        };
        let merged =
            kvrpcpb::BatchGetResponse::merge_parts(vec![(vec![1, 2], p1), (vec![0], p2)], &keys);
        let got: Vec<_> = merged.pairs.iter().map(|p| p.key.clone()).collect();
        assert_eq!(got, vec![b"c".to_vec(), b"a".to_vec(), b"b".to_vec()]);
    }

    #[test]
    fn pessimistic_lock_values_scatter_to_positions() {
        let keys: Vec<&[u8]> = vec![b"x", b"y", b"z"];
        let p1 = kvrpcpb::PessimisticLockResponse {
            values: vec!["Y".into()],
            not_founds: vec![false],
            ..Default::default()
        };
        let p2 = kvrpcpb::PessimisticLockResponse {
            values: vec!["X".into(), "Z".into()],
            not_founds: vec![true, false],
            ..Default::default()
        };
        let m = kvrpcpb::PessimisticLockResponse::merge_parts(
            vec![(vec![1], p1), (vec![0, 2], p2)],
            &keys,
        );
        assert_eq!(m.values, vec![b"X".to_vec(), b"Y".to_vec(), b"Z".to_vec()]);
        assert_eq!(m.not_founds, vec![true, false, false]);
    }

    #[test]
    fn raw_batch_put_select_keeps_ttls_aligned() {
        let mut req = kvrpcpb::RawBatchPutRequest {
            pairs: vec![kv("a"), kv("b")],
            ttls: vec![1, 2],
            ..Default::default()
        };
        let header = req.header().unwrap();
        let part = req.select(&header, &[1]).unwrap();
        assert_eq!(part.pairs[0].key, "b");
        assert_eq!(part.ttls, vec![2]);
    }

    #[test]
    fn raw_checksum_parts_xor_and_add() {
        let part = |c, n| kvrpcpb::RawChecksumResponse {
            checksum: c,
            total_kvs: n,
            total_bytes: n * 10,
            ..Default::default()
        };
        let m = kvrpcpb::RawChecksumResponse::merge_parts(
            vec![(vec![], part(0b1100, 2)), (vec![], part(0b1010, 3))],
            &[],
        );
        assert_eq!((m.checksum, m.total_kvs, m.total_bytes), (0b0110, 5, 50));
    }

    #[test]
    fn merge_rejects_mixed_kinds() {
        let parts = vec![
            (vec![0], StoreResponse::RawBatchGet(Default::default())),
            (vec![1], StoreResponse::RawBatchPut(Default::default())),
        ];
        assert!(merge(parts, &[b"a", b"b"]).is_err());
    }
}
