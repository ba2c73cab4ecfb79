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

    /// Fidelity check of the mock PD's Tso stream as the peer uses it: two
    /// timestamps from `tikv_client::TransactionClient::current_timestamp`, which
    /// must increase.
    pub async fn check_tso(pd: &str) -> Result<(i64, i64), String> {
        let client = tikv_client::TransactionClient::new(vec![pd.to_string()])
            .await
            .map_err(|e| format!("tikv-client txn connect: {e:?}"))?;
        let a = client
            .current_timestamp()
            .await
            .map_err(|e| format!("tikv-client current_timestamp: {e:?}"))?;
        let b = client
            .current_timestamp()
            .await
            .map_err(|e| format!("tikv-client current_timestamp: {e:?}"))?;
        if (b.physical, b.logical) <= (a.physical, a.logical) {
            return Err(format!("TSO went backwards or stalled: {a:?} then {b:?}"));
        }
        Ok((a.physical, a.logical))
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
