//! The cluster's minimal safe ts: the newest ts a stale read can use on every region
//! (client-go `KVStore.GetMinSafeTS`, fed by `updateSafeTS` / `updateMinSafeTS`).
//!
//! Each store is asked for the smallest safe ts of its regions (`GetStoreSafeTS` with an
//! empty key range, sent straight to the store through the store transport, concurrently).
//! A store's safe ts never goes backwards here (a smaller answer than the last one kept is
//! ignored, as client-go does); a store that has not answered yet makes the minimum 0.
//! client-go refreshes in the background every 2 s; here the refresh runs when
//! [`SafeTsTracker::min_safe_ts`] is called.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::join_all;
use parking_lot::Mutex;
use tikv_tower_layers::StoreCall;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::StoreResponse;
use tower::ServiceExt;

use crate::error::Result;
use crate::store::KvStore;

/// Per-store safe ts, kept monotonic (see the [module docs](self)).
#[derive(Debug, Default)]
pub struct SafeTsTracker {
    per_store: Mutex<HashMap<u64, u64>>,
}

impl SafeTsTracker {
    /// Asks every store of `store`'s cluster for its safe ts, then returns the minimum
    /// over the stores (0 if any store's safe ts is unknown).
    pub async fn min_safe_ts(&self, store: &KvStore) -> Result<u64> {
        let stores = store.pd().get_all_stores(true).await?;
        let timeout = store.config().tikv_client.read_timeout_short;
        let asks = stores.iter().map(|s| {
            let call = StoreCall {
                store_id: s.id,
                addr: Arc::from(s.address.as_str()),
                request: kvrpcpb::StoreSafeTsRequest {
                    key_range: Some(kvrpcpb::KeyRange::default()),
                    context: None,
                }
                .into(),
                timeout: Some(timeout),
            };
            let transport = store.transport().clone();
            async move { (call.store_id, transport.oneshot(call).await) }
        });
        let answers = join_all(asks).await;
        let mut per_store = self.per_store.lock();
        for (id, answer) in answers {
            match answer {
                Ok(StoreResponse::StoreSafeTs(r)) if r.safe_ts != u64::MAX => {
                    let kept = per_store.entry(id).or_insert(0);
                    *kept = (*kept).max(r.safe_ts);
                }
                Ok(other) => {
                    tracing::debug!(store = id, reply = ?other.kind(), "bad StoreSafeTS reply")
                }
                Err(e) => tracing::debug!(store = id, error = %e, "StoreSafeTS failed"),
            }
        }
        let min = stores
            .iter()
            .map(|s| per_store.get(&s.id).copied().unwrap_or(0))
            .min()
            .unwrap_or(0);
        Ok(min)
    }
}
