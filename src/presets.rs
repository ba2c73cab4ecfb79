//! Ready-made stacks: a RawKV client in one line, with room for your own layers.
//!
//! client-go wires its pieces inside `rawkv.NewClientWithOpts` (PD client, codec PD
//! client, region cache, RPC client, region request sender). Here the same pieces are a
//! tower stack assembled by [`RawClientBuilder`]:
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

use tikv_tower_layers::call::{StoreCall, TransportError};
use tikv_tower_layers::intercept::{InterceptLayer, Interceptor};
use tikv_tower_layers::limit::RateLimitLayer;
use tikv_tower_layers::route::RouteConfig;
use tikv_tower_layers::shard::ShardConfig;
use tikv_tower_layers::stack::{self, StackConfig};
use tikv_tower_layers::timeout::Timeouts;
use tikv_tower_layers::{Request, RequestTags, Response};
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::StoreResponse;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service};

use crate::config::{ApiVersion, Config};
use crate::error::{Error, Result};
use crate::pd::{ApiCodec, KeyMode, PdClient, PdConfig, PdConnector};
use crate::raw::{RawClient, RawClientParts, RawService};
use crate::region_cache::{RegionCache, RegionCacheConfig};

type LayerFn = Box<dyn FnOnce(RawService) -> RawService + Send>;

/// The default number of stores of an embedded cluster.
pub const EMBEDDED_STORES: usize = 3;

/// Builds a [`RawClient`]: endpoints or an embedded cluster, configuration, and layers.
pub struct RawClientBuilder {
    pd_endpoints: Vec<String>,
    config: Config,
    layers: Vec<LayerFn>,
    interceptors: InterceptLayer,
    rate_limit: Option<RateLimitLayer>,
    store_rate_limit: Option<RateLimitLayer>,
    tags: RequestTags,
    production: bool,
    #[cfg(feature = "embedded")]
    cluster: Option<tikv_tower_mockstore::MockCluster>,
}

impl std::fmt::Debug for RawClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawClientBuilder")
            .field("pd_endpoints", &self.pd_endpoints)
            .field("layers", &self.layers.len())
            .field("interceptors", &self.interceptors.len())
            .field("production", &self.production)
            .finish_non_exhaustive()
    }
}

impl Default for RawClientBuilder {
    fn default() -> Self {
        RawClientBuilder {
            pd_endpoints: Vec::new(),
            config: Config::default(),
            layers: Vec::new(),
            interceptors: InterceptLayer::new(),
            rate_limit: None,
            store_rate_limit: None,
            tags: RequestTags::default(),
            production: false,
            #[cfg(feature = "embedded")]
            cluster: None,
        }
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

    /// Add a user interceptor (client-go `interceptor.RPCInterceptor`), in order.
    pub fn interceptor(mut self, interceptor: impl Interceptor) -> Self {
        self.interceptors = self.interceptors.push(interceptor);
        self
    }

    /// Limit logical operations to `quota` (governor).
    pub fn rate_limit(mut self, quota: governor::Quota) -> Self {
        self.rate_limit = Some(RateLimitLayer::new().global(quota));
        self
    }

    /// Limit RPCs to each store to `quota`.
    pub fn store_rate_limit(mut self, quota: governor::Quota) -> Self {
        self.store_rate_limit = Some(RateLimitLayer::new().per_store(quota));
        self
    }

    /// `Context.request_source` of every request (client-go `WithRequestSource`).
    pub fn request_source(mut self, source: impl Into<String>) -> Self {
        self.tags.request_source = Some(source.into());
        self
    }

    /// Resource group of every request.
    pub fn resource_group_name(mut self, name: impl Into<String>) -> Self {
        self.tags.resource_group_name = Some(name.into());
        self
    }

    /// The traced production preset: operation and RPC spans (exported to
    /// OpenTelemetry with the `otel` feature and a `tracing-opentelemetry` subscriber),
    /// request source `rawkv-tikv-tower` unless set. (`tikv-client.store-limit` applies to
    /// every client, preset or not: the transport enforces it per store.)
    pub fn production(mut self) -> Self {
        self.production = true;
        if self.tags.request_source.is_none() {
            self.tags.request_source = Some("rawkv-tikv-tower".into());
        }
        self
    }

    /// Use this in-process cluster instead of PD endpoints.
    #[cfg(feature = "embedded")]
    pub fn mock_cluster(mut self, cluster: tikv_tower_mockstore::MockCluster) -> Self {
        self.cluster = Some(cluster);
        self
    }

    /// Connect and assemble the stack.
    pub async fn build(self) -> Result<RawClient> {
        self.config.validate()?;
        #[cfg(feature = "embedded")]
        {
            let mut this = self;
            if let Some(cluster) = this.cluster.take() {
                return this.build_inproc(cluster, None).await;
            }
            if this.pd_endpoints.is_empty() {
                let cluster = embedded_cluster(&this.config);
                let keep = cluster.clone();
                return this
                    .build_inproc(cluster, Some(Box::new(move || drop(keep))))
                    .await;
            }
            this.build_grpc().await
        }
        #[cfg(not(feature = "embedded"))]
        {
            if self.pd_endpoints.is_empty() {
                return Err(Error::Config(
                    "no PD endpoints (enable feature `embedded` for an in-process cluster)".into(),
                ));
            }
            self.build_grpc().await
        }
    }

    async fn build_grpc(self) -> Result<RawClient> {
        let opts = grpc_options(&self.config);
        let connector: Arc<dyn PdConnector> =
            Arc::new(crate::pd::GrpcPdConnector::new(opts.clone()));
        let endpoints = self.pd_endpoints.clone();
        let store_limit = store_limit(&self.config);
        // client-go sends through the BatchCommands stream unless `max-batch-size` is 0.
        match self.config.tikv_client.max_batch_size {
            0 => {
                let transport =
                    crate::transport::GrpcTransport::grpc(opts).with_store_limit(store_limit);
                self.assemble(connector, endpoints, transport, None).await
            }
            max => {
                let transport = crate::transport::BatchTransport::batch(opts, max)
                    .with_store_limit(store_limit);
                self.assemble(connector, endpoints, transport, None).await
            }
        }
    }

    #[cfg(feature = "embedded")]
    async fn build_inproc(
        self,
        cluster: tikv_tower_mockstore::MockCluster,
        on_close: Option<Box<dyn FnOnce() + Send>>,
    ) -> Result<RawClient> {
        let connector: Arc<dyn PdConnector> =
            Arc::new(crate::pd::InProcPdConnector::new(cluster.clone()));
        let transport = crate::transport::InProcTransport::in_process(cluster)
            .with_store_limit(store_limit(&self.config));
        let endpoints = vec![crate::pd::inproc::INPROC_PD_URL.to_string()];
        self.assemble(connector, endpoints, transport, on_close)
            .await
    }

    async fn assemble<T>(
        self,
        connector: Arc<dyn PdConnector>,
        endpoints: Vec<String>,
        transport: T,
        on_close: Option<Box<dyn FnOnce() + Send>>,
    ) -> Result<RawClient>
    where
        T: Service<StoreCall, Response = StoreResponse, Error = TransportError>
            + Clone
            + Send
            + Sync
            + 'static,
        T::Future: Send + 'static,
    {
        let cfg = &self.config;
        let pd_config = PdConfig {
            endpoints,
            rpc_timeout: cfg.pd_client.pd_server_timeout,
            member_update_interval: cfg.pd_client.member_update_interval,
            caller_id: "rawkv-tikv-tower".into(),
            ..PdConfig::default()
        };
        let pd = PdClient::connect(connector, pd_config).await?;
        let cluster_id = pd.cluster_id();
        let (pd, keyspace_id) = match cfg.api_version {
            ApiVersion::V2 => {
                let id = match cfg.keyspace_name.as_deref() {
                    None | Some("") => 0,
                    Some(name) => {
                        let meta = pd.load_keyspace(name).await.map_err(|e| match e {
                            crate::pd::PdError::Server { .. } => {
                                Error::KeyspaceNotFound(name.to_owned())
                            }
                            other => Error::Pd(other),
                        })?;
                        use tikv_tower_proto::keyspacepb::keyspace_meta::Keyspace;
                        if meta.state != tikv_tower_proto::keyspacepb::KeyspaceState::Enabled as i32
                        {
                            return Err(Error::KeyspaceNotFound(name.to_owned()));
                        }
                        match meta.keyspace {
                            Some(Keyspace::Id(id)) => id,
                            Some(Keyspace::KeyspaceIdentity(k)) => k.keyspace_id,
                            None => return Err(Error::KeyspaceNotFound(name.to_owned())),
                        }
                    }
                };
                (pd.with_codec(ApiCodec::v2(KeyMode::Raw, id)), Some(id))
            }
            _ => (pd.with_codec(ApiCodec::v1(KeyMode::Raw)), None),
        };
        let cache = Arc::new(RegionCache::new(
            pd.clone(),
            RegionCacheConfig {
                ttl: cfg.tikv_client.region_cache_ttl,
                ..RegionCacheConfig::default()
            },
        ));
        let stack_cfg = StackConfig {
            route: RouteConfig {
                cluster_id,
                // A V1TTL TiKV accepts raw requests stamped V1 only (TiKV
                // `Storage::check_api_version`): V1TTL is a storage mode, not a wire version.
                api_version: match cfg.api_version {
                    ApiVersion::V1 | ApiVersion::V1Ttl => kvrpcpb::ApiVersion::V1,
                    ApiVersion::V2 => kvrpcpb::ApiVersion::V2,
                },
                keyspace_id,
                keyspace_name: cfg.keyspace_name.clone(),
            },
            shard: ShardConfig {
                concurrency: cfg.raw.shard_concurrency,
                ..ShardConfig::default()
            },
            timeouts: Timeouts {
                short: cfg.tikv_client.read_timeout_short,
                medium: cfg.tikv_client.read_timeout_medium,
                max_write_execution: cfg.tikv_client.max_write_execution_time,
                ..Timeouts::default()
            },
            tags: self.tags.clone(),
            interceptors: self.interceptors.clone(),
            rate_limit: self.rate_limit.clone(),
            store_rate_limit: self.store_rate_limit.clone(),
            ..StackConfig::default()
        };
        let mut service: RawService =
            BoxCloneSyncService::new(stack::raw(transport, cache.clone(), stack_cfg));
        for layer in self.layers.into_iter().rev() {
            service = layer(service);
        }
        let pd_for_close = pd.clone();
        let close: Box<dyn FnOnce() + Send> = Box::new(move || {
            drop(pd_for_close);
            if let Some(f) = on_close {
                f();
            }
        });
        RawClient::from_parts(
            service,
            RawClientParts {
                cluster_id,
                api_version: cfg.api_version,
                keyspace_id,
                config: cfg.raw.clone(),
                regions: cache,
                on_close: Some(close),
            },
        )
    }
}

/// The per-store in-flight limit a [`Config`] asks for (`tikv-client.store-limit`, client-go
/// `StoreLimit`; 0 = unlimited), enforced by the transport.
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

/// The in-process cluster [`RawClient::embedded`] starts: [`EMBEDDED_STORES`] stores, the
/// configured API version, and the configured keyspace (id 1) under API V2.
#[cfg(feature = "embedded")]
pub fn embedded_cluster(cfg: &Config) -> tikv_tower_mockstore::MockCluster {
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
    embedded_boundaries(b, cfg.api_version).build()
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
