//! The tonic backend of [`PdRpc`]: one HTTP/2 channel per PD member URL.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::StreamExt;
use tikv_tower_proto::keyspacepb::keyspace_client::KeyspaceClient;
use tikv_tower_proto::pdpb::pd_client::PdClient as GrpcPd;
use tikv_tower_proto::{keyspacepb, pdpb};
use tokio::sync::mpsc;
use tonic::transport::Channel;

use super::error::PdError;
use super::rpc::{for_each_pd_rpc, PdConnector, PdRpc, RpcFuture, TsoStream};
use crate::transport::GrpcOptions;

/// Connects to PD members over gRPC (PD Go client `grpcutil.GetClientConn`).
#[derive(Debug, Clone, Default)]
pub struct GrpcPdConnector {
    options: GrpcOptions,
}

impl GrpcPdConnector {
    /// A connector using `options` (TLS, keep-alive, timeouts, message sizes).
    pub fn new(options: GrpcOptions) -> Self {
        GrpcPdConnector { options }
    }
}

impl PdConnector for GrpcPdConnector {
    fn connect(&self, url: &str) -> BoxFuture<'static, Result<Arc<dyn PdRpc>, PdError>> {
        let options = self.options.clone();
        let url = url.to_string();
        Box::pin(async move {
            let addr = match url.strip_prefix("http://") {
                Some(rest) if options.tls.is_some() => format!("https://{rest}"),
                _ => url.clone(),
            };
            let ep = options.endpoint(&addr).map_err(|e| PdError::Grpc {
                url: url.clone(),
                code: tonic::Code::InvalidArgument,
                message: e.to_string(),
            })?;
            let channel = ep.connect().await.map_err(|e| PdError::Grpc {
                url: url.clone(),
                code: tonic::Code::Unavailable,
                message: format!("connect: {e}"),
            })?;
            let conn: Arc<dyn PdRpc> = Arc::new(GrpcPdRpc::new(url, channel, &options));
            Ok(conn)
        })
    }
}

/// A [`PdRpc`] over one tonic channel.
#[derive(Debug, Clone)]
pub struct GrpcPdRpc {
    url: String,
    pd: GrpcPd<Channel>,
    keyspace: KeyspaceClient<Channel>,
}

impl GrpcPdRpc {
    /// Wraps an established channel to `url`.
    pub fn new(url: String, channel: Channel, options: &GrpcOptions) -> Self {
        let pd = GrpcPd::new(channel.clone())
            .max_decoding_message_size(options.max_recv_message_size)
            .max_encoding_message_size(options.max_send_message_size);
        let keyspace = KeyspaceClient::new(channel)
            .max_decoding_message_size(options.max_recv_message_size)
            .max_encoding_message_size(options.max_send_message_size);
        GrpcPdRpc { url, pd, keyspace }
    }
}

/// Which tonic client serves a method.
macro_rules! grpc_client_for {
    (load_keyspace, $s:ident) => {
        $s.keyspace.clone()
    };
    (load_keyspace_by_id, $s:ident) => {
        $s.keyspace.clone()
    };
    ($other:ident, $s:ident) => {
        $s.pd.clone()
    };
}

macro_rules! grpc_pd_impl {
    ($( $(#[$doc:meta])* $method:ident($req:ty) -> $resp:ty; )*) => {
        impl PdRpc for GrpcPdRpc {
            fn url(&self) -> &str {
                &self.url
            }
            $(
                fn $method(&self, req: $req) -> RpcFuture<$resp> {
                    let mut client = grpc_client_for!($method, self);
                    Box::pin(async move { client.$method(req).await.map(tonic::Response::into_inner) })
                }
            )*
            fn tso(&self) -> RpcFuture<TsoStream> {
                let mut client = self.pd.clone();
                Box::pin(async move {
                    let (tx, rx) = mpsc::channel::<pdpb::TsoRequest>(64);
                    let resp = client.tso(tokio_stream::wrappers::ReceiverStream::new(rx)).await?;
                    let responses = resp.into_inner().map(|r| r).boxed();
                    Ok(TsoStream { requests: tx, responses })
                })
            }
        }
    };
}

for_each_pd_rpc!(grpc_pd_impl);

impl super::PdClient {
    /// Connects to a PD cluster over gRPC: `endpoints` are `host:port` or URLs.
    pub async fn grpc(endpoints: Vec<String>, options: GrpcOptions) -> Result<Self, PdError> {
        let config = super::PdConfig {
            endpoints,
            rpc_timeout: options
                .connect_timeout
                .max(std::time::Duration::from_secs(3)),
            ..Default::default()
        };
        super::PdClient::connect(Arc::new(GrpcPdConnector::new(options)), config).await
    }
}
