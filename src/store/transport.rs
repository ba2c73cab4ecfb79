//! The transport a store core sends through: one of the built-in backends, or any
//! user-supplied store-call service.

use std::task::{Context, Poll};

use futures::future::{BoxFuture, Either};
use tikv_tower_layers::call::{StoreCall, TransportError};
use tikv_tower_proto::rpc::StoreResponse;
use tower::util::BoxCloneSyncService;
use tower::Service;

use crate::transport::{BatchTransport, GrpcTransport};

/// A user-supplied transport, boxed.
pub type CustomTransport = BoxCloneSyncService<StoreCall, StoreResponse, TransportError>;

/// The transport of a [`KvStore`](super::KvStore): an enum rather than a boxed service so
/// that the built-in backends cost no allocation per call.
#[derive(Clone)]
pub enum StoreTransport {
    /// Unary gRPC per store (`max-batch-size = 0`).
    Grpc(GrpcTransport),
    /// The BatchCommands stream per store (client-go's default).
    Batch(BatchTransport),
    /// The in-process mockstore (no sockets).
    #[cfg(feature = "embedded")]
    InProc(crate::transport::InProcTransport),
    /// Anything else speaking store calls (tests, fakes, user transports).
    Custom(CustomTransport),
}

impl std::fmt::Debug for StoreTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StoreTransport::Grpc(_) => "StoreTransport::Grpc",
            StoreTransport::Batch(_) => "StoreTransport::Batch",
            #[cfg(feature = "embedded")]
            StoreTransport::InProc(_) => "StoreTransport::InProc",
            StoreTransport::Custom(_) => "StoreTransport::Custom",
        })
    }
}

impl StoreTransport {
    /// A custom transport from any cloneable store-call service.
    pub fn custom<T>(transport: T) -> Self
    where
        T: Service<StoreCall, Response = StoreResponse, Error = TransportError>
            + Clone
            + Send
            + Sync
            + 'static,
        T::Future: Send + 'static,
    {
        StoreTransport::Custom(BoxCloneSyncService::new(transport))
    }
}

type Grpc = <GrpcTransport as Service<StoreCall>>::Future;
type Batch = <BatchTransport as Service<StoreCall>>::Future;
type Boxed = BoxFuture<'static, Result<StoreResponse, TransportError>>;
#[cfg(feature = "embedded")]
type InProc = <crate::transport::InProcTransport as Service<StoreCall>>::Future;
#[cfg(not(feature = "embedded"))]
type InProc = futures::future::Pending<Result<StoreResponse, TransportError>>;

/// The reply future of [`StoreTransport`].
pub type StoreTransportFuture = Either<Either<Grpc, Batch>, Either<InProc, Boxed>>;

impl Service<StoreCall> for StoreTransport {
    type Response = StoreResponse;
    type Error = TransportError;
    type Future = StoreTransportFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        match self {
            StoreTransport::Grpc(t) => t.poll_ready(cx),
            StoreTransport::Batch(t) => t.poll_ready(cx),
            #[cfg(feature = "embedded")]
            StoreTransport::InProc(t) => t.poll_ready(cx),
            StoreTransport::Custom(t) => t.poll_ready(cx),
        }
    }

    fn call(&mut self, call: StoreCall) -> Self::Future {
        match self {
            StoreTransport::Grpc(t) => Either::Left(Either::Left(t.call(call))),
            StoreTransport::Batch(t) => Either::Left(Either::Right(t.call(call))),
            #[cfg(feature = "embedded")]
            StoreTransport::InProc(t) => Either::Right(Either::Left(t.call(call))),
            StoreTransport::Custom(t) => Either::Right(Either::Right(t.call(call))),
        }
    }
}
