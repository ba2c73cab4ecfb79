//! placeholder for the `pd` module (owned by another engineer).
