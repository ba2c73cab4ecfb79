//! Setup shared by the transactional read tests: an in-process cluster with
//! memcomparable boundaries, a client on it, and a writer that prewrites / commits with
//! raw RPCs through the store's plain stack (never the client's committer).
#![allow(dead_code)]

use bytes::Bytes;
use tikv_tower::config::Config;
use tikv_tower::store::StoreStack;
use tikv_tower::TxnClient;
use tikv_tower_layers::typed::{self, SendOptions};
use tikv_tower_mockstore::cluster::BoundaryEncoding;
use tikv_tower_mockstore::MockCluster;
use tikv_tower_proto::kvrpcpb::{self, Op};

/// `n` keys `k000`, `k001`, ...
pub fn keys(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("k{i:03}").into_bytes()).collect()
}

/// A cluster of `stores` stores split at `splits` (user keys).
pub fn cluster(stores: usize, splits: &[Vec<u8>]) -> MockCluster {
    MockCluster::builder()
        .stores(stores)
        .boundary_encoding(BoundaryEncoding::Memcomparable)
        .split_keys(splits.iter().cloned())
        .build()
}

/// A client on `c`.
pub async fn client(c: &MockCluster) -> TxnClient {
    TxnClient::with_mock_cluster(c.clone(), Config::default())
        .await
        .expect("client")
}

/// Writes with raw prewrite / commit RPCs.
pub struct Writer {
    stack: StoreStack,
    client: TxnClient,
}

impl Writer {
    /// A writer sending through `client`'s store plain stack.
    pub fn new(client: &TxnClient) -> Writer {
        Writer {
            stack: client.store().plain_stack(),
            client: client.clone(),
        }
    }

    /// A fresh timestamp.
    pub async fn ts(&self) -> u64 {
        self.client.current_timestamp().await.expect("ts")
    }

    /// Prewrites `muts` (Put with value, or Del when `None`) with `primary` at `start_ts`.
    pub async fn prewrite(
        &self,
        muts: &[(&[u8], Option<&[u8]>)],
        primary: &[u8],
        start_ts: u64,
        ttl: u64,
    ) {
        let mutations = muts
            .iter()
            .map(|(k, v)| kvrpcpb::Mutation {
                op: if v.is_some() { Op::Put } else { Op::Del } as i32,
                key: Bytes::copy_from_slice(k),
                value: Bytes::copy_from_slice(v.unwrap_or_default()),
                assertion: 0,
            })
            .collect();
        let req = kvrpcpb::PrewriteRequest {
            mutations,
            primary_lock: Bytes::copy_from_slice(primary),
            start_version: start_ts,
            lock_ttl: ttl,
            txn_size: muts.len() as u64,
            ..Default::default()
        };
        let r = typed::send(self.stack.clone(), req, SendOptions::default())
            .await
            .expect("prewrite");
        assert!(r.errors.is_empty(), "prewrite: {:?}", r.errors);
    }

    /// Commits `keys` of `start_ts` at `commit_ts`.
    pub async fn commit(&self, keys: &[&[u8]], start_ts: u64, commit_ts: u64) {
        let req = kvrpcpb::CommitRequest {
            start_version: start_ts,
            keys: keys.iter().map(|k| Bytes::copy_from_slice(k)).collect(),
            commit_version: commit_ts,
            ..Default::default()
        };
        let r = typed::send(self.stack.clone(), req, SendOptions::default())
            .await
            .expect("commit");
        assert!(r.error.is_none(), "commit: {:?}", r.error);
    }

    /// Writes `pairs` in one committed txn (`None` value = delete); returns the commit ts.
    pub async fn put_all(&self, pairs: &[(&[u8], Option<&[u8]>)]) -> u64 {
        let start = self.ts().await;
        let primary = pairs[0].0;
        self.prewrite(pairs, primary, start, 3000).await;
        let commit = self.ts().await;
        let keys: Vec<&[u8]> = pairs.iter().map(|(k, _)| *k).collect();
        self.commit(&keys, start, commit).await;
        commit
    }

    /// Writes `key = value` as `key`'s value in a committed txn; returns the commit ts.
    pub async fn put(&self, key: &[u8], value: &[u8]) -> u64 {
        self.put_all(&[(key, Some(value))]).await
    }
}
