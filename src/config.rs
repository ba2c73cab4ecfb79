//! Client configuration: explicit values, deserialisable from TOML with client-go's knob names.
//!
//! client-go keeps one global, mutable `config.Config` (`config/config.go`,
//! `config/client.go`, `config/security.go`) read from everywhere. Here configuration is a
//! plain value handed to the constructors (`RawClient::connect_with_config`, presets), so two
//! clients in one process can differ and tests never race on a global.
//!
//! The TOML layout follows client-go (and TiDB's `[tikv-client]` section) where a knob
//! applies:
//!
//! ```toml
//! api-version = "V2"
//! keyspace-name = "tenant-a"
//!
//! [tikv-client]
//! grpc-connection-count = 4
//! grpc-keepalive-time = 10        # seconds, like client-go
//! grpc-keepalive-timeout = 3.0    # seconds
//! max-batch-size = 128
//! region-cache-ttl = 600
//! commit-timeout = "41s"
//!
//! [pd-client]
//! pd-server-timeout = 3
//!
//! [security]
//! ca-path = "/etc/tikv/ca.pem"    # client-go: cluster-ssl-ca (accepted too)
//! cert-path = "/etc/tikv/client.pem"
//! key-path = "/etc/tikv/client-key.pem"
//!
//! [raw]
//! atomic-for-cas = false
//! ```
//!
//! Durations accept either a number in client-go's unit for that knob (seconds for
//! `grpc-keepalive-time`, nanoseconds for `max-batch-wait-time`, ...) or a string with a unit
//! (`"500ms"`, `"41s"`, `"1m30s"`).
//!
//! ```
//! use tikv_tower::config::Config;
//! let cfg = Config::from_toml_str("[tikv-client]\ngrpc-connection-count = 8\n").unwrap();
//! assert_eq!(cfg.tikv_client.grpc_connection_count, 8);
//! assert_eq!(cfg.pd_client.pd_server_timeout.as_secs(), 3);
//! ```
//!
//! # client-go parity (`config` package)
//!
//! `Config`, `TiKVClient`, `PDClient`, `Security` (+`NewSecurity`), `TxnLocalLatches`,
//! `AsyncCommit`, `DefaultConfig`/`DefaultTiKVClient`/`DefaultPDClient` (the `Default`
//! impls), `*.Valid` (`validate`), `ParsePath` ([`Config::parse_path`]), `BatchPolicy*`
//! ([`BatchPolicy`]) map one to one. `GetGlobalConfig` / `StoreGlobalConfig` /
//! `UpdateGlobal` have no counterpart (no global state by design). Coprocessor cache,
//! TiFlash and RU knobs are out of scope for now; `config/retry` (`Bo*`, `Backoffer`) lives
//! in `tikv_tower_layers::retry`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The wire API version the cluster runs (kvrpcpb `APIVersion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ApiVersion {
    /// API V1: raw keys unprefixed, raw and transactional data must not mix.
    #[default]
    #[serde(alias = "v1", alias = "1")]
    V1,
    /// API V1 with TTL support on raw keys.
    #[serde(rename = "V1TTL", alias = "v1ttl", alias = "V1Ttl")]
    V1Ttl,
    /// API V2: every key carries a mode byte and a keyspace id (`'r' + id` for raw keys).
    #[serde(alias = "v2", alias = "2")]
    V2,
}

impl ApiVersion {
    /// The kvrpcpb enum value stamped into each request's `Context.api_version`: a V1TTL
    /// TiKV takes raw requests stamped V1 (TiKV `Storage::check_api_version`).
    pub fn as_proto(self) -> i32 {
        match self {
            ApiVersion::V1 | ApiVersion::V1Ttl => 0,
            ApiVersion::V2 => 2,
        }
    }
}

/// The whole client configuration (client-go `config.Config`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// Store-client knobs (client-go `TiKVClient`, TOML `[tikv-client]`).
    pub tikv_client: TikvClientConfig,
    /// PD client knobs (client-go `PDClient`, TOML `[pd-client]`).
    pub pd_client: PdClientConfig,
    /// TLS material (client-go `Security`, TOML `[security]`).
    pub security: SecurityConfig,
    /// Local latches for transactions (client-go `TxnLocalLatches`).
    pub txn_local_latches: TxnLocalLatchesConfig,
    /// RawKV client behaviour (no client-go section: client-go hard-codes these).
    pub raw: RawConfig,
    /// Wire API version (client-go `rawkv.WithAPIVersion`).
    pub api_version: ApiVersion,
    /// Keyspace to work in under API V2 (client-go `rawkv.WithKeyspace`, `keyspaceName`
    /// in the `tikv://` path). `None` means the default keyspace (id 0).
    pub keyspace_name: Option<String>,
    /// Concurrency of the 2PC committer (client-go `CommitterConcurrency`).
    pub committer_concurrency: usize,
    /// Max TTL of a transaction's locks (client-go `MaxTxnTTL`, milliseconds).
    pub max_txn_ttl: u64,
    /// How often store addresses are refreshed (client-go `StoresRefreshInterval`, seconds).
    #[serde(with = "secs")]
    pub stores_refresh_interval: Duration,
    /// Forward requests through a follower when the leader is unreachable
    /// (client-go `EnableForwarding`).
    pub enable_forwarding: bool,
    /// Enable async commit for transactions (client-go `EnableAsyncCommit`).
    pub enable_async_commit: bool,
    /// Enable one-phase commit (client-go `Enable1PC`).
    #[serde(rename = "enable-1pc")]
    pub enable_1pc: bool,
    /// The client's `zone` label, used by replica selection (client-go `ZoneLabel`).
    pub zone_label: String,
}

impl Default for Config {
    /// client-go `DefaultConfig()`.
    fn default() -> Self {
        Config {
            tikv_client: TikvClientConfig::default(),
            pd_client: PdClientConfig::default(),
            security: SecurityConfig::default(),
            txn_local_latches: TxnLocalLatchesConfig::default(),
            raw: RawConfig::default(),
            api_version: ApiVersion::V1,
            keyspace_name: None,
            committer_concurrency: 128,
            max_txn_ttl: 60 * 60 * 1000,
            stores_refresh_interval: Duration::from_secs(60),
            enable_forwarding: false,
            enable_async_commit: false,
            enable_1pc: false,
            zone_label: String::new(),
        }
    }
}

impl Config {
    /// Parse a TOML document (missing knobs keep their defaults; unknown knobs are errors).
    pub fn from_toml_str(s: &str) -> Result<Self> {
        let cfg: Config = toml::from_str(s).map_err(|e| Error::Config(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Read and parse a TOML file.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
        Self::from_toml_str(&text)
    }

    /// Render as TOML (all knobs, defaults included).
    pub fn to_toml_string(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::Config(e.to_string()))
    }

    /// Check the knobs client-go checks (`TiKVClient.Valid`, `PDClient.Valid`,
    /// `TxnLocalLatches.Valid`) and ours.
    pub fn validate(&self) -> Result<()> {
        self.tikv_client.validate()?;
        self.pd_client.validate()?;
        self.txn_local_latches.validate()?;
        self.raw.validate()?;
        if self.api_version != ApiVersion::V2
            && self.keyspace_name.as_deref().is_some_and(|k| !k.is_empty())
        {
            return Err(Error::Config(
                "keyspace-name requires api-version = \"V2\"".into(),
            ));
        }
        Ok(())
    }

    /// Set the API version.
    pub fn with_api_version(mut self, v: ApiVersion) -> Self {
        self.api_version = v;
        self
    }

    /// Work in the named keyspace (implies API V2).
    pub fn with_keyspace(mut self, name: impl Into<String>) -> Self {
        self.api_version = ApiVersion::V2;
        self.keyspace_name = Some(name.into());
        self
    }

    /// Set the TLS material.
    pub fn with_security(mut self, security: SecurityConfig) -> Self {
        self.security = security;
        self
    }

    /// Set the store-client knobs.
    pub fn with_tikv_client(mut self, c: TikvClientConfig) -> Self {
        self.tikv_client = c;
        self
    }

    /// Set the PD client knobs.
    pub fn with_pd_client(mut self, c: PdClientConfig) -> Self {
        self.pd_client = c;
        self
    }

    /// Set the RawKV knobs.
    pub fn with_raw(mut self, c: RawConfig) -> Self {
        self.raw = c;
        self
    }

    /// Parse client-go's `tikv://pd1:2379,pd2:2379?keyspaceName=x&disableGC=true` path
    /// (client-go `config.ParsePath`): PD endpoints, disable-GC flag, keyspace name.
    pub fn parse_path(path: &str) -> Result<ParsedPath> {
        let rest = path
            .strip_prefix("tikv://")
            .or_else(|| path.strip_prefix("TIKV://"))
            .ok_or_else(|| Error::Config(format!("uri scheme expected [tikv] in {path:?}")))?;
        let (hosts, query) = rest.split_once('?').unwrap_or((rest, ""));
        let hosts = hosts.trim_end_matches('/');
        let mut parsed = ParsedPath {
            pd_endpoints: hosts
                .split(',')
                .filter(|h| !h.is_empty())
                .map(str::to_owned)
                .collect(),
            disable_gc: false,
            keyspace_name: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "keyspaceName" if !v.is_empty() => parsed.keyspace_name = Some(v.to_owned()),
                "disableGC" => {
                    parsed.disable_gc = match v.to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" | "" => false,
                        _ => {
                            return Err(Error::Config("disableGC flag should be true/false".into()))
                        }
                    }
                }
                _ => {}
            }
        }
        if parsed.pd_endpoints.is_empty() {
            return Err(Error::Config(format!("no PD endpoint in {path:?}")));
        }
        Ok(parsed)
    }
}

/// The result of [`Config::parse_path`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPath {
    /// PD endpoints (`host:port`).
    pub pd_endpoints: Vec<String>,
    /// The `disableGC` flag.
    pub disable_gc: bool,
    /// The `keyspaceName` parameter.
    pub keyspace_name: Option<String>,
}

/// How requests are batched on the batch-commands stream (client-go `BatchPolicy*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchPolicy {
    /// Behaviour of versions before v8.3.0.
    Basic,
    /// Batch by the arrival interval of recent requests (client-go default).
    #[default]
    Standard,
    /// Always batch more.
    Positive,
    /// User-tuned batching.
    Custom,
}

/// gRPC compression (client-go `grpc-compression-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// No compression.
    #[default]
    None,
    /// gzip.
    Gzip,
}

/// Store-client knobs (client-go `config.TiKVClient`, defaults of `DefaultTiKVClient()`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct TikvClientConfig {
    /// gRPC connections per store (client-go `GrpcConnectionCount`, default 4).
    pub grpc_connection_count: usize,
    /// Idle time before a keep-alive ping (client-go `GrpcKeepAliveTime`, seconds, default 10).
    #[serde(with = "secs")]
    pub grpc_keepalive_time: Duration,
    /// Wait for the ping's ack (client-go `GrpcKeepAliveTimeout`, seconds, default 3).
    #[serde(with = "secs")]
    pub grpc_keepalive_timeout: Duration,
    /// Compression of store RPCs (client-go `GrpcCompressionType`).
    pub grpc_compression_type: Compression,
    /// Initial HTTP/2 stream window (client-go `GrpcInitialWindowSize`, 128 MiB).
    pub grpc_initial_window_size: u32,
    /// Initial HTTP/2 connection window (client-go `GrpcInitialConnWindowSize`, 128 MiB).
    pub grpc_initial_conn_window_size: u32,
    /// Max size of a decoded gRPC message (client-go dials with `MaxCallRecvMsgSize`
    /// `math.MaxInt32`).
    pub grpc_max_recv_msg_size: usize,
    /// Max size of an encoded gRPC message.
    pub grpc_max_send_msg_size: usize,
    /// Timeout of dialing a store (client-go `dialTimeout`, 5s).
    #[serde(with = "secs")]
    pub dial_timeout: Duration,
    /// Per-RPC timeout for requests touching a few keys (client-go `ReadTimeoutShort`, 30s).
    #[serde(with = "secs")]
    pub read_timeout_short: Duration,
    /// Per-RPC timeout for requests that may scan a region (client-go `ReadTimeoutMedium`, 60s).
    #[serde(with = "secs")]
    pub read_timeout_medium: Duration,
    /// `max_execution_duration_ms` stamped on writes (client-go `MaxWriteExecutionTime`, 20s).
    #[serde(with = "secs")]
    pub max_write_execution_time: Duration,
    /// Max time a commit waits (client-go `CommitTimeout`, "41s").
    #[serde(with = "secs")]
    pub commit_timeout: Duration,
    /// Async-commit limits (client-go `AsyncCommit`).
    pub async_commit: AsyncCommitConfig,
    /// Batching policy of the batch-commands stream (client-go `BatchPolicy`).
    pub batch_policy: BatchPolicy,
    /// Max requests per BatchCommands message (client-go `MaxBatchSize`, 128; 0 disables).
    pub max_batch_size: usize,
    /// Store load above which the client waits to batch more (client-go `OverloadThreshold`).
    pub overload_threshold: u64,
    /// Max wait to fill a batch (client-go `MaxBatchWaitTime`, nanoseconds, default 0).
    #[serde(with = "nanos")]
    pub max_batch_wait_time: Duration,
    /// Batch size worth waiting for (client-go `BatchWaitSize`, 8).
    pub batch_wait_size: usize,
    /// Idle time after which a cached region is reloaded (client-go `RegionCacheTTL`, 600s).
    #[serde(with = "secs")]
    pub region_cache_ttl: Duration,
    /// Max in-flight RPCs per store, 0 = unlimited (client-go `StoreLimit`); the transport
    /// refuses one over the limit with `TransportError::TokenLimit` (client-go `ErrTokenLimit`).
    pub store_limit: u64,
    /// Timeout of a store liveness probe (client-go `StoreLivenessTimeout`, "1s").
    #[serde(with = "secs")]
    pub store_liveness_timeout: Duration,
    /// Timeout of one coprocessor request (client-go `CoprReqTimeout`, 60s).
    #[serde(with = "secs")]
    pub copr_req_timeout: Duration,
    /// Transactions larger than this keep their primary lock alive (client-go
    /// `TTLRefreshedTxnSize`, 32 MiB).
    pub ttl_refreshed_txn_size: u64,
    /// Lock count below which resolve-lock-lite is used (client-go `ResolveLockLiteThreshold`).
    pub resolve_lock_lite_threshold: u64,
    /// Max concurrent requests to TiKV overall (client-go `MaxConcurrencyRequestLimit`).
    pub max_concurrency_request_limit: u64,
}

impl Default for TikvClientConfig {
    fn default() -> Self {
        TikvClientConfig {
            grpc_connection_count: 4,
            grpc_keepalive_time: Duration::from_secs(10),
            grpc_keepalive_timeout: Duration::from_secs(3),
            grpc_compression_type: Compression::None,
            grpc_initial_window_size: 1 << 27,
            grpc_initial_conn_window_size: 1 << 27,
            grpc_max_recv_msg_size: i32::MAX as usize,
            grpc_max_send_msg_size: i32::MAX as usize,
            dial_timeout: Duration::from_secs(5),
            read_timeout_short: Duration::from_secs(30),
            read_timeout_medium: Duration::from_secs(60),
            max_write_execution_time: Duration::from_secs(20),
            commit_timeout: Duration::from_secs(41),
            async_commit: AsyncCommitConfig::default(),
            batch_policy: BatchPolicy::Standard,
            max_batch_size: 128,
            overload_threshold: 200,
            max_batch_wait_time: Duration::ZERO,
            batch_wait_size: 8,
            region_cache_ttl: Duration::from_secs(600),
            store_limit: 0,
            store_liveness_timeout: Duration::from_secs(1),
            copr_req_timeout: Duration::from_secs(60),
            ttl_refreshed_txn_size: 32 * 1024 * 1024,
            resolve_lock_lite_threshold: 512,
            max_concurrency_request_limit: i64::MAX as u64,
        }
    }
}

impl TikvClientConfig {
    /// client-go `TiKVClient.Valid`.
    pub fn validate(&self) -> Result<()> {
        if self.grpc_connection_count == 0 {
            return Err(Error::Config(
                "grpc-connection-count should be greater than 0".into(),
            ));
        }
        if self.grpc_keepalive_timeout < Duration::from_millis(50) {
            return Err(Error::Config(format!(
                "grpc-keepalive-timeout should be at least 0.05, but got {:?}",
                self.grpc_keepalive_timeout
            )));
        }
        if self.read_timeout_short.is_zero() || self.read_timeout_medium.is_zero() {
            return Err(Error::Config("read timeouts must be greater than 0".into()));
        }
        Ok(())
    }
}

/// Async-commit limits (client-go `config.AsyncCommit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct AsyncCommitConfig {
    /// Use async commit only up to this many keys (256).
    pub keys_limit: usize,
    /// ... and up to this total key size (4 KiB).
    pub total_key_size_limit: u64,
    /// Safe window for committing with an old schema (2s).
    #[serde(with = "nanos")]
    pub safe_window: Duration,
    /// Allowed clock drift added to the safe window (500ms).
    #[serde(with = "nanos")]
    pub allowed_clock_drift: Duration,
}

impl Default for AsyncCommitConfig {
    fn default() -> Self {
        AsyncCommitConfig {
            keys_limit: 256,
            total_key_size_limit: 4 * 1024,
            safe_window: Duration::from_secs(2),
            allowed_clock_drift: Duration::from_millis(500),
        }
    }
}

/// PD client knobs (client-go `config.PDClient` plus the PD client's own options).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct PdClientConfig {
    /// Max wait for a PD reply (client-go `PDServerTimeout`, seconds, default 3).
    #[serde(with = "secs")]
    pub pd_server_timeout: Duration,
    /// How often PD members are refreshed to follow the leader (pd client
    /// `memberUpdateInterval`, 10s).
    #[serde(with = "secs")]
    pub member_update_interval: Duration,
    /// Max TSO requests in one `TsoRequest` (pd client `maxMergeTSORequests`, 10000).
    pub max_tso_batch_size: u32,
}

impl Default for PdClientConfig {
    fn default() -> Self {
        PdClientConfig {
            pd_server_timeout: Duration::from_secs(3),
            member_update_interval: Duration::from_secs(10),
            max_tso_batch_size: 10000,
        }
    }
}

impl PdClientConfig {
    /// client-go `PDClient.Valid`.
    pub fn validate(&self) -> Result<()> {
        if self.pd_server_timeout.is_zero() {
            return Err(Error::Config("pd-server-timeout can not be 0".into()));
        }
        if self.max_tso_batch_size == 0 {
            return Err(Error::Config("max-tso-batch-size can not be 0".into()));
        }
        Ok(())
    }
}

/// TLS material (client-go `config.Security`). Paths are read when a connection is made,
/// so rotated certificates are picked up on reconnect.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct SecurityConfig {
    /// PEM CA bundle (client-go `ClusterSSLCA`). Empty = plaintext.
    #[serde(alias = "cluster-ssl-ca", skip_serializing_if = "Option::is_none")]
    pub ca_path: Option<PathBuf>,
    /// PEM client certificate (client-go `ClusterSSLCert`).
    #[serde(alias = "cluster-ssl-cert", skip_serializing_if = "Option::is_none")]
    pub cert_path: Option<PathBuf>,
    /// PEM client key (client-go `ClusterSSLKey`).
    #[serde(alias = "cluster-ssl-key", skip_serializing_if = "Option::is_none")]
    pub key_path: Option<PathBuf>,
    /// Accepted certificate common names (client-go `ClusterVerifyCN`).
    #[serde(alias = "cluster-verify-cn")]
    pub verify_cn: Vec<String>,
}

impl SecurityConfig {
    /// client-go `config.NewSecurity`.
    pub fn new(ca: impl Into<PathBuf>, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        SecurityConfig {
            ca_path: Some(ca.into()),
            cert_path: Some(cert.into()),
            key_path: Some(key.into()),
            verify_cn: Vec::new(),
        }
    }

    /// Whether TLS is configured (a CA is given).
    pub fn is_tls(&self) -> bool {
        self.ca_path
            .as_ref()
            .is_some_and(|p| !p.as_os_str().is_empty())
    }
}

/// Local latches (client-go `config.TxnLocalLatches`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct TxnLocalLatchesConfig {
    /// Whether local latches are used.
    pub enabled: bool,
    /// Number of latch slots.
    pub capacity: usize,
}

impl TxnLocalLatchesConfig {
    /// client-go `TxnLocalLatches.Valid`.
    pub fn validate(&self) -> Result<()> {
        if self.enabled && self.capacity == 0 {
            return Err(Error::Config(
                "txn-local-latches.capacity can not be 0".into(),
            ));
        }
        Ok(())
    }
}

/// RawKV behaviour; client-go hard-codes these in `rawkv/rawkv.go`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawConfig {
    /// Largest allowed scan limit (client-go `MaxRawKVScanLimit`, 10240).
    pub max_scan_limit: u32,
    /// Keys per RawBatchGet / RawBatchDelete RPC (client-go `rawBatchPairCount`, 512).
    pub batch_pair_count: usize,
    /// Bytes per RawBatchPut RPC (client-go `rawBatchPutSize`, 16 KiB).
    pub batch_put_size: usize,
    /// Nominal backoff budget of one raw operation (client-go `rawkvMaxBackoff`, 20000 ms);
    /// like client-go, the client stretches it by the backoff weight (2), so an operation
    /// sleeps at most 40 s in all.
    #[serde(with = "millis")]
    pub max_backoff: Duration,
    /// Largest key+value entry accepted (TiKV `raft-entry-max-size`, 8 MiB); larger entries
    /// are rejected before sending.
    pub raft_entry_max_size: usize,
    /// Longest key accepted (TiKV `storage.max-key-size`, 8 KiB); at most
    /// `raft_entry_max_size`.
    pub max_key_size: usize,
    /// Atomic mode: writes go through TiKV's CAS path (client-go `SetAtomicForCAS`).
    pub atomic_for_cas: bool,
    /// Default column family (client-go `SetColumnFamily`), empty = `default`.
    pub column_family: String,
    /// Max regions a multi-region raw request works on at once.
    pub shard_concurrency: usize,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            max_scan_limit: 10240,
            batch_pair_count: 512,
            batch_put_size: 16 * 1024,
            max_backoff: Duration::from_millis(20000),
            raft_entry_max_size: 8 * 1024 * 1024,
            max_key_size: 8 * 1024,
            atomic_for_cas: false,
            column_family: String::new(),
            shard_concurrency: 16,
        }
    }
}

impl RawConfig {
    /// Reject knobs that would make every request fail.
    pub fn validate(&self) -> Result<()> {
        if self.max_scan_limit == 0 || self.batch_pair_count == 0 || self.batch_put_size == 0 {
            return Err(Error::Config(
                "raw.max-scan-limit, raw.batch-pair-count and raw.batch-put-size must be > 0"
                    .into(),
            ));
        }
        if self.shard_concurrency == 0 {
            return Err(Error::Config("raw.shard-concurrency must be > 0".into()));
        }
        // A key is part of an entry, so it can never be longer than one; the reverse scan's
        // upper bound is also `max_key_size + 1` bytes long.
        if self.max_key_size == 0 || self.max_key_size > self.raft_entry_max_size {
            return Err(Error::Config(format!(
                "raw.max-key-size must be in 1..=raw.raft-entry-max-size ({}), got {}",
                self.raft_entry_max_size, self.max_key_size
            )));
        }
        crate::raw::ColumnFamily::parse(&self.column_family).map(|_| ())
    }
}

/// Parse `"1m30s"`, `"500ms"`, `"41s"`, `"2h"`, `"1.5s"`, `"100us"`, `"10ns"`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += n * scale;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// Serde glue for durations: a number in a fixed unit, or a string with units.
mod unit {
    use std::time::Duration;

    use serde::de::{self, Visitor};
    use serde::Deserializer;

    pub struct DurVisitor(pub f64);

    impl Visitor<'_> for DurVisitor {
        type Value = Duration;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a non-negative number or a duration string like \"500ms\"")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            self.visit_f64(v as f64)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            self.visit_f64(v as f64)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
            Duration::try_from_secs_f64(v * self.0)
                .map_err(|_| E::custom(format!("invalid duration {v}")))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            super::parse_duration(v).ok_or_else(|| E::custom(format!("invalid duration {v:?}")))
        }
    }

    pub fn de<'de, D: Deserializer<'de>>(d: D, scale: f64) -> Result<Duration, D::Error> {
        d.deserialize_any(DurVisitor(scale))
    }
}

macro_rules! duration_unit {
    ($name:ident, $scale:expr, $to:expr) => {
        mod $name {
            use std::time::Duration;
            pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
                #[allow(clippy::redundant_closure_call)]
                let v: u64 = ($to)(d);
                s.serialize_u64(v)
            }
            pub fn deserialize<'de, D: serde::Deserializer<'de>>(
                d: D,
            ) -> Result<Duration, D::Error> {
                super::unit::de(d, $scale)
            }
        }
    };
}

duration_unit!(secs, 1.0, |d: &Duration| d.as_secs());
duration_unit!(millis, 1e-3, |d: &Duration| d.as_millis() as u64);
duration_unit!(nanos, 1e-9, |d: &Duration| d.as_nanos() as u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_client_go() {
        let c = Config::default();
        assert_eq!(c.tikv_client.grpc_connection_count, 4);
        assert_eq!(c.tikv_client.grpc_keepalive_time, Duration::from_secs(10));
        assert_eq!(c.tikv_client.grpc_keepalive_timeout, Duration::from_secs(3));
        assert_eq!(c.tikv_client.max_batch_size, 128);
        assert_eq!(c.tikv_client.region_cache_ttl, Duration::from_secs(600));
        assert_eq!(c.tikv_client.commit_timeout, Duration::from_secs(41));
        assert_eq!(c.pd_client.pd_server_timeout, Duration::from_secs(3));
        assert_eq!(c.raw.max_scan_limit, 10240);
        assert_eq!(c.raw.max_backoff, Duration::from_millis(20000));
        assert_eq!(c.committer_concurrency, 128);
        c.validate().unwrap();
    }

    #[test]
    fn parses_client_go_knob_names() {
        let cfg = Config::from_toml_str(
            r#"
            api-version = "V2"
            keyspace-name = "ks1"
            [tikv-client]
            grpc-connection-count = 16
            grpc-keepalive-time = 20
            grpc-keepalive-timeout = 0.5
            max-batch-size = 64
            max-batch-wait-time = 2000000
            commit-timeout = "1m30s"
            [tikv-client.async-commit]
            keys-limit = 10
            [pd-client]
            pd-server-timeout = "250ms"
            [security]
            cluster-ssl-ca = "/ca.pem"
            cert-path = "/cert.pem"
            key-path = "/key.pem"
            [txn-local-latches]
            enabled = true
            capacity = 1024
            [raw]
            atomic-for-cas = true
            column-family = "write"
            "#,
        )
        .unwrap();
        assert_eq!(cfg.api_version, ApiVersion::V2);
        assert_eq!(cfg.keyspace_name.as_deref(), Some("ks1"));
        assert_eq!(cfg.tikv_client.grpc_connection_count, 16);
        assert_eq!(cfg.tikv_client.grpc_keepalive_time, Duration::from_secs(20));
        assert_eq!(
            cfg.tikv_client.grpc_keepalive_timeout,
            Duration::from_millis(500)
        );
        assert_eq!(cfg.tikv_client.max_batch_size, 64);
        assert_eq!(
            cfg.tikv_client.max_batch_wait_time,
            Duration::from_millis(2)
        );
        assert_eq!(cfg.tikv_client.commit_timeout, Duration::from_secs(90));
        assert_eq!(cfg.tikv_client.async_commit.keys_limit, 10);
        assert_eq!(cfg.pd_client.pd_server_timeout, Duration::from_millis(250));
        assert_eq!(cfg.security.ca_path.as_deref(), Some(Path::new("/ca.pem")));
        assert!(cfg.security.is_tls());
        assert!(cfg.txn_local_latches.enabled);
        assert!(cfg.raw.atomic_for_cas);
        assert_eq!(cfg.raw.column_family, "write");
    }

    #[test]
    fn round_trips_through_toml() {
        let cfg = Config::default().with_keyspace("a");
        let text = cfg.to_toml_string().unwrap();
        assert_eq!(Config::from_toml_str(&text).unwrap(), cfg);
    }

    #[test]
    fn invalid_configs_are_typed_errors() {
        let cases = [
            "[tikv-client]\ngrpc-connection-count = 0",
            "[tikv-client]\ngrpc-keepalive-timeout = 0.01",
            "[pd-client]\npd-server-timeout = 0",
            "[txn-local-latches]\nenabled = true",
            "keyspace-name = \"x\"",
            "[raw]\ncolumn-family = \"nope\"",
            "[raw]\nmax-scan-limit = 0",
            "[raw]\nmax-key-size = 0",
            "[raw]\nmax-key-size = 9000000",
            "[raw]\nmax-key-size = 4096\nraft-entry-max-size = 1024",
            "no-such-knob = 1",
            "[tikv-client]\ncommit-timeout = \"ten\"",
            "api-version = \"V9\"",
        ];
        for case in cases {
            let err = Config::from_toml_str(case).unwrap_err();
            assert!(err.is_invalid_argument(), "{case}: {err:?}");
        }
    }

    #[test]
    fn durations() {
        let table = [
            ("41s", Some(41_000)),
            ("500ms", Some(500)),
            ("1m30s", Some(90_000)),
            ("1.5s", Some(1500)),
            ("2h", Some(7_200_000)),
            ("0", Some(0)),
            ("", None),
            ("5", None),
            ("s", None),
            ("3 days", None),
        ];
        for (s, want) in table {
            assert_eq!(parse_duration(s).map(|d| d.as_millis() as u64), want, "{s}");
        }
    }

    #[test]
    fn parse_path_like_client_go() {
        let p =
            Config::parse_path("tikv://pd1:2379,pd2:2379?disableGC=true&keyspaceName=ks").unwrap();
        assert_eq!(p.pd_endpoints, vec!["pd1:2379", "pd2:2379"]);
        assert!(p.disable_gc);
        assert_eq!(p.keyspace_name.as_deref(), Some("ks"));
        assert!(Config::parse_path("http://pd:2379").is_err());
        assert!(Config::parse_path("tikv://pd:2379?disableGC=maybe").is_err());
        assert!(Config::parse_path("tikv://?x=1").is_err());
    }
}
