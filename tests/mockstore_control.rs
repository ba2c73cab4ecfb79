//! The mockstore control API black-box: the binary's servers started in-process on
//! 127.0.0.1:0, a leader moved over PD's operator HTTP API, a raw client over gRPC
//! handling the `NotLeader` that follows; faults injected over the mockstore API.
#![cfg(feature = "embedded")]

use tikv_tower::config::{ApiVersion, Config};
use tikv_tower::RawClient;
use tikv_tower_mockstore::server::ServeOptions;
use tikv_tower_mockstore::MockCluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request on loopback; returns the status code and the body.
async fn http(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    let (head, rest) = text.split_once("\r\n\r\n").expect("head");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_moved_over_http_then_raw_client_handles_not_leader() {
    let cluster = MockCluster::builder()
        .stores(3)
        .boundary_encoding(tikv_tower_mockstore::cluster::BoundaryEncoding::Raw)
        .build();
    let served = cluster
        .serve_grpc(ServeOptions::default())
        .await
        .expect("serve");
    let pd = served.pd_addr();
    let cfg = Config::default().with_api_version(ApiVersion::V1);
    let client = RawClient::connect_with_config([pd.to_string()], cfg)
        .await
        .expect("connect");
    client.put("k", "v1").await.expect("put");

    // Which region holds "k", over HTTP (PD's regions/key scan).
    let (status, body) = http(pd, "GET", "/pd/api/v1/regions/key?key=k&limit=1", "").await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let region_id = v["regions"][0]["id"].as_u64().expect("region id");
    assert_eq!(v["regions"][0]["leader"]["store_id"], 1);

    // Move its leader to store 2 with pd-ctl's operator.
    let op = format!(r#"{{"name":"transfer-leader","region_id":{region_id},"to_store_id":2}}"#);
    let (status, body) = http(pd, "POST", "/pd/api/v1/operators", &op).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "\"The operator is created.\"")
    );
    let (_, body) = http(pd, "GET", &format!("/pd/api/v1/region/id/{region_id}"), "").await;
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["leader"]["store_id"], 2);

    // The client still routes to store 1, gets NotLeader naming store 2, retries there.
    cluster.recorder().start();
    assert_eq!(
        client.get("k").await.expect("get").as_deref(),
        Some(&b"v1"[..])
    );
    let seen = cluster.recorder().take();
    assert!(
        seen.iter().any(|r| r.store_id == 1
            && r.response
                .as_ref()
                .ok()
                .and_then(|x| x.region_error())
                .is_some_and(|e| e.not_leader.is_some())),
        "no NotLeader answered: {seen:?}"
    );
    assert!(seen.last().is_some_and(|r| r.store_id == 2));

    // A fault over the mockstore API: two ServerIsBusy, retried through.
    let fault = r#"{"action":"region_error","error":"server_is_busy","kind":"RawGet","times":2}"#;
    let (status, body) = http(pd, "POST", "/mockstore/api/v1/faults", fault).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        client.get("k").await.expect("get").as_deref(),
        Some(&b"v1"[..])
    );
    let (_, body) = http(pd, "GET", "/mockstore/api/v1/faults", "").await;
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v[0]["fired"], 2);
    let (status, _) = http(pd, "POST", "/mockstore/api/v1/faults", "{not json").await;
    assert_eq!(status, 400);
    served.shutdown().await;
}
