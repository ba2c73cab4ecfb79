//! [`Transport`]: the innermost `tower::Service<StoreCall>`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use parking_lot::RwLock;
use pin_project_lite::pin_project;
use tikv_tower_layers::call::{StoreCall, TransportError};
use tikv_tower_proto::rpc::StoreResponse;
use tokio::time::Sleep;
use tower_service::Service;

use super::client::{GrpcConnector, StoreClient, StoreConnector};
use super::options::GrpcOptions;

/// The store transport (client-go `RPCClient.SendRequest`): sends each [`StoreCall`] to its
/// address through a cached per-address [`StoreClient`], enforcing the call's timeout.
/// Region errors are replies (`Ok`); only "no reply" is an `Err`. Cheap to clone; clones
/// share the per-address clients and in-flight counts.
///
/// With a store limit ([`Transport::with_store_limit`], client-go `TiKVClient.StoreLimit`),
/// a call to a store that already has that many calls in flight fails at once with
/// [`TransportError::TokenLimit`] (client-go `getStoreToken` → `ErrTokenLimit`); a call
/// holds its token until its reply, error or timeout, or until its future is dropped
/// (client-go `releaseStoreToken`).
pub struct Transport<C: StoreConnector> {
    connector: C,
    clients: Arc<RwLock<Clients<C::Client>>>,
    default_timeout: Option<Duration>,
    store_limit: usize,
}

/// The cached clients by address.
type Clients<Cl> = HashMap<Arc<str>, Entry<Cl>>;

/// A cached per-address client and its in-flight count (client-go `Store.tokenCount`).
struct Entry<Cl> {
    client: Cl,
    in_flight: Arc<AtomicUsize>,
}

/// One in-flight call's token: released when dropped.
#[derive(Debug)]
struct Token(Arc<AtomicUsize>);

impl Token {
    /// client-go `getStoreToken`, made exact with a compare-and-swap.
    fn acquire(count: &Arc<AtomicUsize>, limit: usize) -> Option<Token> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Token(count.clone()))
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The gRPC transport.
pub type GrpcTransport = Transport<GrpcConnector>;

/// The gRPC transport over BatchCommands streams.
pub type BatchTransport = Transport<super::batch::BatchConnector>;

/// The in-process transport over mockstore.
#[cfg(feature = "embedded")]
pub type InProcTransport = Transport<super::inproc::InProcConnector>;

impl<C: StoreConnector> Clone for Transport<C> {
    fn clone(&self) -> Self {
        Transport {
            connector: self.connector.clone(),
            clients: self.clients.clone(),
            default_timeout: self.default_timeout,
            store_limit: self.store_limit,
        }
    }
}

impl<C: StoreConnector> std::fmt::Debug for Transport<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("stores", &self.clients.read().len())
            .finish_non_exhaustive()
    }
}

impl GrpcTransport {
    /// A gRPC transport with `options` (pool size, keep-alive, TLS, message sizes).
    pub fn grpc(options: GrpcOptions) -> Self {
        Transport::new(GrpcConnector::new(options))
    }
}

impl BatchTransport {
    /// A BatchCommands transport (at most `max_batch_size` requests per frame; unary-only
    /// kinds use a unary channel pool).
    pub fn batch(options: GrpcOptions, max_batch_size: usize) -> Self {
        Transport::new(super::batch::BatchConnector::new(options, max_batch_size))
    }
}

#[cfg(feature = "embedded")]
impl InProcTransport {
    /// An in-process transport to `cluster`'s stores (no sockets).
    pub fn in_process(cluster: tikv_tower_mockstore::MockCluster) -> Self {
        Transport::new(super::inproc::InProcConnector::new(cluster))
    }
}

impl<C: StoreConnector> Transport<C> {
    /// A transport making per-address clients with `connector`.
    pub fn new(connector: C) -> Self {
        Transport {
            connector,
            clients: Arc::new(RwLock::new(HashMap::new())),
            default_timeout: None,
            store_limit: 0,
        }
    }

    /// At most `limit` calls in flight per store address, 0 = unlimited (client-go
    /// `TiKVClient.StoreLimit`); a call over the limit fails with
    /// [`TransportError::TokenLimit`].
    pub fn with_store_limit(mut self, limit: usize) -> Self {
        self.store_limit = limit;
        self
    }

    /// The per-store limit (0 = unlimited).
    pub fn store_limit(&self) -> usize {
        self.store_limit
    }

    /// Calls in flight to `addr` (counted only under a store limit; 0 otherwise).
    pub fn in_flight(&self, addr: &str) -> usize {
        self.clients
            .read()
            .get(addr)
            .map_or(0, |e| e.in_flight.load(Ordering::Acquire))
    }

    /// Timeout for calls that carry none.
    pub fn with_default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = Some(timeout);
        self
    }

    /// The connector.
    pub fn connector(&self) -> &C {
        &self.connector
    }

    /// Drops the cached client of `addr` (its connections close when in-flight calls end).
    pub fn forget(&self, addr: &str) {
        self.clients.write().remove(addr);
    }

    /// Number of addresses with a cached client.
    pub fn store_count(&self) -> usize {
        self.clients.read().len()
    }

    /// Runs `f` on the cached entry of `addr`, connecting it first if needed.
    fn with_entry<R>(
        &self,
        addr: &Arc<str>,
        f: impl FnOnce(&Entry<C::Client>) -> R,
    ) -> Result<R, TransportError> {
        if let Some(e) = self.clients.read().get(addr) {
            return Ok(f(e));
        }
        let mut map = self.clients.write();
        if let Some(e) = map.get(addr) {
            return Ok(f(e));
        }
        let entry = Entry {
            client: self.connector.connect(addr)?,
            in_flight: Arc::new(AtomicUsize::new(0)),
        };
        let r = f(&entry);
        map.insert(addr.clone(), entry);
        Ok(r)
    }
}

impl<C: StoreConnector> Service<StoreCall> for Transport<C> {
    type Response = StoreResponse;
    type Error = TransportError;
    type Future = ResponseFuture<<C::Client as StoreClient>::Future>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: StoreCall) -> Self::Future {
        let timeout = call.timeout.or(self.default_timeout);
        let failed = |addr, e| ResponseFuture {
            inner: None,
            sleep: None,
            error: Some(e),
            addr,
            timeout: Duration::ZERO,
            token: None,
        };
        // The in-flight count is touched only under a limit.
        let limit = self.store_limit;
        let found = self.with_entry(&call.addr, |e| {
            let token = (limit > 0).then(|| Token::acquire(&e.in_flight, limit));
            (e.client.clone(), token)
        });
        let (client, token) = match found {
            Ok((client, None)) => (client, None),
            Ok((client, Some(Some(token)))) => (client, Some(token)),
            Ok((_, Some(None))) => {
                let e = TransportError::TokenLimit {
                    store_id: call.store_id,
                    addr: call.addr.clone(),
                    limit,
                };
                return failed(call.addr, e);
            }
            Err(e) => return failed(call.addr, e),
        };
        ResponseFuture {
            inner: Some(client.call(call.request, timeout)),
            sleep: timeout.map(tokio::time::sleep),
            error: None,
            addr: call.addr,
            timeout: timeout.unwrap_or_default(),
            token,
        }
    }
}

pin_project! {
    /// The reply future of [`Transport`]: the client's future raced against the timeout.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Option<F>,
        #[pin]
        sleep: Option<Sleep>,
        error: Option<TransportError>,
        addr: Arc<str>,
        timeout: Duration,
        token: Option<Token>,
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<StoreResponse, TransportError>>,
{
    type Output = Result<StoreResponse, TransportError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(e) = this.error.take() {
            return Poll::Ready(Err(e));
        }
        let Some(inner) = this.inner.as_pin_mut() else {
            return Poll::Ready(Err(TransportError::Canceled));
        };
        if let Poll::Ready(r) = inner.poll(cx) {
            this.token.take();
            return Poll::Ready(match r {
                Err(TransportError::Timeout { addr, .. }) => Err(TransportError::Timeout {
                    addr,
                    elapsed: *this.timeout,
                }),
                other => other,
            });
        }
        if let Some(sleep) = this.sleep.as_pin_mut() {
            if sleep.poll(cx).is_ready() {
                this.token.take();
                return Poll::Ready(Err(TransportError::Timeout {
                    addr: this.addr.clone(),
                    elapsed: *this.timeout,
                }));
            }
        }
        Poll::Pending
    }
}
