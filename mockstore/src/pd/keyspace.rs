//! `impl keyspacepb::keyspace_server::Keyspace for MockPd`: keyspace metadata.
//!
//! PD always has the `DEFAULT` keyspace (id 0); the cluster adds the keyspaces it was
//! built with. Unknown names or ids answer a header error `ENTRY_NOT_FOUND`.
//! Keyspaces never change after the cluster is built, so `WatchKeyspaces` sends the
//! full list once and then stays open.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tikv_tower_proto::keyspacepb::{self, keyspace_server::Keyspace};
use tikv_tower_proto::pdpb;
use tonic::{Request, Response, Status};

use super::MockPd;

impl MockPd {
    /// Every keyspace PD knows, by id (`DEFAULT` included).
    pub fn keyspace_metas(&self) -> Vec<keyspacepb::KeyspaceMeta> {
        let mut list: Vec<keyspacepb::KeyspaceMeta> = self
            .cluster
            .keyspaces()
            .into_iter()
            .map(|k| meta(k.id, k.name, k.created_at, k.keyspace_level_gc))
            .collect();
        if !list.iter().any(|k| keyspace_id(k) == Some(0)) {
            list.push(meta(0, "DEFAULT".to_string(), 0, false));
        }
        list.sort_by_key(keyspace_id);
        list
    }

    fn not_found(&self, what: String) -> Option<pdpb::ResponseHeader> {
        self.err_header(
            pdpb::ErrorType::EntryNotFound,
            format!("keyspace {what} not found"),
        )
    }
}

fn keyspace_id(k: &keyspacepb::KeyspaceMeta) -> Option<u32> {
    match k.keyspace {
        Some(keyspacepb::keyspace_meta::Keyspace::Id(id)) => Some(id),
        Some(keyspacepb::keyspace_meta::Keyspace::KeyspaceIdentity(ref i)) => Some(i.keyspace_id),
        None => None,
    }
}

/// PD's keyspace config key for the GC management type (`keyspace.GCManagementType`).
pub const GC_MANAGEMENT_TYPE: &str = "gc_management_type";
/// Its value for keyspace-level GC (`keyspace.KeyspaceLevelGC`); PD's other value is
/// `unified`.
pub const KEYSPACE_LEVEL_GC: &str = "keyspace_level";

fn meta(id: u32, name: String, created_at: i64, level_gc: bool) -> keyspacepb::KeyspaceMeta {
    let mut config = std::collections::HashMap::new();
    if level_gc {
        config.insert(
            GC_MANAGEMENT_TYPE.to_string(),
            KEYSPACE_LEVEL_GC.to_string(),
        );
    }
    keyspacepb::KeyspaceMeta {
        keyspace: Some(keyspacepb::keyspace_meta::Keyspace::Id(id)),
        name,
        state: keyspacepb::KeyspaceState::Enabled as i32,
        created_at,
        state_changed_at: created_at,
        config,
    }
}

#[tonic::async_trait]
impl Keyspace for MockPd {
    async fn load_keyspace(
        &self,
        req: Request<keyspacepb::LoadKeyspaceRequest>,
    ) -> Result<Response<keyspacepb::LoadKeyspaceResponse>, Status> {
        let req = checked!(self, req)?;
        let found = self
            .keyspace_metas()
            .into_iter()
            .find(|k| k.name == req.name);
        Ok(Response::new(keyspacepb::LoadKeyspaceResponse {
            header: if found.is_some() {
                self.ok_header()
            } else {
                self.not_found(format!("{:?}", req.name))
            },
            keyspace: found,
        }))
    }

    async fn load_keyspace_by_id(
        &self,
        req: Request<keyspacepb::LoadKeyspaceByIdRequest>,
    ) -> Result<Response<keyspacepb::LoadKeyspaceResponse>, Status> {
        let req = checked!(self, req)?;
        let id = match req.keyspace {
            Some(keyspacepb::load_keyspace_by_id_request::Keyspace::Id(id)) => id,
            Some(keyspacepb::load_keyspace_by_id_request::Keyspace::KeyspaceIdentity(i)) => {
                i.keyspace_id
            }
            None => 0,
        };
        let found = self
            .keyspace_metas()
            .into_iter()
            .find(|k| keyspace_id(k) == Some(id));
        Ok(Response::new(keyspacepb::LoadKeyspaceResponse {
            header: if found.is_some() {
                self.ok_header()
            } else {
                self.not_found(format!("id {id}"))
            },
            keyspace: found,
        }))
    }

    type WatchKeyspacesStream = Pin<
        Box<dyn Stream<Item = Result<keyspacepb::WatchKeyspacesResponse, Status>> + Send + 'static>,
    >;

    async fn watch_keyspaces(
        &self,
        req: Request<keyspacepb::WatchKeyspacesRequest>,
    ) -> Result<Response<Self::WatchKeyspacesStream>, Status> {
        checked!(self, req)?;
        let first = keyspacepb::WatchKeyspacesResponse {
            header: self.ok_header(),
            keyspaces: self.keyspace_metas(),
        };
        let stream =
            futures::stream::once(async move { Ok(first) }).chain(futures::stream::pending());
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_all_keyspaces(
        &self,
        req: Request<keyspacepb::GetAllKeyspacesRequest>,
    ) -> Result<Response<keyspacepb::GetAllKeyspacesResponse>, Status> {
        let req = checked!(self, req)?;
        let start = match req.start_keyspace {
            Some(keyspacepb::get_all_keyspaces_request::StartKeyspace::StartId(id)) => id,
            Some(keyspacepb::get_all_keyspaces_request::StartKeyspace::StartKeyspaceIdentity(
                i,
            )) => i.keyspace_id,
            None => 0,
        };
        let limit = if req.limit == 0 {
            usize::MAX
        } else {
            req.limit as usize
        };
        let keyspaces = self
            .keyspace_metas()
            .into_iter()
            .filter(|k| keyspace_id(k).is_some_and(|id| id >= start))
            .take(limit)
            .collect();
        Ok(Response::new(keyspacepb::GetAllKeyspacesResponse {
            header: self.ok_header(),
            keyspaces,
        }))
    }
}
