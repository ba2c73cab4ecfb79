//! Dispatch of every [`StoreRequest`] variant to its unary `tikvpb.Tikv` method, generated
//! from the store-RPC table ([`tikv_tower_proto::store_rpc_table!`]): a kind added there
//! is dispatched here without another list.

use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
use tikv_tower_proto::tikvpb::tikv_client::TikvClient;
use tonic::transport::Channel;

/// Expands the table into `call_unary`: one match arm per row, calling the row's tonic
/// method.
macro_rules! dispatch_unary {
    ($( $v:ident($req:ident, $resp:ident) via $method:ident; )*) => {
        /// Sends `req` as its unary RPC on `client` (client-go `tikvrpc.CallRPC`).
        /// `timeout` is also sent to the server as `grpc-timeout`.
        pub(crate) async fn call_unary(
            mut client: TikvClient<Channel>,
            req: StoreRequest,
            timeout: Option<std::time::Duration>,
        ) -> Result<StoreResponse, tonic::Status> {
            fn with_timeout<T>(r: T, timeout: Option<std::time::Duration>) -> tonic::Request<T> {
                let mut request = tonic::Request::new(r);
                if let Some(t) = timeout {
                    request.set_timeout(t);
                }
                request
            }
            match req {
                $( StoreRequest::$v(r) => client
                    .$method(with_timeout(*r, timeout))
                    .await
                    .map(|resp| StoreResponse::$v(Box::new(resp.into_inner()))), )*
            }
        }
    };
}

tikv_tower_proto::store_rpc_table!(methods: dispatch_unary);
