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

async fn channel(addr: &str) -> Result<Channel, String> {
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

impl Bare {
    /// Reads every region and its leader's store from PD (`host:port`).
    pub async fn connect(pd_addr: &str) -> Result<Self, String> {
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
        let mut stores: HashMap<u64, TikvClient<Channel>> = HashMap::new();
        let mut routes = Vec::new();
        let mut key = Bytes::new();
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
            let client = match stores.get(&leader.store_id) {
                Some(c) => c.clone(),
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
                    let c = TikvClient::new(channel(&store.address).await?)
                        .max_decoding_message_size(usize::MAX);
                    stores.insert(leader.store_id, c.clone());
                    c
                }
            };
            let end = region.end_key.clone();
            routes.push(Route {
                start: region.start_key.clone(),
                end: end.clone(),
                ctx: kvrpcpb::Context {
                    region_id: region.id,
                    region_epoch: region.region_epoch,
                    peer: Some(leader),
                    ..Default::default()
                },
                client,
            });
            if end.is_empty() || routes.len() > 100_000 {
                break;
            }
            key = end;
        }
        Ok(Bare {
            routes: std::sync::Arc::new(routes),
        })
    }

    fn route(&self, key: &[u8]) -> Result<&Route, String> {
        // Regions are in key order; the last one whose start <= key.
        let idx = self.routes.partition_point(|r| &r.start[..] <= key);
        let r = idx
            .checked_sub(1)
            .and_then(|i| self.routes.get(i))
            .ok_or("no route")?;
        if !r.end.is_empty() && key >= &r.end[..] {
            return Err("key beyond the last region".into());
        }
        Ok(r)
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
