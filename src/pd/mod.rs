//! The PD client: member discovery, regions, stores, TSO, GC, keyspaces.
