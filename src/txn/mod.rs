//! Transactions: the client side of TiKV's percolator protocol.
//!
//! So far this holds the transaction's local write buffer, [`unionstore`]: the ordered buffer
//! with staging, key flags and snapshot reads, the union view over a backing snapshot, and the
//! lowering of the buffer into prewrite mutations. The transaction object, the two-phase
//! committer, pessimistic locking and lock resolution build on it in later work.

pub mod unionstore;
