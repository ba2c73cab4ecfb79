//! The store transport: tonic channels per store, and an in-process backend.

pub mod options;

pub use options::{EndpointError, GrpcOptions, TlsConfig};
