//! tikv-tower: a TiKV client built as a tower stack.
//!
//! See `docs/architecture.md` for the request path through the layers.
#![deny(missing_docs)]

pub mod config;
pub mod error;
pub mod pd;
pub mod presets;
pub mod raw;
pub mod region_cache;
pub mod store;
pub mod tasks;
pub mod transport;
pub mod txn;

pub use config::Config;
pub use error::{Error, Result};
pub use raw::RawClient;
pub use store::KvStore;
pub use txn::{Snapshot, Transaction, TxnClient};
