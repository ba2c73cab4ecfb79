//! tikv-tower: a TiKV client built as a tower stack.
//!
//! See `docs/architecture.md` for the request path through the layers.
#![deny(missing_docs)]

pub mod pd;
pub mod region_cache;
pub mod transport;
pub mod txn;
