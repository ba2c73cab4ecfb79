//! [`PdClient`]: leader discovery, retries, cluster-id checks and typed PD calls.
//!
//! Mirrors the PD Go client (`client/client.go`, `servicediscovery/service_discovery.go`):
//!
//! * **Bootstrap** (`initClusterID`): every configured endpoint is asked `GetMembers`; all
//!   that answer well (a header, no header error, a cluster id other than 0) must report the
//!   same cluster id, which the client then pins. An endpoint that answers badly is skipped
//!   like an unreachable one; if none answers well, its error is returned.
//! * **Leader discovery** (`updateMember`): `GetMembers` on the known member URLs
//!   (configured endpoints plus every member's `client_urls`), then a connection to the
//!   leader's first reachable client URL. A refresh runs on a timer and whenever a call
//!   fails with "not leader" or a connection error; concurrent refreshes share one run.
//! * **Every response** is checked: a header must be present, its `cluster_id` must match,
//!   and a header error becomes [`PdError::Server`].
//! * **Retries**: a standalone call (GC, keyspaces, stores, warm-up scans; `retryLoop` in
//!   the Go client's GC calls) retries retryable errors on the (re-discovered) leader with
//!   capped exponential backoff, at most [`PdConfig::max_attempts`] times. A call made on
//!   behalf of a store operation goes through [`PdClient::single_attempt`] instead: one
//!   attempt, and the operation's own Backoffer retries it with `BoPDRPC`, inside the
//!   operation's budget and deadline (client-go's region cache `loadRegion(bo, …)`; the
//!   PD Go client's `GetRegion` does not retry either). Retries never nest.
//!
//! Region replies are decoded into request key space by the client's [`ApiCodec`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::RwLock;
use tikv_tower_proto::{keyspacepb, metapb, pdpb};

use super::codec::ApiCodec;
use super::error::PdError;
use super::rpc::{PdConnector, PdRpc, RpcFuture, TsoStream};

/// The keyspace id meaning "no keyspace / the whole cluster" (PD `constant.NullKeyspaceID`).
pub const NULL_KEYSPACE_ID: u32 = u32::MAX;

/// Configuration of a [`PdClient`].
#[derive(Debug, Clone)]
pub struct PdConfig {
    /// PD endpoints (`host:port` or URLs).
    pub endpoints: Vec<String>,
    /// Timeout of one PD RPC (PD client `option.Timeout`, 3 s).
    pub rpc_timeout: Duration,
    /// Attempts per standalone call, the first included (calls through
    /// [`PdClient::single_attempt`] make one).
    pub max_attempts: u32,
    /// First retry delay, doubled per attempt.
    pub backoff_base: Duration,
    /// Retry delay cap.
    pub backoff_max: Duration,
    /// Period of the background membership refresh (PD client `memberUpdateInterval`, 1 min).
    pub member_update_interval: Duration,
    /// `RequestHeader.caller_id`.
    pub caller_id: String,
    /// Where the client's background tasks (membership refresh, TSO streams) are
    /// spawned; closing it stops them (the store core owns one).
    pub tasks: crate::tasks::TaskRegistry,
}

impl Default for PdConfig {
    fn default() -> Self {
        PdConfig {
            endpoints: Vec::new(),
            rpc_timeout: Duration::from_secs(3),
            max_attempts: 10,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            member_update_interval: Duration::from_secs(60),
            caller_id: "tikv-tower".to_string(),
            tasks: crate::tasks::TaskRegistry::new(),
        }
    }
}

/// A region as PD reports it, bounds decoded into request key space (PD Go client
/// `router.Region`).
#[derive(Debug, Clone, PartialEq)]
pub struct RegionInfo {
    /// The region (decoded bounds, epoch, peers).
    pub region: metapb::Region,
    /// The leader peer, if PD knows one.
    pub leader: Option<metapb::Peer>,
    /// Peers the leader reports down.
    pub down_peers: Vec<metapb::Peer>,
    /// Peers not yet caught up.
    pub pending_peers: Vec<metapb::Peer>,
    /// The region's buckets (keys decoded into request key space), when PD has them
    /// (client-go asks every region lookup `WithBuckets`).
    pub buckets: Option<metapb::Buckets>,
}

/// Result of `AdvanceTxnSafePoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvanceTxnSafePointResult {
    /// The txn safe point before the call.
    pub old_txn_safe_point: u64,
    /// The txn safe point after the call (may be below the target when blocked).
    pub new_txn_safe_point: u64,
    /// What blocked the advance, if anything.
    pub blocker_description: String,
}

/// Access to the response header of every PD reply.
pub trait PdResponse {
    /// The reply's header.
    fn header(&self) -> Option<&pdpb::ResponseHeader>;
}

macro_rules! impl_pd_response {
    ($($t:ty),* $(,)?) => {
        $(impl PdResponse for $t {
            fn header(&self) -> Option<&pdpb::ResponseHeader> {
                self.header.as_ref()
            }
        })*
    };
}

impl_pd_response!(
    pdpb::GetMembersResponse,
    pdpb::GetRegionResponse,
    pdpb::ScanRegionsResponse,
    pdpb::BatchScanRegionsResponse,
    pdpb::GetStoreResponse,
    pdpb::GetAllStoresResponse,
    pdpb::GetGcSafePointResponse,
    pdpb::UpdateGcSafePointResponse,
    pdpb::UpdateServiceGcSafePointResponse,
    pdpb::AdvanceTxnSafePointResponse,
    pdpb::AdvanceGcSafePointResponse,
    pdpb::SetGcBarrierResponse,
    pdpb::DeleteGcBarrierResponse,
    pdpb::GetGcStateResponse,
    pdpb::SplitRegionsResponse,
    pdpb::ScatterRegionResponse,
    pdpb::GetOperatorResponse,
    pdpb::TsoResponse,
    keyspacepb::LoadKeyspaceResponse,
);

struct Members {
    /// Connection to the current leader.
    leader: Option<Arc<dyn PdRpc>>,
    /// Every URL to ask `GetMembers` (configured endpoints first).
    urls: Vec<String>,
    /// Open connections by URL.
    conns: Vec<(String, Arc<dyn PdRpc>)>,
}

struct Inner {
    connector: Arc<dyn PdConnector>,
    config: PdConfig,
    cluster_id: AtomicU64,
    members: RwLock<Members>,
    /// Bumped on every successful membership refresh.
    generation: AtomicU64,
    refresh: tokio::sync::Mutex<()>,
    batch_scan_unsupported: AtomicBool,
    rpc_count: AtomicU64,
}

/// The PD client (PD Go client `pd.Client`, the subset client-go uses). Cheap to clone.
#[derive(Clone)]
pub struct PdClient {
    inner: Arc<Inner>,
    codec: Arc<ApiCodec>,
    /// Attempts per call through this handle; `None` = [`PdConfig::max_attempts`].
    attempts: Option<u32>,
}

impl std::fmt::Debug for PdClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PdClient")
            .field("cluster_id", &self.cluster_id())
            .field("endpoints", &self.inner.config.endpoints)
            .finish_non_exhaustive()
    }
}

/// `host:port` → `http://host:port` (PD members report URLs with a scheme; the gRPC
/// connector switches to `https` when TLS is configured).
fn normalize(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    }
}

impl PdClient {
    /// Connects: checks cluster-id agreement across the endpoints, finds the leader, and
    /// starts the periodic membership refresh. Region boundaries are not decoded (API V1
    /// RawKV); use [`PdClient::with_codec`] for TxnKV or API V2.
    pub async fn connect(
        connector: Arc<dyn PdConnector>,
        config: PdConfig,
    ) -> Result<Self, PdError> {
        if config.endpoints.is_empty() {
            return Err(PdError::NoLeader("no PD endpoints configured".into()));
        }
        let urls: Vec<String> = config.endpoints.iter().map(|u| normalize(u)).collect();
        let inner = Arc::new(Inner {
            connector,
            config,
            cluster_id: AtomicU64::new(0),
            members: RwLock::new(Members {
                leader: None,
                urls,
                conns: Vec::new(),
            }),
            generation: AtomicU64::new(0),
            refresh: tokio::sync::Mutex::new(()),
            batch_scan_unsupported: AtomicBool::new(false),
            rpc_count: AtomicU64::new(0),
        });
        inner.init_cluster_id().await?;
        inner.update_members().await?;
        let weak = Arc::downgrade(&inner);
        let period = inner.config.member_update_interval;
        inner
            .config
            .tasks
            .spawn("pd-member-loop", member_loop(weak, period));
        Ok(PdClient {
            inner,
            codec: Arc::new(ApiCodec::v1_raw()),
            attempts: None,
        })
    }

    /// The same client (shared connections) decoding regions with `codec`.
    pub fn with_codec(&self, codec: ApiCodec) -> Self {
        PdClient {
            inner: self.inner.clone(),
            codec: Arc::new(codec),
            attempts: self.attempts,
        }
    }

    /// The same client (shared connections and codec) making one attempt per call: a
    /// failure is returned as is, not wrapped in [`PdError::RetriesExhausted`]. For calls
    /// made on behalf of an operation whose Backoffer retries them (`BoPDRPC`, charged to
    /// its budget; client-go region cache `loadRegion(bo, …)`), so that PD retries do not
    /// nest. A leader re-discovery after a "not leader" or connection error still happens
    /// (on the next attempt).
    pub fn single_attempt(&self) -> Self {
        PdClient {
            attempts: Some(1),
            ..self.clone()
        }
    }

    /// Attempts each call through this handle makes (the first included).
    pub fn max_attempts(&self) -> u32 {
        self.attempts
            .unwrap_or(self.inner.config.max_attempts)
            .max(1)
    }

    /// The codec regions are decoded with.
    pub fn codec(&self) -> &ApiCodec {
        &self.codec
    }

    /// The cluster id (PD Go client `GetClusterID`).
    pub fn cluster_id(&self) -> u64 {
        self.inner.cluster_id.load(Ordering::Acquire)
    }

    /// The registry this client's background tasks are spawned in.
    pub fn tasks(&self) -> &crate::tasks::TaskRegistry {
        &self.inner.config.tasks
    }

    /// The current leader's URL, if known (PD Go client `GetLeaderURL`).
    pub fn leader_url(&self) -> Option<String> {
        self.inner
            .members
            .read()
            .leader
            .as_ref()
            .map(|l| l.url().to_string())
    }

    /// Number of unary PD RPCs sent so far (attempts included).
    pub fn rpc_count(&self) -> u64 {
        self.inner.rpc_count.load(Ordering::Relaxed)
    }

    /// Forces a membership refresh (PD Go client `ScheduleCheckMemberChanged`, synchronous).
    pub async fn update_members(&self) -> Result<(), PdError> {
        self.inner.update_members().await
    }

    /// Opens a `Tso` stream on the leader (discovering it first if needed).
    pub async fn open_tso_stream(&self) -> Result<(TsoStream, String), PdError> {
        let leader = self.inner.leader().await?;
        let url = leader.url().to_string();
        match tokio::time::timeout(self.inner.config.rpc_timeout, leader.tso()).await {
            Ok(Ok(s)) => Ok((s, url)),
            Ok(Err(status)) => {
                let e = PdError::from_status(&url, &status);
                if e.needs_member_update() {
                    self.inner.invalidate_leader(&url);
                }
                Err(e)
            }
            Err(_) => {
                self.inner.invalidate_leader(&url);
                Err(PdError::Grpc {
                    url,
                    code: tonic::Code::DeadlineExceeded,
                    message: "open Tso stream".into(),
                })
            }
        }
    }

    /// Tells the client the leader at `url` failed (e.g. its TSO stream broke).
    pub fn report_leader_failure(&self, url: &str) {
        self.inner.invalidate_leader(url);
    }

    /// Checks a reply header against the pinned cluster id.
    pub fn check_header(&self, header: Option<&pdpb::ResponseHeader>) -> Result<(), PdError> {
        self.inner.check_header(header)
    }

    fn header(&self) -> pdpb::RequestHeader {
        pdpb::RequestHeader {
            cluster_id: self.cluster_id(),
            caller_id: self.inner.config.caller_id.clone(),
            ..Default::default()
        }
    }

    /// Runs one RPC on the leader with header checks, leader follow and at most
    /// [`max_attempts`](Self::max_attempts) attempts.
    pub async fn call<T, F>(&self, f: F) -> Result<T, PdError>
    where
        T: PdResponse + Send + 'static,
        F: Fn(&dyn PdRpc, pdpb::RequestHeader) -> RpcFuture<T>,
    {
        let cfg = &self.inner.config;
        let max_attempts = self.max_attempts();
        let mut delay = cfg.backoff_base;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let err = match self.try_once(&f).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if !err.is_retryable() || max_attempts == 1 {
                return Err(err);
            }
            if attempt >= max_attempts {
                return Err(PdError::RetriesExhausted {
                    attempts: attempt,
                    last: Box::new(err),
                });
            }
            tracing::debug!(attempt, error = %err, "PD call failed; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(cfg.backoff_max);
        }
    }

    async fn try_once<T, F>(&self, f: &F) -> Result<T, PdError>
    where
        T: PdResponse + Send + 'static,
        F: Fn(&dyn PdRpc, pdpb::RequestHeader) -> RpcFuture<T>,
    {
        let leader = self.inner.leader().await?;
        let url = leader.url().to_string();
        self.inner.rpc_count.fetch_add(1, Ordering::Relaxed);
        let result =
            tokio::time::timeout(self.inner.config.rpc_timeout, f(&*leader, self.header())).await;
        let err = match result {
            Ok(Ok(resp)) => match self.inner.check_header(resp.header()) {
                Ok(()) => return Ok(resp),
                Err(PdError::NotLeader { message, .. }) => PdError::NotLeader {
                    url: url.clone(),
                    message,
                },
                Err(e) => return Err(e),
            },
            Ok(Err(status)) => PdError::from_status(&url, &status),
            Err(_) => PdError::Grpc {
                url: url.clone(),
                code: tonic::Code::DeadlineExceeded,
                message: format!("no reply within {:?}", self.inner.config.rpc_timeout),
            },
        };
        if err.needs_member_update() {
            self.inner.invalidate_leader(&url);
        }
        Err(err)
    }

    fn decode_region(
        &self,
        region: Option<metapb::Region>,
        leader: Option<metapb::Peer>,
        down: Vec<pdpb::PeerStats>,
        pending: Vec<metapb::Peer>,
        buckets: Option<metapb::Buckets>,
    ) -> Result<Option<RegionInfo>, PdError> {
        let Some(region) = region else {
            return Ok(None);
        };
        let region = self.codec.decode_region(region)?;
        // PD reports an empty leader as a default peer.
        let leader = leader.filter(|p| p.id != 0 || p.store_id != 0);
        // Undecodable bucket keys lose the buckets, not the region.
        let buckets = buckets.and_then(|mut b| {
            b.keys = self.codec.decode_bucket_keys(&b.keys).ok()?;
            Some(b)
        });
        Ok(Some(RegionInfo {
            region,
            leader,
            down_peers: down.into_iter().filter_map(|d| d.peer).collect(),
            pending_peers: pending,
            buckets,
        }))
    }

    fn region_reply(&self, r: pdpb::GetRegionResponse) -> Result<Option<RegionInfo>, PdError> {
        self.decode_region(r.region, r.leader, r.down_peers, r.pending_peers, r.buckets)
    }

    /// The region containing `key` (request key space); `None` when PD knows none
    /// (PD Go client `GetRegion`).
    pub async fn get_region(&self, key: &[u8]) -> Result<Option<RegionInfo>, PdError> {
        let region_key = self.codec.encode_region_key(key);
        let r = self
            .call(|c, header| {
                c.get_region(pdpb::GetRegionRequest {
                    header: Some(header),
                    region_key: region_key.clone().into(),
                    need_buckets: true,
                })
            })
            .await?;
        self.region_reply(r)
    }

    /// The region before the one containing `key` (PD Go client `GetPrevRegion`). A reply
    /// whose region does not end at or before `key` is [`PdError::UnexpectedRegion`].
    pub async fn get_prev_region(&self, key: &[u8]) -> Result<Option<RegionInfo>, PdError> {
        let region_key = self.codec.encode_region_key(key);
        let r = self
            .call(|c, header| {
                c.get_prev_region(pdpb::GetRegionRequest {
                    header: Some(header),
                    region_key: region_key.clone().into(),
                    need_buckets: true,
                })
            })
            .await?;
        let info = self.region_reply(r)?;
        match info {
            // The previous region lies wholly before `key`: it ends at or before it.
            Some(i) if i.region.end_key.is_empty() || &i.region.end_key[..] > key => {
                Err(PdError::UnexpectedRegion {
                    rpc: "GetPrevRegion",
                    key: key.to_vec(),
                    region_id: i.region.id,
                    start: i.region.start_key.to_vec(),
                    end: i.region.end_key.to_vec(),
                })
            }
            other => Ok(other),
        }
    }

    /// The region with id `region_id` (PD Go client `GetRegionByID`).
    pub async fn get_region_by_id(&self, region_id: u64) -> Result<Option<RegionInfo>, PdError> {
        let r = self
            .call(|c, header| {
                c.get_region_by_id(pdpb::GetRegionByIdRequest {
                    header: Some(header),
                    region_id,
                    need_buckets: true,
                })
            })
            .await?;
        self.region_reply(r)
    }

    /// Regions overlapping the request-space ranges `[start, end)` (empty end =
    /// unbounded), in key order, at most `limit` (0 = no limit) (PD Go client
    /// `BatchScanRegions`; falls back to one `ScanRegions` per range when PD does not
    /// implement it). Regions entirely outside the keyspace are skipped.
    pub async fn batch_scan_regions(
        &self,
        ranges: &[(Vec<u8>, Vec<u8>)],
        limit: usize,
    ) -> Result<Vec<RegionInfo>, PdError> {
        let pd_limit = i32::try_from(limit).unwrap_or(i32::MAX);
        if !self.inner.batch_scan_unsupported.load(Ordering::Relaxed) {
            let key_ranges: Vec<pdpb::KeyRange> = ranges
                .iter()
                .map(|(s, e)| {
                    let (start_key, end_key) = self.codec.encode_region_range(s, e);
                    pdpb::KeyRange {
                        start_key: start_key.into(),
                        end_key: end_key.into(),
                    }
                })
                .collect();
            let res = self
                .call(|c, header| {
                    c.batch_scan_regions(pdpb::BatchScanRegionsRequest {
                        header: Some(header),
                        need_buckets: false,
                        ranges: key_ranges.clone(),
                        limit: pd_limit,
                        contain_all_key_range: false,
                    })
                })
                .await;
            match res {
                Ok(r) => {
                    return self.decode_scan(
                        r.regions
                            .into_iter()
                            .map(|r| (r.region, r.leader, r.down_peers, r.pending_peers)),
                    )
                }
                Err(PdError::Unimplemented(_)) => {
                    tracing::info!(
                        "PD does not implement BatchScanRegions; falling back to ScanRegions"
                    );
                    self.inner
                        .batch_scan_unsupported
                        .store(true, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
        // Ranges may share regions; keep each region once (a set: O(n) for n regions).
        let mut seen: std::collections::HashSet<u64> = std::collections::HashSet::new();
        let mut out: Vec<RegionInfo> = Vec::new();
        for (s, e) in ranges {
            let left = if limit == 0 {
                0
            } else {
                limit.saturating_sub(out.len())
            };
            if limit != 0 && left == 0 {
                break;
            }
            for r in self.scan_regions(s, e, left).await? {
                if seen.insert(r.region.id) {
                    out.push(r);
                }
            }
        }
        if limit != 0 {
            out.truncate(limit);
        }
        Ok(out)
    }

    /// Regions overlapping `[start, end)` via the deprecated `ScanRegions` RPC (PD Go client
    /// `ScanRegions`).
    pub async fn scan_regions(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<RegionInfo>, PdError> {
        let (start_key, end_key) = self.codec.encode_region_range(start, end);
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let r = self
            .call(|c, header| {
                c.scan_regions(pdpb::ScanRegionsRequest {
                    header: Some(header),
                    start_key: start_key.clone().into(),
                    limit,
                    end_key: end_key.clone().into(),
                })
            })
            .await?;
        if !r.regions.is_empty() {
            self.decode_scan(
                r.regions
                    .into_iter()
                    .map(|r| (r.region, r.leader, r.down_peers, r.pending_peers)),
            )
        } else {
            let leaders = r.leaders;
            self.decode_scan(
                r.region_metas
                    .into_iter()
                    .enumerate()
                    .map(|(i, m)| (Some(m), leaders.get(i).cloned(), Vec::new(), Vec::new())),
            )
        }
    }

    fn decode_scan(
        &self,
        items: impl Iterator<
            Item = (
                Option<metapb::Region>,
                Option<metapb::Peer>,
                Vec<pdpb::PeerStats>,
                Vec<metapb::Peer>,
            ),
        >,
    ) -> Result<Vec<RegionInfo>, PdError> {
        let mut out = Vec::new();
        for (region, leader, down, pending) in items {
            match self.decode_region(region, leader, down, pending, None) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => {}
                Err(PdError::Codec(super::codec::CodecError::OutOfKeyspace { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The store `store_id`; `None` when PD does not know it or it is a tombstone (PD Go
    /// client `GetStore`).
    pub async fn get_store(&self, store_id: u64) -> Result<Option<metapb::Store>, PdError> {
        let r = self
            .call(|c, header| {
                c.get_store(pdpb::GetStoreRequest {
                    header: Some(header),
                    store_id,
                })
            })
            .await;
        match r {
            Ok(r) => match r
                .store
                .filter(|s| s.state != metapb::StoreState::Tombstone as i32)
            {
                // client-go `Store.initResolve`: "empty store address".
                Some(s) if s.address.is_empty() => Err(PdError::EmptyStoreAddress { store_id }),
                other => Ok(other),
            },
            Err(PdError::Server { kind, .. }) if kind == pdpb::ErrorType::StoreTombstone as i32 => {
                Ok(None)
            }
            // PD's answer for an unknown id (client-go `isStoreNotFoundError`).
            Err(PdError::Server { message, .. }) if message.contains("invalid store ID") => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Every store, tombstones excluded when asked (PD Go client `GetAllStores`).
    pub async fn get_all_stores(
        &self,
        exclude_tombstone: bool,
    ) -> Result<Vec<metapb::Store>, PdError> {
        let r = self
            .call(|c, header| {
                c.get_all_stores(pdpb::GetAllStoresRequest {
                    header: Some(header),
                    exclude_tombstone_stores: exclude_tombstone,
                })
            })
            .await?;
        Ok(r.stores)
    }

    /// Loads a keyspace by name (PD Go client `LoadKeyspace`).
    pub async fn load_keyspace(&self, name: &str) -> Result<keyspacepb::KeyspaceMeta, PdError> {
        let r = self
            .call(|c, header| {
                c.load_keyspace(keyspacepb::LoadKeyspaceRequest {
                    header: Some(header),
                    name: name.to_string(),
                    namespace: None,
                })
            })
            .await?;
        r.keyspace
            .ok_or_else(|| PdError::Protocol(format!("LoadKeyspace({name}) returned no keyspace")))
            .and_then(check_keyspace_id)
    }

    /// Loads a keyspace by id (PD Go client `LoadKeyspaceByID`).
    pub async fn load_keyspace_by_id(&self, id: u32) -> Result<keyspacepb::KeyspaceMeta, PdError> {
        let r = self
            .call(|c, header| {
                c.load_keyspace_by_id(keyspacepb::LoadKeyspaceByIdRequest {
                    header: Some(header),
                    keyspace: Some(keyspacepb::load_keyspace_by_id_request::Keyspace::Id(id)),
                })
            })
            .await?;
        r.keyspace
            .ok_or_else(|| {
                PdError::Protocol(format!("LoadKeyspaceByID({id}) returned no keyspace"))
            })
            .and_then(check_keyspace_id)
    }

    /// The GC safe point (PD Go client `GetGCSafePoint`, deprecated GC API).
    pub async fn get_gc_safe_point(&self) -> Result<u64, PdError> {
        let r = self
            .call(|c, header| {
                c.get_gc_safe_point(pdpb::GetGcSafePointRequest {
                    header: Some(header),
                })
            })
            .await?;
        Ok(r.safe_point)
    }

    /// Raises the GC safe point; returns the resulting one (PD Go client
    /// `UpdateGCSafePoint`).
    pub async fn update_gc_safe_point(&self, safe_point: u64) -> Result<u64, PdError> {
        let r = self
            .call(|c, header| {
                c.update_gc_safe_point(pdpb::UpdateGcSafePointRequest {
                    header: Some(header),
                    safe_point,
                })
            })
            .await?;
        Ok(r.new_safe_point)
    }

    /// Sets a service safe point; returns the minimum over services (PD Go client
    /// `UpdateServiceGCSafePoint`). `ttl_secs <= 0` removes it.
    pub async fn update_service_gc_safe_point(
        &self,
        service_id: &str,
        ttl_secs: i64,
        safe_point: u64,
    ) -> Result<u64, PdError> {
        let r = self
            .call(|c, header| {
                c.update_service_gc_safe_point(pdpb::UpdateServiceGcSafePointRequest {
                    header: Some(header),
                    service_id: service_id.as_bytes().to_vec().into(),
                    ttl: ttl_secs,
                    safe_point,
                })
            })
            .await?;
        Ok(r.min_safe_point)
    }

    fn scope(keyspace_id: u32) -> Option<pdpb::KeyspaceScope> {
        Some(pdpb::KeyspaceScope {
            keyspace: Some(pdpb::keyspace_scope::Keyspace::KeyspaceId(keyspace_id)),
        })
    }

    /// Advances the txn safe point of a keyspace ([`NULL_KEYSPACE_ID`] = cluster-wide)
    /// (PD Go client `GCStatesClient.AdvanceTxnSafePoint`).
    pub async fn advance_txn_safe_point(
        &self,
        keyspace_id: u32,
        target: u64,
    ) -> Result<AdvanceTxnSafePointResult, PdError> {
        let r = self
            .call(|c, header| {
                c.advance_txn_safe_point(pdpb::AdvanceTxnSafePointRequest {
                    header: Some(header),
                    keyspace_scope: Self::scope(keyspace_id),
                    target,
                })
            })
            .await?;
        Ok(AdvanceTxnSafePointResult {
            old_txn_safe_point: r.old_txn_safe_point,
            new_txn_safe_point: r.new_txn_safe_point,
            blocker_description: r.blocker_description,
        })
    }

    /// Advances the GC safe point; returns `(old, new)` (PD Go client
    /// `GCStatesClient.AdvanceGCSafePoint`).
    pub async fn advance_gc_safe_point(
        &self,
        keyspace_id: u32,
        target: u64,
    ) -> Result<(u64, u64), PdError> {
        let r = self
            .call(|c, header| {
                c.advance_gc_safe_point(pdpb::AdvanceGcSafePointRequest {
                    header: Some(header),
                    keyspace_scope: Self::scope(keyspace_id),
                    target,
                })
            })
            .await?;
        Ok((r.old_gc_safe_point, r.new_gc_safe_point))
    }

    /// Sets (or updates) a GC barrier; `ttl == None` means forever (PD Go client
    /// `GCStatesClient.SetGCBarrier`).
    pub async fn set_gc_barrier(
        &self,
        keyspace_id: u32,
        barrier_id: &str,
        barrier_ts: u64,
        ttl: Option<Duration>,
    ) -> Result<Option<pdpb::GcBarrierInfo>, PdError> {
        let ttl_seconds = ttl.map_or(i64::MAX, |t| i64::try_from(t.as_secs()).unwrap_or(i64::MAX));
        let r = self
            .call(|c, header| {
                c.set_gc_barrier(pdpb::SetGcBarrierRequest {
                    header: Some(header),
                    keyspace_scope: Self::scope(keyspace_id),
                    barrier_id: barrier_id.to_string(),
                    barrier_ts,
                    ttl_seconds,
                })
            })
            .await?;
        Ok(r.new_barrier_info)
    }

    /// Deletes a GC barrier; returns what was deleted (PD Go client
    /// `GCStatesClient.DeleteGCBarrier`).
    pub async fn delete_gc_barrier(
        &self,
        keyspace_id: u32,
        barrier_id: &str,
    ) -> Result<Option<pdpb::GcBarrierInfo>, PdError> {
        let r = self
            .call(|c, header| {
                c.delete_gc_barrier(pdpb::DeleteGcBarrierRequest {
                    header: Some(header),
                    keyspace_scope: Self::scope(keyspace_id),
                    barrier_id: barrier_id.to_string(),
                })
            })
            .await?;
        Ok(r.deleted_barrier_info)
    }

    /// The GC state of a keyspace (PD Go client `GCStatesClient.GetGCState`).
    pub async fn get_gc_state(
        &self,
        keyspace_id: u32,
        exclude_gc_barriers: bool,
    ) -> Result<pdpb::GcState, PdError> {
        let r = self
            .call(|c, header| {
                c.get_gc_state(pdpb::GetGcStateRequest {
                    header: Some(header),
                    keyspace_scope: Self::scope(keyspace_id),
                    exclude_gc_barriers,
                    include_global_gc_barriers: false,
                })
            })
            .await?;
        r.gc_state
            .ok_or_else(|| PdError::Protocol("GetGCState returned no state".into()))
    }

    /// Asks PD to split regions at request-space `keys` (PD Go client `SplitRegions`).
    pub async fn split_regions(
        &self,
        keys: &[Vec<u8>],
    ) -> Result<pdpb::SplitRegionsResponse, PdError> {
        let split_keys: Vec<Bytes> = keys
            .iter()
            .map(|k| self.codec.encode_region_key(k).into())
            .collect();
        self.call(|c, header| {
            c.split_regions(pdpb::SplitRegionsRequest {
                header: Some(header),
                split_keys: split_keys.clone(),
                retry_limit: 0,
            })
        })
        .await
    }

    /// Asks PD to scatter regions (PD Go client `ScatterRegions`).
    pub async fn scatter_regions(
        &self,
        region_ids: &[u64],
        group: &str,
    ) -> Result<pdpb::ScatterRegionResponse, PdError> {
        self.call(|c, header| {
            c.scatter_region(pdpb::ScatterRegionRequest {
                header: Some(header),
                regions_id: region_ids.to_vec(),
                group: group.to_string(),
                ..Default::default()
            })
        })
        .await
    }

    /// The operator running on a region (PD Go client `GetOperator`).
    pub async fn get_operator(&self, region_id: u64) -> Result<pdpb::GetOperatorResponse, PdError> {
        self.call(|c, header| {
            c.get_operator(pdpb::GetOperatorRequest {
                header: Some(header),
                region_id,
            })
        })
        .await
    }
}

async fn member_loop(inner: Weak<Inner>, period: Duration) {
    loop {
        tokio::time::sleep(period).await;
        let Some(inner) = inner.upgrade() else { return };
        if let Err(e) = inner.update_members().await {
            tracing::warn!(error = %e, "periodic PD membership refresh failed");
        }
    }
}

/// The cluster id a bootstrap `GetMembers` reply from `url` reports: the reply must carry a
/// header without error and a cluster id other than 0 (PD Go client `initClusterID` skips
/// such members).
fn bootstrap_id(url: &str, r: &pdpb::GetMembersResponse) -> Result<u64, PdError> {
    let header = r.header.as_ref().ok_or(PdError::MissingHeader)?;
    if let Some(err) = header.error.as_ref() {
        if err.r#type != pdpb::ErrorType::Ok as i32 {
            return Err(PdError::Server {
                kind: err.r#type,
                message: err.message.clone(),
            });
        }
    }
    if header.cluster_id == 0 {
        return Err(PdError::InvalidClusterId { url: url.into() });
    }
    Ok(header.cluster_id)
}

/// Refuses keyspace metadata whose id does not fit the 24-bit API V2 key prefix.
fn check_keyspace_id(meta: keyspacepb::KeyspaceMeta) -> Result<keyspacepb::KeyspaceMeta, PdError> {
    use keyspacepb::keyspace_meta::Keyspace;
    let id = match &meta.keyspace {
        Some(Keyspace::Id(id)) => *id,
        Some(Keyspace::KeyspaceIdentity(k)) => k.keyspace_id,
        None => 0,
    };
    if id > super::codec::MAX_KEYSPACE_ID {
        return Err(PdError::InvalidKeyspaceId(id));
    }
    Ok(meta)
}

impl Inner {
    fn check_header(&self, header: Option<&pdpb::ResponseHeader>) -> Result<(), PdError> {
        let header = header.ok_or(PdError::MissingHeader)?;
        // Bootstrap never pins 0, so every reply is checked.
        let expected = self.cluster_id.load(Ordering::Acquire);
        if header.cluster_id != expected {
            return Err(PdError::ClusterIdMismatch {
                expected,
                got: header.cluster_id,
            });
        }
        if let Some(err) = &header.error {
            if err.r#type != pdpb::ErrorType::Ok as i32 {
                if super::error::is_not_leader_message(&err.message) {
                    return Err(PdError::NotLeader {
                        url: String::new(),
                        message: err.message.clone(),
                    });
                }
                return Err(PdError::Server {
                    kind: err.r#type,
                    message: err.message.clone(),
                });
            }
        }
        Ok(())
    }

    async fn conn(&self, url: &str) -> Result<Arc<dyn PdRpc>, PdError> {
        if let Some((_, c)) = self.members.read().conns.iter().find(|(u, _)| u == url) {
            return Ok(c.clone());
        }
        let c = self.connector.connect(url).await?;
        let mut m = self.members.write();
        if let Some((_, existing)) = m.conns.iter().find(|(u, _)| u == url) {
            return Ok(existing.clone());
        }
        m.conns.push((url.to_string(), c.clone()));
        Ok(c)
    }

    fn drop_conn(&self, url: &str) {
        self.members.write().conns.retain(|(u, _)| u != url);
    }

    async fn get_members(&self, url: &str) -> Result<pdpb::GetMembersResponse, PdError> {
        let conn = self.conn(url).await?;
        self.rpc_count.fetch_add(1, Ordering::Relaxed);
        let header = pdpb::RequestHeader {
            caller_id: self.config.caller_id.clone(),
            ..Default::default()
        };
        match tokio::time::timeout(
            self.config.rpc_timeout,
            conn.get_members(pdpb::GetMembersRequest {
                header: Some(header),
            }),
        )
        .await
        {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(status)) => {
                self.drop_conn(url);
                Err(PdError::from_status(url, &status))
            }
            Err(_) => {
                self.drop_conn(url);
                Err(PdError::Grpc {
                    url: url.into(),
                    code: tonic::Code::DeadlineExceeded,
                    message: "GetMembers".into(),
                })
            }
        }
    }

    /// PD Go client `initClusterID`: every endpoint that answers must agree.
    async fn init_cluster_id(&self) -> Result<(), PdError> {
        let urls = self.members.read().urls.clone();
        let mut found: Option<u64> = None;
        let mut last_err = None;
        let mut bad_reply = None;
        for url in &urls {
            match self
                .get_members(url)
                .await
                .and_then(|r| bootstrap_id(url, &r))
            {
                Ok(id) => match found {
                    None => found = Some(id),
                    Some(prev) if prev != id => {
                        return Err(PdError::ClusterIdMismatch {
                            expected: prev,
                            got: id,
                        })
                    }
                    Some(_) => {}
                },
                Err(
                    e @ (PdError::MissingHeader
                    | PdError::InvalidClusterId { .. }
                    | PdError::Server { .. }),
                ) => {
                    tracing::warn!(url, error = %e, "PD endpoint answered badly during bootstrap");
                    bad_reply = Some(e);
                }
                Err(e) => {
                    tracing::warn!(url, error = %e, "PD endpoint unreachable during bootstrap");
                    last_err = Some(e);
                }
            }
        }
        match (found, bad_reply) {
            (Some(id), _) => {
                self.cluster_id.store(id, Ordering::Release);
                Ok(())
            }
            (None, Some(e)) => Err(e),
            (None, None) => Err(PdError::NoLeader(
                last_err.map_or_else(|| "no endpoint answered".into(), |e| e.to_string()),
            )),
        }
    }

    fn invalidate_leader(&self, url: &str) {
        let mut m = self.members.write();
        if m.leader.as_ref().is_some_and(|l| l.url() == url) {
            m.leader = None;
        }
        m.conns.retain(|(u, _)| u != url);
    }

    async fn leader(&self) -> Result<Arc<dyn PdRpc>, PdError> {
        if let Some(l) = self.members.read().leader.clone() {
            return Ok(l);
        }
        self.update_members().await?;
        self.members
            .read()
            .leader
            .clone()
            .ok_or_else(|| PdError::NoLeader("membership refresh found no leader".into()))
    }

    /// PD Go client `serviceDiscovery.updateMember`.
    async fn update_members(&self) -> Result<(), PdError> {
        let gen_before = self.generation.load(Ordering::Acquire);
        let _guard = self.refresh.lock().await;
        // Someone refreshed while we waited: share their result.
        if self.generation.load(Ordering::Acquire) != gen_before
            && self.members.read().leader.is_some()
        {
            return Ok(());
        }
        let urls = self.members.read().urls.clone();
        let mut last_err = PdError::NoLeader("no PD member answered".into());
        for url in &urls {
            let resp = match self.get_members(url).await {
                Ok(r) => r,
                Err(e) => {
                    last_err = e;
                    continue;
                }
            };
            if let Err(e) = self.check_header(resp.header.as_ref()) {
                if matches!(e, PdError::ClusterIdMismatch { .. }) {
                    tracing::warn!(url, error = %e, "PD member belongs to another cluster; ignored");
                }
                last_err = e;
                continue;
            }
            let Some(leader) = resp.leader.as_ref().filter(|l| !l.client_urls.is_empty()) else {
                last_err = PdError::NoLeader(format!("{url} reports no leader"));
                continue;
            };
            for leader_url in &leader.client_urls {
                let leader_url = normalize(leader_url);
                match self.conn(&leader_url).await {
                    Ok(conn) => {
                        let mut m = self.members.write();
                        m.leader = Some(conn);
                        for member in &resp.members {
                            for u in &member.client_urls {
                                let u = normalize(u);
                                if !m.urls.contains(&u) {
                                    m.urls.push(u);
                                }
                            }
                        }
                        drop(m);
                        self.generation.fetch_add(1, Ordering::AcqRel);
                        tracing::debug!(leader = %leader_url, "PD leader updated");
                        return Ok(());
                    }
                    Err(e) => last_err = e,
                }
            }
        }
        Err(match last_err {
            e @ PdError::ClusterIdMismatch { .. } => e,
            e => PdError::NoLeader(e.to_string()),
        })
    }
}
