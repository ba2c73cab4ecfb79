//! [`MockClusterBuilder`]: the one way to make a [`MockCluster`].

use super::config::{
    ApiVersion, BoundaryEncoding, ClusterConfig, SplitThresholds, DEFAULT_CLUSTER_ID,
    DEFAULT_RAFT_ENTRY_MAX_SIZE,
};
use super::meta::{
    inproc_address, Keyspace, Peer, PeerRole, Region, RegionEpoch, Store, StoreState,
};
use super::state::ClusterState;
use super::MockCluster;
use crate::clock::Clock;
use crate::codec::{keyspace_end, keyspace_prefix, RAW_MODE_PREFIX, TXN_MODE_PREFIX};

/// Raft term a freshly bootstrapped region starts with (TiKV's initial log
/// term 5, plus the first election).
const INITIAL_TERM: u64 = 6;

/// Builds a [`MockCluster`].
///
/// Defaults: one store, API V1, memcomparable boundaries, one region covering
/// the whole key space, 8 MiB `raft-entry-max-size`, no auto split, wall
/// clock. With `stores(n)`, every region has a voter on each of the first
/// `replicas` stores (default: all) and a learner on each of the next
/// `learners` stores; the leader is on the first store. Ids follow
/// mocktikv's bootstrap: stores first, then the first region's peers, then
/// the region (one store: store 1, peer 2, region 3).
///
/// ```
/// use tikv_tower_mockstore::{MockCluster, cluster::ApiVersion};
/// let cluster = MockCluster::builder()
///     .stores(3)
///     .api_version(ApiVersion::V2)
///     .keyspace("ks1", 1)
///     .build();
/// assert_eq!(cluster.stores().len(), 3);
/// // V2 pre-splits the raw and txn ranges of DEFAULT and ks1.
/// assert!(cluster.regions().len() > 4);
/// ```
#[derive(Clone, Debug)]
pub struct MockClusterBuilder {
    stores: usize,
    replicas: Option<usize>,
    learners: usize,
    labels: Vec<(usize, String, String)>,
    api_version: ApiVersion,
    boundary_encoding: Option<BoundaryEncoding>,
    keyspaces: Vec<(String, u32, bool)>,
    split_keys: Vec<Vec<u8>>,
    boundary_splits: Vec<Vec<u8>>,
    presplit: usize,
    split: SplitThresholds,
    merge: Option<crate::pd::merge_check::MergeConfig>,
    raft_entry_max_size: u64,
    region_buckets: bool,
    seed: u64,
    clock: Clock,
    cluster_id: u64,
}

impl Default for MockClusterBuilder {
    fn default() -> Self {
        MockClusterBuilder {
            stores: 1,
            replicas: None,
            learners: 0,
            labels: Vec::new(),
            api_version: ApiVersion::V1,
            boundary_encoding: None,
            keyspaces: Vec::new(),
            split_keys: Vec::new(),
            boundary_splits: Vec::new(),
            presplit: 0,
            split: SplitThresholds::default(),
            merge: None,
            raft_entry_max_size: DEFAULT_RAFT_ENTRY_MAX_SIZE,
            region_buckets: false,
            seed: 0,
            clock: Clock::System,
            cluster_id: DEFAULT_CLUSTER_ID,
        }
    }
}

impl MockClusterBuilder {
    /// Number of stores (at least 1).
    pub fn stores(mut self, n: usize) -> Self {
        self.stores = n.max(1);
        self
    }

    /// Voters per region, on the first `n` stores (default: every store).
    pub fn replicas(mut self, n: usize) -> Self {
        self.replicas = Some(n.max(1));
        self
    }

    /// Learner peers per region, on the stores after the voters.
    pub fn learners(mut self, n: usize) -> Self {
        self.learners = n;
        self
    }

    /// Adds label `key=value` to the `index`-th store (0-based).
    pub fn store_label(
        mut self,
        index: usize,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.labels.push((index, key.into(), value.into()));
        self
    }

    /// Labels store `i` with `zone=z<i % zones>` (mocktikv
    /// `BootstrapWithMultiZones`).
    pub fn zones(mut self, zones: usize) -> Self {
        let zones = zones.max(1);
        for i in 0..self.stores {
            self.labels
                .push((i, "zone".into(), format!("z{}", i % zones)));
        }
        self
    }

    /// Storage API version. V2 adds the `DEFAULT` keyspace (id 0) and
    /// pre-splits every keyspace's raw and txn ranges.
    pub fn api_version(mut self, v: ApiVersion) -> Self {
        self.api_version = v;
        self
    }

    /// The form plain split keys ([`split_keys`](Self::split_keys),
    /// presplits, [`MockCluster::split_keys`]) and
    /// [`MockCluster::region_for_user_key`] convert to (default:
    /// memcomparable, the TxnKV form; [`BoundaryEncoding::Raw`] lays out an
    /// API-V1 RawKV cluster). Ignored under API V2, where every key is
    /// memcomparable. Requests always compare in their own form
    /// ([`ApiVersion::key_form`]).
    pub fn boundary_encoding(mut self, e: BoundaryEncoding) -> Self {
        self.boundary_encoding = Some(e);
        self
    }

    /// Declares a keyspace (API V2) under cluster-level ("unified") GC.
    pub fn keyspace(mut self, name: impl Into<String>, id: u32) -> Self {
        self.keyspaces
            .push((name.into(), id & crate::codec::MAX_KEYSPACE_ID, false));
        self
    }

    /// Declares a keyspace (API V2) with keyspace-level GC (PD keyspace config
    /// `gc_management_type = keyspace_level`): its GC state is its own (see
    /// [`GcStates`](crate::pd::GcStates)).
    pub fn keyspace_level_gc(mut self, name: impl Into<String>, id: u32) -> Self {
        self.keyspaces
            .push((name.into(), id & crate::codec::MAX_KEYSPACE_ID, true));
        self
    }

    /// Initial split keys, as clients send keys (raw, with the keyspace prefix
    /// in V2); they are converted to the boundary form.
    pub fn split_keys<I, K>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: AsRef<[u8]>,
    {
        self.split_keys
            .extend(keys.into_iter().map(|k| k.as_ref().to_vec()));
        self
    }

    /// Initial split keys already in boundary form, used verbatim (e.g.
    /// [`BoundaryEncoding::Raw`]`.to_boundary(b"k")` for an API-V1 raw key
    /// next to memcomparable transactional splits).
    pub fn boundary_split_keys<I, K>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: AsRef<[u8]>,
    {
        self.boundary_splits
            .extend(keys.into_iter().map(|k| k.as_ref().to_vec()));
        self
    }

    /// Pre-splits into `n` regions at start-up, cutting at evenly spaced
    /// first bytes: in API V2 each keyspace's raw and txn range (`prefix +
    /// [i * 256 / n]`), otherwise the whole key space (`[i * 256 / n]`).
    pub fn presplit(mut self, n: usize) -> Self {
        self.presplit = n.min(256);
        self
    }

    /// Auto-split thresholds.
    pub fn split_thresholds(mut self, t: SplitThresholds) -> Self {
        self.split = t;
        self
    }

    /// Auto split by key count: split when a region holds more than
    /// `max_keys`, into pieces of `split_keys` keys.
    pub fn region_max_keys(mut self, max_keys: u64, split_keys: u64) -> Self {
        self.split.max_keys = Some(max_keys.max(1));
        self.split.split_keys = Some(split_keys.max(1));
        self
    }

    /// Auto split by size: split when a region holds more than `max_size`
    /// bytes, into pieces of `split_size` bytes.
    pub fn region_max_size(mut self, max_size: u64, split_size: u64) -> Self {
        self.split.max_size = Some(max_size.max(1));
        self.split.split_size = Some(split_size.max(1));
        self
    }

    /// Turns on PD-style automatic merges with `cfg` (off by default; see
    /// [`crate::pd::merge_check`]). They run on the split-check tick.
    pub fn merge(mut self, cfg: crate::pd::merge_check::MergeConfig) -> Self {
        self.merge = Some(cfg);
        self
    }

    /// The split-check tick (default TiKV's 10 s on the cluster clock; zero
    /// checks after every write).
    pub fn split_check_interval(mut self, every: std::time::Duration) -> Self {
        self.split.check_interval = Some(every);
        self
    }

    /// `raft-entry-max-size` in bytes (writes above it get `RaftEntryTooLarge`).
    pub fn raft_entry_max_size(mut self, bytes: u64) -> Self {
        self.raft_entry_max_size = bytes;
        self
    }

    /// Regions carry buckets (TiKV `coprocessor.enable-region-bucket`), which PD hands
    /// out with `need_buckets` lookups (see [`buckets`](super::buckets)). Off by default,
    /// like TiKV.
    pub fn region_buckets(mut self, on: bool) -> Self {
        self.region_buckets = on;
        self
    }

    /// Seed of the fault injector's random generator.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The cluster clock (default: the wall clock).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Cluster id (non-zero; 0 keeps the default).
    pub fn cluster_id(mut self, id: u64) -> Self {
        if id != 0 {
            self.cluster_id = id;
        }
        self
    }

    /// Builds the cluster (ids as described on [`MockClusterBuilder`]).
    pub fn build(self) -> MockCluster {
        let boundary_encoding = if self.api_version == ApiVersion::V2 {
            BoundaryEncoding::Memcomparable
        } else {
            self.boundary_encoding.unwrap_or_default()
        };
        let config = ClusterConfig {
            cluster_id: self.cluster_id,
            api_version: self.api_version,
            boundary_encoding,
            raft_entry_max_size: self.raft_entry_max_size,
            split: self.split,
            merge: self.merge,
            seed: self.seed,
            region_buckets: self.region_buckets,
        };
        let mut next_id = 0u64;
        let mut alloc = || {
            next_id += 1;
            next_id
        };
        let now = i64::try_from(self.clock.now_secs()).unwrap_or(i64::MAX);
        let mut state = ClusterState::default();
        let store_ids: Vec<u64> = (0..self.stores).map(|_| alloc()).collect();
        for (i, id) in store_ids.iter().enumerate() {
            let labels = self
                .labels
                .iter()
                .filter(|(idx, _, _)| *idx == i)
                .map(|(_, k, v)| (k.clone(), v.clone()))
                .collect();
            state.stores.insert(
                *id,
                Store {
                    id: *id,
                    address: inproc_address(*id),
                    state: StoreState::Up,
                    labels,
                    version: "9.0.0".into(),
                    status_address: String::new(),
                    stopped: false,
                    start_timestamp: now,
                },
            );
        }
        let replicas = self.replicas.unwrap_or(self.stores).min(self.stores);
        let learners = self.learners.min(self.stores - replicas);
        // mocktikv order: stores, then peers, then the region (a single
        // store gets store 1, peer 2, region 3).
        let peers: Vec<Peer> = store_ids
            .iter()
            .take(replicas + learners)
            .enumerate()
            .map(|(i, store_id)| Peer {
                id: alloc(),
                store_id: *store_id,
                role: if i < replicas {
                    PeerRole::Voter
                } else {
                    PeerRole::Learner
                },
            })
            .collect();
        let leader = peers.first().map(|p| p.id);
        let region_id = alloc();
        state.insert_region(Region {
            id: region_id,
            start_key: Vec::new(),
            end_key: Vec::new(),
            epoch: RegionEpoch {
                conf_ver: 1,
                version: 1,
            },
            peers,
            leader,
            term: INITIAL_TERM,
            down_peers: Vec::new(),
            pending_peers: Vec::new(),
        });

        let mut keyspaces = Vec::new();
        let mut split_at: Vec<Vec<u8>> = self
            .split_keys
            .iter()
            .filter(|k| !k.is_empty())
            .map(|k| boundary_encoding.to_boundary(k))
            .chain(
                self.boundary_splits
                    .iter()
                    .filter(|k| !k.is_empty())
                    .cloned(),
            )
            .collect();
        if self.api_version == ApiVersion::V2 {
            let mut declared = self.keyspaces.clone();
            if !declared.iter().any(|(_, id, _)| *id == 0) {
                declared.insert(0, ("DEFAULT".to_string(), 0, false));
            }
            for (name, id, keyspace_level_gc) in declared {
                for mode in [RAW_MODE_PREFIX, TXN_MODE_PREFIX] {
                    split_at.push(boundary_encoding.to_boundary(&keyspace_prefix(mode, id)));
                    split_at.push(boundary_encoding.to_boundary(&keyspace_end(mode, id)));
                }
                for mode in [RAW_MODE_PREFIX, TXN_MODE_PREFIX] {
                    for cut in presplit_bytes(self.presplit) {
                        let mut key = keyspace_prefix(mode, id).to_vec();
                        key.push(cut);
                        split_at.push(boundary_encoding.to_boundary(&key));
                    }
                }
                keyspaces.push(Keyspace {
                    id,
                    name,
                    created_at: now,
                    keyspace_level_gc,
                });
            }
        }
        if self.api_version != ApiVersion::V2 {
            for cut in presplit_bytes(self.presplit) {
                split_at.push(boundary_encoding.to_boundary(&[cut]));
            }
        }
        split_at.sort();
        split_at.dedup();
        if !split_at.is_empty() {
            // The single region covers everything, so every non-empty key is
            // a valid split key.
            let _ = state.split(region_id, split_at, &mut alloc);
        }
        MockCluster::from_parts(config, state, keyspaces, next_id, self.clock)
    }
}

/// The first bytes that cut a range into `n` even pieces.
fn presplit_bytes(n: usize) -> Vec<u8> {
    (1..n)
        .filter_map(|i| u8::try_from(i * 256 / n).ok())
        .collect()
}
