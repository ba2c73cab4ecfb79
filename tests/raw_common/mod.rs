//! Shared helpers of the `raw_*` integration tests.
#![allow(dead_code)]

use tikv_tower::config::{ApiVersion, Config};
use tikv_tower::presets::embedded_boundaries;
use tikv_tower::RawClient;
use tikv_tower_mockstore::cluster::ApiVersion as MockApi;
use tikv_tower_mockstore::MockCluster;

/// Split keys giving many regions: `b`, `d`, `f`, ..., `x`.
pub fn split_keys() -> Vec<Vec<u8>> {
    (b'b'..=b'x').step_by(2).map(|c| vec![c]).collect()
}

/// A cluster for a raw client of `api`, `stores` stores, split at `splits`.
pub fn cluster(api: ApiVersion, stores: usize, splits: Vec<Vec<u8>>) -> MockCluster {
    let b = MockCluster::builder()
        .stores(stores)
        .api_version(match api {
            ApiVersion::V1 => MockApi::V1,
            ApiVersion::V1Ttl => MockApi::V1Ttl,
            ApiVersion::V2 => MockApi::V2,
        })
        .split_keys(splits);
    embedded_boundaries(b, api).build()
}

/// A client over `cluster`.
pub async fn client(cluster: &MockCluster, config: Config) -> RawClient {
    RawClient::with_mock_cluster(cluster.clone(), config)
        .await
        .expect("client connects")
}

/// A V1TTL cluster split into many regions and a client on it.
pub async fn many_regions() -> (MockCluster, RawClient) {
    let c = cluster(ApiVersion::V1Ttl, 3, split_keys());
    let cl = client(&c, Config::default().with_api_version(ApiVersion::V1Ttl)).await;
    (c, cl)
}

/// `key-000`, `key-001`, ... spread over letters so they cross every region.
pub fn spread_keys(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{}{:04}", (b'a' + (i % 26) as u8) as char, i).into_bytes())
        .collect()
}
