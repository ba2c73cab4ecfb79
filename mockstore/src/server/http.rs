//! The PD HTTP API subset served on the PD port (PD `server/api`): JSON in PD's shapes.
//!
//! - `GET /pd/api/v1/regions` → `{"count": N, "regions": [RegionInfo...]}`
//!   (`pkg/response/region.go`: hex upper-case encoded keys, epoch, peers with
//!   `role_name`, leader, down/pending peers);
//! - `GET /pd/api/v1/stores` → `{"count": N, "stores": [{"store": {...}, "status": {...}}]}`
//!   (`pkg/response/store.go`; tombstones are left out, as PD does by default);
//! - `GET /pd/api/v1/health` → `[{"name", "member_id", "client_urls", "health": true}]`;
//! - `GET /pd/api/v1/version` → `{"version": ...}`;
//! - anything else on a known path → 405, unknown paths → 404.

use http::{Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::cluster::{Peer, PeerRole, Region, StoreState};
use crate::pd::MockPd;

/// The version string the mock PD reports.
pub const PD_VERSION: &str = "v9.0.0-mockstore";

fn hex_upper(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02X}")).collect()
}

fn peer_json(p: &Peer) -> Value {
    let (role, role_name) = match p.role {
        PeerRole::Voter => (0, "Voter"),
        PeerRole::Learner => (1, "Learner"),
    };
    let mut v = json!({"id": p.id, "store_id": p.store_id, "role_name": role_name});
    if role != 0 {
        v["role"] = json!(role);
        v["is_learner"] = json!(true);
    }
    v
}

/// A region in PD's `RegionInfo` JSON shape (`pkg/response/region.go`).
pub(crate) fn region_json(r: &Region) -> Value {
    let leader = r
        .leader_peer()
        .map(peer_json)
        .unwrap_or_else(|| json!({"role_name": "Voter"}));
    let mut v = json!({
        "id": r.id,
        "start_key": hex_upper(&r.start_key),
        "end_key": hex_upper(&r.end_key),
        "epoch": {"conf_ver": r.epoch.conf_ver, "version": r.epoch.version},
        "peers": r.peers.iter().map(peer_json).collect::<Vec<_>>(),
        "leader": leader,
        "cpu_usage": 0,
        "written_bytes": 0,
        "read_bytes": 0,
        "written_keys": 0,
        "read_keys": 0,
        "approximate_size": 0,
        "approximate_keys": 0,
        "approximate_kv_size": 0,
        "approximate_columnar_kv_size": 0,
    });
    let down: Vec<Value> = r
        .peers
        .iter()
        .filter(|p| r.down_peers.contains(&p.id))
        .map(|p| json!({"peer": peer_json(p), "down_seconds": 60}))
        .collect();
    if !down.is_empty() {
        v["down_peers"] = json!(down);
    }
    let pending: Vec<Value> = r
        .peers
        .iter()
        .filter(|p| r.pending_peers.contains(&p.id))
        .map(peer_json)
        .collect();
    if !pending.is_empty() {
        v["pending_peers"] = json!(pending);
    }
    v
}

fn regions_json(pd: &MockPd) -> Value {
    let regions = pd.cluster().regions();
    json!({"count": regions.len(), "regions": regions.iter().map(region_json).collect::<Vec<_>>()})
}

fn stores_json(pd: &MockPd) -> Value {
    let cluster = pd.cluster();
    let regions = cluster.regions();
    let stores: Vec<Value> = cluster
        .stores()
        .iter()
        .filter(|s| s.state != StoreState::Tombstone)
        .map(|s| {
            let region_count = regions.iter().filter(|r| r.peer_on_store(s.id).is_some()).count();
            let leader_count = regions
                .iter()
                .filter(|r| r.leader_peer().is_some_and(|p| p.store_id == s.id))
                .count();
            let state_name = match s.state {
                StoreState::Up => "Up",
                StoreState::Offline => "Offline",
                StoreState::Tombstone => "Tombstone",
            };
            let mut store = json!({
                "id": s.id,
                "address": s.address,
                "labels": s.labels.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
                "version": s.version,
                "peer_address": s.address,
                "status_address": s.status_address,
                "start_timestamp": s.start_timestamp,
                "state_name": state_name,
            });
            if s.state != StoreState::Up {
                store["state"] = json!(if s.state == StoreState::Offline { 1 } else { 2 });
            }
            json!({
                "store": store,
                "status": {
                    "capacity": "0B",
                    "available": "0B",
                    "used_size": "0B",
                    "leader_count": leader_count,
                    "leader_weight": 1,
                    "leader_score": leader_count,
                    "leader_size": 0,
                    "region_count": region_count,
                    "region_weight": 1,
                    "region_score": region_count,
                    "region_size": 0,
                },
            })
        })
        .collect();
    json!({"count": stores.len(), "stores": stores})
}

fn health_json(pd: &MockPd) -> Value {
    let m = pd.member();
    json!([{"name": m.name, "member_id": m.member_id, "client_urls": m.client_urls, "health": true}])
}

/// Answers one PD HTTP request: `(status, JSON body)`.
pub fn route(pd: &MockPd, method: &Method, path: &str) -> (StatusCode, String) {
    let path = path.trim_end_matches('/');
    let body: Option<fn(&MockPd) -> Value> = match path {
        "/pd/api/v1/regions" => Some(regions_json),
        "/pd/api/v1/stores" => Some(stores_json),
        "/pd/api/v1/health" => Some(health_json),
        "/pd/api/v1/version" => Some(|_| json!({"version": PD_VERSION})),
        _ => None,
    };
    match body {
        None => (StatusCode::NOT_FOUND, "404 page not found\n".to_string()),
        Some(_) if method != Method::GET => (StatusCode::METHOD_NOT_ALLOWED, String::new()),
        Some(f) => (StatusCode::OK, f(pd).to_string()),
    }
}

/// [`route`] as an `http::Response` with a JSON content type.
pub fn respond(pd: &MockPd, method: &Method, path: &str) -> Response<String> {
    let (status, body) = route(pd, method, path);
    json_response(status, body)
}

/// A response with `status`, `body` and a JSON content type.
pub fn json_response(status: StatusCode, body: String) -> Response<String> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MockCluster;

    #[test]
    fn routes_table() {
        let cluster = MockCluster::builder()
            .stores(2)
            .split_keys([b"m".to_vec()])
            .build();
        let pd = cluster.pd();
        let cases: &[(Method, &str, StatusCode)] = &[
            (Method::GET, "/pd/api/v1/regions", StatusCode::OK),
            (Method::GET, "/pd/api/v1/regions/", StatusCode::OK),
            (
                Method::HEAD,
                "/pd/api/v1/regions",
                StatusCode::METHOD_NOT_ALLOWED,
            ),
            (Method::GET, "/pd/api/v1/stores", StatusCode::OK),
            (Method::GET, "/pd/api/v1/health", StatusCode::OK),
            (Method::GET, "/pd/api/v1/version", StatusCode::OK),
            (Method::GET, "/nope", StatusCode::NOT_FOUND),
        ];
        for (m, p, want) in cases {
            assert_eq!(route(&pd, m, p).0, *want, "{m} {p}");
        }
        let v: Value =
            serde_json::from_str(&route(&pd, &Method::GET, "/pd/api/v1/regions").1).unwrap();
        assert_eq!(v["count"], 2);
        assert_eq!(v["regions"][0]["start_key"], "");
        assert_eq!(
            v["regions"][0]["end_key"],
            hex_upper(&crate::codec::encode_bytes(b"m"))
        );
        assert_eq!(v["regions"][0]["peers"].as_array().map(Vec::len), Some(2));
        let s: Value =
            serde_json::from_str(&route(&pd, &Method::GET, "/pd/api/v1/stores").1).unwrap();
        assert_eq!(s["count"], 2);
        assert_eq!(s["stores"][0]["store"]["state_name"], "Up");
    }
}
