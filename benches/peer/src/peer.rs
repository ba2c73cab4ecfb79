//! Side (b): the peer client `tikv-client` 0.4 (unary gRPC over tonic 0.10).

use std::time::Duration;

/// A connected peer raw client.
#[derive(Clone)]
pub struct Peer {
    client: tikv_client::RawClient,
}

impl Peer {
    /// Connects through PD (`host:port`); API V1, no keyspace (the peer's default).
    pub async fn connect(pd: &str) -> Result<Self, String> {
        let config = tikv_client::Config::default().with_timeout(Duration::from_secs(10));
        let client = tikv_client::RawClient::new_with_config(vec![pd.to_string()], config)
            .await
            .map_err(|e| format!("tikv-client connect: {e:?}"))?;
        Ok(Peer { client })
    }

    /// Raw get; a missing key is an error (the bench reads keys it wrote).
    pub async fn get(&self, key: Vec<u8>) -> Result<(), String> {
        match self.client.get(key).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err("tikv-client get: key not found".into()),
            Err(e) => Err(format!("tikv-client get: {e:?}")),
        }
    }

    /// Raw put.
    pub async fn put(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), String> {
        self.client
            .put(key, value)
            .await
            .map_err(|e| format!("tikv-client put: {e:?}"))
    }
}
