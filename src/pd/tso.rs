//! Timestamps from PD: the batching TSO dispatcher and the client-go `Oracle`.
//!
//! **Protocol.** PD allocates timestamps on a bidirectional `Tso` stream: the client sends
//! `TsoRequest{count}`, PD answers `TsoResponse{count, timestamp}` where `timestamp` is the
//! **last** of `count` consecutive timestamps (`physical << 18 | logical`). The batch is
//! therefore `last - count + 1 ..= last`.
//!
//! **Dispatcher** ([`TsoClient`], PD Go client `clients/tso`: `tsoDispatcher`,
//! `tsoBatchController`, `tsoStream`). Callers enqueue a waiter; one task owns the stream to
//! the PD leader, takes every waiter queued so far (up to `max_batch_size`) into one
//! request, and hands the batch out in queue order. While a round trip is in flight new
//! callers queue up, so the batch size adapts to load without a timer. A broken stream is
//! reopened (on the re-discovered leader) with backoff and the batch resent; after
//! `max_attempts` the batch fails with [`TsoError`]. Every handed-out timestamp is strictly
//! greater than every earlier one, across batches and reconnects; a reply that would go
//! backwards is treated as a stream failure.
//!
//! **Oracle** ([`Oracle`], client-go `oracle/oracles/pd.go` `pdOracle`): timestamps,
//! async timestamps, a cached low-resolution timestamp refreshed in the background, and
//! lock-expiry checks against it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};

use super::client::PdClient;
use super::error::PdError;
use super::rpc::TsoStream;

/// Bits of the logical part of a TSO (PD `tsoutil.PhysicalShiftBits`).
pub const PHYSICAL_SHIFT_BITS: u32 = 18;

/// Composes a TSO from its parts (client-go `oracle.ComposeTS`).
pub fn compose_ts(physical_ms: i64, logical: i64) -> u64 {
    ((physical_ms as u64) << PHYSICAL_SHIFT_BITS).wrapping_add(logical as u64)
}

/// The physical part (Unix ms) of a TSO (client-go `oracle.ExtractPhysical`).
pub fn extract_physical(ts: u64) -> i64 {
    (ts >> PHYSICAL_SHIFT_BITS) as i64
}

/// The logical part of a TSO (client-go `oracle.ExtractLogical`).
pub fn extract_logical(ts: u64) -> i64 {
    (ts & ((1 << PHYSICAL_SHIFT_BITS) - 1)) as i64
}

/// Why a timestamp could not be obtained.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TsoError {
    /// The TSO client was closed (explicitly or by dropping it).
    #[error("TSO client closed")]
    Closed,
    /// The stream failed and retries were exhausted.
    #[error("TSO stream failed after {attempts} attempts: {source}")]
    Stream {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        #[source]
        source: PdError,
    },
}

/// Configuration of the TSO dispatcher.
#[derive(Debug, Clone)]
pub struct TsoConfig {
    /// Largest `count` of one request (PD client `maxMergeRequests`, 10000).
    pub max_batch_size: usize,
    /// How long to wait for one reply before the stream is declared broken (PD client
    /// `option.Timeout`, 3 s).
    pub reply_timeout: Duration,
    /// How long to wait for more callers after the first one before sending a batch (PD
    /// client `WithMaxTSOBatchWaitInterval`, default 0: send at once; batches still form
    /// while a round trip is in flight).
    pub max_batch_wait: Duration,
    /// Stream (re)connection attempts per batch.
    pub max_attempts: u32,
    /// First reconnect delay, doubled per attempt.
    pub backoff_base: Duration,
    /// Reconnect delay cap.
    pub backoff_max: Duration,
}

impl Default for TsoConfig {
    fn default() -> Self {
        TsoConfig {
            max_batch_size: 10_000,
            reply_timeout: Duration::from_secs(3),
            max_batch_wait: Duration::ZERO,
            max_attempts: 10,
            backoff_base: Duration::from_millis(50),
            backoff_max: Duration::from_secs(1),
        }
    }
}

type Waiter = oneshot::Sender<Result<u64, TsoError>>;

#[derive(Debug, Default)]
struct TsoStats {
    requests: AtomicU64,
    streams: AtomicU64,
}

/// The batching TSO client (PD Go client `tsoClient` + `tsoDispatcher`). Cheap to clone;
/// the dispatcher stops when the last clone is dropped or [`TsoClient::close`] is called.
#[derive(Debug, Clone)]
pub struct TsoClient {
    tx: mpsc::UnboundedSender<Waiter>,
    close: Arc<watch::Sender<bool>>,
    stats: Arc<TsoStats>,
}

impl TsoClient {
    /// Starts the dispatcher on the current tokio runtime.
    pub fn new(pd: PdClient, config: TsoConfig) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let (close_tx, close_rx) = watch::channel(false);
        let stats = Arc::new(TsoStats::default());
        let tasks = pd.tasks().clone();
        let d = Dispatcher {
            pd,
            config,
            rx,
            close: close_rx,
            stats: stats.clone(),
            stream: None,
            last_ts: 0,
        };
        // Not spawned once the registry is closed: `rx` is dropped with `d`, so callers
        // get `TsoError::Closed`.
        tasks.spawn("tso-dispatcher", d.run());
        TsoClient {
            tx,
            close: Arc::new(close_tx),
            stats,
        }
    }

    /// Requests a timestamp now; await the returned future for it (PD Go client
    /// `GetTSAsync`).
    pub fn get_ts_async(&self) -> TsFuture {
        let (w, r) = oneshot::channel();
        match self.tx.send(w) {
            Ok(()) => TsFuture {
                rx: Some(r),
                last: None,
            },
            Err(_) => TsFuture {
                rx: None,
                last: None,
            },
        }
    }

    /// One timestamp (PD Go client `GetTS`).
    pub async fn get_ts(&self) -> Result<u64, TsoError> {
        self.get_ts_async().await
    }

    /// Number of `TsoRequest`s sent (each serves one batch).
    pub fn request_count(&self) -> u64 {
        self.stats.requests.load(Ordering::Relaxed)
    }

    /// Number of `Tso` streams opened.
    pub fn stream_count(&self) -> u64 {
        self.stats.streams.load(Ordering::Relaxed)
    }

    /// Stops the dispatcher: queued and in-flight waiters fail with [`TsoError::Closed`].
    pub fn close(&self) {
        let _ = self.close.send(true);
    }
}

/// A timestamp requested with [`TsoClient::get_ts_async`] / [`Oracle::get_ts_async`]
/// (client-go `oracle.Future`).
#[derive(Debug)]
pub struct TsFuture {
    rx: Option<oneshot::Receiver<Result<u64, TsoError>>>,
    last: Option<Arc<LastTs>>,
}

impl Future for TsFuture {
    type Output = Result<u64, TsoError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(rx) = self.rx.as_mut() else {
            return Poll::Ready(Err(TsoError::Closed));
        };
        match Pin::new(rx).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(_)) => Poll::Ready(Err(TsoError::Closed)),
            Poll::Ready(Ok(res)) => {
                if let (Ok(ts), Some(last)) = (&res, &self.last) {
                    last.record(*ts);
                }
                Poll::Ready(res)
            }
        }
    }
}

struct Dispatcher {
    pd: PdClient,
    config: TsoConfig,
    rx: mpsc::UnboundedReceiver<Waiter>,
    close: watch::Receiver<bool>,
    stats: Arc<TsoStats>,
    stream: Option<(TsoStream, String)>,
    last_ts: u64,
}

fn fail_all(batch: Vec<Waiter>, err: &TsoError) {
    for w in batch {
        let _ = w.send(Err(err.clone()));
    }
}

impl Dispatcher {
    async fn run(mut self) {
        loop {
            let first = tokio::select! {
                biased;
                _ = self.close.wait_for(|c| *c) => break,
                w = self.rx.recv() => match w { Some(w) => w, None => return },
            };
            if !self.config.max_batch_wait.is_zero() {
                tokio::time::sleep(self.config.max_batch_wait).await;
            }
            let mut batch = vec![first];
            while batch.len() < self.config.max_batch_size.max(1) {
                match self.rx.try_recv() {
                    Ok(w) => batch.push(w),
                    Err(_) => break,
                }
            }
            batch.retain(|w| !w.is_closed());
            if batch.is_empty() {
                continue;
            }
            let mut close = self.close.clone();
            tokio::select! {
                biased;
                _ = close.wait_for(|c| *c) => { fail_all(batch, &TsoError::Closed); break; }
                res = self.serve(batch.len()) => match res {
                    Ok(first_ts) => {
                        for (i, w) in batch.into_iter().enumerate() {
                            let _ = w.send(Ok(first_ts + i as u64));
                        }
                    }
                    Err(e) => fail_all(batch, &e),
                }
            }
        }
        // Closed: fail everyone still queued.
        self.rx.close();
        while let Ok(w) = self.rx.try_recv() {
            let _ = w.send(Err(TsoError::Closed));
        }
    }

    /// Gets `count` timestamps; returns the first. Retries over reconnects.
    async fn serve(&mut self, count: usize) -> Result<u64, TsoError> {
        let count32 = u32::try_from(count).unwrap_or(u32::MAX);
        let mut delay = self.config.backoff_base;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.round_trip(count32).await {
                Ok(first) => return Ok(first),
                Err(e) => {
                    if let Some((_, url)) = self.stream.take() {
                        if e.needs_member_update() || matches!(e, PdError::Protocol(_)) {
                            self.pd.report_leader_failure(&url);
                        }
                    }
                    if attempt >= self.config.max_attempts.max(1)
                        || matches!(e, PdError::ClusterIdMismatch { .. })
                    {
                        return Err(TsoError::Stream {
                            attempts: attempt,
                            source: e,
                        });
                    }
                    tracing::debug!(attempt, error = %e, "TSO stream failed; reconnecting");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.config.backoff_max);
                }
            }
        }
    }

    async fn round_trip(&mut self, count: u32) -> Result<u64, PdError> {
        if self.stream.is_none() {
            let s = self.pd.open_tso_stream().await?;
            self.stats.streams.fetch_add(1, Ordering::Relaxed);
            self.stream = Some(s);
        }
        let Some((stream, url)) = self.stream.as_mut() else {
            return Err(PdError::Protocol("no TSO stream".into()));
        };
        let url = url.clone();
        let header = tikv_tower_proto::pdpb::RequestHeader {
            cluster_id: self.pd.cluster_id(),
            ..Default::default()
        };
        let req = tikv_tower_proto::pdpb::TsoRequest {
            header: Some(header),
            count,
            dc_location: String::new(),
        };
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        if stream.requests.send(req).await.is_err() {
            return Err(PdError::Grpc {
                url,
                code: tonic::Code::Unavailable,
                message: "TSO stream closed (send)".into(),
            });
        }
        let reply =
            match tokio::time::timeout(self.config.reply_timeout, stream.responses.next()).await {
                Err(_) => {
                    return Err(PdError::Grpc {
                        url,
                        code: tonic::Code::DeadlineExceeded,
                        message: "TSO reply timed out".into(),
                    })
                }
                Ok(None) => {
                    return Err(PdError::Grpc {
                        url,
                        code: tonic::Code::Unavailable,
                        message: "TSO stream ended".into(),
                    })
                }
                Ok(Some(Err(status))) => return Err(PdError::from_status(&url, &status)),
                Ok(Some(Ok(r))) => r,
            };
        self.pd.check_header(reply.header.as_ref())?;
        if reply.count != count {
            return Err(PdError::Protocol(format!(
                "TSO reply count {} for request count {count}",
                reply.count
            )));
        }
        let ts = reply
            .timestamp
            .ok_or_else(|| PdError::Protocol("TSO reply without timestamp".into()))?;
        if ts.physical < 0 || ts.logical < 0 || ts.logical >= (1 << PHYSICAL_SHIFT_BITS) {
            return Err(PdError::Protocol(format!("TSO reply out of range: {ts:?}")));
        }
        let last = compose_ts(ts.physical, ts.logical);
        let first = last.wrapping_sub(u64::from(count)).wrapping_add(1);
        if u64::from(count) > last || first <= self.last_ts {
            return Err(PdError::Protocol(format!(
                "TSO fallback: batch starts at {first}, last handed out {}",
                self.last_ts
            )));
        }
        self.last_ts = last;
        Ok(first)
    }
}

/// Why [`Oracle::validate_read_ts`] refused a read timestamp.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadTsError {
    /// The read ts is above every timestamp PD has allocated (client-go
    /// `ErrFutureTSRead`).
    #[error("cannot read with a future ts: read ts {read_ts}, current ts {current_ts}")]
    Future {
        /// The refused read ts.
        read_ts: u64,
        /// The fresh TSO it was checked against.
        current_ts: u64,
    },
    /// A stale read at `u64::MAX` (client-go `ErrLatestStaleRead`).
    #[error("cannot set read ts to max uint64 for stale read")]
    LatestStaleRead,
    /// `i64::MAX <= read_ts < u64::MAX`: a ts no TSO can produce.
    #[error("invalid read ts {0}: MaxInt64 <= readTS < MaxUint64")]
    Invalid(u64),
    /// The fresh TSO could not be fetched.
    #[error("fail to validate read timestamp: {0}")]
    Tso(TsoError),
}

/// Configuration of the [`Oracle`].
#[derive(Debug, Clone)]
pub struct OracleConfig {
    /// The TSO dispatcher.
    pub tso: TsoConfig,
    /// Refresh period of the low-resolution timestamp (client-go
    /// `oracleUpdateInterval`, 2 s).
    pub update_interval: Duration,
}

impl Default for OracleConfig {
    fn default() -> Self {
        OracleConfig {
            tso: TsoConfig::default(),
            update_interval: Duration::from_secs(2),
        }
    }
}

/// Timestamps for transactions (client-go `oracle.Oracle`, implemented like
/// `oracles.pdOracle`). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Oracle {
    tso: TsoClient,
    last: Arc<LastTs>,
    _updater: Arc<AbortOnDrop>,
}

/// The largest timestamp seen and the local time it arrived (client-go `lastTSO` with
/// its `arrival`, set by `pdOracle.setLastTS`).
#[derive(Debug)]
pub struct LastTs {
    ts: AtomicU64,
    arrival: parking_lot::Mutex<Option<tokio::time::Instant>>,
}

impl LastTs {
    fn new() -> Self {
        LastTs {
            ts: AtomicU64::new(0),
            arrival: parking_lot::Mutex::new(None),
        }
    }

    /// Records `ts` arriving now if it is the largest seen (client-go `setLastTS`).
    fn record(&self, ts: u64) {
        let now = tokio::time::Instant::now();
        let mut arrival = self.arrival.lock();
        if ts > self.ts.load(Ordering::Acquire) {
            self.ts.store(ts, Ordering::Release);
            *arrival = Some(arrival.map_or(now, |a| a.max(now)));
        }
    }

    fn get(&self) -> u64 {
        self.ts.load(Ordering::Acquire)
    }

    fn with_arrival(&self) -> Option<(u64, tokio::time::Instant)> {
        let arrival = self.arrival.lock();
        arrival.map(|a| (self.ts.load(Ordering::Acquire), a))
    }
}

#[derive(Debug)]
struct AbortOnDrop(Option<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(h) = &self.0 {
            h.abort();
        }
    }
}

impl Oracle {
    /// Starts the dispatcher and the low-resolution updater (client-go `NewPdOracle`).
    pub fn new(pd: PdClient, config: OracleConfig) -> Self {
        let tasks = pd.tasks().clone();
        let tso = TsoClient::new(pd, config.tso.clone());
        let last = Arc::new(LastTs::new());
        let updater = {
            let tso = tso.clone();
            let last = last.clone();
            let period = config.update_interval;
            tasks.spawn("tso-low-resolution-updater", async move {
                loop {
                    match tso.get_ts().await {
                        Ok(ts) => last.record(ts),
                        Err(TsoError::Closed) => return,
                        Err(e) => tracing::warn!(error = %e, "low-resolution TSO update failed"),
                    }
                    tokio::time::sleep(period).await;
                }
            })
        };
        Oracle {
            tso,
            last,
            _updater: Arc::new(AbortOnDrop(updater)),
        }
    }

    /// The underlying TSO client (for its counters).
    pub fn tso_client(&self) -> &TsoClient {
        &self.tso
    }

    /// A fresh timestamp (client-go `Oracle.GetTimestamp`).
    pub async fn get_timestamp(&self) -> Result<u64, TsoError> {
        self.get_ts_async().await
    }

    /// Requests a timestamp now, awaited later (client-go `Oracle.GetTimestampAsync`).
    pub fn get_ts_async(&self) -> TsFuture {
        let mut f = self.tso.get_ts_async();
        f.last = Some(self.last.clone());
        f
    }

    /// The largest timestamp seen, refreshed every `update_interval`; 0 before the first
    /// (client-go `Oracle.GetLowResolutionTimestamp`).
    pub fn get_low_resolution_ts(&self) -> u64 {
        self.last.get()
    }

    /// A timestamp standing for `prev_secs` seconds ago (client-go
    /// `pdOracle.getStaleTimestampWithLastTS`): the physical time of the last timestamp
    /// seen, moved by the local time elapsed since it arrived, minus `prev_secs`, so a
    /// low-resolution timestamp up to one update interval old does not make stale reads
    /// staler than asked. `None` before the first timestamp, or when `prev_secs` reaches
    /// back before the epoch (client-go "invalid prevSecond").
    pub fn get_stale_timestamp(&self, prev_secs: u64) -> Option<u64> {
        let (last, arrival) = self.last.with_arrival()?;
        let physical = extract_physical(last);
        let prev_ms = i64::try_from(prev_secs.checked_mul(1000)?).ok()?;
        if physical / 1000 <= prev_ms / 1000 {
            return None;
        }
        let since_arrival = i64::try_from(arrival.elapsed().as_millis()).unwrap_or(i64::MAX);
        let stale = physical
            .saturating_add(since_arrival)
            .saturating_sub(prev_ms);
        (stale >= 0).then(|| compose_ts(stale, 0))
    }

    /// Checks that a read at `read_ts` does not read the future (client-go
    /// `pdOracle.ValidateReadTS`): `u64::MAX` (the latest version) is allowed except for
    /// stale reads; `i64::MAX <= read_ts < u64::MAX` is refused; a ts above the largest one
    /// seen is checked against a fresh TSO, twice (a concurrent fetch may have returned a
    /// ts allocated before the caller's), and refused when still above it.
    pub async fn validate_read_ts(
        &self,
        read_ts: u64,
        is_stale_read: bool,
    ) -> Result<(), ReadTsError> {
        if read_ts == u64::MAX {
            return if is_stale_read {
                Err(ReadTsError::LatestStaleRead)
            } else {
                Ok(())
            };
        }
        if read_ts >= i64::MAX as u64 {
            return Err(ReadTsError::Invalid(read_ts));
        }
        if read_ts <= self.get_low_resolution_ts() {
            return Ok(());
        }
        let mut current = 0;
        for _ in 0..2 {
            if read_ts <= self.get_low_resolution_ts() {
                return Ok(());
            }
            current = self.get_timestamp().await.map_err(ReadTsError::Tso)?;
            if read_ts <= current {
                return Ok(());
            }
        }
        Err(ReadTsError::Future {
            read_ts,
            current_ts: current,
        })
    }

    /// Whether a lock of `lock_ts` with `ttl_ms` has expired by the low-resolution
    /// timestamp; true before any timestamp is known (client-go `pdOracle.IsExpired`).
    pub fn is_expired(&self, lock_ts: u64, ttl_ms: u64) -> bool {
        let last = self.get_low_resolution_ts();
        if last == 0 {
            return true;
        }
        extract_physical(last)
            >= extract_physical(lock_ts).saturating_add(ttl_ms.min(i64::MAX as u64) as i64)
    }

    /// Milliseconds until such a lock expires (negative once expired; 0 before any
    /// timestamp is known) (client-go `pdOracle.UntilExpired`).
    pub fn until_expired(&self, lock_ts: u64, ttl_ms: u64) -> i64 {
        let last = self.get_low_resolution_ts();
        if last == 0 {
            return 0;
        }
        extract_physical(lock_ts).saturating_add(ttl_ms.min(i64::MAX as u64) as i64)
            - extract_physical(last)
    }

    /// Stops the oracle; pending requests fail with [`TsoError::Closed`] (client-go
    /// `Oracle.Close`).
    pub fn close(&self) {
        self.tso.close();
        if let Some(h) = &self._updater.0 {
            h.abort();
        }
    }
}
