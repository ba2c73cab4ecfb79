//! Side (c): the ceiling. Raw gets and puts sent with a plain tonic
//! `TikvClient` straight to the store that leads the key's region: routes are
//! read from PD once, before the run, and every request reuses them; one HTTP/2
//! channel per store (as the peer client has).

use std::collections::HashMap;

use prost::bytes::Bytes;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::pdpb;
use tikv_tower_proto::pdpb::pd_client::PdClient;
use tikv_tower_proto::tikvpb::tikv_client::TikvClient;
use tonic::transport::Channel;

/// One region as PD reports it: `[start, end)`, its leader context and the leader
/// store's address.
#[derive(Clone)]
pub struct RouteInfo {
    /// Start key.
    pub start: Vec<u8>,
    /// End key (empty = unbounded).
    pub end: Vec<u8>,
    /// The leader's request context.
    pub ctx: kvrpcpb::Context,
    /// The leader store's id.
    pub store_id: u64,
    /// The leader store's address.
    pub addr: String,
}

/// One region's route: `[start, end)`, its leader context and the store client.
#[derive(Clone)]
struct Route {
    start: Bytes,
    end: Bytes,
    ctx: kvrpcpb::Context,
    client: TikvClient<Channel>,
}

/// The bare transport loop's routing table.
#[derive(Clone)]
pub struct Bare {
    routes: std::sync::Arc<Vec<Route>>,
}

/// A plain-text HTTP/2 channel to `addr` (`host:port` or a URL).
pub async fn channel(addr: &str) -> Result<Channel, String> {
    let uri = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    Channel::from_shared(uri)
        .map_err(|e| format!("bad address {addr}: {e}"))?
        .connect()
        .await
        .map_err(|e| format!("connect {addr}: {e}"))
}

/// Reads every region, its leader and the leader's store address from PD (`host:port`),
/// in key order.
pub async fn routes(pd_addr: &str) -> Result<Vec<RouteInfo>, String> {
    let mut pd = PdClient::new(channel(pd_addr).await?);
    let members = pd
        .get_members(pdpb::GetMembersRequest::default())
        .await
        .map_err(|e| format!("GetMembers: {e}"))?
        .into_inner();
    let cluster_id = members.header.map(|h| h.cluster_id).unwrap_or_default();
    let header = pdpb::RequestHeader {
        cluster_id,
        ..Default::default()
    };
    let mut addrs: HashMap<u64, String> = HashMap::new();
    let mut routes = Vec::new();
    let mut key: Vec<u8> = Vec::new();
    loop {
        let resp = pd
            .get_region(pdpb::GetRegionRequest {
                header: Some(header.clone()),
                region_key: key.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| format!("GetRegion: {e}"))?
            .into_inner();
        let region = resp.region.ok_or("GetRegion: no region")?;
        let leader = resp.leader.ok_or("GetRegion: no leader")?;
        let addr = match addrs.get(&leader.store_id) {
            Some(a) => a.clone(),
            None => {
                let store = pd
                    .get_store(pdpb::GetStoreRequest {
                        header: Some(header.clone()),
                        store_id: leader.store_id,
                    })
                    .await
                    .map_err(|e| format!("GetStore: {e}"))?
                    .into_inner()
                    .store
                    .ok_or("GetStore: no store")?;
                addrs.insert(leader.store_id, store.address.clone());
                store.address
            }
        };
        let end = region.end_key.clone();
        routes.push(RouteInfo {
            start: region.start_key.clone(),
            end: end.clone(),
            store_id: leader.store_id,
            ctx: kvrpcpb::Context {
                region_id: region.id,
                region_epoch: region.region_epoch,
                peer: Some(leader),
                ..Default::default()
            },
            addr,
        });
        if end.is_empty() || routes.len() > 100_000 {
            break;
        }
        key = end;
    }
    Ok(routes)
}

/// The route whose `[start, end)` holds `key` in `routes` (key order).
pub fn find<'a, T>(
    routes: &'a [T],
    key: &[u8],
    bounds: impl Fn(&T) -> (&[u8], &[u8]),
) -> Result<&'a T, String> {
    // Regions are in key order; the last one whose start <= key.
    let idx = routes.partition_point(|r| bounds(r).0 <= key);
    let r = idx
        .checked_sub(1)
        .and_then(|i| routes.get(i))
        .ok_or("no route")?;
    let end = bounds(r).1;
    if !end.is_empty() && key >= end {
        return Err("key beyond the last region".into());
    }
    Ok(r)
}

impl Bare {
    /// Reads every region and its leader's store from PD (`host:port`).
    pub async fn connect(pd_addr: &str) -> Result<Self, String> {
        let mut stores: HashMap<u64, TikvClient<Channel>> = HashMap::new();
        let mut routes = Vec::new();
        for r in self::routes(pd_addr).await? {
            let client = match stores.get(&r.store_id) {
                Some(c) => c.clone(),
                None => {
                    let c = TikvClient::new(channel(&r.addr).await?)
                        .max_decoding_message_size(usize::MAX);
                    stores.insert(r.store_id, c.clone());
                    c
                }
            };
            routes.push(Route {
                start: r.start,
                end: r.end,
                ctx: r.ctx,
                client,
            });
        }
        Ok(Bare {
            routes: std::sync::Arc::new(routes),
        })
    }

    fn route(&self, key: &[u8]) -> Result<&Route, String> {
        find(&self.routes, key, |r| (&r.start, &r.end))
    }

    /// Raw get straight to the leader; a missing key is an error.
    pub async fn get(&self, key: Vec<u8>) -> Result<(), String> {
        let r = self.route(&key)?;
        let resp = r
            .client
            .clone()
            .raw_get(kvrpcpb::RawGetRequest {
                context: Some(r.ctx.clone()),
                key: key.into(),
                ..Default::default()
            })
            .await
            .map_err(|e| format!("bare RawGet: {e}"))?
            .into_inner();
        if let Some(e) = resp.region_error {
            return Err(format!("bare RawGet region error: {e:?}"));
        }
        if !resp.error.is_empty() {
            return Err(format!("bare RawGet error: {}", resp.error));
        }
        if resp.not_found {
            return Err("bare RawGet: key not found".into());
        }
        Ok(())
    }

    /// Raw put straight to the leader.
    pub async fn put(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), String> {
        let r = self.route(&key)?;
        let resp = r
            .client
            .clone()
            .raw_put(kvrpcpb::RawPutRequest {
                context: Some(r.ctx.clone()),
                key: key.into(),
                value: value.into(),
                ..Default::default()
            })
            .await
            .map_err(|e| format!("bare RawPut: {e}"))?
            .into_inner();
        if let Some(e) = resp.region_error {
            return Err(format!("bare RawPut region error: {e:?}"));
        }
        if !resp.error.is_empty() {
            return Err(format!("bare RawPut error: {}", resp.error));
        }
        Ok(())
    }
}
