//! Side (a): tikv-tower's `RawClient`, connected through PD.

/// A connected tikv-tower raw client.
#[derive(Clone)]
pub struct Ours {
    client: tikv_tower::RawClient,
}

impl Ours {
    /// Connects through PD (`host:port`).
    pub async fn connect(pd: &str) -> Result<Self, String> {
        let client = tikv_tower::RawClient::connect(vec![pd.to_string()])
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
