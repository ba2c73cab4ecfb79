//! The PD client: member discovery, regions, stores, TSO, GC, keyspaces.
//!
//! Layers, bottom up:
//!
//! * [`rpc`]: [`PdRpc`], one connection to one PD member (tonic in [`grpc`], in-process
//!   over mockstore's `MockPd` with feature `embedded`, or a test fake), opened by a
//!   [`PdConnector`].
//! * [`client`]: [`PdClient`], the PD Go client's behaviour: bootstrap with cluster-id
//!   agreement, leader discovery and follow, header checks, retries with backoff, typed
//!   calls, region boundaries decoded by an [`ApiCodec`] ([`codec`]).
//! * [`tso`]: the TSO dispatcher (one `Tso` stream, batched requests) and the
//!   [`Oracle`] (client-go `oracles.pdOracle`).

pub mod client;
pub mod codec;
pub mod error;
#[cfg(test)]
pub(crate) mod fake;
pub mod grpc;
#[cfg(feature = "embedded")]
pub mod inproc;
pub mod rpc;
pub mod tso;

#[cfg(test)]
mod tests;

pub use client::{
    AdvanceTxnSafePointResult, PdClient, PdConfig, PdResponse, RegionInfo, NULL_KEYSPACE_ID,
};
pub use codec::{ApiCodec, CodecError, KeyMode};
pub use error::PdError;
pub use grpc::GrpcPdConnector;
#[cfg(feature = "embedded")]
pub use inproc::InProcPdConnector;
pub use rpc::{PdConnector, PdRpc, TsoStream};
pub use tso::{
    LastTs, Oracle, OracleConfig, ReadTsError, TsFuture, TsoClient, TsoConfig, TsoError,
};
