//! RawKV: a key-value API without transactions (client-go `rawkv` package).
//!
//! Raw keys are written directly, without MVCC or locks: each call is linearizable per key,
//! multi-key calls are atomic per region only. [`RawClient`] offers everything client-go's
//! `rawkv.Client` does — get, batch get, put (with TTL), batch put (per-key TTLs), delete,
//! batch delete, delete range, scan and reverse scan across regions, key TTL,
//! compare-and-swap / compare-and-delete in atomic mode, checksum, column families, API
//! V1/V2 with keyspaces — over a tower stack of layers (routing, sharding by region, retry
//! with client-go's backoffer, replica selection, tagging, interceptors, tracing, limits,
//! timeouts; see [`crate::presets`]).
//!
//! Differences from client-go, all deliberate:
//! - `batch_get` returns one `Option<Vec<u8>>` per requested key, in request order:
//!   absent (`None`) and empty value (`Some(vec![])`) are kept apart.
//! - Bad input (empty keys, inverted ranges, oversized entries, scan limits above
//!   `MaxRawKVScanLimit`, TTL/value count mismatches) is rejected with a typed error before
//!   anything is sent.
//! - Under API V2 scan bounds are clamped to the keyspace, so an unbounded scan never
//!   reads another tenant's keys; returned keys have the prefix stripped.

mod keyspace;
mod options;
mod types;

pub use keyspace::RawKeyCodec;
pub use options::{ColumnFamily, RawOptions};
pub use types::{KeyRange, KvPair, RawChecksum};

mod client;

pub use client::{RawClient, RawClientParts, RawService, RegionLookup};
