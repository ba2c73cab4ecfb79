//! [`RawClient`]: client-go's `rawkv.Client` over a tower stack.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{self, StreamExt, TryStreamExt};
use parking_lot::Mutex;
use tikv_tower_layers::{
    LocateError, OpState, RegionLocator, RegionRoute, Request, Response, Target,
};
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
use tower::util::BoxCloneSyncService;
use tower::ServiceExt;

use super::keyspace::RawKeyCodec;
use super::options::{ColumnFamily, RawOptions};
use super::types::{KeyRange, KvPair, RawChecksum};
use crate::config::{ApiVersion, RawConfig};
use crate::error::{Error, Result};

/// The store-RPC stack a [`RawClient`] sends through: key-addressed [`Request`]s in,
/// merged [`Response`]s out. Boxed only here, at the public boundary.
pub type RawService = BoxCloneSyncService<Request, Response, tikv_tower_layers::Error>;

/// Region lookup for operations that walk a range region by region themselves
/// (checksum). An object-safe view of [`RegionLocator`].
pub trait RegionLookup: Send + Sync + 'static {
    /// The region containing `key` (client-go `LocateKey`).
    fn region_of<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<RegionRoute, LocateError>>;
}

impl<L: RegionLocator> RegionLookup for L {
    fn region_of<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<RegionRoute, LocateError>> {
        Box::pin(self.locate_key(key))
    }
}

/// Everything a [`RawClient`] needs besides its stack (what the presets assemble).
pub struct RawClientParts {
    /// The cluster id (client-go `Client.ClusterID`).
    pub cluster_id: u64,
    /// API version the cluster speaks.
    pub api_version: ApiVersion,
    /// Keyspace id under API V2.
    pub keyspace_id: Option<u32>,
    /// RawKV knobs.
    pub config: RawConfig,
    /// Region lookup (for checksum's region walk).
    pub regions: Arc<dyn RegionLookup>,
    /// Run once by [`RawClient::close`] (stop PD streams, drop connections, stop an
    /// embedded cluster).
    pub on_close: Option<Box<dyn FnOnce() + Send>>,
}

struct Inner {
    service: RawService,
    cluster_id: u64,
    api_version: ApiVersion,
    keyspace_id: Option<u32>,
    codec: RawKeyCodec,
    config: RawConfig,
    regions: Arc<dyn RegionLookup>,
    closed: AtomicBool,
    on_close: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

/// A RawKV client (client-go `rawkv.Client`).
///
/// Cheap to clone; clones share the connection stack. Scoped variants
/// ([`with_cf`](Self::with_cf), [`with_atomic_for_cas`](Self::with_atomic_for_cas),
/// [`with_options`](Self::with_options), [`with_timeout`](Self::with_timeout)) are clones
/// with different per-call defaults.
///
/// ```no_run
/// # async fn demo() -> tikv_tower::Result<()> {
/// let client = tikv_tower::RawClient::connect(["127.0.0.1:2379"]).await?;
/// client.put("k", "v").await?;
/// assert_eq!(client.get("k").await?, Some(b"v".to_vec()));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RawClient {
    inner: Arc<Inner>,
    options: RawOptions,
    atomic: bool,
    timeout: Option<Duration>,
}

impl fmt::Debug for RawClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawClient")
            .field("cluster_id", &self.inner.cluster_id)
            .field("api_version", &self.inner.api_version)
            .field("keyspace_id", &self.inner.keyspace_id)
            .field("options", &self.options)
            .field("atomic", &self.atomic)
            .finish()
    }
}

fn unexpected(expected: &'static str, got: &StoreResponse) -> Error {
    Error::UnexpectedResponse {
        expected,
        got: got.kind().as_str().to_owned(),
    }
}

fn server_error(e: String) -> Result<()> {
    if e.is_empty() {
        Ok(())
    } else {
        Err(Error::Server(e))
    }
}

impl RawClient {
    /// A client over a ready-made stack (see [`crate::presets`] for the standard ones).
    pub fn from_parts(service: RawService, parts: RawClientParts) -> Result<Self> {
        parts.config.validate()?;
        let atomic = parts.config.atomic_for_cas;
        let cf = ColumnFamily::parse(&parts.config.column_family)?;
        let codec = match (parts.api_version, parts.keyspace_id) {
            (ApiVersion::V2, id) => RawKeyCodec::v2(id.unwrap_or(0)),
            _ => RawKeyCodec::v1(),
        };
        Ok(RawClient {
            inner: Arc::new(Inner {
                service,
                cluster_id: parts.cluster_id,
                api_version: parts.api_version,
                keyspace_id: parts.keyspace_id,
                codec,
                config: parts.config,
                regions: parts.regions,
                closed: AtomicBool::new(false),
                on_close: Mutex::new(parts.on_close),
            }),
            options: RawOptions::new().with_column_family(cf),
            atomic,
            timeout: None,
        })
    }

    /// A client whose calls use column family `cf` (client-go `Client.SetColumnFamily`).
    pub fn with_cf(&self, cf: ColumnFamily) -> Self {
        let mut c = self.clone();
        c.options.column_family = Some(cf);
        c
    }

    /// A client in (or out of) atomic mode: writes go through TiKV's CAS path and
    /// `compare_and_swap` is allowed (client-go `Client.SetAtomicForCAS`).
    ///
    /// All clients writing the same keys must agree on the mode, as in client-go.
    pub fn with_atomic_for_cas(&self, atomic: bool) -> Self {
        let mut c = self.clone();
        c.atomic = atomic;
        c
    }

    /// A client whose calls use these options (client-go's per-call `RawOption`s).
    pub fn with_options(&self, options: RawOptions) -> Self {
        let mut c = self.clone();
        c.options = c.options.merge(options);
        c
    }

    /// A client whose operations fail with [`Error::Timeout`] after `timeout` (client-go's
    /// context deadline).
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        let mut c = self.clone();
        c.timeout = Some(timeout);
        c
    }

    /// The cluster id (client-go `Client.ClusterID`).
    pub fn cluster_id(&self) -> u64 {
        self.inner.cluster_id
    }

    /// The API version in use.
    pub fn api_version(&self) -> ApiVersion {
        self.inner.api_version
    }

    /// The keyspace id under API V2.
    pub fn keyspace_id(&self) -> Option<u32> {
        self.inner.keyspace_id
    }

    /// Whether atomic mode is on.
    pub fn is_atomic_for_cas(&self) -> bool {
        self.atomic
    }

    /// Close the client (client-go `Client.Close`): later calls on any clone fail with
    /// [`Error::Closed`]; background tasks are stopped. Idempotent.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        if let Some(f) = self.inner.on_close.lock().take() {
            f();
        }
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    fn cf(&self) -> String {
        match self.options.column_family {
            None | Some(ColumnFamily::Default) => String::new(),
            Some(cf) => cf.as_str().to_owned(),
        }
    }

    fn op(&self) -> Arc<OpState> {
        let mut b = OpState::builder().max_backoff(
            self.inner.config.max_backoff
                * tikv_tower_layers::retry::backoff::DEFAULT_BACKOFF_WEIGHT,
        );
        if let Some(t) = self.timeout {
            b = b.timeout(t);
        }
        b.build()
    }

    fn check_key(&self, key: &[u8]) -> Result<()> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        if key.is_empty() {
            return Err(Error::EmptyKey);
        }
        let limit = self.inner.config.max_key_size;
        if key.len() > limit {
            return Err(Error::KeyTooLarge {
                limit: limit as u64,
                size: key.len() as u64,
            });
        }
        Ok(())
    }

    fn check_entry(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.check_key(key)?;
        let limit = self.inner.config.raft_entry_max_size;
        let size = key.len() + value.len();
        if size > limit {
            return Err(Error::EntryTooLarge {
                limit: limit as u64,
                size: size as u64,
            });
        }
        Ok(())
    }

    fn check_range(&self, range: &KeyRange) -> Result<()> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        range.validate()
    }

    fn check_limit(&self, limit: u32) -> Result<()> {
        let max = self.inner.config.max_scan_limit;
        if limit > max {
            return Err(Error::MaxScanLimitExceeded {
                limit: u64::from(limit),
                max: u64::from(max),
            });
        }
        Ok(())
    }

    /// Sends `reqs` (the client-side chunks of one batch operation, sharing one operation
    /// state) at most `shard_concurrency` at a time; returns `handle` of each reply, in
    /// completion order.
    async fn send_chunks<T>(
        &self,
        reqs: impl IntoIterator<Item = StoreRequest>,
        handle: impl Fn(StoreResponse) -> Result<T>,
    ) -> Result<Vec<T>> {
        let op = self.op();
        let handle = &handle;
        stream::iter(reqs.into_iter().map(|req| {
            let op = op.clone();
            async move { handle(self.send(req, op).await?) }
        }))
        .buffer_unordered(self.inner.config.shard_concurrency)
        .try_collect()
        .await
    }

    async fn send(&self, req: StoreRequest, op: Arc<OpState>) -> Result<StoreResponse> {
        let resp = self
            .inner
            .service
            .clone()
            .oneshot(Request::new(req).with_op(op))
            .await?;
        Ok(resp.inner)
    }

    /// The value of `key`, `None` when absent (client-go `Client.Get`). An existing empty
    /// value is `Some(vec![])`.
    pub async fn get(&self, key: impl Into<Vec<u8>>) -> Result<Option<Vec<u8>>> {
        let key = key.into();
        self.check_key(&key)?;
        let req = kvrpcpb::RawGetRequest {
            key: self.inner.codec.encode_owned(key).into(),
            cf: self.cf(),
            ..Default::default()
        };
        match self.send(req.into(), self.op()).await? {
            StoreResponse::RawGet(r) => {
                server_error(r.error)?;
                Ok((!r.not_found).then_some(r.value.into()))
            }
            other => Err(unexpected("RawGet", &other)),
        }
    }

    /// The values of `keys`, one per key in request order, `None` for absent keys
    /// (client-go `Client.BatchGet`, which cannot tell absent from empty). Keys are split
    /// by region and fetched concurrently.
    pub async fn batch_get<K: Into<Vec<u8>>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let keys: Vec<Vec<u8>> = keys.into_iter().map(Into::into).collect();
        for k in &keys {
            self.check_key(k)?;
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let encoded: Vec<Bytes> = keys
            .iter()
            .map(|k| self.inner.codec.encode_key(k).into())
            .collect();
        let chunks = chunk_keys(&encoded, self.inner.config.batch_pair_count);
        let cf = self.cf();
        let reqs = chunks.into_iter().map(|chunk| {
            kvrpcpb::RawBatchGetRequest {
                keys: chunk,
                cf: cf.clone(),
                ..Default::default()
            }
            .into()
        });
        let found = self
            .send_chunks(reqs, |resp| match resp {
                StoreResponse::RawBatchGet(r) => Ok(r.pairs),
                other => Err(unexpected("RawBatchGet", &other)),
            })
            .await?;
        let mut by_key: HashMap<Bytes, Bytes> = HashMap::with_capacity(keys.len());
        for p in found.into_iter().flatten() {
            by_key.insert(p.key, p.value);
        }
        Ok(encoded
            .iter()
            .map(|k| by_key.get(k).map(|v| v.to_vec()))
            .collect())
    }

    /// Store `value` under `key` (client-go `Client.Put`).
    pub async fn put(&self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Result<()> {
        self.put_with_ttl(key, value, 0).await
    }

    /// Store `value` under `key`, expiring after `ttl_secs` seconds (0 = never; client-go
    /// `Client.PutWithTTL`). TTLs need API V1TTL or V2 on the server.
    pub async fn put_with_ttl(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        ttl_secs: u64,
    ) -> Result<()> {
        let (key, value) = (key.into(), value.into());
        self.check_entry(&key, &value)?;
        let req = kvrpcpb::RawPutRequest {
            key: self.inner.codec.encode_owned(key).into(),
            value: value.into(),
            ttl: ttl_secs,
            cf: self.cf(),
            for_cas: self.atomic,
            ..Default::default()
        };
        match self.send(req.into(), self.op()).await? {
            StoreResponse::RawPut(r) => server_error(r.error),
            other => Err(unexpected("RawPut", &other)),
        }
    }

    /// Store many pairs (client-go `Client.BatchPut`). Atomic per region only. When a key
    /// repeats, its last value wins.
    pub async fn batch_put<P: Into<KvPair>>(
        &self,
        pairs: impl IntoIterator<Item = P>,
    ) -> Result<()> {
        self.batch_put_inner(pairs.into_iter().map(Into::into).collect(), Vec::new())
            .await
    }

    /// Store many pairs, each with its own TTL in seconds (client-go
    /// `Client.BatchPutWithTTL`); `ttls` must be empty or as long as `pairs`.
    pub async fn batch_put_with_ttl<P: Into<KvPair>>(
        &self,
        pairs: impl IntoIterator<Item = P>,
        ttls: impl IntoIterator<Item = u64>,
    ) -> Result<()> {
        self.batch_put_inner(
            pairs.into_iter().map(Into::into).collect(),
            ttls.into_iter().collect(),
        )
        .await
    }

    async fn batch_put_inner(&self, pairs: Vec<KvPair>, ttls: Vec<u64>) -> Result<()> {
        if !ttls.is_empty() && ttls.len() != pairs.len() {
            return Err(Error::LengthMismatch {
                what: "ttls",
                expected: pairs.len(),
                got: ttls.len(),
            });
        }
        for p in &pairs {
            self.check_entry(&p.key, &p.value)?;
        }
        if pairs.is_empty() {
            return Ok(());
        }
        // Last write of a key wins (client-go builds a key → value map).
        let mut last: HashMap<&[u8], usize> = HashMap::with_capacity(pairs.len());
        for (i, p) in pairs.iter().enumerate() {
            last.insert(&p.key, i);
        }
        let mut items: Vec<(kvrpcpb::KvPair, Option<u64>)> = Vec::with_capacity(last.len());
        for (i, p) in pairs.iter().enumerate() {
            if last.get(p.key.as_slice()) == Some(&i) {
                let kv = kvrpcpb::KvPair {
                    key: self.inner.codec.encode_key(&p.key).into(),
                    value: p.value.clone().into(),
                    ..Default::default()
                };
                items.push((kv, ttls.get(i).copied()));
            }
        }
        items.sort_by(|a, b| a.0.key.cmp(&b.0.key));
        let chunks = chunk_by_size(
            items,
            self.inner.config.batch_put_size,
            self.inner.config.batch_pair_count,
        );
        let with_ttl = !ttls.is_empty();
        let cf = self.cf();
        let reqs = chunks.into_iter().map(|chunk| {
            let (pairs, ttls): (Vec<_>, Vec<_>) = chunk.into_iter().unzip();
            let ttls: Vec<u64> = if with_ttl {
                ttls.into_iter().map(Option::unwrap_or_default).collect()
            } else {
                Vec::new()
            };
            kvrpcpb::RawBatchPutRequest {
                pairs,
                ttls,
                cf: cf.clone(),
                for_cas: self.atomic,
                ..Default::default()
            }
            .into()
        });
        self.send_chunks(reqs, |resp| match resp {
            StoreResponse::RawBatchPut(r) => server_error(r.error),
            other => Err(unexpected("RawBatchPut", &other)),
        })
        .await?;
        Ok(())
    }

    /// Delete `key` (client-go `Client.Delete`).
    pub async fn delete(&self, key: impl Into<Vec<u8>>) -> Result<()> {
        let key = key.into();
        self.check_key(&key)?;
        let req = kvrpcpb::RawDeleteRequest {
            key: self.inner.codec.encode_owned(key).into(),
            cf: self.cf(),
            for_cas: self.atomic,
            ..Default::default()
        };
        match self.send(req.into(), self.op()).await? {
            StoreResponse::RawDelete(r) => server_error(r.error),
            other => Err(unexpected("RawDelete", &other)),
        }
    }

    /// Delete many keys (client-go `Client.BatchDelete`).
    pub async fn batch_delete<K: Into<Vec<u8>>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<()> {
        let keys: Vec<Vec<u8>> = keys.into_iter().map(Into::into).collect();
        for k in &keys {
            self.check_key(k)?;
        }
        if keys.is_empty() {
            return Ok(());
        }
        let encoded: Vec<Bytes> = keys
            .iter()
            .map(|k| self.inner.codec.encode_key(k).into())
            .collect();
        let chunks = chunk_keys(&encoded, self.inner.config.batch_pair_count);
        let cf = self.cf();
        let reqs = chunks.into_iter().map(|chunk| {
            kvrpcpb::RawBatchDeleteRequest {
                keys: chunk,
                cf: cf.clone(),
                for_cas: self.atomic,
                ..Default::default()
            }
            .into()
        });
        self.send_chunks(reqs, |resp| match resp {
            StoreResponse::RawBatchDelete(r) => server_error(r.error),
            other => Err(unexpected("RawBatchDelete", &other)),
        })
        .await?;
        Ok(())
    }

    /// Delete every key in `range` (client-go `Client.DeleteRange`), region by region
    /// concurrently. Under API V2 the range is clamped to the keyspace.
    pub async fn delete_range(&self, range: impl Into<KeyRange>) -> Result<()> {
        let range = range.into();
        self.check_range(&range)?;
        if range.is_empty() {
            return Ok(());
        }
        let (start, end) = self
            .inner
            .codec
            .encode_range(&range.start, range.end.as_deref());
        let req = kvrpcpb::RawDeleteRangeRequest {
            start_key: start.into(),
            end_key: end.into(),
            cf: self.cf(),
            ..Default::default()
        };
        match self.send(req.into(), self.op()).await? {
            StoreResponse::RawDeleteRange(r) => server_error(r.error),
            other => Err(unexpected("RawDeleteRange", &other)),
        }
    }

    /// Up to `limit` pairs of `range` in ascending key order, across regions (client-go
    /// `Client.Scan`). `limit` must not exceed `raw.max-scan-limit` (client-go
    /// `MaxRawKVScanLimit`, 10240).
    pub async fn scan(&self, range: impl Into<KeyRange>, limit: u32) -> Result<Vec<KvPair>> {
        self.scan_inner(range.into(), limit, false, self.options.key_only)
            .await
    }

    /// Like [`scan`](Self::scan), keys only (client-go `Scan` with `ScanKeyOnly()`).
    pub async fn scan_keys(&self, range: impl Into<KeyRange>, limit: u32) -> Result<Vec<Vec<u8>>> {
        let pairs = self.scan_inner(range.into(), limit, false, true).await?;
        Ok(pairs.into_iter().map(|p| p.key).collect())
    }

    /// Up to `limit` pairs of `range` in descending key order, starting below the range's
    /// end (client-go `Client.ReverseScan`, whose `startKey` is this range's end). An
    /// unbounded end starts from the last key.
    pub async fn reverse_scan(
        &self,
        range: impl Into<KeyRange>,
        limit: u32,
    ) -> Result<Vec<KvPair>> {
        self.scan_inner(range.into(), limit, true, self.options.key_only)
            .await
    }

    /// Like [`reverse_scan`](Self::reverse_scan), keys only.
    pub async fn reverse_scan_keys(
        &self,
        range: impl Into<KeyRange>,
        limit: u32,
    ) -> Result<Vec<Vec<u8>>> {
        let pairs = self.scan_inner(range.into(), limit, true, true).await?;
        Ok(pairs.into_iter().map(|p| p.key).collect())
    }

    async fn scan_inner(
        &self,
        range: KeyRange,
        limit: u32,
        reverse: bool,
        key_only: bool,
    ) -> Result<Vec<KvPair>> {
        self.check_range(&range)?;
        self.check_limit(limit)?;
        if limit == 0 || range.is_empty() {
            return Ok(Vec::new());
        }
        let (lower, mut upper) = self
            .inner
            .codec
            .encode_range(&range.start, range.end.as_deref());
        if reverse && upper.is_empty() {
            // TiKV seeks a reverse scan from its upper bound and checks that bound lies in
            // the region (inclusive), so "" cannot stand for +inf in the last region
            // (client-go's ReverseScan refuses it). No key is longer than
            // `max_key_size`, so `0xFF` repeated one byte longer bounds every key exactly.
            upper = vec![0xFF; self.inner.config.max_key_size + 1];
        }
        let (start_key, end_key) = if reverse {
            (upper, lower)
        } else {
            (lower, upper)
        };
        let req = kvrpcpb::RawScanRequest {
            start_key: start_key.into(),
            end_key: end_key.into(),
            limit,
            key_only,
            cf: self.cf(),
            reverse,
            ..Default::default()
        };
        let kvs = match self.send(req.into(), self.op()).await? {
            StoreResponse::RawScan(r) => r.kvs,
            other => return Err(unexpected("RawScan", &other)),
        };
        let mut out = Vec::with_capacity(kvs.len().min(limit as usize));
        for kv in kvs {
            if let Some(e) = kv.error {
                return Err(Error::from_key_error(e));
            }
            if let Some(key) = self.inner.codec.decode_key(kv.key.into()) {
                out.push(KvPair {
                    key,
                    value: if key_only {
                        Vec::new()
                    } else {
                        kv.value.into()
                    },
                });
            }
            if out.len() >= limit as usize {
                break;
            }
        }
        Ok(out)
    }

    /// The remaining TTL of `key` in seconds: `None` when the key is absent, `Some(0)` when
    /// it never expires (client-go `Client.GetKeyTTL`).
    pub async fn get_key_ttl(&self, key: impl Into<Vec<u8>>) -> Result<Option<u64>> {
        let key = key.into();
        self.check_key(&key)?;
        let req = kvrpcpb::RawGetKeyTtlRequest {
            key: self.inner.codec.encode_owned(key).into(),
            cf: self.cf(),
            ..Default::default()
        };
        match self.send(req.into(), self.op()).await? {
            StoreResponse::RawGetKeyTtl(r) => {
                server_error(r.error)?;
                Ok((!r.not_found).then_some(r.ttl))
            }
            other => Err(unexpected("RawGetKeyTTL", &other)),
        }
    }

    /// Atomically: if the current value of `key` equals `previous` (`None` = the key is
    /// absent), write `new`. Returns the value found and whether the swap happened
    /// (client-go `Client.CompareAndSwap`). Needs atomic mode
    /// ([`with_atomic_for_cas`](Self::with_atomic_for_cas)).
    pub async fn compare_and_swap(
        &self,
        key: impl Into<Vec<u8>>,
        previous: Option<Vec<u8>>,
        new: impl Into<Vec<u8>>,
    ) -> Result<(Option<Vec<u8>>, bool)> {
        let (key, new) = (key.into(), new.into());
        self.check_entry(&key, &new)?;
        self.cas(key, previous, new, false).await
    }

    /// Atomically delete `key` if its current value equals `previous` (`None` = absent).
    /// Returns the value found and whether the delete happened. Needs atomic mode
    /// (TiKV's `RawCompareAndSwap` with `delete`; client-go has no counterpart).
    pub async fn compare_and_delete(
        &self,
        key: impl Into<Vec<u8>>,
        previous: Option<Vec<u8>>,
    ) -> Result<(Option<Vec<u8>>, bool)> {
        let key = key.into();
        self.check_key(&key)?;
        self.cas(key, previous, Vec::new(), true).await
    }

    async fn cas(
        &self,
        key: Vec<u8>,
        previous: Option<Vec<u8>>,
        new: Vec<u8>,
        delete: bool,
    ) -> Result<(Option<Vec<u8>>, bool)> {
        if !self.atomic {
            return Err(Error::AtomicModeRequired);
        }
        let req = kvrpcpb::RawCasRequest {
            key: self.inner.codec.encode_owned(key).into(),
            value: new.into(),
            previous_not_exist: previous.is_none(),
            previous_value: previous.unwrap_or_default().into(),
            cf: self.cf(),
            delete,
            ..Default::default()
        };
        match self.send(req.into(), self.op()).await? {
            StoreResponse::RawCompareAndSwap(r) => {
                server_error(r.error)?;
                let prev = (!r.previous_not_exist).then_some(r.previous_value.into());
                Ok((prev, r.succeed))
            }
            other => Err(unexpected("RawCompareAndSwap", &other)),
        }
    }

    /// CRC64-XOR checksum, pair count and byte count of `range`, region by region
    /// (client-go `Client.Checksum`).
    pub async fn checksum(&self, range: impl Into<KeyRange>) -> Result<RawChecksum> {
        let range = range.into();
        self.check_range(&range)?;
        let mut sum = RawChecksum::default();
        if range.is_empty() {
            return Ok(sum);
        }
        let (mut start, end) = self
            .inner
            .codec
            .encode_range(&range.start, range.end.as_deref());
        let op = self.op();
        let mut stale_retries = 0;
        loop {
            let route = self
                .inner
                .regions
                .region_of(&start)
                .await
                .map_err(Error::Locate)?;
            let region_end = route.end_key().to_vec();
            let part_end = if !region_end.is_empty() && (end.is_empty() || region_end < end) {
                region_end.clone()
            } else {
                end.clone()
            };
            let req = kvrpcpb::RawChecksumRequest {
                algorithm: kvrpcpb::ChecksumAlgorithm::Crc64Xor as i32,
                ranges: vec![kvrpcpb::KeyRange {
                    start_key: start.clone().into(),
                    end_key: part_end.clone().into(),
                }],
                ..Default::default()
            };
            let req = Request::with_target(req.into(), Target::Region(route.ver_id()))
                .with_op(op.clone());
            match self.inner.service.clone().oneshot(req).await {
                Ok(Response {
                    inner: StoreResponse::RawChecksum(r),
                    ..
                }) => {
                    server_error(r.error)?;
                    sum.merge(RawChecksum {
                        crc64_xor: r.checksum,
                        total_kvs: r.total_kvs,
                        total_bytes: r.total_bytes,
                    });
                }
                Ok(other) => return Err(unexpected("RawChecksum", &other.inner)),
                // The region changed under us (split, merge, leader gone): the retry layer
                // charged the backoff to the shared budget; look the region up again
                // (client-go `sendReq`'s loop).
                Err(e) if e.is_stale_route() && stale_retries < MAX_RELOCATES => {
                    stale_retries += 1;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            stale_retries = 0;
            if part_end.is_empty() || part_end == end {
                return Ok(sum);
            }
            start = part_end;
        }
    }
}

/// Re-lookups of one checksum part before giving up.
const MAX_RELOCATES: u32 = 32;

/// Split keys into chunks of at most `max` (client-go `rawBatchPairCount`). Small inputs
/// stay whole; large ones are sorted first so that each chunk touches few regions.
fn chunk_keys(keys: &[Bytes], max: usize) -> Vec<Vec<Bytes>> {
    if keys.len() <= max {
        return vec![keys.to_vec()];
    }
    let mut sorted = keys.to_vec();
    sorted.sort();
    sorted.dedup();
    sorted.chunks(max.max(1)).map(<[Bytes]>::to_vec).collect()
}

/// Split sorted pairs into chunks of about `size` bytes and at most `count` pairs
/// (client-go `kvrpc.AppendBatches` with `rawBatchPutSize`).
fn chunk_by_size<T>(
    items: Vec<(kvrpcpb::KvPair, T)>,
    size: usize,
    count: usize,
) -> Vec<Vec<(kvrpcpb::KvPair, T)>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut cur_size = 0;
    for it in items {
        cur_size += it.0.key.len() + it.0.value.len();
        cur.push(it);
        if cur_size >= size || cur.len() >= count {
            out.push(std::mem::take(&mut cur));
            cur_size = 0;
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking() {
        let keys: Vec<Bytes> = (0..10u8).rev().map(|i| Bytes::from(vec![i])).collect();
        assert_eq!(chunk_keys(&keys, 20).len(), 1);
        assert_eq!(
            chunk_keys(&keys, 20)[0],
            keys,
            "small batches keep request order"
        );
        let c = chunk_keys(&keys, 3);
        assert_eq!(c.len(), 4);
        assert_eq!(c[0], vec![vec![0], vec![1], vec![2]]);
        let pairs: Vec<(kvrpcpb::KvPair, ())> = (0..10u8)
            .map(|i| {
                (
                    kvrpcpb::KvPair {
                        key: vec![i].into(),
                        value: vec![0; 9].into(),
                        ..Default::default()
                    },
                    (),
                )
            })
            .collect();
        let c = chunk_by_size(pairs, 25, 100);
        assert_eq!(c.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3, 3, 1]);
    }
}
