//! Transactions: the client side of TiKV's percolator protocol.
//!
//! - [`TxnClient`] ([`client`]): the transactional client on the store core — timestamps,
//!   snapshots, transactions, the GC visibility check ([`gc_visibility`]), the minimal
//!   safe ts ([`safe_ts`]);
//! - [`Snapshot`] ([`snapshot`]) and [`Scanner`] ([`scanner`]): reads at one timestamp,
//!   with lock resolution, replica / stale read, the snapshot cache and the read options
//!   of [`options`];
//! - [`Transaction`] ([`transaction`]): reads through the union view of its write buffer
//!   over its snapshot; the buffer itself is [`unionstore`] (ordered buffer with staging,
//!   key flags and snapshot reads, the union view, the lowering into prewrite mutations);
//! - the lock [`resolver`], which decides the fate of locks met by reads and writes and
//!   cleans them up; reads use it through the locking stack.
//!
//! The two-phase committer and pessimistic locking build on these in later work.

pub mod client;
pub mod gc_visibility;
pub mod options;
pub mod resolver;
pub mod safe_ts;
pub mod scanner;
pub mod snapshot;
pub mod transaction;
pub mod unionstore;

pub use client::{TxnClient, TxnClientBuilder};
pub use options::{IsolationLevel, ReplicaRead, SnapshotOptions, TxnOptions};
pub use scanner::{KvEntry, Scanner};
pub use snapshot::{ReadDetails, Snapshot, ValueEntry};
pub use transaction::Transaction;
