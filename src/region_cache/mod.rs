//! The region and store cache.
