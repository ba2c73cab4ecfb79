//! The in-process store backend: requests go straight to mockstore's `MockStore::handle`.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tikv_tower_layers::call::TransportError;
use tikv_tower_mockstore::MockCluster;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};

use super::client::{status_to_error, StoreClient, StoreConnector};

/// Reaches the stores of an in-process [`MockCluster`] by address (`inproc://store-<id>`).
#[derive(Clone)]
pub struct InProcConnector {
    cluster: MockCluster,
}

impl std::fmt::Debug for InProcConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcConnector").finish_non_exhaustive()
    }
}

impl InProcConnector {
    /// A connector to `cluster`'s stores.
    pub fn new(cluster: MockCluster) -> Self {
        InProcConnector { cluster }
    }
}

impl StoreConnector for InProcConnector {
    type Client = InProcStoreClient;

    fn connect(&self, addr: &Arc<str>) -> Result<InProcStoreClient, TransportError> {
        Ok(InProcStoreClient {
            cluster: self.cluster.clone(),
            addr: addr.clone(),
        })
    }
}

/// Calls the store at one in-process address. The address is resolved on every call, so a
/// store that moved (`UpdateStoreAddr`) fails like a dead connection would.
#[derive(Clone)]
pub struct InProcStoreClient {
    cluster: MockCluster,
    addr: Arc<str>,
}

impl std::fmt::Debug for InProcStoreClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcStoreClient")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl StoreClient for InProcStoreClient {
    type Future = BoxFuture<'static, Result<StoreResponse, TransportError>>;

    fn call(&self, req: StoreRequest, _timeout: Option<Duration>) -> Self::Future {
        let store = self.cluster.store_by_addr(&self.addr);
        let addr = self.addr.clone();
        Box::pin(async move {
            let Some(store) = store else {
                return Err(TransportError::Unavailable {
                    addr,
                    message: "connect: no store at this address".into(),
                });
            };
            store
                .handle(req)
                .await
                .map_err(|s| status_to_error(&addr, &s))
        })
    }
}
