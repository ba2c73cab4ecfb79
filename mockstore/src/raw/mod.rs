//! RawKV: the non-transactional key space (TiKV CF default/lock/write, no
//! MVCC visible to clients), with TTL.
//!
//! * [`store`] — the data (a concurrent skip list per column family) and the
//!   per-key latches that make compare-and-swap atomic.
//! * `handler` — the raw commands, with TiKV's semantics and error strings:
//!   absent keys omitted from batch gets, `not_found` on get, TTL expiry
//!   (`expire_ts = now + ttl`, gone once `expire_ts <= now`), scans clipped to
//!   the region (reverse scans cover `[end, start)` descending), CAS with
//!   `previous_not_exist` and compare-and-delete, CRC-64/XZ-xor checksums.
//! * `mode` — API version / key mode (API V2 keys start with `r` + a 3-byte
//!   keyspace id), column family names, key size and TTL checks.
//! * [`checksum`] — CRC-64/XZ.
//! * [`error`] — the error texts.

pub mod checksum;
pub mod error;
pub(crate) mod handler;
pub(crate) mod mode;
pub mod store;

pub use error::RawError;
pub use store::{RawCf, RawEntry, RawStore};
