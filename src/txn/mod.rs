//! Transactions: the client side of TiKV's percolator protocol.
//!
//! So far this holds the transaction's local write buffer, [`unionstore`]: the ordered buffer
//! with staging, key flags and snapshot reads, the union view over a backing snapshot, and the
//! lowering of the buffer into prewrite mutations; and the lock [`resolver`], which decides
//! the fate of locks met by reads and writes and cleans them up. The transaction object, the
//! two-phase committer and pessimistic locking build on them in later work.

pub mod resolver;
pub mod unionstore;
