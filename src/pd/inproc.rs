//! The in-process backend of [`PdRpc`]: calls mockstore's `MockPd` directly (its tonic
//! server trait methods and `tso(count)`), no sockets.

use std::sync::Arc;

use futures::future::BoxFuture;
use tikv_tower_mockstore::{MockCluster, MockPd};
use tikv_tower_proto::keyspacepb::keyspace_server::Keyspace;
use tikv_tower_proto::pdpb::pd_server::Pd;
use tikv_tower_proto::{keyspacepb, pdpb};

use super::error::PdError;
use super::rpc::{for_each_pd_rpc, tso_stream_from_fn, PdConnector, PdRpc, RpcFuture, TsoStream};

/// The URL the in-process PD answers to.
pub const INPROC_PD_URL: &str = "inproc://pd";

/// Connects to the PD of an in-process [`MockCluster`]; every URL reaches it.
#[derive(Clone)]
pub struct InProcPdConnector {
    cluster: MockCluster,
}

impl std::fmt::Debug for InProcPdConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcPdConnector").finish_non_exhaustive()
    }
}

impl InProcPdConnector {
    /// A connector to `cluster`'s PD.
    pub fn new(cluster: MockCluster) -> Self {
        InProcPdConnector { cluster }
    }
}

impl PdConnector for InProcPdConnector {
    fn connect(&self, url: &str) -> BoxFuture<'static, Result<Arc<dyn PdRpc>, PdError>> {
        let rpc: Arc<dyn PdRpc> = Arc::new(InProcPdRpc {
            url: url.to_string(),
            pd: self.cluster.pd(),
        });
        Box::pin(async move { Ok(rpc) })
    }
}

/// A [`PdRpc`] calling a `MockPd` in-process.
#[derive(Clone)]
pub struct InProcPdRpc {
    url: String,
    pd: MockPd,
}

macro_rules! inproc_pd_impl {
    ($( $(#[$doc:meta])* $method:ident($req:ty) -> $resp:ty; )*) => {
        impl PdRpc for InProcPdRpc {
            fn url(&self) -> &str {
                &self.url
            }
            $(
                fn $method(&self, req: $req) -> RpcFuture<$resp> {
                    let pd = self.pd.clone();
                    Box::pin(async move { inproc_call!($method, pd, req) })
                }
            )*
            fn tso(&self) -> RpcFuture<TsoStream> {
                let pd = self.pd.clone();
                let cluster_id = pd.cluster_id();
                Box::pin(async move { Ok(tso_stream_from_fn(cluster_id, move |count| pd.tso(count))) })
            }
        }
    };
}

/// Which server trait serves a method.
macro_rules! inproc_call {
    (load_keyspace, $pd:ident, $req:ident) => {
        Keyspace::load_keyspace(&$pd, tonic::Request::new($req))
            .await
            .map(tonic::Response::into_inner)
    };
    (load_keyspace_by_id, $pd:ident, $req:ident) => {
        Keyspace::load_keyspace_by_id(&$pd, tonic::Request::new($req))
            .await
            .map(tonic::Response::into_inner)
    };
    ($method:ident, $pd:ident, $req:ident) => {
        Pd::$method(&$pd, tonic::Request::new($req))
            .await
            .map(tonic::Response::into_inner)
    };
}

for_each_pd_rpc!(inproc_pd_impl);

impl super::PdClient {
    /// Connects to the PD of an in-process [`MockCluster`] (default [`PdConfig`] timeouts
    /// and retries, endpoint [`INPROC_PD_URL`]).
    ///
    /// [`PdConfig`]: super::PdConfig
    pub async fn in_process(cluster: MockCluster) -> Result<Self, PdError> {
        let config = super::PdConfig {
            endpoints: vec![INPROC_PD_URL.to_string()],
            ..Default::default()
        };
        super::PdClient::connect(Arc::new(InProcPdConnector::new(cluster)), config).await
    }
}
