//! Unit tests of the transport service with fake store clients.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tikv_tower_layers::call::{StoreCall, TransportError};
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
use tower::ServiceExt;

use super::*;

#[derive(Clone, Default)]
struct FakeConnector {
    connects: Arc<AtomicUsize>,
    delay: Duration,
}

#[derive(Clone)]
struct FakeClient {
    delay: Duration,
}

impl StoreClient for FakeClient {
    type Future = BoxFuture<'static, Result<StoreResponse, TransportError>>;
    fn call(&self, req: StoreRequest, _timeout: Option<Duration>) -> Self::Future {
        let delay = self.delay;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            match req {
                StoreRequest::RawGet(r) => {
                    Ok(StoreResponse::RawGet(Box::new(kvrpcpb::RawGetResponse {
                        value: r.key,
                        ..Default::default()
                    })))
                }
                _ => Err(TransportError::Canceled),
            }
        })
    }
}

impl StoreConnector for FakeConnector {
    type Client = FakeClient;
    fn connect(&self, _addr: &Arc<str>) -> Result<FakeClient, TransportError> {
        self.connects.fetch_add(1, Ordering::Relaxed);
        Ok(FakeClient { delay: self.delay })
    }
}

fn raw_get(addr: &str, key: &[u8], timeout: Option<Duration>) -> StoreCall {
    StoreCall {
        store_id: 1,
        addr: Arc::from(addr),
        request: StoreRequest::RawGet(Box::new(kvrpcpb::RawGetRequest {
            key: key.to_vec().into(),
            ..Default::default()
        })),
        timeout,
    }
}

#[tokio::test(start_paused = true)]
async fn clients_are_cached_per_address() {
    let conn = FakeConnector::default();
    let t = Transport::new(conn.clone());
    for addr in ["a", "b", "a", "a", "b"] {
        let resp = t.clone().oneshot(raw_get(addr, b"k", None)).await.unwrap();
        assert!(matches!(resp, StoreResponse::RawGet(r) if r.value == "k"));
    }
    assert_eq!(conn.connects.load(Ordering::Relaxed), 2);
    assert_eq!(t.store_count(), 2);
    t.forget("a");
    assert_eq!(t.store_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn timeouts_become_transport_timeouts() {
    let conn = FakeConnector {
        delay: Duration::from_secs(5),
        ..Default::default()
    };
    let t = Transport::new(conn);
    let err = t
        .clone()
        .oneshot(raw_get("a", b"k", Some(Duration::from_secs(1))))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::Timeout { elapsed, .. } if elapsed == Duration::from_secs(1)),
        "{err:?}"
    );
    // The default timeout applies to calls without one.
    let t = t.with_default_timeout(Duration::from_secs(2));
    assert!(matches!(
        t.clone().oneshot(raw_get("a", b"k", None)).await,
        Err(TransportError::Timeout { .. })
    ));
    // Enough time: the reply wins.
    assert!(t
        .oneshot(raw_get("a", b"k", Some(Duration::from_secs(10))))
        .await
        .is_ok());
}

#[test]
fn status_classification() {
    let addr: Arc<str> = Arc::from("s");
    let cases: Vec<(tonic::Status, &str)> = vec![
        (
            tonic::Status::unavailable("error trying to connect: refused"),
            "unavailable-connect",
        ),
        (tonic::Status::unavailable("stream closed"), "unavailable"),
        (
            tonic::Status::unavailable("connection reset by peer"),
            "unavailable",
        ),
        (tonic::Status::deadline_exceeded("late"), "timeout"),
        (tonic::Status::cancelled("gone"), "unavailable"),
        (tonic::Status::internal("boom"), "status"),
        (tonic::Status::unknown("server said so"), "status"),
        (
            tonic::Status::from_error(Box::new(std::io::Error::other("h2 reset"))),
            "unavailable",
        ),
    ];
    for (status, want) in cases {
        let got = match status_to_error(&addr, &status) {
            TransportError::Unavailable { message, .. } if message.starts_with("connect") => {
                "unavailable-connect"
            }
            TransportError::Unavailable { .. } => "unavailable",
            TransportError::Timeout { .. } => "timeout",
            TransportError::Canceled => "canceled",
            TransportError::Status { .. } => "status",
        };
        assert_eq!(got, want, "{status:?}");
    }
}

#[tokio::test]
async fn grpc_to_a_closed_port_is_unavailable_before_reaching_the_store() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let t = Transport::grpc(GrpcOptions {
        connect_timeout: Duration::from_secs(2),
        ..GrpcOptions::default()
    });
    let err = t
        .oneshot(raw_get(
            &format!("127.0.0.1:{port}"),
            b"k",
            Some(Duration::from_secs(5)),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Unavailable { .. }), "{err:?}");
    assert!(!err.may_have_reached_store(), "{err:?}");
}
