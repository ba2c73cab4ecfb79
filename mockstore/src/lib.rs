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
