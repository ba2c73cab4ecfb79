//! The store core: one value owning what every client of a cluster shares (client-go
//! `tikv.KVStore`, built by `tikv.NewKVStore`).
//!
//! A [`KvStore`] owns the PD client (with the keyspace codec of its [`KeyMode`]), the
//! region cache, the TSO [`Oracle`] (started on first use), the store transport, the
//! [`Config`], the [`StackConfig`] every stack it builds shares, and the
//! [`TaskRegistry`] of the background tasks it started (PD membership refresh, TSO
//! dispatcher and updater, BatchCommands send/receive loops). Clients are made from it:
//! [`RawClient`](crate::RawClient) today (its constructors build a raw-mode store and keep
//! their one-line forms), a `TxnClient` next.
//!
//! # The two stacks, and the lock resolver's construction order
//!
//! The protocols need two stacks over the same transport, cache and configuration:
//!
//! - the **plain stack** ([`KvStore::plain_stack`]): trace … shard ─ retry ─ route ─
//!   transport, *without* lock resolution. RawKV uses it; so does the lock resolver,
//!   whose own RPCs (`CheckTxnStatus`, `ResolveLock`, `CheckSecondaryLocks`, …) must not
//!   themselves go through a lock-resolving layer;
//! - the **locking stack** ([`KvStore::stack_with_resolver`]): the same layers with
//!   resolve-lock between shard and retry, for transactional reads that may meet locks.
//!
//! The resolver needs the plain stack and the locking stack needs the resolver, so the
//! order is fixed — no cycle, no late binding:
//!
//! 1. build the store ([`KvStore::connect`], [`KvStore::in_process`] or
//!    [`KvStore::with_transport`]);
//! 2. take `store.plain_stack()` and construct the resolver on it (client-go
//!    `tikv.NewLockResolver` over the store's `RegionRequestSender`);
//! 3. pass the resolver (in an `Arc`) to `store.stack_with_resolver(resolver)` for the
//!    readers (client-go `KVSnapshot` holding `store.GetLockResolver()`).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> tikv_tower::Result<()> {
//! use std::sync::Arc;
//! use tikv_tower::store::{KvStore, StoreOptions};
//! use tikv_tower_layers::resolve_lock::{LockResolver, ResolveOutcome};
//! use tikv_tower_layers::{Error, OpState};
//! use tikv_tower_proto::kvrpcpb::LockInfo;
//!
//! /// A resolver sending its own RPCs through the plain stack.
//! struct Resolver { stack: tikv_tower::store::StoreStack }
//! impl LockResolver for Resolver {
//!     async fn resolve(&self, locks: Vec<LockInfo>, _ts: u64, _op: Arc<OpState>)
//!         -> Result<ResolveOutcome, Error> {
//!         let _ = &self.stack; // CheckTxnStatus / ResolveLock would go here
//!         Ok(ResolveOutcome { resolved: locks.iter().map(|l| l.lock_version).collect(), ..Default::default() })
//!     }
//! }
//!
//! let cluster = tikv_tower_mockstore::MockCluster::builder().stores(1).build();
//! let store = KvStore::in_process(cluster, StoreOptions::txn()).await?;
//! let resolver = Arc::new(Resolver { stack: store.plain_stack() }); // 2.
//! let _readers = store.stack_with_resolver(resolver); // 3.
//! store.close(); // stops every background task the store started
//! # Ok(()) }
//! ```
//!
//! # Closing
//!
//! [`KvStore::close`] — and dropping the last handle — closes the task registry: every
//! background task the store started is aborted (its future dropped, so its gRPC streams
//! end and PD and the stores see them closed), and the oracle refuses new timestamps.
//! Stacks built earlier keep working for unary calls until dropped, as client-go's
//! `KVStore.Close` leaves in-flight calls to their contexts.

mod transport;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use tikv_tower_layers::resolve_lock::LockResolver;
use tikv_tower_layers::route::RouteConfig;
use tikv_tower_layers::stack::{self, StackConfig};
use tikv_tower_layers::timeout::Timeouts;
use tikv_tower_layers::{Request, Response};
use tikv_tower_proto::kvrpcpb;
use tower::util::BoxCloneSyncService;

use crate::config::{ApiVersion, Config};
use crate::error::{Error, Result};
use crate::pd::{
    ApiCodec, GrpcPdConnector, KeyMode, Oracle, OracleConfig, PdClient, PdConfig, PdConnector,
};
use crate::region_cache::{RegionCache, RegionCacheConfig};
use crate::tasks::TaskRegistry;
use crate::transport::{BatchTransport, GrpcTransport};

pub use transport::{CustomTransport, StoreTransport, StoreTransportFuture};

/// A stack built by a [`KvStore`], boxed at the public boundary: key-addressed
/// [`Request`]s in, merged [`Response`]s out.
pub type StoreStack = BoxCloneSyncService<Request, Response, tikv_tower_layers::Error>;

/// What a [`KvStore`] is built with besides its backend.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The configuration (PD, transport, timeouts, API version, keyspace).
    pub config: Config,
    /// Raw or transactional key space (selects the keyspace codec regions are decoded
    /// with; client-go `apicodec.ModeRaw` / `ModeTxn`).
    pub key_mode: KeyMode,
    /// The stack configuration every stack of the store shares. Its `route`, the
    /// timeouts' short/medium/write values and the shard concurrency are filled from
    /// [`config`](Self::config) and the cluster; every other field (tags, interceptors,
    /// rate limits, policies) is carried as given.
    pub stack: StackConfig,
    /// `RequestHeader.caller_id` of PD requests.
    pub caller_id: String,
}

impl StoreOptions {
    /// A raw-mode store with the default configuration.
    pub fn raw() -> Self {
        StoreOptions {
            config: Config::default(),
            key_mode: KeyMode::Raw,
            stack: StackConfig::default(),
            caller_id: "rawkv-tikv-tower".into(),
        }
    }

    /// A transactional-mode store with the default configuration.
    pub fn txn() -> Self {
        StoreOptions {
            key_mode: KeyMode::Txn,
            caller_id: "txnkv-tikv-tower".into(),
            ..StoreOptions::raw()
        }
    }

    /// These options with `config`.
    pub fn with_config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }
}

/// The store core (see the [module docs](self)). Cheap to clone; clones share everything.
/// Dropping the last clone closes it.
#[derive(Clone)]
pub struct KvStore {
    inner: Arc<Inner>,
}

struct Inner {
    pd: PdClient,
    cache: Arc<RegionCache>,
    transport: StoreTransport,
    config: Config,
    key_mode: KeyMode,
    stack: StackConfig,
    cluster_id: u64,
    keyspace_id: Option<u32>,
    oracle: OnceLock<Oracle>,
    tasks: TaskRegistry,
    closed: AtomicBool,
    on_close: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Inner {
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Some(oracle) = self.oracle.get() {
            oracle.close();
        }
        self.tasks.close();
        if let Some(f) = self.on_close.lock().take() {
            f();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.close();
    }
}

impl std::fmt::Debug for KvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStore")
            .field("cluster_id", &self.inner.cluster_id)
            .field("key_mode", &self.inner.key_mode)
            .field("keyspace_id", &self.inner.keyspace_id)
            .field("transport", &self.inner.transport)
            .field("tasks", &self.inner.tasks)
            .finish_non_exhaustive()
    }
}

impl KvStore {
    /// Connects to the cluster behind `pd_endpoints` over gRPC (client-go
    /// `tikv.NewKVStore` with a PD client and `client.NewRPCClient`): the BatchCommands
    /// transport unless `tikv-client.max-batch-size` is 0.
    pub async fn connect<S: Into<String>>(
        pd_endpoints: impl IntoIterator<Item = S>,
        options: StoreOptions,
    ) -> Result<KvStore> {
        let endpoints: Vec<String> = pd_endpoints.into_iter().map(Into::into).collect();
        if endpoints.is_empty() {
            return Err(Error::Config("no PD endpoints".into()));
        }
        options.config.validate()?;
        let tasks = TaskRegistry::new();
        let opts = grpc_options(&options.config);
        let connector: Arc<dyn PdConnector> = Arc::new(GrpcPdConnector::new(opts.clone()));
        let transport = match options.config.tikv_client.max_batch_size {
            0 => StoreTransport::Grpc(
                GrpcTransport::grpc(opts).with_store_limit(store_limit(&options.config)),
            ),
            max => StoreTransport::Batch(
                BatchTransport::new(
                    crate::transport::batch::BatchConnector::new(opts, max)
                        .with_tasks(tasks.clone()),
                )
                .with_store_limit(store_limit(&options.config)),
            ),
        };
        Self::assemble(connector, endpoints, transport, options, tasks, None).await
    }

    /// A store over `cluster`, in-process: no sockets. The cluster is kept alive until
    /// the store closes.
    #[cfg(feature = "embedded")]
    pub async fn in_process(
        cluster: tikv_tower_mockstore::MockCluster,
        options: StoreOptions,
    ) -> Result<KvStore> {
        options.config.validate()?;
        let connector: Arc<dyn PdConnector> =
            Arc::new(crate::pd::InProcPdConnector::new(cluster.clone()));
        let transport = StoreTransport::InProc(
            crate::transport::InProcTransport::in_process(cluster.clone())
                .with_store_limit(store_limit(&options.config)),
        );
        let endpoints = vec![crate::pd::inproc::INPROC_PD_URL.to_string()];
        let keep: Box<dyn FnOnce() + Send> = Box::new(move || drop(cluster));
        Self::assemble(
            connector,
            endpoints,
            transport,
            options,
            TaskRegistry::new(),
            Some(keep),
        )
        .await
    }

    /// A store over any PD connector and store transport (fakes in tests, custom
    /// transports). Tasks the transport spawns are not tracked unless it spawns them in
    /// `tasks` (the registry the store will own and close).
    pub async fn with_transport(
        connector: Arc<dyn PdConnector>,
        pd_endpoints: Vec<String>,
        transport: StoreTransport,
        options: StoreOptions,
        tasks: TaskRegistry,
    ) -> Result<KvStore> {
        options.config.validate()?;
        Self::assemble(connector, pd_endpoints, transport, options, tasks, None).await
    }

    async fn assemble(
        connector: Arc<dyn PdConnector>,
        endpoints: Vec<String>,
        transport: StoreTransport,
        options: StoreOptions,
        tasks: TaskRegistry,
        on_close: Option<Box<dyn FnOnce() + Send>>,
    ) -> Result<KvStore> {
        let StoreOptions {
            config,
            key_mode,
            stack,
            caller_id,
        } = options;
        let pd_config = PdConfig {
            endpoints,
            rpc_timeout: config.pd_client.pd_server_timeout,
            member_update_interval: config.pd_client.member_update_interval,
            caller_id,
            tasks: tasks.clone(),
            ..PdConfig::default()
        };
        let pd = match PdClient::connect(connector, pd_config).await {
            Ok(pd) => pd,
            Err(e) => {
                // Stop whatever the half-built client started.
                tasks.close();
                return Err(e.into());
            }
        };
        let cluster_id = pd.cluster_id();
        let keyspace_id = match config.api_version {
            ApiVersion::V2 => match load_keyspace_id(&pd, config.keyspace_name.as_deref()).await {
                Ok(id) => Some(id),
                Err(e) => {
                    tasks.close();
                    return Err(e);
                }
            },
            _ => None,
        };
        let pd = match keyspace_id {
            Some(id) => pd.with_codec(ApiCodec::v2(key_mode, id)),
            None => pd.with_codec(ApiCodec::v1(key_mode)),
        };
        let cache = Arc::new(RegionCache::new(
            pd.clone(),
            RegionCacheConfig {
                ttl: config.tikv_client.region_cache_ttl,
                ..RegionCacheConfig::default()
            },
        ));
        let stack = stack_config(stack, &config, cluster_id, keyspace_id);
        Ok(KvStore {
            inner: Arc::new(Inner {
                pd,
                cache,
                transport,
                config,
                key_mode,
                stack,
                cluster_id,
                keyspace_id,
                oracle: OnceLock::new(),
                tasks,
                closed: AtomicBool::new(false),
                on_close: Mutex::new(on_close),
            }),
        })
    }

    /// The stack without lock resolution (see the [module docs](self)): RawKV, and the
    /// lock resolver's own RPCs.
    pub fn plain_stack(&self) -> StoreStack {
        let i = &self.inner;
        BoxCloneSyncService::new(stack::raw(
            i.transport.clone(),
            i.cache.clone(),
            i.stack.clone(),
        ))
    }

    /// The stack with lock resolution by `resolver` (see the [module docs](self) for
    /// the construction order: the resolver is built on [`plain_stack`](Self::plain_stack)
    /// first).
    pub fn stack_with_resolver<R: LockResolver>(&self, resolver: Arc<R>) -> StoreStack {
        let i = &self.inner;
        BoxCloneSyncService::new(stack::standard(
            i.transport.clone(),
            i.cache.clone(),
            resolver,
            i.stack.clone(),
        ))
    }

    /// The TSO oracle (client-go `KVStore.GetOracle`), started on first use: its
    /// dispatcher and low-resolution updater run in the store's task registry.
    pub fn oracle(&self) -> &Oracle {
        self.inner
            .oracle
            .get_or_init(|| Oracle::new(self.inner.pd.clone(), OracleConfig::default()))
    }

    /// The PD client (client-go `KVStore.GetPDClient`), decoding regions with the store's
    /// keyspace codec.
    pub fn pd(&self) -> &PdClient {
        &self.inner.pd
    }

    /// The region cache (client-go `KVStore.GetRegionCache`).
    pub fn region_cache(&self) -> &Arc<RegionCache> {
        &self.inner.cache
    }

    /// The store transport (client-go `KVStore.GetTiKVClient`).
    pub fn transport(&self) -> &StoreTransport {
        &self.inner.transport
    }

    /// The configuration the store was built with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The stack configuration every stack of this store shares.
    pub fn stack_config(&self) -> &StackConfig {
        &self.inner.stack
    }

    /// Raw or transactional key space.
    pub fn key_mode(&self) -> KeyMode {
        self.inner.key_mode
    }

    /// The cluster id (client-go `KVStore.GetClusterID`).
    pub fn cluster_id(&self) -> u64 {
        self.inner.cluster_id
    }

    /// The keyspace id under API V2 (client-go `Codec.GetKeyspaceID`).
    pub fn keyspace_id(&self) -> Option<u32> {
        self.inner.keyspace_id
    }

    /// The API version the store speaks.
    pub fn api_version(&self) -> ApiVersion {
        self.inner.config.api_version
    }

    /// The registry of the background tasks the store started.
    pub fn tasks(&self) -> &TaskRegistry {
        &self.inner.tasks
    }

    /// Closes the store (client-go `KVStore.Close`): stops every background task it
    /// started (PD membership refresh, TSO dispatcher and updater, BatchCommands
    /// send/receive loops — their streams end), closes the oracle, and releases an
    /// embedded cluster. Idempotent. [`tasks`](Self::tasks)`().join()` waits until the
    /// aborted tasks are gone.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }
}

/// Fills the cluster- and config-derived parts of `stack`; the rest is kept as given.
fn stack_config(
    mut stack: StackConfig,
    cfg: &Config,
    cluster_id: u64,
    keyspace_id: Option<u32>,
) -> StackConfig {
    stack.route = RouteConfig {
        cluster_id,
        // A V1TTL TiKV accepts raw requests stamped V1 only (TiKV
        // `Storage::check_api_version`): V1TTL is a storage mode, not a wire version.
        api_version: match cfg.api_version {
            ApiVersion::V1 | ApiVersion::V1Ttl => kvrpcpb::ApiVersion::V1,
            ApiVersion::V2 => kvrpcpb::ApiVersion::V2,
        },
        keyspace_id,
        keyspace_name: cfg.keyspace_name.clone(),
        raft_entry_max_size: cfg.raw.raft_entry_max_size as u64,
    };
    stack.shard.concurrency = cfg.raw.shard_concurrency;
    stack.timeouts = Timeouts {
        short: cfg.tikv_client.read_timeout_short,
        medium: cfg.tikv_client.read_timeout_medium,
        max_write_execution: cfg.tikv_client.max_write_execution_time,
        ..stack.timeouts
    };
    stack
}

/// The id of keyspace `name` (0, the default keyspace, when none is named), which must
/// exist and be enabled (client-go `NewCodecV2` via `LoadKeyspace`).
async fn load_keyspace_id(pd: &PdClient, name: Option<&str>) -> Result<u32> {
    use tikv_tower_proto::keyspacepb::keyspace_meta::Keyspace;
    use tikv_tower_proto::keyspacepb::KeyspaceState;
    let name = match name {
        None | Some("") => return Ok(0),
        Some(name) => name,
    };
    let meta = pd.load_keyspace(name).await.map_err(|e| match e {
        crate::pd::PdError::Server { .. } => Error::KeyspaceNotFound(name.to_owned()),
        other => Error::Pd(other),
    })?;
    if meta.state != KeyspaceState::Enabled as i32 {
        return Err(Error::KeyspaceNotFound(name.to_owned()));
    }
    match meta.keyspace {
        Some(Keyspace::Id(id)) => Ok(id),
        Some(Keyspace::KeyspaceIdentity(k)) => Ok(k.keyspace_id),
        None => Err(Error::KeyspaceNotFound(name.to_owned())),
    }
}

/// The per-store in-flight limit a [`Config`] asks for (`tikv-client.store-limit`, client-go
/// `StoreLimit`; 0 = unlimited), enforced by the transport (`TransportError::TokenLimit`).
pub fn store_limit(cfg: &Config) -> usize {
    usize::try_from(cfg.tikv_client.store_limit).unwrap_or(usize::MAX)
}

/// The transport options a [`Config`] asks for.
pub fn grpc_options(cfg: &Config) -> crate::transport::GrpcOptions {
    let tc = &cfg.tikv_client;
    let tls = cfg.security.is_tls().then(|| crate::transport::TlsConfig {
        ca_path: cfg.security.ca_path.clone(),
        cert_path: cfg.security.cert_path.clone(),
        key_path: cfg.security.key_path.clone(),
        domain_name: None,
    });
    crate::transport::GrpcOptions {
        connection_count: tc.grpc_connection_count,
        connect_timeout: tc.dial_timeout,
        keepalive_time: tc.grpc_keepalive_time,
        keepalive_timeout: tc.grpc_keepalive_timeout,
        max_send_message_size: tc.grpc_max_send_msg_size,
        max_recv_message_size: tc.grpc_max_recv_msg_size,
        tls,
    }
}

#[cfg(test)]
mod pd_budget_tests;
#[cfg(all(test, feature = "embedded"))]
mod tests;
