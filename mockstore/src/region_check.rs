//! Region checks (in progress).
