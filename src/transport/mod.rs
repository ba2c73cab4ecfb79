//! The store transport: tonic channels per store, and an in-process backend.
