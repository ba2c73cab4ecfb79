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
//! Keys and values are [`bytes::Bytes`] (see [`IntoBytes`]): the API takes any key or value
//! argument (`"k"`, `b"k"`, `Vec<u8>`, `String`, `&[u8]`, `Bytes`), moving owned buffers
//! into the request without a copy (the shard and retry layers then share them: a part or
//! an attempt clones a reference count, not the data), and returns `Bytes`: values come back
//! as slices of the reply buffer (or of the in-process store), again without a copy. `Bytes`
//! derefs to `[u8]` and compares with `&str`, `&[u8]` and `Vec<u8>`; call `.to_vec()` when a
//! `Vec<u8>` is needed. A small value kept for long keeps its whole reply frame alive:
//! copy it (`Bytes::copy_from_slice`) in that case.
//!
//! Differences from client-go, all deliberate:
//! - `batch_get` returns one `Option<Bytes>` per requested key, in request order:
//!   absent (`None`) and empty value (`Some` of an empty value) are kept apart.
//! - Bad input (empty keys, inverted ranges, oversized entries, scan limits above
//!   `MaxRawKVScanLimit`, TTL/value count mismatches) is rejected with a typed error before
//!   anything is sent.
//! - Under API V2 scan bounds are clamped to the keyspace, so an unbounded scan never
//!   reads another tenant's keys; returned keys have the prefix stripped.
//!
//! # client-go parity (`rawkv` package)
//!
//! | client-go | tikv-tower |
//! |---|---|
//! | `NewClient`, `NewClientWithOpts` | [`RawClient::connect`], [`RawClient::connect_with_config`], [`RawClient::builder`] |
//! | `ClientOpt`: `WithAPIVersion`, `WithKeyspace`, `WithSecurity` | [`crate::Config`]: `api_version`, `keyspace_name` (`with_keyspace`), `security` |
//! | `WithPDOptions`, `WithGRPCDialOptions` | `Config.pd_client`, `Config.tikv_client` (typed knobs instead of Go option funcs) |
//! | `Client.Close`, `Client.ClusterID` | [`RawClient::close`], [`RawClient::cluster_id`] |
//! | `Client.Get`, `BatchGet` | [`RawClient::get`], [`RawClient::batch_get`] (absent ≠ empty) |
//! | `Client.Put`, `PutWithTTL`, `BatchPut`, `BatchPutWithTTL` | [`RawClient::put`], [`RawClient::put_with_ttl`], [`RawClient::batch_put`], [`RawClient::batch_put_with_ttl`] |
//! | `Client.Delete`, `BatchDelete`, `DeleteRange` | [`RawClient::delete`], [`RawClient::batch_delete`], [`RawClient::delete_range`] |
//! | `Client.Scan`, `ReverseScan` (+ `ScanKeyOnly`) | [`RawClient::scan`], [`RawClient::reverse_scan`], [`RawClient::scan_keys`], [`RawClient::reverse_scan_keys`] |
//! | `Client.GetKeyTTL` | [`RawClient::get_key_ttl`] |
//! | `Client.CompareAndSwap`, `SetAtomicForCAS` | [`RawClient::compare_and_swap`], [`RawClient::with_atomic_for_cas`]; plus [`RawClient::compare_and_delete`] |
//! | `Client.Checksum`, `RawChecksum{Crc64Xor,TotalKvs,TotalBytes}` | [`RawClient::checksum`], [`RawChecksum`] |
//! | `Client.SetColumnFamily`, `RawOption`, `SetColumnFamily`, `ScanKeyOnly` | [`RawClient::with_cf`], [`RawOptions`] (`set_column_family`, `scan_key_only`), [`RawClient::with_options`] |
//! | `MaxRawKVScanLimit`, `ErrMaxScanLimitExceeded` | `Config.raw.max_scan_limit` (10240), [`crate::Error::MaxScanLimitExceeded`] |
//! | `Client.GetPDClient` | none: the PD client lives inside the stack; build one with `crate::pd::PdClient` when needed |

mod keyspace;
mod options;
mod types;

pub use keyspace::RawKeyCodec;
pub use options::{ColumnFamily, RawOptions};
pub use types::{IntoBytes, KeyRange, KvPair, RawChecksum};

mod client;

pub use client::{RawClient, RawClientParts, RawService, RegionLookup};
