//! [`TxnClient`]: client-go's `txnkv.Client` (a `tikv.KVStore` in transactional key mode)
//! over the store core.
//!
//! The client owns a [`KvStore`] built with [`StoreOptions::txn`], the lock resolver built
//! on the store's plain stack, the locking stack
//! ([`KvStore::stack_with_resolver`]) every snapshot reads through, the API V2 key codec
//! (`'x'` keyspace prefix) and the [`TxnSafePointCache`] of the GC visibility check. From
//! it come [`Snapshot`]s at any ts and [`Transaction`]s (optimistic by default).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tikv_tower_layers::stack::StackConfig;

use super::gc_visibility::TxnSafePointCache;
use super::options::{SnapshotOptions, TxnOptions};
use super::snapshot::Snapshot;
use super::transaction::Transaction;
use crate::config::{ApiVersion, Config};
use crate::error::{Error, Result};
use crate::pd::codec::MAX_KEYSPACE_ID;
use crate::pd::{KeyMode, Oracle};
use crate::raw::RawKeyCodec;
use crate::store::{KvStore, StoreOptions, StoreStack};

/// The lock resolver the read path uses: the full one of [`super::resolver`] (client-go
/// `txnlock.LockResolver`), built on the store's plain stack.
pub type ReadResolver = super::resolver::LockResolver;

/// Builds the [`ReadResolver`] on the store's plain stack.
fn new_resolver(store: &KvStore) -> Arc<ReadResolver> {
    ReadResolver::new(store)
}

/// The most a snapshot read may spend backing off (client-go `getMaxBackoff` /
/// `batchGetMaxBackoff`, 20 s; scans use `scannerNextMaxBackoff`, also 20 s).
pub const READ_MAX_BACKOFF: Duration = Duration::from_secs(20);

/// What snapshots and transactions of one client share.
pub(crate) struct Core {
    pub(crate) store: KvStore,
    pub(crate) stack: StoreStack,
    pub(crate) resolver: Arc<ReadResolver>,
    pub(crate) codec: RawKeyCodec,
    pub(crate) gc: TxnSafePointCache,
    /// Stand-in for "+inf" as the upper bound of reverse scans under API V1 (no key is
    /// longer than `max_key_size`).
    pub(crate) reverse_upper: bytes::Bytes,
    safe_ts: super::safe_ts::SafeTsTracker,
    closed: AtomicBool,
}

impl Core {
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) || self.store.is_closed() {
            return Err(Error::Closed);
        }
        Ok(())
    }
}

/// A transactional client (client-go `txnkv.Client` / `tikv.KVStore`). Cheap to clone.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> tikv_tower::Result<()> {
/// let client = tikv_tower::TxnClient::embedded().await?;
/// let mut txn = client.begin().await?;
/// txn.set("k", "v")?;
/// assert_eq!(txn.get("k").await?, Some("v".into())); // its own write
/// let snapshot = client.snapshot(client.current_timestamp().await?);
/// assert_eq!(snapshot.get("k").await?, None); // not committed
/// client.close();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TxnClient {
    core: Arc<Core>,
}

impl std::fmt::Debug for TxnClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnClient")
            .field("store", &self.core.store)
            .finish_non_exhaustive()
    }
}

impl TxnClient {
    /// A builder (endpoints or an embedded cluster, configuration, stack options).
    pub fn builder() -> TxnClientBuilder {
        TxnClientBuilder::default()
    }

    /// Connects to the cluster behind `pd_endpoints` (client-go `txnkv.NewClient`). No
    /// endpoints = the embedded mockstore (feature `embedded`).
    pub async fn connect<S: Into<String>>(
        pd_endpoints: impl IntoIterator<Item = S>,
    ) -> Result<TxnClient> {
        Self::builder().pd_endpoints(pd_endpoints).build().await
    }

    /// Connects with a configuration (client-go `txnkv.NewClient` with options).
    pub async fn connect_with_config<S: Into<String>>(
        pd_endpoints: impl IntoIterator<Item = S>,
        config: Config,
    ) -> Result<TxnClient> {
        Self::builder()
            .pd_endpoints(pd_endpoints)
            .config(config)
            .build()
            .await
    }

    /// A client over a fresh in-process cluster (three stores): no network.
    #[cfg(feature = "embedded")]
    pub async fn embedded() -> Result<TxnClient> {
        Self::builder().build().await
    }

    /// A client over `cluster`, in-process.
    #[cfg(feature = "embedded")]
    pub async fn with_mock_cluster(
        cluster: tikv_tower_mockstore::MockCluster,
        config: Config,
    ) -> Result<TxnClient> {
        Self::builder()
            .config(config)
            .mock_cluster(cluster)
            .build()
            .await
    }

    /// A client on a transactional-mode `store` (see [`StoreOptions::txn`]): builds the
    /// resolver on its plain stack, the locking stack, and loads the txn safe point
    /// (client-go `tikv.NewKVStore` + `txnkv.NewClient`).
    pub async fn from_store(store: KvStore) -> Result<TxnClient> {
        if store.key_mode() != KeyMode::Txn {
            return Err(Error::Config(
                "a TxnClient needs a store in transactional key mode".into(),
            ));
        }
        let codec = match (store.api_version(), store.keyspace_id()) {
            (ApiVersion::V2, Some(id)) if id > MAX_KEYSPACE_ID => {
                return Err(Error::Config(format!(
                    "keyspace id {id} does not fit in the 24 bits of the API V2 key prefix"
                )));
            }
            (ApiVersion::V2, id) => RawKeyCodec::v2_mode(KeyMode::Txn, id.unwrap_or(0)),
            _ => RawKeyCodec::v1(),
        };
        let gc = match TxnSafePointCache::start(store.pd().clone(), store.keyspace_id()).await {
            Ok(gc) => gc,
            Err(e) => {
                store.close();
                return Err(e);
            }
        };
        let resolver = new_resolver(&store);
        let stack = store.stack_with_resolver(resolver.clone());
        let reverse_upper = bytes::Bytes::from(vec![0xFF; store.config().raw.max_key_size + 1]);
        Ok(TxnClient {
            core: Arc::new(Core {
                store,
                stack,
                resolver,
                codec,
                gc,
                reverse_upper,
                safe_ts: Default::default(),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// The store core (client-go `txnkv.Client.KVStore`).
    pub fn store(&self) -> &KvStore {
        &self.core.store
    }

    /// The TSO oracle (client-go `KVStore.GetOracle`).
    pub fn oracle(&self) -> &Oracle {
        self.core.store.oracle()
    }

    /// The lock resolver reads use (client-go `KVStore.GetLockResolver`).
    pub fn lock_resolver(&self) -> &Arc<ReadResolver> {
        &self.core.resolver
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> u64 {
        self.core.store.cluster_id()
    }

    /// A fresh timestamp from PD (client-go `KVStore.CurrentTimestamp`).
    pub async fn current_timestamp(&self) -> Result<u64> {
        self.core.check_open()?;
        Ok(self.oracle().get_timestamp().await?)
    }

    /// The cached low-resolution timestamp, refreshed in the background every 2 s
    /// (client-go `Oracle.GetLowResolutionTimestamp`); fetched once when none is cached
    /// yet.
    pub async fn low_resolution_timestamp(&self) -> Result<u64> {
        self.core.check_open()?;
        match self.oracle().get_low_resolution_ts() {
            0 => Ok(self.oracle().get_timestamp().await?),
            ts => Ok(ts),
        }
    }

    /// A timestamp standing for `prev_seconds` ago, corrected by the local time since the
    /// last timestamp arrived (client-go `Oracle.GetStaleTimestamp`): fetches a timestamp
    /// first when none is cached; [`Error::InvalidArgument`] when `prev_seconds` reaches
    /// before the epoch.
    pub async fn stale_timestamp(&self, prev_seconds: u64) -> Result<u64> {
        self.core.check_open()?;
        if let Some(ts) = self.oracle().get_stale_timestamp(prev_seconds) {
            return Ok(ts);
        }
        if self.oracle().get_low_resolution_ts() == 0 {
            self.oracle().get_timestamp().await?;
            if let Some(ts) = self.oracle().get_stale_timestamp(prev_seconds) {
                return Ok(ts);
            }
        }
        Err(Error::InvalidArgument(format!(
            "invalid prevSecond {prev_seconds}"
        )))
    }

    /// The smallest safe ts over the cluster's stores: the newest ts a stale read can use
    /// everywhere (client-go `KVStore.GetMinSafeTS`); asks every store now (see
    /// [`super::safe_ts`]).
    pub async fn min_safe_ts(&self) -> Result<u64> {
        self.core.check_open()?;
        self.core.safe_ts.min_safe_ts(&self.core.store).await
    }

    /// The txn safe point cache of the GC visibility check.
    pub fn txn_safe_point_cache(&self) -> &TxnSafePointCache {
        &self.core.gc
    }

    /// Replaces the cached txn safe point (client-go `KVStore.UpdateTxnSafePointCache`).
    pub fn update_txn_safe_point_cache(&self, safe_point: u64, now: tokio::time::Instant) {
        self.core.gc.update(safe_point, now);
    }

    /// Whether reading at `start_ts` is safe from GC (client-go `KVStore.CheckVisibility`).
    pub fn check_visibility(&self, start_ts: u64) -> Result<()> {
        self.core.gc.check_visibility(start_ts)
    }

    /// Starts an optimistic transaction at a fresh ts (client-go `KVStore.Begin`).
    pub async fn begin(&self) -> Result<Transaction> {
        self.begin_with(TxnOptions::optimistic()).await
    }

    /// Starts a transaction with `options` (client-go `KVStore.Begin(opts...)`).
    pub async fn begin_with(&self, options: TxnOptions) -> Result<Transaction> {
        self.core.check_open()?;
        let start_ts = match options.start_ts {
            Some(ts) => ts,
            None => self.oracle().get_timestamp().await?,
        };
        let snapshot = self.snapshot_with(start_ts, options.snapshot.clone());
        Ok(Transaction::new(snapshot, options))
    }

    /// A snapshot reading the data committed at or before `ts` (client-go
    /// `KVStore.GetSnapshot`). `u64::MAX` reads the latest committed data (the autocommit
    /// point-get mode). The read-ts and GC checks run at each read.
    pub fn snapshot(&self, ts: u64) -> Snapshot {
        self.snapshot_with(ts, SnapshotOptions::default())
    }

    /// A snapshot at `ts` with `options`.
    pub fn snapshot_with(&self, ts: u64, options: SnapshotOptions) -> Snapshot {
        Snapshot::new(self.core.clone(), ts, options)
    }

    /// Closes the client and its store (client-go `txnkv.Client.Close`): background
    /// tasks (TSO, safe-point updater, ...) stop; later reads fail with
    /// [`Error::Closed`]. Idempotent.
    pub fn close(&self) {
        self.core.closed.store(true, Ordering::Release);
        self.core.store.close();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.core.check_open().is_err()
    }
}

/// Builds a [`TxnClient`].
#[derive(Default)]
pub struct TxnClientBuilder {
    pd_endpoints: Vec<String>,
    config: Config,
    stack: StackConfig,
    #[cfg(feature = "embedded")]
    cluster: Option<tikv_tower_mockstore::MockCluster>,
}

impl std::fmt::Debug for TxnClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnClientBuilder")
            .field("pd_endpoints", &self.pd_endpoints)
            .finish_non_exhaustive()
    }
}

impl TxnClientBuilder {
    /// PD endpoints (none = the embedded mockstore).
    pub fn pd_endpoints<S: Into<String>>(mut self, endpoints: impl IntoIterator<Item = S>) -> Self {
        self.pd_endpoints = endpoints.into_iter().map(Into::into).collect();
        self
    }

    /// The configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The stack configuration (tags, policies, interceptors, rate limits).
    pub fn stack_config(mut self, stack: StackConfig) -> Self {
        self.stack = stack;
        self
    }

    /// Use this in-process cluster.
    #[cfg(feature = "embedded")]
    pub fn mock_cluster(mut self, cluster: tikv_tower_mockstore::MockCluster) -> Self {
        self.cluster = Some(cluster);
        self
    }

    /// Builds the store (transactional key mode) and the client on it.
    pub async fn build(self) -> Result<TxnClient> {
        self.config.validate()?;
        let options = StoreOptions {
            stack: self.stack.clone(),
            ..StoreOptions::txn().with_config(self.config.clone())
        };
        #[cfg(feature = "embedded")]
        let store = {
            let mut this = self;
            let cluster = match this.cluster.take() {
                Some(c) => Some(c),
                None if this.pd_endpoints.is_empty() => Some(crate::presets::embedded_cluster_for(
                    &this.config,
                    KeyMode::Txn,
                )),
                None => None,
            };
            match cluster {
                Some(c) => KvStore::in_process(c, options).await?,
                None => KvStore::connect(this.pd_endpoints, options).await?,
            }
        };
        #[cfg(not(feature = "embedded"))]
        let store = {
            if self.pd_endpoints.is_empty() {
                return Err(Error::Config(
                    "no PD endpoints (enable feature `embedded` for an in-process cluster)".into(),
                ));
            }
            KvStore::connect(self.pd_endpoints, options).await?
        };
        TxnClient::from_store(store).await
    }
}
