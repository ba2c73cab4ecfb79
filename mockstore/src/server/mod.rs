//! Serving a [`MockCluster`] over gRPC on loopback, the way a real cluster is laid out.
//!
//! [`MockCluster::serve_grpc`] starts:
//! - one **PD listener** serving, on the same port, gRPC `pdpb.PD`, `keyspacepb.Keyspace`
//!   and `grpc.health.v1.Health` (requests with `content-type: application/grpc*`) and
//!   PD's HTTP/1.1 JSON API ([`http`]) for everything else, as real PD does on its
//!   client port;
//! - one **listener per store** serving `tikvpb.Tikv` ([`TikvService`], every RPC through
//!   [`MockStore::handle`](crate::MockStore::handle)) and the health service; the store's
//!   address `127.0.0.1:<port>` (no scheme, as TiKV registers it) is recorded in the
//!   cluster, so PD reports it and `cluster.store_by_addr` finds the store.
//!
//! Connections are served with hyper's HTTP/1 + HTTP/2 auto-detection (gRPC clients
//! speak h2c). Requests up to 128 MiB are accepted, so oversized writes reach the store's
//! `RaftEntryTooLarge` check instead of failing in the transport.
//!
//! A store can be stopped and started again ([`ServedCluster::stop_store`]): stopping
//! closes its listener and drops every open connection (clients see connection
//! refused / `UNAVAILABLE`) and marks it stopped in the cluster; starting reopens the
//! same port. Data is kept. Dropping the [`ServedCluster`] stops every server.

pub mod control;
pub mod http;
mod tikv;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use parking_lot::Mutex;
use tikv_tower_proto::keyspacepb::keyspace_server::KeyspaceServer;
use tikv_tower_proto::pdpb::pd_server::PdServer;
use tikv_tower_proto::tikvpb::tikv_server::TikvServer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tonic::service::Routes;
use tower::ServiceExt;

use crate::cluster::{ClusterError, MockCluster};
use crate::pd::MockPd;

pub use tikv::TikvService;

/// Largest gRPC message accepted or sent.
pub const MAX_MESSAGE_SIZE: usize = 128 * 1024 * 1024;

/// Where to listen. Ports of 0 (the default) pick free ports.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// PD port (0 = any free port).
    pub pd_port: u16,
    /// First store port; store `i` (in id order) listens on `base + i`. `None` = any
    /// free ports.
    pub store_port_base: Option<u16>,
}

/// Errors of serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Binding or accepting failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// No served store with this id.
    #[error("store {0} is not served")]
    UnknownStore(u64),
    /// The cluster refused the operation.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// A running server task and the switch that stops it.
struct ServerHandle {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl ServerHandle {
    async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

struct StoreSlot {
    addr: SocketAddr,
    server: Option<ServerHandle>,
}

/// A cluster served on loopback (see the module docs). Dropping it stops the servers.
pub struct ServedCluster {
    cluster: MockCluster,
    pd_addr: SocketAddr,
    pd_server: Option<ServerHandle>,
    stores: Mutex<BTreeMap<u64, StoreSlot>>,
}

impl std::fmt::Debug for ServedCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedCluster")
            .field("pd_addr", &self.pd_addr)
            .field("store_addrs", &self.store_addrs())
            .finish()
    }
}

impl ServedCluster {
    /// The served cluster.
    pub fn cluster(&self) -> &MockCluster {
        &self.cluster
    }

    /// PD's socket address.
    pub fn pd_addr(&self) -> SocketAddr {
        self.pd_addr
    }

    /// PD's URL, `http://127.0.0.1:<port>`.
    pub fn pd_url(&self) -> String {
        format!("http://{}", self.pd_addr)
    }

    /// The address of store `id`, if served.
    pub fn store_addr(&self, id: u64) -> Option<SocketAddr> {
        self.stores.lock().get(&id).map(|s| s.addr)
    }

    /// Every served store's address, by store id.
    pub fn store_addrs(&self) -> BTreeMap<u64, SocketAddr> {
        self.stores
            .lock()
            .iter()
            .map(|(id, s)| (*id, s.addr))
            .collect()
    }

    /// Stops store `id`: marks it stopped in the cluster, closes its listener and drops
    /// its open connections.
    pub async fn stop_store(&self, id: u64) -> Result<(), ServeError> {
        let server = {
            let mut stores = self.stores.lock();
            let slot = stores.get_mut(&id).ok_or(ServeError::UnknownStore(id))?;
            slot.server.take()
        };
        self.cluster.stop_store(id)?;
        if let Some(s) = server {
            s.shutdown().await;
        }
        Ok(())
    }

    /// Starts a stopped store again on the same port (its data is kept).
    pub async fn start_store(&self, id: u64) -> Result<(), ServeError> {
        let addr = {
            let stores = self.stores.lock();
            let slot = stores.get(&id).ok_or(ServeError::UnknownStore(id))?;
            if slot.server.is_some() {
                return Ok(());
            }
            slot.addr
        };
        let listener = TcpListener::bind(addr).await?;
        self.cluster.start_store(id)?;
        let handle = spawn_store(&self.cluster, id, listener).await?;
        if let Some(slot) = self.stores.lock().get_mut(&id) {
            slot.server = Some(handle);
        }
        Ok(())
    }

    /// Stops every server and waits for them to finish.
    pub async fn shutdown(mut self) {
        let stores: Vec<ServerHandle> = self
            .stores
            .lock()
            .values_mut()
            .filter_map(|s| s.server.take())
            .collect();
        for s in stores {
            s.shutdown().await;
        }
        if let Some(pd) = self.pd_server.take() {
            pd.shutdown().await;
        }
    }
}

impl MockCluster {
    /// Serves PD and every (non-tombstone) store on `127.0.0.1` (see [`crate::server`]).
    pub async fn serve_grpc(&self, opts: ServeOptions) -> Result<ServedCluster, ServeError> {
        let pd_listener = TcpListener::bind((Ipv4Addr::LOCALHOST, opts.pd_port)).await?;
        let pd_addr = pd_listener.local_addr()?;
        let pd = self.pd();
        pd.set_client_url(format!("http://{pd_addr}"));
        let pd_server = spawn_pd(pd, pd_listener).await;

        let mut stores = BTreeMap::new();
        let ids: Vec<u64> = self
            .stores()
            .iter()
            .filter(|s| s.state != crate::cluster::StoreState::Tombstone)
            .map(|s| s.id)
            .collect();
        for (i, id) in ids.into_iter().enumerate() {
            let port = match opts.store_port_base {
                Some(base) => u16::try_from(usize::from(base) + i).map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, "store port out of range")
                })?,
                None => 0,
            };
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
            let addr = listener.local_addr()?;
            self.set_store_address(id, addr.to_string())?;
            let stopped = self.store_meta(id).is_some_and(|s| s.stopped);
            let server = if stopped {
                None
            } else {
                Some(spawn_store(self, id, listener).await?)
            };
            stores.insert(id, StoreSlot { addr, server });
        }
        Ok(ServedCluster {
            cluster: self.clone(),
            pd_addr,
            pd_server: Some(pd_server),
            stores: Mutex::new(stores),
        })
    }
}

async fn spawn_store(
    cluster: &MockCluster,
    id: u64,
    listener: TcpListener,
) -> Result<ServerHandle, ServeError> {
    let store = cluster.store(id).ok_or(ServeError::UnknownStore(id))?;
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<TikvServer<TikvService>>().await;
    let tikv = TikvServer::new(TikvService::new(store))
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    let routes = Routes::new(tikv).add_service(health);
    Ok(spawn_loop(listener, routes))
}

async fn spawn_pd(pd: MockPd, listener: TcpListener) -> ServerHandle {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<PdServer<MockPd>>().await;
    let routes = Routes::new(
        PdServer::new(pd.clone())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE),
    )
    .add_service(KeyspaceServer::new(pd.clone()))
    .add_service(health);
    // gRPC by content type, PD's HTTP API otherwise.
    let svc = tower::service_fn(move |req: ::http::Request<Incoming>| {
        let routes = routes.clone();
        let pd = pd.clone();
        async move {
            let is_grpc = req
                .headers()
                .get(::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("application/grpc"));
            if is_grpc {
                return routes.oneshot(req).await;
            }
            let (parts, body) = req.into_parts();
            let body = http_body_util::BodyExt::collect(http_body_util::Limited::new(
                body,
                control::MAX_BODY,
            ))
            .await
            .map(|b| b.to_bytes());
            let resp = match body {
                Err(_) => http::json_response(
                    ::http::StatusCode::BAD_REQUEST,
                    r#"{"error":"request body unreadable or too large"}"#.to_string(),
                ),
                Ok(body) => {
                    let path = parts.uri.path();
                    let query = parts.uri.query().unwrap_or("");
                    match control::handle(&pd, &parts.method, path, query, &body) {
                        Some((status, b)) => http::json_response(status, b),
                        None => http::respond(&pd, &parts.method, path),
                    }
                }
            };
            Ok::<_, Infallible>(resp.map(|b| tonic::body::Body::new(Full::new(Bytes::from(b)))))
        }
    });
    spawn_loop(listener, svc)
}

/// Accepts connections until stopped, serving each with HTTP/1 + HTTP/2 detection; on
/// stop, closes the listener and drops every connection.
fn spawn_loop<S>(listener: TcpListener, svc: S) -> ServerHandle
where
    S: tower::Service<
            ::http::Request<Incoming>,
            Response = ::http::Response<tonic::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let (stop, mut stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    let svc = TowerToHyperService::new(svc.clone());
                    conns.spawn(async move {
                        let builder = auto::Builder::new(TokioExecutor::new());
                        let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        drop(listener);
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    });
    ServerHandle { stop, task }
}
