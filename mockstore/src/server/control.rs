//! The control API on the PD port: PD's operator HTTP API subset (as pd-ctl
//! uses it) and a mockstore-only fault API, so that tests in any language
//! can move leaders, split, merge and inject faults over the wire.
//!
//! PD (`server/api`, `pkg/schedule/handler` `HandleOperatorCreation`):
//!
//! - `POST /pd/api/v1/operators` with `{"name": "transfer-leader",
//!   "region_id", "to_store_id"}`, `{"name": "split-region", "region_id",
//!   "policy": "usekey" | "approximate", "keys": [hex...]}`, `{"name":
//!   "merge-region", "source_region_id", "target_region_id"}`, `{"name":
//!   "scatter-region", "region_id"}` → 200 `"The operator is created."`; a
//!   missing field → 400, a refused operator → 500 (PD's codes);
//! - `GET /pd/api/v1/operators` → `[]` (mock operators finish at once);
//! - `GET /pd/api/v1/region/id/{id}` → one region (`null` if unknown);
//! - `GET /pd/api/v1/regions/key?key=K[&limit=N][&format=hex]` → regions from
//!   the one holding boundary key `K` (URL-escaped bytes, or hex).
//!
//! mockstore (`/mockstore/api/v1/`):
//!
//! - `POST faults` `{"action": "region_error" | "drop" | "delay", "error":
//!   "not_leader" | "epoch_not_match" | "server_is_busy" | ..., "delay_ms",
//!   "store_id", "region_id", "kind": "RawGet", "times", "probability"}` →
//!   `{"id": N}`; `GET faults` → the rules; `DELETE faults` → clears them;
//! - `POST stores/{id}/stop`, `POST stores/{id}/start`, `POST
//!   stores/{id}/slow {"delay_ms"}`;
//! - `POST clock/advance {"ms"}` (only with a manual clock: `--manual-clock`).
//! - `POST regions/{id}/buckets/refresh` → `{"region_id", "version"}`: a newer bucket
//!   report for the region (only with `--region-buckets`).
//!
//! The servers bind 127.0.0.1 only. Malformed input gets 400 with
//! `{"error": ...}`, never a panic.

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{json, Value};
use tikv_tower_proto::rpc::RpcKind;

use crate::clock::Clock;
use crate::cluster::{ClusterError, MockCluster};
use crate::codec::decode_hex;
use crate::fault::{FaultRule, InjectedError};
use crate::pd::MockPd;

/// Largest request body accepted (bytes).
pub const MAX_BODY: usize = 1 << 20;

/// Answers a control request, or `None` when the path is not a control path
/// (the read-only PD API answers it).
pub fn handle(
    pd: &MockPd,
    method: &Method,
    path: &str,
    query: &str,
    body: &[u8],
) -> Option<(StatusCode, String)> {
    let path = path.trim_end_matches('/');
    let cluster = pd.cluster();
    let out = if path == "/pd/api/v1/operators" {
        match *method {
            Method::POST => parse(body).and_then(|v| create_operator(cluster, &v)),
            Method::GET => Ok((StatusCode::OK, json!([]))),
            _ => Err(not_allowed()),
        }
    } else if let Some(id) = path.strip_prefix("/pd/api/v1/region/id/") {
        get_only(method).and_then(|_| {
            let id = id
                .parse::<u64>()
                .map_err(|_| bad(format!("invalid region id {id:?}")))?;
            let region = cluster.region(id);
            Ok((
                StatusCode::OK,
                region.map_or(Value::Null, |r| super::http::region_json(&r)),
            ))
        })
    } else if path == "/pd/api/v1/regions/key" {
        get_only(method).and_then(|_| regions_from_key(cluster, query))
    } else if let Some(rest) = path.strip_prefix("/mockstore/api/v1/") {
        mockstore(cluster, method, rest, body)
    } else {
        return None;
    };
    Some(match out {
        Ok((status, v)) => (status, v.to_string()),
        Err((status, msg)) => (status, json!({ "error": msg }).to_string()),
    })
}

type Reply = Result<(StatusCode, Value), (StatusCode, String)>;

fn bad(msg: impl Into<String>) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, msg.into())
}

fn not_allowed() -> (StatusCode, String) {
    (StatusCode::METHOD_NOT_ALLOWED, "method not allowed".into())
}

fn get_only(method: &Method) -> Result<(), (StatusCode, String)> {
    if *method == Method::GET {
        Ok(())
    } else {
        Err(not_allowed())
    }
}

fn parse(body: &[u8]) -> Result<Value, (StatusCode, String)> {
    let v: Value = serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    if v.is_object() {
        Ok(v)
    } else {
        Err(bad("expected a JSON object"))
    }
}

fn field_u64(v: &Value, name: &str) -> Result<u64, (StatusCode, String)> {
    v.get(name)
        .and_then(Value::as_u64)
        .ok_or_else(|| bad(format!("missing or invalid {name}")))
}

fn opt_u64(v: &Value, name: &str) -> Result<Option<u64>, (StatusCode, String)> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad(format!("invalid {name}"))),
    }
}

fn refused(e: ClusterError) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

const CREATED: &str = "The operator is created.";

/// PD `HandleOperatorCreation` for the operators the mock supports.
fn create_operator(cluster: &MockCluster, v: &Value) -> Reply {
    let name = v
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("missing operator name"))?;
    match name {
        "transfer-leader" => {
            let region = field_u64(v, "region_id")?;
            let store = field_u64(v, "to_store_id")?;
            cluster.transfer_leader(region, store).map_err(refused)?;
        }
        "split-region" => {
            let region_id = field_u64(v, "region_id")?;
            let policy = v
                .get("policy")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("missing split policy"))?;
            let region = cluster
                .live_region(region_id)
                .ok_or_else(|| refused(ClusterError::RegionNotFound(region_id)))?;
            let keys = match policy.to_ascii_lowercase().as_str() {
                "usekey" => {
                    let list = match v.get("keys") {
                        None => Vec::new(),
                        Some(Value::Array(a)) => a.clone(),
                        Some(_) => return Err(bad("bad format keys")),
                    };
                    let mut keys = Vec::new();
                    for k in list {
                        let s = k.as_str().ok_or_else(|| bad("bad format keys"))?;
                        let key = decode_hex(s).ok_or_else(|| {
                            (
                                StatusCode::INTERNAL_SERVER_ERROR,
                                format!("split key {s} is not in hex format"),
                            )
                        })?;
                        keys.push(key);
                    }
                    keys
                }
                "approximate" | "scan" => cluster.middle_key(&region).into_iter().collect(),
                other => {
                    return Err((
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("check policy {other} is not supported"),
                    ))
                }
            };
            let keys: Vec<Vec<u8>> = keys
                .into_iter()
                .filter(|k| !k.is_empty() && *k != region.start_key)
                .collect();
            if !keys.is_empty() {
                cluster.split_region(region_id, keys).map_err(refused)?;
            }
        }
        "merge-region" => {
            let source = field_u64(v, "source_region_id")?;
            let target = field_u64(v, "target_region_id")?;
            cluster.merge(source, target).map_err(refused)?;
        }
        "scatter-region" => {
            let region = field_u64(v, "region_id")?;
            if cluster.region(region).is_none() {
                return Err(refused(ClusterError::RegionNotFound(region)));
            }
        }
        other => return Err(bad(format!("unknown operator {other}"))),
    }
    Ok((StatusCode::OK, json!(CREATED)))
}

/// `GET /pd/api/v1/regions/key?key=&limit=&format=hex` (PD `ScanRegions`
/// handler; default limit 16).
fn regions_from_key(cluster: &MockCluster, query: &str) -> Reply {
    let mut key = None;
    let mut limit = 16usize;
    let mut hex = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "key" => key = Some(percent_decode(v).ok_or_else(|| bad("invalid key escape"))?),
            "limit" => limit = v.parse().map_err(|_| bad(format!("invalid limit {v:?}")))?,
            "format" => hex = v == "hex",
            _ => {}
        }
    }
    let key = key.ok_or_else(|| bad("missing key"))?;
    let key = if hex {
        let s = String::from_utf8(key).map_err(|_| bad("invalid hex key"))?;
        decode_hex(&s).ok_or_else(|| bad("invalid hex key"))?
    } else {
        key
    };
    let regions = cluster.scan_regions(&key, &[], limit);
    Ok((
        StatusCode::OK,
        json!({
            "count": regions.len(),
            "regions": regions.iter().map(super::http::region_json).collect::<Vec<_>>(),
        }),
    ))
}

fn mockstore(cluster: &MockCluster, method: &Method, rest: &str, body: &[u8]) -> Reply {
    let parts: Vec<&str> = rest.split('/').collect();
    match (method.clone(), parts.as_slice()) {
        (Method::POST, ["faults"]) => {
            let v = parse(body)?;
            let id = cluster.faults().inject(fault_rule(&v)?);
            Ok((StatusCode::OK, json!({ "id": id.as_u64() })))
        }
        (Method::GET, ["faults"]) => {
            let rules: Vec<Value> = cluster
                .faults()
                .list()
                .into_iter()
                .map(|(id, rule, fired)| json!({"id": id.as_u64(), "rule": rule, "fired": fired}))
                .collect();
            Ok((StatusCode::OK, json!(rules)))
        }
        (Method::DELETE, ["faults"]) => {
            cluster.faults().clear();
            Ok((StatusCode::OK, json!({"cleared": true})))
        }
        (Method::POST, ["stores", id, action]) => {
            let id = id
                .parse::<u64>()
                .map_err(|_| bad(format!("invalid store id {id:?}")))?;
            let not_found = |e: ClusterError| (StatusCode::NOT_FOUND, e.to_string());
            match *action {
                "stop" => cluster.stop_store(id).map_err(not_found)?,
                "start" => cluster.start_store(id).map_err(not_found)?,
                "slow" => {
                    let ms = field_u64(&parse(body)?, "delay_ms")?;
                    cluster
                        .store_meta(id)
                        .ok_or_else(|| not_found(ClusterError::StoreNotFound(id)))?;
                    let fault = cluster.faults().slow_store(id, Duration::from_millis(ms));
                    return Ok((StatusCode::OK, json!({ "id": fault.as_u64() })));
                }
                other => return Err(bad(format!("unknown store action {other}"))),
            }
            Ok((StatusCode::OK, json!({"store_id": id, "action": action})))
        }
        (Method::POST, ["clock", "advance"]) => {
            let ms = field_u64(&parse(body)?, "ms")?;
            match cluster.clock() {
                Clock::Manual(m) => {
                    m.advance(Duration::from_millis(ms));
                    Ok((StatusCode::OK, json!({"now_ms": m.now_millis()})))
                }
                Clock::System => Err(bad(
                    "the cluster clock is the system clock (start mockstore with --manual-clock)",
                )),
            }
        }
        (Method::POST, ["regions", id, "buckets", "refresh"]) => {
            let id = id
                .parse::<u64>()
                .map_err(|_| bad(format!("invalid region id {id:?}")))?;
            if cluster.region(id).is_none() {
                return Err((StatusCode::NOT_FOUND, format!("region {id} not found")));
            }
            let version = cluster.refresh_buckets(id).ok_or_else(|| {
                bad("regions carry no buckets (start mockstore with --region-buckets)")
            })?;
            Ok((StatusCode::OK, json!({"region_id": id, "version": version})))
        }
        (_, ["faults"])
        | (_, ["stores", _, _])
        | (_, ["clock", "advance"])
        | (_, ["regions", _, "buckets", "refresh"]) => Err(not_allowed()),
        _ => Err((StatusCode::NOT_FOUND, format!("unknown path {rest}"))),
    }
}

/// A fault rule from its JSON form (see the module docs).
fn fault_rule(v: &Value) -> Result<FaultRule, (StatusCode, String)> {
    let action = v
        .get("action")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("missing action"))?;
    let mut rule = match action {
        "region_error" => {
            let name = v
                .get("error")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("missing error"))?;
            FaultRule::region_error(injected(name, v)?)
        }
        "drop" => FaultRule::drop_rpc(),
        "delay" => FaultRule::delay(Duration::from_millis(field_u64(v, "delay_ms")?)),
        other => return Err(bad(format!("unknown action {other}"))),
    };
    if let Some(s) = opt_u64(v, "store_id")? {
        rule = rule.on_store(s);
    }
    if let Some(r) = opt_u64(v, "region_id")? {
        rule = rule.on_region(r);
    }
    if let Some(kind) = v.get("kind") {
        let name = kind.as_str().ok_or_else(|| bad("invalid kind"))?;
        let kind = RpcKind::from_method(name).ok_or_else(|| bad(format!("unknown kind {name}")))?;
        rule = rule.for_kind(kind);
    }
    if let Some(n) = opt_u64(v, "times")? {
        rule = rule.times(n);
    }
    if let Some(p) = v.get("probability") {
        let p = p
            .as_f64()
            .filter(|p| (0.0..=1.0).contains(p))
            .ok_or_else(|| bad("probability must be a number in [0, 1]"))?;
        rule = rule.probability(p);
    }
    Ok(rule)
}

fn injected(name: &str, v: &Value) -> Result<InjectedError, (StatusCode, String)> {
    Ok(match name {
        "not_leader" => InjectedError::NotLeader,
        "not_leader_no_leader" => InjectedError::NotLeaderNoLeader,
        "epoch_not_match" => InjectedError::EpochNotMatch,
        "server_is_busy" => InjectedError::ServerIsBusy {
            reason: v
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("injected")
                .to_string(),
            backoff_ms: opt_u64(v, "backoff_ms")?.unwrap_or(0),
        },
        "stale_command" => InjectedError::StaleCommand,
        "region_not_found" => InjectedError::RegionNotFound,
        "disk_full" => InjectedError::DiskFull,
        "max_timestamp_not_synced" => InjectedError::MaxTimestampNotSynced,
        "undetermined_result" => InjectedError::UndeterminedResult,
        "read_index_not_ready" => InjectedError::ReadIndexNotReady,
        "proposal_in_merging_mode" => InjectedError::ProposalInMergingMode,
        "region_not_initialized" => InjectedError::RegionNotInitialized,
        "recovery_in_progress" => InjectedError::RecoveryInProgress,
        "flashback_in_progress" => InjectedError::FlashbackInProgress,
        "is_witness" => InjectedError::IsWitness,
        "data_is_not_ready" => InjectedError::DataIsNotReady,
        "bucket_version_not_match" => InjectedError::BucketVersionNotMatch,
        other => return Err(bad(format!("unknown region error {other}"))),
    })
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(pd: &MockPd, m: Method, path: &str, query: &str, body: &str) -> (StatusCode, Value) {
        let (s, b) = handle(pd, &m, path, query, body.as_bytes()).expect("control path");
        (s, serde_json::from_str(&b).expect("json body"))
    }

    #[test]
    fn bucket_refresh_route() {
        let off = MockCluster::builder().build();
        let path = "/mockstore/api/v1/regions/3/buckets/refresh";
        let (s, _) = call(&off.pd(), Method::POST, path, "", "");
        assert_eq!(s, StatusCode::BAD_REQUEST, "buckets off");
        let on = MockCluster::builder().region_buckets(true).build();
        let pd = on.pd();
        let (s, v) = call(&pd, Method::POST, path, "", "");
        assert_eq!(s, StatusCode::OK, "{v}");
        let region = on.region(3).expect("region 3");
        let latest = on.region_buckets(&region).expect("buckets");
        assert_eq!(v["version"], latest.version);
        let (s, _) = call(
            &pd,
            Method::POST,
            "/mockstore/api/v1/regions/99/buckets/refresh",
            "",
            "",
        );
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = call(
            &pd,
            Method::POST,
            "/mockstore/api/v1/regions/x/buckets/refresh",
            "",
            "",
        );
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _) = call(&pd, Method::GET, path, "", "");
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
        // A fault kind by name.
        let body = r#"{"action": "region_error", "error": "bucket_version_not_match"}"#;
        let (s, v) = call(&pd, Method::POST, "/mockstore/api/v1/faults", "", body);
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    #[test]
    fn malformed_input_is_a_400_never_a_panic() {
        // One store: store 1, peer 2, region 3.
        let cluster = MockCluster::builder().build();
        let pd = cluster.pd();
        let ops = "/pd/api/v1/operators";
        for body in [
            "",
            "{",
            "[]",
            "{}",
            r#"{"name": 3}"#,
            r#"{"name": "transfer-leader"}"#,
            r#"{"name": "transfer-leader", "region_id": "x", "to_store_id": 2}"#,
            r#"{"name": "split-region", "region_id": 3}"#,
            r#"{"name": "split-region", "region_id": 3, "policy": "usekey", "keys": 5}"#,
            r#"{"name": "nope"}"#,
        ] {
            let (s, v) = call(&pd, Method::POST, ops, "", body);
            assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
            assert!(v["error"].is_string());
        }
        let faults = "/mockstore/api/v1/faults";
        for body in [
            "nope",
            r#"{"action": "region_error"}"#,
            r#"{"action": "region_error", "error": "bogus"}"#,
            r#"{"action": "drop", "kind": "NoSuchRpc"}"#,
            r#"{"action": "drop", "probability": 2}"#,
            r#"{"action": "delay"}"#,
            r#"{"action": "drop", "store_id": -1}"#,
        ] {
            let (s, _) = call(&pd, Method::POST, faults, "", body);
            assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        }
        for (m, p, q, want) in [
            (
                Method::GET,
                "/pd/api/v1/region/id/x",
                "",
                StatusCode::BAD_REQUEST,
            ),
            (
                Method::GET,
                "/pd/api/v1/regions/key",
                "",
                StatusCode::BAD_REQUEST,
            ),
            (
                Method::GET,
                "/pd/api/v1/regions/key",
                "key=%zz",
                StatusCode::BAD_REQUEST,
            ),
            (
                Method::GET,
                "/pd/api/v1/regions/key",
                "key=a&limit=x",
                StatusCode::BAD_REQUEST,
            ),
            (
                Method::POST,
                "/mockstore/api/v1/stores/x/stop",
                "",
                StatusCode::BAD_REQUEST,
            ),
            (
                Method::POST,
                "/mockstore/api/v1/stores/99/stop",
                "",
                StatusCode::NOT_FOUND,
            ),
            (
                Method::POST,
                "/mockstore/api/v1/clock/advance",
                "",
                StatusCode::BAD_REQUEST,
            ),
            (
                Method::PUT,
                "/mockstore/api/v1/faults",
                "",
                StatusCode::METHOD_NOT_ALLOWED,
            ),
            (
                Method::GET,
                "/mockstore/api/v1/nope",
                "",
                StatusCode::NOT_FOUND,
            ),
        ] {
            let (s, _) = call(&pd, m.clone(), p, q, "{\"ms\": 5}");
            assert_eq!(s, want, "{m} {p}?{q}");
        }
        assert!(handle(&pd, &Method::GET, "/pd/api/v1/regions", "", b"").is_none());
    }

    #[test]
    fn operators_and_faults_change_the_cluster() {
        let (clock, _m) = Clock::manual(1_000);
        let cluster = MockCluster::builder().stores(2).clock(clock).build();
        let pd = cluster.pd();
        let region = cluster.regions()[0].clone();
        let body = format!(
            r#"{{"name": "split-region", "region_id": {}, "policy": "usekey", "keys": ["6d"]}}"#,
            region.id
        );
        let (s, v) = call(&pd, Method::POST, "/pd/api/v1/operators", "", &body);
        assert_eq!((s, v), (StatusCode::OK, json!(CREATED)));
        assert_eq!(cluster.region_count(), 2);
        let (_, v) = call(&pd, Method::GET, "/pd/api/v1/regions/key", "key=m", "");
        assert_eq!(v["count"], 1);
        assert_eq!(v["regions"][0]["start_key"], "6D");
        let body = format!(
            r#"{{"name": "transfer-leader", "region_id": {}, "to_store_id": 2}}"#,
            region.id
        );
        call(&pd, Method::POST, "/pd/api/v1/operators", "", &body);
        let (_, v) = call(
            &pd,
            Method::GET,
            &format!("/pd/api/v1/region/id/{}", region.id),
            "",
            "",
        );
        assert_eq!(v["leader"]["store_id"], 2);
        let (s, v) = call(
            &pd,
            Method::POST,
            "/mockstore/api/v1/faults",
            "",
            r#"{"action": "region_error", "error": "server_is_busy", "kind": "RawGet", "times": 2}"#,
        );
        assert_eq!(s, StatusCode::OK);
        assert!(v["id"].is_u64());
        let (_, v) = call(&pd, Method::GET, "/mockstore/api/v1/faults", "", "");
        assert_eq!(v.as_array().map(Vec::len), Some(1));
        call(&pd, Method::DELETE, "/mockstore/api/v1/faults", "", "");
        assert!(cluster.faults().is_empty());
        let (_, v) = call(
            &pd,
            Method::POST,
            "/mockstore/api/v1/clock/advance",
            "",
            r#"{"ms": 500}"#,
        );
        assert_eq!(v["now_ms"], 1_500);
        call(&pd, Method::POST, "/mockstore/api/v1/stores/2/stop", "", "");
        assert!(cluster.store_meta(2).is_some_and(|s| s.stopped));
        call(
            &pd,
            Method::POST,
            "/mockstore/api/v1/stores/2/start",
            "",
            "",
        );
        assert!(cluster.store_meta(2).is_some_and(|s| !s.stopped));
    }
}
