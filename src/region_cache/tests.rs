//! Unit tests of the region cache.
