//! # tikv-tower-mockstore: an in-memory TiKV + PD cluster
//!
//! `mockstore` models a TiKV cluster faithfully enough to be the test oracle of
//! the tikv-tower client: PD metadata (regions with epochs and peers, stores,
//! TSO, GC safe points, keyspaces), per-store request handling with TiKV's
//! region checks (`StoreNotMatch`, `RegionNotFound`, `NotLeader`,
//! `EpochNotMatch`, `KeyNotInRegion`, `RaftEntryTooLarge`, ...), a percolator
//! MVCC engine, RawKV storage with TTL, and fault injection.
//!
//! The entry point is [`MockCluster`]: build one with [`MockCluster::builder`],
//! then reach PD through [`MockCluster::pd`] and a store through
//! [`MockCluster::store`] / [`MockCluster::store_by_addr`]. Every store request
//! goes through [`MockStore::handle`], the same code whether the client calls it
//! in-process or through the gRPC servers.
//!
//! | module | holds |
//! |---|---|
//! | [`cluster`] | [`MockCluster`] and its builder: ids, regions (right-derived splits, merges, peers, leaders), stores, keyspaces, PD view lag |
//! | [`store`] | [`MockStore::handle`]: faults → region checks → dispatch → split checker |
//! | [`region_check`] | TiKV's region checks and region-error shapes |
//! | [`raw`] | RawKV storage and commands (TTL, CAS, checksum, API V1/V2 key modes) |
//! | [`mvcc`] | the percolator engine |
//! | [`pd`] | [`MockPd`]: the PD and keyspace services |
//! | [`server`] | gRPC / HTTP servers on loopback |
//! | [`fault`], [`recorder`] | fault injection and request recording |
//! | [`codec`], [`clock`] | memcomparable keys, keyspace prefixes; the injectable clock |
//!
//! ```
//! use tikv_tower_mockstore::MockCluster;
//! use tikv_tower_proto::{kvrpcpb, rpc::{StoreRequest, StoreResponse}};
//!
//! # tokio_test::block_on(async {
//! let cluster = MockCluster::builder().stores(3).build();
//! let region = cluster.region_for_user_key(b"k").unwrap();
//! let leader = region.leader_peer().copied().unwrap();
//! let ctx = kvrpcpb::Context {
//!     region_id: region.id,
//!     region_epoch: Some(region.epoch.to_pb()),
//!     peer: Some(leader.to_pb()),
//!     ..Default::default()
//! };
//! let store = cluster.store(leader.store_id).unwrap();
//! let put = kvrpcpb::RawPutRequest { context: Some(ctx.clone()), key: "k".into(), value: "v".into(), ..Default::default() };
//! store.handle(StoreRequest::from(put)).await.unwrap();
//! let get = kvrpcpb::RawGetRequest { context: Some(ctx), key: "k".into(), ..Default::default() };
//! match store.handle(get.into()).await.unwrap() {
//!     StoreResponse::RawGet(r) => assert_eq!(r.value, "v"),
//!     other => panic!("{other:?}"),
//! }
//! # });
//! ```
#![deny(missing_docs)]

pub mod clock;
pub mod cluster;
pub mod codec;
pub mod fault;
pub mod mvcc;
pub mod pd;
pub mod raw;
pub mod recorder;
pub mod region_check;
pub mod server;
pub mod store;

pub use clock::{Clock, ManualClock};
pub use cluster::{MockCluster, MockClusterBuilder};
pub use pd::MockPd;
pub use server::{ServeOptions, ServedCluster};
pub use store::MockStore;
