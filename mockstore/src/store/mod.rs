//! Per-store request handling (in progress).
