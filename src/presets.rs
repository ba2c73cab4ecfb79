//! Ready-made stacks: a RawKV client in one line, with room for your own layers.
//!
//! client-go wires its pieces inside `rawkv.NewClientWithOpts` (PD client, codec PD
//! client, region cache, RPC client, region request sender). Here those pieces live in
//! the store core ([`crate::store::KvStore`], raw key mode), and [`RawClientBuilder`]
//! wraps the core's plain stack:
//!
//! ```text
//! user layers (RawClientBuilder::layer, outermost first)
//!   └ trace ─ rate limit ─ intercept ─ tag ─ timeout ─ shard ─ retry ─ route ─ timeout
//!       └ transport: tonic per store (PD endpoints given) or the in-process mockstore
//! ```
//!
//! - [`RawClient::connect`]`(pd_endpoints)` — the standard stack over gRPC, default
//!   [`Config`];
//! - [`RawClient::connect_with_config`] — the same with a [`Config`] (TOML-loadable);
//! - `RawClient::embedded` (feature `embedded`) — an in-process `MockCluster`, no network;
//!   `connect` with no endpoints does the same;
//! - [`RawClient::builder`] — everything above plus user layers, interceptors, rate limits,
//!   request tags, and the traced production preset ([`RawClientBuilder::production`]).
//!
//! The stack is generic all the way down and boxed once, as [`RawService`], at the public
//! boundary.
//!
//! ```no_run
//! # async fn demo() -> tikv_tower::Result<()> {
//! use tikv_tower::RawClient;
//! // One line against a cluster:
//! let client = RawClient::connect(["127.0.0.1:2379"]).await?;
//! // Or with a layer of your own wrapped around the standard stack:
//! let client = RawClient::builder()
//!     .pd_endpoints(["127.0.0.1:2379"])
//!     .layer(tower::limit::ConcurrencyLimitLayer::new(64))
//!     .build()
//!     .await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use tikv_tower_layers::intercept::Interceptor;
use tikv_tower_layers::limit::RateLimitLayer;
use tikv_tower_layers::replica::ReplicaPolicy;
use tikv_tower_layers::retry::RetryPolicy;
use tikv_tower_layers::rpc_intercept::RpcInterceptor;
use tikv_tower_layers::stack::StackConfig;
use tikv_tower_layers::{Request, Response};
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service};

use crate::config::{ApiVersion, Config};
#[cfg(not(feature = "embedded"))]
use crate::error::Error;
use crate::error::Result;
use crate::pd::KeyMode;
use crate::raw::{RawClient, RawClientParts, RawService};
use crate::store::{KvStore, StoreOptions};

type LayerFn = Box<dyn FnOnce(RawService) -> RawService + Send>;

/// The default number of stores of an embedded cluster.
pub const EMBEDDED_STORES: usize = 3;

/// Builds a [`RawClient`]: endpoints or an embedded cluster, configuration, and layers.
#[derive(Default)]
pub struct RawClientBuilder {
    pd_endpoints: Vec<String>,
    config: Config,
    layers: Vec<LayerFn>,
    /// Carried whole to the store core's stacks (tags, interceptors, rate limits,
    /// policies); the core fills the cluster- and config-derived parts.
    stack: StackConfig,
    production: bool,
    #[cfg(feature = "embedded")]
    cluster: Option<tikv_tower_mockstore::MockCluster>,
}

impl std::fmt::Debug for RawClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawClientBuilder")
            .field("pd_endpoints", &self.pd_endpoints)
            .field("layers", &self.layers.len())
            .field("interceptors", &self.stack.interceptors.len())
            .field("production", &self.production)
            .finish_non_exhaustive()
    }
}

impl RawClientBuilder {
    /// PD endpoints (`host:port`). None (and no cluster given) = embedded mockstore.
    pub fn pd_endpoints<S: Into<String>>(mut self, endpoints: impl IntoIterator<Item = S>) -> Self {
        self.pd_endpoints = endpoints.into_iter().map(Into::into).collect();
        self
    }

    /// The configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Wrap the stack in a layer of your own (request level: it sees every logical
    /// operation once, before it is split by region). Layers added first end up outermost.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<RawService> + Send + 'static,
        L::Service: Service<Request, Response = Response, Error = tikv_tower_layers::Error>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        self.layers.push(Box::new(move |inner: RawService| {
            BoxCloneSyncService::new(layer.layer(inner))
        }));
        self
    }

    /// Add an interceptor of every store RPC attempt (client-go
    /// `interceptor.RPCInterceptor`: it sees each attempt — retries and shard parts
    /// included — with its target store), in order.
    pub fn interceptor(mut self, interceptor: impl RpcInterceptor) -> Self {
        self.stack.rpc_interceptors = self.stack.rpc_interceptors.push(interceptor);
        self
    }

    /// Add a per-operation hook: it sees each logical operation once, before sharding
    /// and retries, and may refuse it.
    pub fn operation_interceptor(mut self, interceptor: impl Interceptor) -> Self {
        self.stack.interceptors = self.stack.interceptors.push(interceptor);
        self
    }

    /// The retry policy of every request (default: client-go's Backoffer and
    /// region-error matrix, `ClientGoRetry`).
    pub fn retry_policy(mut self, policy: Arc<dyn RetryPolicy>) -> Self {
        self.stack.retry = policy;
        self
    }

    /// The replica policy of every request (default: client-go's `replicaSelector`,
    /// `ClientGoSelector`).
    pub fn replica_policy(mut self, policy: Arc<dyn ReplicaPolicy>) -> Self {
        self.stack.replica = policy;
        self
    }

    /// Start from this stack configuration (policies, interceptors, limits, tags); the
    /// cluster-derived parts are filled by the store core from [`Config`] and PD.
    pub fn stack_config(mut self, stack: StackConfig) -> Self {
        self.stack = stack;
        self
    }

    /// Limit logical operations to `quota` (governor).
    pub fn rate_limit(mut self, quota: governor::Quota) -> Self {
        self.stack.rate_limit = Some(RateLimitLayer::new().global(quota));
        self
    }

    /// Limit RPCs to each store to `quota`.
    pub fn store_rate_limit(mut self, quota: governor::Quota) -> Self {
        self.stack.store_rate_limit = Some(RateLimitLayer::new().per_store(quota));
        self
    }

    /// `Context.request_source` of every request (client-go `WithRequestSource`).
    pub fn request_source(mut self, source: impl Into<String>) -> Self {
        self.stack.tags.request_source = Some(source.into());
        self
    }

    /// Resource group of every request.
    pub fn resource_group_name(mut self, name: impl Into<String>) -> Self {
        self.stack.tags.resource_group_name = Some(name.into());
        self
    }

    /// The traced production preset: operation and RPC spans (exported to
    /// OpenTelemetry with the `otel` feature and a `tracing-opentelemetry` subscriber),
    /// request source `rawkv-tikv-tower` unless set. (`tikv-client.store-limit` applies to
    /// every client, preset or not: the transport enforces it per store.)
    pub fn production(mut self) -> Self {
        self.production = true;
        if self.stack.tags.request_source.is_none() {
            self.stack.tags.request_source = Some("rawkv-tikv-tower".into());
        }
        self
    }

    /// Use this in-process cluster instead of PD endpoints.
    #[cfg(feature = "embedded")]
    pub fn mock_cluster(mut self, cluster: tikv_tower_mockstore::MockCluster) -> Self {
        self.cluster = Some(cluster);
        self
    }

    /// Connect: build the store core (raw key mode) and the client on its plain stack.
    pub async fn build(self) -> Result<RawClient> {
        self.config.validate()?;
        let options = StoreOptions {
            config: self.config.clone(),
            key_mode: KeyMode::Raw,
            stack: self.stack.clone(),
            caller_id: "rawkv-tikv-tower".into(),
        };
        #[cfg(feature = "embedded")]
        {
            let mut this = self;
            let cluster = match this.cluster.take() {
                Some(cluster) => Some(cluster),
                None if this.pd_endpoints.is_empty() => Some(embedded_cluster(&this.config)),
                None => None,
            };
            let store = match cluster {
                Some(cluster) => KvStore::in_process(cluster, options).await?,
                None => KvStore::connect(this.pd_endpoints.clone(), options).await?,
            };
            this.client_on(store)
        }
        #[cfg(not(feature = "embedded"))]
        {
            if self.pd_endpoints.is_empty() {
                return Err(Error::Config(
                    "no PD endpoints (enable feature `embedded` for an in-process cluster)".into(),
                ));
            }
            let store = KvStore::connect(self.pd_endpoints.clone(), options).await?;
            self.client_on(store)
        }
    }

    /// The client on `store`'s plain stack, wrapped in the user layers.
    fn client_on(self, store: KvStore) -> Result<RawClient> {
        let cfg = store.config().clone();
        let mut service: RawService = store.plain_stack();
        for layer in self.layers.into_iter().rev() {
            service = layer(service);
        }
        RawClient::from_parts(
            service,
            RawClientParts {
                cluster_id: store.cluster_id(),
                api_version: cfg.api_version,
                keyspace_id: store.keyspace_id(),
                config: cfg.raw.clone(),
                regions: store.region_cache().clone(),
                on_close: None,
                store: Some(store),
            },
        )
    }
}

/// The transport options a [`Config`] asks for (see [`crate::store::grpc_options`]).
pub use crate::store::grpc_options;
/// The per-store in-flight limit a [`Config`] asks for (see [`crate::store::store_limit`]).
pub use crate::store::store_limit;

/// The in-process cluster [`RawClient::embedded`] starts: [`EMBEDDED_STORES`] stores, the
/// configured API version, and the configured keyspace (id 1) under API V2.
#[cfg(feature = "embedded")]
pub fn embedded_cluster(cfg: &Config) -> tikv_tower_mockstore::MockCluster {
    embedded_cluster_for(cfg, KeyMode::Raw)
}

/// The in-process cluster of an embedded client of key mode `mode`: as
/// [`embedded_cluster`], with region boundaries as TiKV keeps them for that key space
/// (transactional keys are always memcomparable-encoded).
#[cfg(feature = "embedded")]
pub fn embedded_cluster_for(cfg: &Config, mode: KeyMode) -> tikv_tower_mockstore::MockCluster {
    use tikv_tower_mockstore::cluster::ApiVersion as MockApi;
    let mut b = tikv_tower_mockstore::MockCluster::builder()
        .stores(EMBEDDED_STORES)
        .api_version(match cfg.api_version {
            ApiVersion::V1 => MockApi::V1,
            ApiVersion::V1Ttl => MockApi::V1Ttl,
            ApiVersion::V2 => MockApi::V2,
        });
    if let Some(name) = cfg.keyspace_name.as_deref().filter(|n| !n.is_empty()) {
        b = b.keyspace(name, 1);
    }
    match mode {
        // Transactional keys are memcomparable in every API version (as all keys in V2).
        KeyMode::Txn => embedded_boundaries(b, ApiVersion::V2).build(),
        KeyMode::Raw => embedded_boundaries(b, cfg.api_version).build(),
    }
}

/// Region boundaries as a RawKV client of `api` expects them from PD: raw keys under API
/// V1 (client-go `codecV1` raw mode), memcomparable under API V2.
#[cfg(feature = "embedded")]
pub fn embedded_boundaries(
    b: tikv_tower_mockstore::MockClusterBuilder,
    api: ApiVersion,
) -> tikv_tower_mockstore::MockClusterBuilder {
    use tikv_tower_mockstore::cluster::BoundaryEncoding;
    match api {
        ApiVersion::V2 => b.boundary_encoding(BoundaryEncoding::Memcomparable),
        _ => b.boundary_encoding(BoundaryEncoding::Raw),
    }
}

impl RawClient {
    /// A builder for clients with custom configuration or layers.
    pub fn builder() -> RawClientBuilder {
        RawClientBuilder::default()
    }

    /// Connect to the cluster behind `pd_endpoints` with the default configuration
    /// (client-go `rawkv.NewClient`). No endpoints = the embedded mockstore (feature
    /// `embedded`).
    pub async fn connect<S: Into<String>>(
        pd_endpoints: impl IntoIterator<Item = S>,
    ) -> Result<RawClient> {
        Self::builder().pd_endpoints(pd_endpoints).build().await
    }

    /// Connect with a configuration (client-go `rawkv.NewClientWithOpts`).
    pub async fn connect_with_config<S: Into<String>>(
        pd_endpoints: impl IntoIterator<Item = S>,
        config: Config,
    ) -> Result<RawClient> {
        Self::builder()
            .pd_endpoints(pd_endpoints)
            .config(config)
            .build()
            .await
    }

    /// A client over a fresh in-process cluster (three stores, API V1): no network, no
    /// setup. The cluster lives until the client is closed or dropped.
    #[cfg(feature = "embedded")]
    pub async fn embedded() -> Result<RawClient> {
        Self::builder().build().await
    }

    /// A client over `cluster`, in-process.
    #[cfg(feature = "embedded")]
    pub async fn with_mock_cluster(
        cluster: tikv_tower_mockstore::MockCluster,
        config: Config,
    ) -> Result<RawClient> {
        Self::builder()
            .config(config)
            .mock_cluster(cluster)
            .build()
            .await
    }
}
