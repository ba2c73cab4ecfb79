//! placeholder for the `server` module (owned by another engineer).
