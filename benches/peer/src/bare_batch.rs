//! Side (d): the true ceiling for a BatchCommands client. Raw gets and puts built
//! directly as BatchCommands sub-requests (the leader's `Context` prepared once per
//! region) and sent on one `BatchCommands` stream per store, with no layers: a send task
//! packs every queued sub-request (up to 128, client-go `MaxBatchSize`) into one frame
//! tagged with request ids, a receive task hands each reply to its waiting caller.
//! Routes are read from PD once, before the run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::tikvpb::batch_commands_request::{self, request::Cmd as ReqCmd};
use tikv_tower_proto::tikvpb::batch_commands_response::response::Cmd as RespCmd;
use tikv_tower_proto::tikvpb::tikv_client::TikvClient;
use tikv_tower_proto::tikvpb::BatchCommandsRequest;
use tokio::sync::{mpsc, oneshot};

use crate::bare::{channel, find, routes};

/// Sub-requests per frame at most.
const MAX_BATCH: usize = 128;

type Waiters = Arc<Mutex<HashMap<u64, oneshot::Sender<Option<RespCmd>>>>>;

/// One store's stream: the queue its send task drains.
#[derive(Clone)]
struct Stream {
    queue: mpsc::UnboundedSender<(ReqCmd, oneshot::Sender<Option<RespCmd>>)>,
}

#[derive(Clone)]
struct Route {
    start: Vec<u8>,
    end: Vec<u8>,
    ctx: kvrpcpb::Context,
    stream: Stream,
}

/// The bare BatchCommands client.
#[derive(Clone)]
pub struct BareBatch {
    routes: Arc<Vec<Route>>,
}

impl BareBatch {
    /// Reads the routes from PD (`host:port`) and opens one stream per leader store.
    pub async fn connect(pd_addr: &str) -> Result<Self, String> {
        let mut streams: HashMap<u64, Stream> = HashMap::new();
        let mut out = Vec::new();
        for r in routes(pd_addr).await? {
            let stream = match streams.get(&r.store_id) {
                Some(s) => s.clone(),
                None => {
                    let s = open(&r.addr).await?;
                    streams.insert(r.store_id, s.clone());
                    s
                }
            };
            out.push(Route {
                start: r.start,
                end: r.end,
                ctx: r.ctx,
                stream,
            });
        }
        Ok(BareBatch {
            routes: Arc::new(out),
        })
    }

    fn route(&self, key: &[u8]) -> Result<&Route, String> {
        find(&self.routes, key, |r| (&r.start, &r.end))
    }

    /// Raw get; a missing key is an error.
    pub async fn get(&self, key: Vec<u8>) -> Result<(), String> {
        let r = self.route(&key)?;
        let cmd = ReqCmd::RawGet(kvrpcpb::RawGetRequest {
            context: Some(r.ctx.clone()),
            key,
            ..Default::default()
        });
        match r.stream.send(cmd).await? {
            RespCmd::RawGet(r) if r.region_error.is_some() => Err(format!(
                "bare-batch RawGet region error: {:?}",
                r.region_error
            )),
            RespCmd::RawGet(r) if !r.error.is_empty() => {
                Err(format!("bare-batch RawGet error: {}", r.error))
            }
            RespCmd::RawGet(r) if r.not_found => Err("bare-batch RawGet: key not found".into()),
            RespCmd::RawGet(_) => Ok(()),
            _ => Err("bare-batch RawGet: reply of another kind".into()),
        }
    }

    /// Raw put.
    pub async fn put(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), String> {
        let r = self.route(&key)?;
        let cmd = ReqCmd::RawPut(kvrpcpb::RawPutRequest {
            context: Some(r.ctx.clone()),
            key,
            value,
            ..Default::default()
        });
        match r.stream.send(cmd).await? {
            RespCmd::RawPut(r) if r.region_error.is_some() => Err(format!(
                "bare-batch RawPut region error: {:?}",
                r.region_error
            )),
            RespCmd::RawPut(r) if !r.error.is_empty() => {
                Err(format!("bare-batch RawPut error: {}", r.error))
            }
            RespCmd::RawPut(_) => Ok(()),
            _ => Err("bare-batch RawPut: reply of another kind".into()),
        }
    }
}

impl Stream {
    /// Queues `cmd` for the next frame and waits for its reply.
    async fn send(&self, cmd: ReqCmd) -> Result<RespCmd, String> {
        let (tx, rx) = oneshot::channel();
        self.queue
            .send((cmd, tx))
            .map_err(|_| "bare-batch: send task stopped".to_string())?;
        match rx.await {
            Ok(Some(cmd)) => Ok(cmd),
            Ok(None) => Err("bare-batch: empty response".into()),
            Err(_) => Err("bare-batch: stream closed".into()),
        }
    }
}

/// Opens the store's stream and starts its send and receive tasks.
async fn open(addr: &str) -> Result<Stream, String> {
    let mut client = TikvClient::new(channel(addr).await?).max_decoding_message_size(usize::MAX);
    let (frames_tx, frames_rx) = mpsc::channel::<BatchCommandsRequest>(64);
    let outbound = futures::stream::unfold(frames_rx, |mut rx| async move {
        rx.recv().await.map(|f| (f, rx))
    });
    let mut inbound = client
        .batch_commands(outbound)
        .await
        .map_err(|e| format!("BatchCommands {addr}: {e}"))?
        .into_inner();
    let waiters: Waiters = Arc::default();
    let (queue, mut queued) =
        mpsc::unbounded_channel::<(ReqCmd, oneshot::Sender<Option<RespCmd>>)>();
    let send_waiters = waiters.clone();
    tokio::spawn(async move {
        let mut next_id = 0u64;
        while let Some(first) = queued.recv().await {
            let mut frame = BatchCommandsRequest::default();
            {
                let mut w = send_waiters.lock().unwrap_or_else(|p| p.into_inner());
                let mut item = Some(first);
                while let Some((cmd, tx)) = item.take() {
                    next_id += 1;
                    w.insert(next_id, tx);
                    frame.request_ids.push(next_id);
                    frame
                        .requests
                        .push(batch_commands_request::Request { cmd: Some(cmd) });
                    if frame.requests.len() < MAX_BATCH {
                        item = queued.try_recv().ok();
                    }
                }
            }
            if frames_tx.send(frame).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        while let Ok(Some(frame)) = inbound.message().await {
            let mut w = waiters.lock().unwrap_or_else(|p| p.into_inner());
            for (id, resp) in frame.request_ids.iter().zip(frame.responses) {
                if let Some(tx) = w.remove(id) {
                    let _ = tx.send(resp.cmd);
                }
            }
        }
        // Stream over: fail every waiter (dropping its sender).
        waiters.lock().unwrap_or_else(|p| p.into_inner()).clear();
    });
    Ok(Stream { queue })
}
