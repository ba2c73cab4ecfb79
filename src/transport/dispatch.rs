//! Dispatch of every [`StoreRequest`] variant to its unary `tikvpb.Tikv` method, generated
//! from the store-RPC table ([`tikv_tower_proto::store_rpc_table!`]): a kind added there
//! is dispatched here without another list.

use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
use tikv_tower_proto::tikvpb::tikv_client::TikvClient;
use tonic::transport::Channel;

/// Expands the table into `call_unary`: one match arm per row, calling the row's tonic
/// method.
macro_rules! dispatch_unary {
    (
        batched {
            $( $bv:ident($breq:ident, $bresp:ident) = $bname:literal via $bmeth:ident, cmd $bcmd:ident:
               $bacc:ident, $bto:ident, $broute:ident $(($bkf:ident))?, ts($($btsf:ident)?),
               configurable_read($bcfg:literal), $bapi:ident; )*
        }
        unary {
            $( $uv:ident($ureq:ident, $uresp:ident) = $uname:literal via $umeth:ident:
               $uacc:ident, $uto:ident, $uroute:ident $(($ukf:ident))?, ts($($utsf:ident)?),
               configurable_read($ucfg:literal), $uapi:ident; )*
        }
    ) => {
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
                $( StoreRequest::$bv(r) => client
                    .$bmeth(with_timeout(*r, timeout))
                    .await
                    .map(|resp| StoreResponse::$bv(Box::new(resp.into_inner()))), )*
                $( StoreRequest::$uv(r) => client
                    .$umeth(with_timeout(*r, timeout))
                    .await
                    .map(|resp| StoreResponse::$uv(Box::new(resp.into_inner()))), )*
            }
        }
    };
}

tikv_tower_proto::store_rpc_table!(dispatch_unary);
