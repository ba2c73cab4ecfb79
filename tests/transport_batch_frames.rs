//! The BatchCommands transport against a fake store on loopback that sends a malformed
//! frame (request ids and responses differing in number): the requests it names fail at
//! once with `TransportError::BadReply`, the others pending on the stream fail with
//! `Unavailable` instead of waiting for their timeout, and the next request reopens the
//! stream.
#![cfg(feature = "embedded")]

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tikv_tower::transport::{GrpcOptions, Transport};
use tikv_tower_layers::call::{StoreCall, TransportError};
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::StoreResponse;
use tikv_tower_proto::tikvpb::batch_commands_request::request::Cmd as ReqCmd;
use tikv_tower_proto::tikvpb::batch_commands_response::{response::Cmd as RespCmd, Response};
use tikv_tower_proto::tikvpb::{BatchCommandsRequest, BatchCommandsResponse};
use tokio::sync::mpsc;
use tonic::codegen::{http, Service};
use tonic::{Status, Streaming};
use tower::ServiceExt;

/// A store that only speaks `tikvpb.Tikv/BatchCommands`. On its first stream it keeps the
/// first frame unanswered and answers the second with its request ids but no responses;
/// later streams echo each RawGet's key as the value.
#[derive(Clone, Default)]
struct FakeStore {
    streams: Arc<AtomicUsize>,
    frames: Arc<AtomicUsize>,
}

impl tonic::server::NamedService for FakeStore {
    const NAME: &'static str = "tikvpb.Tikv";
}

impl Service<http::Request<tonic::body::Body>> for FakeStore {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            if req.uri().path() != "/tikvpb.Tikv/BatchCommands" {
                return Ok(Status::unimplemented("fake store").into_http());
            }
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.streaming(this, req).await)
        })
    }
}

impl tonic::server::StreamingService<BatchCommandsRequest> for FakeStore {
    type Response = BatchCommandsResponse;
    type ResponseStream = BoxStream<'static, Result<BatchCommandsResponse, Status>>;
    type Future = BoxFuture<'static, Result<tonic::Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, request: tonic::Request<Streaming<BatchCommandsRequest>>) -> Self::Future {
        let stream_no = self.streams.fetch_add(1, Ordering::SeqCst) + 1;
        let frames = self.frames.clone();
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut seen = 0;
            while let Ok(Some(frame)) = inbound.message().await {
                seen += 1;
                frames.fetch_add(1, Ordering::SeqCst);
                let reply = match (stream_no, seen) {
                    (1, 1) => continue,
                    (1, _) => BatchCommandsResponse {
                        request_ids: frame.request_ids,
                        ..Default::default()
                    },
                    _ => echo(frame),
                };
                if tx.send(Ok(reply)).is_err() {
                    break;
                }
            }
        });
        let out: Self::ResponseStream =
            Box::pin(tokio_stream::wrappers::UnboundedReceiverStream::new(rx));
        Box::pin(async move { Ok(tonic::Response::new(out)) })
    }
}

fn echo(frame: BatchCommandsRequest) -> BatchCommandsResponse {
    let responses = frame
        .requests
        .into_iter()
        .map(|r| {
            let value = match r.cmd {
                Some(ReqCmd::RawGet(g)) => g.key,
                _ => Default::default(),
            };
            Response {
                cmd: Some(RespCmd::RawGet(kvrpcpb::RawGetResponse {
                    value,
                    ..Default::default()
                })),
            }
        })
        .collect();
    BatchCommandsResponse {
        request_ids: frame.request_ids,
        responses,
        ..Default::default()
    }
}

/// A RawGet of `key` to the store at `addr`.
fn get_from(addr: &str, key: &[u8]) -> StoreCall {
    StoreCall {
        store_id: 1,
        addr: Arc::from(addr),
        request: common::raw_get(key),
        timeout: Some(Duration::from_secs(30)),
    }
}

async fn wait_for(count: &AtomicUsize, n: usize) {
    let start = Instant::now();
    while count.load(Ordering::SeqCst) < n {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "fake store saw too little"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_frame_fails_its_requests_at_once_and_the_stream_is_reopened() {
    let store = FakeStore::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(store.clone())
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let transport = Transport::batch(GrpcOptions::default(), 128);
    let started = Instant::now();

    // Frame 1 stays unanswered; frame 2 is answered with ids but no responses.
    let waiting = tokio::spawn(transport.clone().oneshot(get_from(&addr, b"waiting")));
    wait_for(&store.frames, 1).await;
    let named = transport.clone().oneshot(get_from(&addr, b"named")).await;
    let err = named.unwrap_err();
    assert!(
        matches!(&err, TransportError::BadReply { message, .. } if message.contains("1 request ids and 0 responses")),
        "{err:?}"
    );
    assert!(err.may_have_reached_store());
    // The request of the unanswered frame does not hang until its 30 s timeout.
    let other = waiting.await.unwrap().unwrap_err();
    assert!(
        matches!(&other, TransportError::Unavailable { message, .. } if message.contains("malformed frame")),
        "{other:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    // The next request opens a new stream and gets its reply.
    let ok = transport
        .clone()
        .oneshot(get_from(&addr, b"again"))
        .await
        .unwrap();
    assert!(matches!(ok, StoreResponse::RawGet(r) if r.value.as_ref() == b"again"));
    assert_eq!(store.streams.load(Ordering::SeqCst), 2);
    server.abort();
}
