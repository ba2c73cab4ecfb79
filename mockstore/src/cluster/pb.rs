//! Conversions from the cluster's metadata to the wire (`metapb`) types.

use tikv_tower_proto::metapb;

use super::meta::{Peer, PeerRole, Region, RegionEpoch, Store, StoreState};

impl RegionEpoch {
    /// As `metapb.RegionEpoch`.
    pub fn to_pb(&self) -> metapb::RegionEpoch {
        metapb::RegionEpoch {
            conf_ver: self.conf_ver,
            version: self.version,
        }
    }
}

impl Peer {
    /// As `metapb.Peer`.
    pub fn to_pb(&self) -> metapb::Peer {
        metapb::Peer {
            id: self.id,
            store_id: self.store_id,
            role: match self.role {
                PeerRole::Voter => metapb::PeerRole::Voter as i32,
                PeerRole::Learner => metapb::PeerRole::Learner as i32,
            },
            is_witness: false,
        }
    }
}

impl Region {
    /// As `metapb.Region` (boundaries in boundary form, as TiKV reports them).
    pub fn to_pb(&self) -> metapb::Region {
        metapb::Region {
            id: self.id,
            start_key: self.start_key.clone().into(),
            end_key: self.end_key.clone().into(),
            region_epoch: Some(self.epoch.to_pb()),
            peers: self.peers.iter().map(Peer::to_pb).collect(),
            is_in_flashback: false,
            flashback_start_ts: 0,
        }
    }

    /// The leader as `metapb.Peer`, if any.
    pub fn leader_pb(&self) -> Option<metapb::Peer> {
        self.leader_peer().map(Peer::to_pb)
    }
}

impl StoreState {
    /// As `metapb.StoreState`.
    pub fn to_pb(self) -> metapb::StoreState {
        match self {
            StoreState::Up => metapb::StoreState::Up,
            StoreState::Offline => metapb::StoreState::Offline,
            StoreState::Tombstone => metapb::StoreState::Tombstone,
        }
    }
}

impl Store {
    /// As `metapb.Store`.
    pub fn to_pb(&self) -> metapb::Store {
        let node_state = match self.state {
            StoreState::Up => metapb::NodeState::Serving,
            StoreState::Offline => metapb::NodeState::Removing,
            StoreState::Tombstone => metapb::NodeState::Removed,
        };
        metapb::Store {
            id: self.id,
            address: self.address.clone(),
            state: self.state.to_pb() as i32,
            labels: self
                .labels
                .iter()
                .map(|(k, v)| metapb::StoreLabel {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            version: self.version.clone(),
            peer_address: self.address.clone(),
            status_address: self.status_address.clone(),
            git_hash: String::new(),
            start_timestamp: self.start_timestamp,
            deploy_path: String::new(),
            last_heartbeat: 0,
            physically_destroyed: false,
            node_state: node_state as i32,
        }
    }
}
