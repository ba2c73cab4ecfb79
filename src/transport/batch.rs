//! The BatchCommands transport: many requests per gRPC frame on one bidirectional stream
//! per store (client-go `internal/client/client_batch.go`: `batchConn`,
//! `batchCommandsClient`, `batchSendLoop`, `batchRecvLoop`).
//!
//! Requests whose kind travels in the BatchCommands oneof are queued to a per-address send
//! task. It takes every request queued so far (up to `max_batch_size`), tags each with a
//! fresh request id, and sends them as one `BatchCommandsRequest`; a receive task matches
//! `request_ids` in the store's frames back to the waiting callers. A broken stream fails
//! its pending requests with `Unavailable` (they may have reached the store) and is
//! reopened for the next batch. A frame that names a different number of request ids
//! than it carries responses fails the requests it names with
//! [`TransportError::BadReply`] and is treated as a broken stream. Unary-only kinds go over
//! the unary client.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::Mutex;
use tikv_tower_layers::call::TransportError;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
use tikv_tower_proto::tikvpb::batch_commands_request::{self, request::Cmd as ReqCmd};
use tikv_tower_proto::tikvpb::tikv_client::TikvClient;
use tikv_tower_proto::tikvpb::{BatchCommandsRequest, BatchCommandsResponse};
use tokio::sync::{mpsc, oneshot};

use super::client::{status_to_error, GrpcConnector, GrpcStoreClient, StoreClient, StoreConnector};
use super::options::GrpcOptions;

type Reply = oneshot::Sender<Result<StoreResponse, TransportError>>;
type Pending = Arc<Mutex<HashMap<u64, Reply>>>;

/// Connects store addresses with a BatchCommands stream (plus a unary pool for the kinds
/// the stream does not carry).
#[derive(Debug, Clone)]
pub struct BatchConnector {
    unary: GrpcConnector,
    max_batch_size: usize,
    stats: Arc<BatchStats>,
    tasks: crate::tasks::TaskRegistry,
}

/// Counters of a [`BatchConnector`] (shared by every store it connects).
#[derive(Debug, Default)]
pub struct BatchStats {
    frames: AtomicU64,
    requests: AtomicU64,
}

impl BatchStats {
    /// `BatchCommandsRequest` frames sent.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }
    /// Requests sent inside those frames.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl BatchConnector {
    /// A connector with `options`; at most `max_batch_size` requests per frame (client-go
    /// `MaxBatchSize`, 128).
    pub fn new(options: GrpcOptions, max_batch_size: usize) -> Self {
        BatchConnector {
            unary: GrpcConnector::new(options),
            max_batch_size: max_batch_size.max(1),
            stats: Arc::new(BatchStats::default()),
            tasks: crate::tasks::TaskRegistry::new(),
        }
    }

    /// Spawn the per-store send and receive loops in `tasks` (the store core's registry,
    /// so that closing it stops them).
    pub fn with_tasks(mut self, tasks: crate::tasks::TaskRegistry) -> Self {
        self.tasks = tasks;
        self
    }

    /// Frame and request counters.
    pub fn stats(&self) -> Arc<BatchStats> {
        self.stats.clone()
    }
}

impl StoreConnector for BatchConnector {
    type Client = BatchStoreClient;

    fn connect(&self, addr: &Arc<str>) -> Result<BatchStoreClient, TransportError> {
        let unary = self.unary.connect(addr)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let sender = SendLoop {
            addr: addr.clone(),
            options: self.unary.options().clone(),
            rx,
            max_batch_size: self.max_batch_size,
            stream: None,
            next_id: 0,
            stats: self.stats.clone(),
            tasks: self.tasks.clone(),
        };
        // Not spawned once the registry is closed: `rx` is dropped with `sender`, so calls
        // fail at once as unavailable.
        self.tasks.spawn("batch-send-loop", sender.run());
        Ok(BatchStoreClient {
            unary,
            tx,
            addr: addr.clone(),
        })
    }
}

/// One store's BatchCommands client.
#[derive(Debug, Clone)]
pub struct BatchStoreClient {
    unary: GrpcStoreClient,
    tx: mpsc::UnboundedSender<(ReqCmd, Reply)>,
    addr: Arc<str>,
}

impl StoreClient for BatchStoreClient {
    type Future = BoxFuture<'static, Result<StoreResponse, TransportError>>;

    fn call(&self, req: StoreRequest, timeout: Option<Duration>) -> Self::Future {
        let cmd = match req.into_batch_cmd() {
            Ok(cmd) => cmd,
            Err(req) => return self.unary.call(req, timeout),
        };
        let (reply, rx) = oneshot::channel();
        let sent = self.tx.send((cmd, reply));
        let addr = self.addr.clone();
        // A reply that never comes back means the stream (or its send loop) went away
        // with the request in flight: a send failure, retried like any unreachable store,
        // not a cancellation by the caller.
        Box::pin(async move {
            if sent.is_err() {
                return Err(unavailable(&addr, "batch send loop stopped".into()));
            }
            rx.await.unwrap_or_else(|_| {
                Err(unavailable(
                    &addr,
                    "batch stream closed before the reply".into(),
                ))
            })
        })
    }
}

struct Stream {
    requests: mpsc::Sender<BatchCommandsRequest>,
    pending: Pending,
    broken: Arc<AtomicBool>,
}

struct SendLoop {
    addr: Arc<str>,
    options: GrpcOptions,
    rx: mpsc::UnboundedReceiver<(ReqCmd, Reply)>,
    max_batch_size: usize,
    stream: Option<Stream>,
    next_id: u64,
    stats: Arc<BatchStats>,
    tasks: crate::tasks::TaskRegistry,
}

fn unavailable(addr: &Arc<str>, message: String) -> TransportError {
    TransportError::Unavailable {
        addr: addr.clone(),
        message,
    }
}

impl SendLoop {
    /// client-go `batchSendLoop`.
    async fn run(mut self) {
        while let Some(first) = self.rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < self.max_batch_size {
                match self.rx.try_recv() {
                    Ok(e) => batch.push(e),
                    Err(_) => break,
                }
            }
            batch.retain(|(_, reply)| !reply.is_closed());
            if batch.is_empty() {
                continue;
            }
            if let Some(old) = self.stream.take_if(|s| s.broken.load(Ordering::Acquire)) {
                // Requests registered after the receive loop drained the map would
                // otherwise wait for a reply that cannot come.
                fail_pending(&old.pending, &self.addr, "batch stream broken");
            }
            if self.stream.is_none() {
                match self.open().await {
                    Ok(s) => self.stream = Some(s),
                    Err(e) => {
                        for (_, reply) in batch {
                            let _ = reply.send(Err(e.clone()));
                        }
                        continue;
                    }
                }
            }
            let Some(stream) = self.stream.as_ref() else {
                continue;
            };
            let mut frame = BatchCommandsRequest::default();
            {
                let mut pending = stream.pending.lock();
                for (cmd, reply) in batch {
                    self.next_id += 1;
                    pending.insert(self.next_id, reply);
                    frame.request_ids.push(self.next_id);
                    frame
                        .requests
                        .push(batch_commands_request::Request { cmd: Some(cmd) });
                }
            }
            self.stats.frames.fetch_add(1, Ordering::Relaxed);
            self.stats
                .requests
                .fetch_add(frame.request_ids.len() as u64, Ordering::Relaxed);
            if stream.requests.send(frame).await.is_err() {
                stream.broken.store(true, Ordering::Release);
                fail_pending(&stream.pending, &self.addr, "batch stream closed (send)");
                self.stream = None;
            }
        }
    }

    async fn open(&self) -> Result<Stream, TransportError> {
        let ep = self
            .options
            .endpoint(&self.addr)
            .map_err(|e| unavailable(&self.addr, format!("connect: {e}")))?;
        let channel = ep
            .connect()
            .await
            .map_err(|e| unavailable(&self.addr, format!("connect: {e}")))?;
        let mut client = TikvClient::new(channel)
            .max_decoding_message_size(self.options.max_recv_message_size)
            .max_encoding_message_size(self.options.max_send_message_size);
        let (tx, rx) = mpsc::channel(64);
        let responses = client
            .batch_commands(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .map_err(|s| status_to_error(&self.addr, &s))?
            .into_inner();
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let broken = Arc::new(AtomicBool::new(false));
        self.tasks.spawn(
            "batch-recv-loop",
            recv_loop(
                self.addr.clone(),
                responses,
                pending.clone(),
                broken.clone(),
            ),
        );
        Ok(Stream {
            requests: tx,
            pending,
            broken,
        })
    }
}

fn fail_pending(pending: &Pending, addr: &Arc<str>, message: &str) {
    let drained: Vec<Reply> = pending.lock().drain().map(|(_, r)| r).collect();
    for reply in drained {
        let _ = reply.send(Err(unavailable(addr, message.to_string())));
    }
}

/// client-go `batchRecvLoop`.
///
/// A frame whose `request_ids` and `responses` differ in number cannot be paired safely
/// (client-go indexes one by the other): every request it names fails at once with
/// [`TransportError::BadReply`], and the stream is dropped as broken, so the requests
/// still pending on it fail with `Unavailable` (retried) instead of waiting for their
/// timeout, and the next batch opens a new stream.
async fn recv_loop(
    addr: Arc<str>,
    mut responses: tonic::Streaming<BatchCommandsResponse>,
    pending: Pending,
    broken: Arc<AtomicBool>,
) {
    let reason = loop {
        match responses.message().await {
            Ok(Some(frame)) => {
                if let Err(message) = deliver(&addr, &pending, frame) {
                    break format!("batch stream dropped after a malformed frame: {message}");
                }
            }
            Ok(None) => break "batch stream ended".to_string(),
            Err(status) => break format!("batch stream broken: {}", status.message()),
        }
    };
    broken.store(true, Ordering::Release);
    fail_pending(&pending, &addr, &reason);
}

/// Hands each reply of `frame` to its waiting caller; a malformed frame fails the callers it
/// names with [`TransportError::BadReply`] and returns the reason.
fn deliver(addr: &Arc<str>, pending: &Pending, frame: BatchCommandsResponse) -> Result<(), String> {
    if frame.request_ids.len() != frame.responses.len() {
        let message = format!(
            "BatchCommands frame with {} request ids and {} responses",
            frame.request_ids.len(),
            frame.responses.len()
        );
        let named: Vec<Reply> = {
            let mut map = pending.lock();
            frame
                .request_ids
                .iter()
                .filter_map(|id| map.remove(id))
                .collect()
        };
        for reply in named {
            let _ = reply.send(Err(bad_reply(addr, message.clone())));
        }
        return Err(message);
    }
    for (id, resp) in frame.request_ids.iter().zip(frame.responses) {
        let Some(reply) = pending.lock().remove(id) else {
            continue;
        };
        let result = resp
            .cmd
            .and_then(StoreResponse::from_batch_cmd)
            .ok_or_else(|| bad_reply(addr, "empty BatchCommands response".into()));
        let _ = reply.send(result);
    }
    Ok(())
}

fn bad_reply(addr: &Arc<str>, message: String) -> TransportError {
    TransportError::BadReply {
        addr: addr.clone(),
        message,
    }
}
