//! Typed store RPCs (work in progress).
