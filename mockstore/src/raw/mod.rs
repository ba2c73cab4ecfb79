//! RawKV storage (in progress).
