//! The `tikvpb.Tikv` gRPC service of one store: every unary RPC and every
//! BatchCommands sub-request goes through [`MockStore::handle`].
//!
//! BatchCommands follows TiKV's `kv.rs` batch handling: each sub-request of a frame is
//! handled concurrently; each gets exactly one sub-response carrying its request id;
//! responses are sent as soon as they are ready, several ready ones packed into one
//! frame; `Empty` answers `{test_id}` after `delay_time` milliseconds. A gRPC-level
//! failure of a sub-request (the store was stopped, a fault dropped it) breaks the
//! stream, which fails every in-flight id on the client side, as a broken transport
//! does.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
use tikv_tower_proto::tikvpb::batch_commands_request::request::Cmd as ReqCmd;
use tikv_tower_proto::tikvpb::batch_commands_response::{
    response::Cmd as RespCmd, Response as SubResponse,
};
use tikv_tower_proto::tikvpb::{self, tikv_server::Tikv};
use tikv_tower_proto::{kvrpcpb, rpc::RpcKind};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use crate::MockStore;

/// Most sub-responses packed into one BatchCommands response frame.
const MAX_FRAME: usize = 128;

/// The `Tikv` service of one store.
#[derive(Clone, Debug)]
pub struct TikvService {
    store: MockStore,
    feedback_seq: Arc<AtomicU64>,
}

impl TikvService {
    /// The service of `store`.
    pub fn new(store: MockStore) -> Self {
        TikvService {
            store,
            feedback_seq: Arc::new(AtomicU64::new(0)),
        }
    }

    async fn call(&self, req: StoreRequest) -> Result<StoreResponse, Status> {
        self.store.handle(req).await
    }
}

/// A response of the wrong kind for the request: a bug in the store, reported as INTERNAL.
fn mismatch(want: RpcKind, got: &StoreResponse) -> Status {
    Status::internal(format!("store answered {} to {}", got.kind(), want))
}

/// Handles one BatchCommands sub-request.
async fn handle_sub(store: &MockStore, cmd: ReqCmd) -> Result<RespCmd, Status> {
    let req = match cmd {
        ReqCmd::Empty(e) => {
            if e.delay_time > 0 {
                tokio::time::sleep(Duration::from_millis(e.delay_time)).await;
            }
            return Ok(RespCmd::Empty(tikvpb::BatchCommandsEmptyResponse {
                test_id: e.test_id,
            }));
        }
        other => match StoreRequest::from_batch_cmd(other) {
            Some(r) => r,
            None => return Err(Status::internal("unexpected batch command")),
        },
    };
    let kind = req.kind();
    let resp = store.handle(req).await?;
    resp.into_batch_cmd().map_err(|r| mismatch(kind, &r))
}

type BatchStream =
    Pin<Box<dyn Stream<Item = Result<tikvpb::BatchCommandsResponse, Status>> + Send + 'static>>;

impl TikvService {
    fn batch_commands_stream(
        &self,
        mut input: tonic::Streaming<tikvpb::BatchCommandsRequest>,
    ) -> BatchStream {
        let (tx, rx) = mpsc::unbounded_channel::<Result<(u64, RespCmd), Status>>();
        let store = self.store.clone();
        tokio::spawn(async move {
            loop {
                let frame = match input.message().await {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                };
                for (req, id) in frame.requests.into_iter().zip(frame.request_ids) {
                    let Some(cmd) = req.cmd else {
                        continue;
                    };
                    let tx = tx.clone();
                    let store = store.clone();
                    tokio::spawn(async move {
                        let out = handle_sub(&store, cmd).await.map(|c| (id, c));
                        let _ = tx.send(out);
                    });
                }
            }
        });
        let store_id = self.store.id();
        let seq = self.feedback_seq.clone();
        let frames = futures::stream::unfold(
            (rx, None::<Status>, false),
            move |(mut rx, pending, done)| {
                let seq = seq.clone();
                async move {
                    if done {
                        return None;
                    }
                    // An error seen while packing the previous frame ends the stream now.
                    if let Some(e) = pending {
                        return Some((Err(e), (rx, None, true)));
                    }
                    let (id, cmd) = match rx.recv().await? {
                        Ok(x) => x,
                        Err(e) => return Some((Err(e), (rx, None, true))),
                    };
                    let mut frame = tikvpb::BatchCommandsResponse {
                        health_feedback: Some(kvrpcpb::HealthFeedback {
                            store_id,
                            feedback_seq_no: seq.fetch_add(1, Ordering::Relaxed) + 1,
                            slow_score: 1,
                        }),
                        ..Default::default()
                    };
                    frame.request_ids.push(id);
                    frame.responses.push(SubResponse { cmd: Some(cmd) });
                    let mut pending = None;
                    while frame.responses.len() < MAX_FRAME {
                        match rx.try_recv() {
                            Ok(Ok((id, cmd))) => {
                                frame.request_ids.push(id);
                                frame.responses.push(SubResponse { cmd: Some(cmd) });
                            }
                            Ok(Err(e)) => {
                                pending = Some(e);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    Some((Ok(frame), (rx, pending, false)))
                }
            },
        );
        Box::pin(frames)
    }
}

/// Expands the store-RPC table ([`tikv_tower_proto::store_rpc_table!`]) into the
/// `Tikv` service: one unary handler per row, each running the request through
/// [`TikvService::call`].
macro_rules! tikv_service {
    ($( $variant:ident($req:ident, $resp:ident) via $method:ident; )*) => {
        #[tonic::async_trait]
        impl Tikv for TikvService {
            $(
                async fn $method(
                    &self,
                    request: Request<kvrpcpb::$req>,
                ) -> Result<Response<kvrpcpb::$resp>, Status> {
                    match self.call(StoreRequest::$variant(Box::new(request.into_inner()))).await? {
                        StoreResponse::$variant(r) => Ok(Response::new(*r)),
                        other => Err(mismatch(RpcKind::$variant, &other)),
                    }
                }
            )*

            type BatchCommandsStream = BatchStream;

            async fn batch_commands(
                &self,
                request: Request<tonic::Streaming<tikvpb::BatchCommandsRequest>>,
            ) -> Result<Response<Self::BatchCommandsStream>, Status> {
                Ok(Response::new(self.batch_commands_stream(request.into_inner())))
            }
        }
    };
}

tikv_tower_proto::store_rpc_table!(methods: tikv_service);
