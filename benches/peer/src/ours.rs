//! Side (a): tikv-tower's `RawClient`, connected through PD.

/// A connected tikv-tower raw client.
#[derive(Clone)]
pub struct Ours {
    client: tikv_tower::RawClient,
}

impl Ours {
    /// Connects through PD (`host:port`) with the default configuration, or with
    /// `connections` gRPC connections per store (default 4, as client-go).
    pub async fn connect(pd: &str, connections: Option<usize>) -> Result<Self, String> {
        let mut config = tikv_tower::Config::default();
        if let Some(n) = connections {
            config.tikv_client.grpc_connection_count = n;
        }
        let client = tikv_tower::RawClient::connect_with_config(vec![pd.to_string()], config)
            .await
            .map_err(|e| format!("tikv-tower connect: {e}"))?;
        Ok(Ours { client })
    }

    /// Raw get; a missing key is an error (the bench reads keys it wrote).
    pub async fn get(&self, key: Vec<u8>) -> Result<(), String> {
        match self.client.get(key).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err("tikv-tower get: key not found".into()),
            Err(e) => Err(format!("tikv-tower get: {e}")),
        }
    }

    /// Raw put.
    pub async fn put(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), String> {
        self.client
            .put(key, value)
            .await
            .map_err(|e| format!("tikv-tower put: {e}"))
    }
}
