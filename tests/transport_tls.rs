//! The gRPC transport over TLS (rustls): a mockstore store served with a test
//! certificate, the CA file re-read when a connection is rebuilt (certificate rotation).
#![cfg(feature = "embedded")]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tikv_tower::transport::{GrpcOptions, TlsConfig, Transport};
use tikv_tower_layers::call::{StoreCall, TransportError};
use tikv_tower_mockstore::server::TikvService;
use tikv_tower_mockstore::MockCluster;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
use tikv_tower_proto::tikvpb::tikv_server::TikvServer;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tower::ServiceExt;

// Test-only key material (self-signed CA valid for 100 years; server cert for
// localhost / 127.0.0.1). Generated with openssl for this test; not a secret.
const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBkTCCATegAwIBAgIUIYO+3fKGAJ4syZtAUYKO8joTJAwwCgYIKoZIzj0EAwIw
HTEbMBkGA1UEAwwSdGlrdi10b3dlciB0ZXN0IENBMCAXDTI2MTEyMjA0MzEyM1oY
DzIxMjYxMDI5MDQzMTIzWjAdMRswGQYDVQQDDBJ0aWt2LXRvd2VyIHRlc3QgQ0Ew
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATOMLGcnGW4eVvKvqwIdEg1gWGizsFO
5UlizEXIBIP/SsXwacjgdSNQgfrPA0wkF9oao0b/x7thTxIrkfJfdsBxo1MwUTAd
BgNVHQ4EFgQUuKiCcuc6h6Z38Q84QyYT456NStYwHwYDVR0jBBgwFoAUuKiCcuc6
h6Z38Q84QyYT456NStYwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBF
AiEA4UDxs0XqotHY8Sal1eyFnB8H8X0Ou6/o5ouhdr9uzo4CIFVkHU+zFpTlU3fH
JjD5gL2anaOYXM4lHD2XYXBXRWpi
-----END CERTIFICATE-----
";
const OTHER_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBhjCCASugAwIBAgIUUcDyOEpxcyw0OMWwFMcHJlP26wEwCgYIKoZIzj0EAwIw
FzEVMBMGA1UEAwwMdW5yZWxhdGVkIENBMCAXDTI2MTEyMjA0MzEyM1oYDzIxMjYx
MDI5MDQzMTIzWjAXMRUwEwYDVQQDDAx1bnJlbGF0ZWQgQ0EwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAAR6sfJHC792oZm/ZJ+snQKWZZfdlUW6XntbHoNZAn+EWDn7
JKjS7UDc2ybibVw5ZheE0U8thzorAlXCpwAQ2Jd1o1MwUTAdBgNVHQ4EFgQUtROR
tkP1nfjkmvCxzRIkJfx53WAwHwYDVR0jBBgwFoAUtRORtkP1nfjkmvCxzRIkJfx5
3WAwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEAv9rkk8ZikZiV
VHobXdHnbpL0UVcokL153iYVPs5ItaUCIQDb+i8JEEjcl6pARiN4/lIkmoBUpOCL
fsJGzfroWEKhUw==
-----END CERTIFICATE-----
";
const SERVER_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBwTCCAWigAwIBAgIUCmC7cWBC+tAfRaMil5RETnYToD4wCgYIKoZIzj0EAwIw
HTEbMBkGA1UEAwwSdGlrdi10b3dlciB0ZXN0IENBMCAXDTI2MTEyMjA0MzEyM1oY
DzIxMjYxMDI5MDQzMTIzWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjO
PQIBBggqhkjOPQMBBwNCAAQj//tD3tYorWoUgKSNNXwUYZRnULAwBxMVuRTHY2pF
2c9PpDxGnhC2vY9RD2eT5CR53MLCnzYdRrNp0D8qMUB0o4GMMIGJMBoGA1UdEQQT
MBGCCWxvY2FsaG9zdIcEfwAAATAJBgNVHRMEAjAAMAsGA1UdDwQEAwIHgDATBgNV
HSUEDDAKBggrBgEFBQcDATAdBgNVHQ4EFgQUR4U2ymEbAJdGlYu8mE7f2KWaQ20w
HwYDVR0jBBgwFoAUuKiCcuc6h6Z38Q84QyYT456NStYwCgYIKoZIzj0EAwIDRwAw
RAIgfMxBaLGL60538o8GslJ4ohfcFMssCJQVYOEMDoK5v5wCIG4hxMqorErSCAcE
IpLu1AP9nSHZdKQOZjG5k4rg8XSa
-----END CERTIFICATE-----
";
const SERVER_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgUJlgIu22vnRdKJJT
kofjfkQu7UjlOp3WmU8+mJUFizOhRANCAAQj//tD3tYorWoUgKSNNXwUYZRnULAw
BxMVuRTHY2pF2c9PpDxGnhC2vY9RD2eT5CR53MLCnzYdRrNp0D8qMUB0
-----END PRIVATE KEY-----
";

async fn serve_tls(cluster: &MockCluster) -> String {
    let store = cluster.store(cluster.stores()[0].id).expect("store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = ServerTlsConfig::new().identity(Identity::from_pem(SERVER_PEM, SERVER_KEY));
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(async move {
        let _ = Server::builder()
            .tls_config(tls)
            .unwrap()
            .add_service(TikvServer::new(TikvService::new(store)))
            .serve_with_incoming(incoming)
            .await;
    });
    addr.to_string()
}

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("tikv-tower-tls-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

fn raw_get(addr: &str) -> StoreCall {
    StoreCall {
        store_id: 1,
        addr: Arc::from(addr),
        request: StoreRequest::RawGet(Box::new(kvrpcpb::RawGetRequest {
            key: "k".into(),
            ..Default::default()
        })),
        timeout: Some(Duration::from_secs(5)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshake_and_ca_rotation() {
    let cluster = MockCluster::builder().build();
    let addr = serve_tls(&cluster).await;
    // Start with a CA that did not sign the server certificate.
    let ca_path = temp_file("ca.pem", OTHER_CA_PEM);
    let options = GrpcOptions {
        connection_count: 1,
        tls: Some(TlsConfig {
            ca_path: Some(ca_path.clone()),
            domain_name: Some("localhost".into()),
            ..Default::default()
        }),
        ..GrpcOptions::default()
    };
    let transport = Transport::grpc(options);
    let err = transport.clone().oneshot(raw_get(&addr)).await.unwrap_err();
    assert!(matches!(err, TransportError::Unavailable { .. }), "{err:?}");

    // The CA file is rotated in place: the rebuilt connection reads the new one.
    std::fs::write(&ca_path, CA_PEM).unwrap();
    let resp = transport
        .clone()
        .oneshot(raw_get(&addr))
        .await
        .expect("TLS call");
    // The request carries no region context, so the store answers with a region error.
    assert!(matches!(resp, StoreResponse::RawGet(_)));
    let _ = std::fs::remove_file(&ca_path);
}
