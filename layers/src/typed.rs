//! Typed sends: a kvrpcpb request in, its own reply type out.
//!
//! The stack speaks [`StoreRequest`](tikv_tower_proto::rpc::StoreRequest) /
//! [`StoreResponse`]; a caller that built a `RawGetRequest` wants a `RawGetResponse`
//! back. [`send`] wraps the request (with its target, operation state, replica-read and
//! timeout [`SendOptions`]), sends it through any stack and unwraps the reply with the
//! request's [`KvRequest::Response`] binding. A reply of another kind (a misbehaving
//! store, a buggy layer) is the typed error [`Error::UnexpectedReply`], never a panic.
//!
//! client-rust counterpart: `KvRequest { type Response }` and its `dispatch`; client-go:
//! `tikvrpc.Request` / `Response.Resp` with the callers' type assertions.
//!
//! # Example
//!
//! ```
//! use tikv_tower_layers::typed::{send, SendOptions};
//! use tikv_tower_layers::{Error, Request, Response};
//! use tikv_tower_proto::kvrpcpb::{RawGetRequest, RawGetResponse};
//! use tikv_tower_proto::rpc::{RpcKind, StoreResponse};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // A fake stack answering every request with a RawGet reply.
//! let stack = tower::service_fn(|_req: Request| async {
//!     let reply = RawGetResponse { value: b"v".to_vec().into(), ..Default::default() };
//!     Ok::<_, Error>(Response { inner: StoreResponse::from(reply), details: Default::default() })
//! });
//! let get = RawGetRequest { key: b"k".to_vec().into(), ..Default::default() };
//! let reply: RawGetResponse = send(stack, get, SendOptions::default()).await.unwrap();
//! assert_eq!(reply.value, &b"v"[..]);
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use tikv_tower_proto::rpc::{KvRequest, KvResponse, StoreResponse};
use tower::ServiceExt;
use tower_service::Service;

use crate::error::Error;
use crate::request::{ExecDetails, OpState, ReplicaRead, Request, Response, Target};

/// How one typed request is sent: everything but the request itself.
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    /// Where to send it; `None` infers the target from the kind ([`Target::infer`]).
    pub target: Option<Target>,
    /// The operation state to share (budget, deadline, resolved locks); `None` = fresh.
    pub op: Option<Arc<OpState>>,
    /// Replica-read policy (reads only); `None` = the leader.
    pub replica_read: Option<ReplicaRead>,
    /// Per-RPC timeout; `None` = the kind's default from the timeout layer.
    pub timeout: Option<Duration>,
}

impl SendOptions {
    /// Options sharing `op`.
    pub fn op(op: Arc<OpState>) -> Self {
        SendOptions {
            op: Some(op),
            ..SendOptions::default()
        }
    }

    /// These options with an explicit target.
    pub fn with_target(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }

    /// These options with a replica-read policy.
    pub fn with_replica_read(mut self, replica_read: ReplicaRead) -> Self {
        self.replica_read = Some(replica_read);
        self
    }

    /// These options with a per-RPC timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The stack request carrying `req` with these options.
    pub fn request<R: KvRequest>(self, req: R) -> Request {
        let inner = req.into();
        let mut request = match self.target {
            Some(target) => Request::with_target(inner, target),
            None => Request::new(inner),
        };
        if let Some(op) = self.op {
            request = request.with_op(op);
        }
        if let Some(r) = self.replica_read {
            request = request.with_replica_read(r);
        }
        if let Some(t) = self.timeout {
            request = request.with_timeout(t);
        }
        request
    }
}

/// Unwraps a reply of `R`'s kind, or fails with [`Error::UnexpectedReply`].
pub fn expect_reply<R: KvRequest>(reply: StoreResponse) -> Result<R::Response, Error> {
    R::Response::from_store(reply).map_err(|got| Error::UnexpectedReply {
        expected: R::KIND,
        got: got.kind(),
    })
}

/// Sends `req` through `stack` and returns its typed reply (see the [module docs](self)).
pub async fn send<S, R>(stack: S, req: R, options: SendOptions) -> Result<R::Response, Error>
where
    S: Service<Request, Response = Response, Error = Error>,
    R: KvRequest,
{
    send_with_details(stack, req, options).await.map(|(r, _)| r)
}

/// Like [`send`], also returning the execution details (attempts, backoffs, store).
pub async fn send_with_details<S, R>(
    stack: S,
    req: R,
    options: SendOptions,
) -> Result<(R::Response, ExecDetails), Error>
where
    S: Service<Request, Response = Response, Error = Error>,
    R: KvRequest,
{
    let resp = stack.oneshot(options.request(req)).await?;
    Ok((expect_reply::<R>(resp.inner)?, resp.details))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tikv_tower_proto::kvrpcpb;
    use tikv_tower_proto::rpc::{RpcKind, StoreRequest};

    fn reply_of(inner: StoreResponse) -> Response {
        Response {
            inner,
            details: ExecDetails::default(),
        }
    }

    /// A fake stack answering each request with `reply(kind)` and checking the options.
    fn fake(
        reply: fn(RpcKind) -> StoreResponse,
    ) -> impl Service<Request, Response = Response, Error = Error, Future: Send> + Clone {
        tower::service_fn(move |req: Request| async move {
            Ok::<_, Error>(reply_of(reply(req.inner.kind())))
        })
    }

    #[tokio::test]
    async fn typed_send_returns_the_typed_reply() {
        let stack = fake(|kind| {
            assert_eq!(kind, RpcKind::RawGet);
            kvrpcpb::RawGetResponse {
                value: b"v".to_vec().into(),
                ..Default::default()
            }
            .into()
        });
        let req = kvrpcpb::RawGetRequest {
            key: b"k".to_vec().into(),
            ..Default::default()
        };
        let reply = send(stack, req, SendOptions::default()).await.unwrap();
        assert_eq!(reply.value, &b"v"[..]);
        assert!(!reply.not_found);
    }

    #[tokio::test]
    async fn a_reply_of_another_kind_is_a_typed_error() {
        // A broken store answering a Prewrite with a Commit reply.
        let stack = fake(|_| StoreResponse::default_for(RpcKind::Commit));
        let err = send(
            stack,
            kvrpcpb::PrewriteRequest::default(),
            SendOptions::default(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                err,
                Error::UnexpectedReply {
                    expected: RpcKind::Prewrite,
                    got: RpcKind::Commit
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn options_reach_the_stack() {
        let op = OpState::new();
        let seen = op.clone();
        let stack = tower::service_fn(move |req: Request| {
            let seen = seen.clone();
            async move {
                assert!(Arc::ptr_eq(&req.op, &seen));
                assert_eq!(
                    req.target,
                    Target::Region(crate::RegionVerId {
                        id: 7,
                        conf_ver: 1,
                        ver: 2
                    })
                );
                assert_eq!(req.replica_read, ReplicaRead::Follower);
                assert_eq!(req.timeout, Some(Duration::from_secs(3)));
                assert!(matches!(req.inner, StoreRequest::Get(_)));
                Ok::<_, Error>(reply_of(StoreResponse::default_for(RpcKind::Get)))
            }
        });
        let opts = SendOptions::op(op)
            .with_target(Target::Region(crate::RegionVerId {
                id: 7,
                conf_ver: 1,
                ver: 2,
            }))
            .with_replica_read(ReplicaRead::Follower)
            .with_timeout(Duration::from_secs(3));
        let (_, details) = send_with_details(stack, kvrpcpb::GetRequest::default(), opts)
            .await
            .unwrap();
        assert_eq!(details.attempts, 0);
    }
}
