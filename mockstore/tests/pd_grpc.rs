//! The PD servers over loopback: members, the Tso stream, region and store lookup, GC
//! rules, keyspaces, cluster-id checks and the HTTP API on the same port.

use tikv_tower_mockstore::cluster::ApiVersion;
use tikv_tower_mockstore::codec::encode_bytes;
use tikv_tower_mockstore::{MockCluster, ServeOptions, ServedCluster};
use tikv_tower_proto::keyspacepb::{self, keyspace_client::KeyspaceClient};
use tikv_tower_proto::pdpb::{self, pd_client::PdClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;

async fn serve(cluster: &MockCluster) -> (ServedCluster, PdClient<Channel>) {
    let served = cluster
        .serve_grpc(ServeOptions::default())
        .await
        .expect("serve");
    let ch = Channel::from_shared(served.pd_url())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    (served, PdClient::new(ch))
}

fn header(cluster: &MockCluster) -> Option<pdpb::RequestHeader> {
    Some(pdpb::RequestHeader {
        cluster_id: cluster.cluster_id(),
        ..Default::default()
    })
}

fn err_type(h: &Option<pdpb::ResponseHeader>) -> Option<pdpb::ErrorType> {
    h.as_ref()
        .and_then(|h| h.error.as_ref())
        .map(|e| e.r#type())
}

#[tokio::test]
async fn members_report_the_served_url() {
    let cluster = MockCluster::builder().build();
    let (served, mut pd) = serve(&cluster).await;
    let r = pd
        .get_members(pdpb::GetMembersRequest { header: None })
        .await
        .expect("members")
        .into_inner();
    assert_eq!(
        r.header.as_ref().map(|h| h.cluster_id),
        Some(cluster.cluster_id())
    );
    let leader = r.leader.expect("leader");
    assert_eq!(leader.client_urls, vec![served.pd_url()]);
    assert_eq!(r.members.len(), 1);
}

#[tokio::test]
async fn tso_stream_counts_and_monotonic() {
    let cluster = MockCluster::builder().build();
    let (_served, mut pd) = serve(&cluster).await;
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let mut out = pd
        .tso(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("open")
        .into_inner();
    let mut last: Option<u64> = None;
    for count in [1u32, 10, 3, 100] {
        tx.send(pdpb::TsoRequest {
            header: header(&cluster),
            count,
            dc_location: String::new(),
        })
        .await
        .expect("send");
        let r = out.message().await.expect("reply").expect("open");
        assert_eq!(r.count, count);
        let ts = r.timestamp.expect("ts");
        assert!(ts.logical < (1 << 18));
        let v = ((ts.physical as u64) << 18) | ts.logical as u64;
        // The batch is [v - count + 1, v]; its first ts is after the previous batch.
        if let Some(prev) = last {
            assert!(v + 1 - u64::from(count) > prev, "batch overlaps previous");
        }
        last = Some(v);
    }
    // count == 0 ends the stream with an error.
    tx.send(pdpb::TsoRequest {
        header: header(&cluster),
        count: 0,
        dc_location: String::new(),
    })
    .await
    .expect("send");
    assert!(out.message().await.is_err());
}

#[tokio::test]
async fn tso_stream_rejects_a_wrong_cluster_id() {
    let cluster = MockCluster::builder().build();
    let (_served, mut pd) = serve(&cluster).await;
    let req = pdpb::TsoRequest {
        header: Some(pdpb::RequestHeader {
            cluster_id: cluster.cluster_id() + 1,
            ..Default::default()
        }),
        count: 1,
        dc_location: String::new(),
    };
    let mut out = pd
        .tso(futures::stream::iter(vec![req]))
        .await
        .expect("open")
        .into_inner();
    let err = out.message().await.expect_err("mismatch");
    assert!(err.message().contains("mismatch cluster id"), "{err}");
    // Unary calls too.
    let r = pd
        .get_all_stores(pdpb::GetAllStoresRequest {
            header: None,
            exclude_tombstone_stores: false,
        })
        .await;
    assert!(r.is_err());
}

#[tokio::test]
async fn regions_after_split() {
    let cluster = MockCluster::builder().stores(3).build();
    let (_served, mut pd) = serve(&cluster).await;
    cluster.split_keys([b"m"]).expect("split");
    let r = pd
        .get_region(pdpb::GetRegionRequest {
            header: header(&cluster),
            region_key: encode_bytes(b"n").into(),
            need_buckets: false,
        })
        .await
        .expect("get region")
        .into_inner();
    assert_eq!(err_type(&r.header), None);
    let region = r.region.expect("region");
    assert_eq!(region.start_key, encode_bytes(b"m"));
    assert_eq!(region.peers.len(), 3);
    assert!(r.leader.is_some());

    let prev = pd
        .get_prev_region(pdpb::GetRegionRequest {
            header: header(&cluster),
            region_key: encode_bytes(b"n").into(),
            need_buckets: false,
        })
        .await
        .expect("prev")
        .into_inner();
    assert_eq!(
        prev.region.map(|r| r.end_key),
        Some(encode_bytes(b"m").into())
    );

    let missing = pd
        .get_region_by_id(pdpb::GetRegionByIdRequest {
            header: header(&cluster),
            region_id: 999_999,
            need_buckets: false,
        })
        .await
        .expect("by id")
        .into_inner();
    assert_eq!(err_type(&missing.header), None);
    assert!(missing.region.is_none());

    let scan = pd
        .scan_regions(pdpb::ScanRegionsRequest {
            header: header(&cluster),
            start_key: Default::default(),
            end_key: Default::default(),
            limit: 0,
        })
        .await
        .expect("scan")
        .into_inner();
    assert_eq!(scan.regions.len(), 2);
    assert_eq!(scan.region_metas.len(), 2);
    assert_eq!(scan.leaders.len(), 2);

    let batch = pd
        .batch_scan_regions(pdpb::BatchScanRegionsRequest {
            header: header(&cluster),
            ranges: vec![
                pdpb::KeyRange {
                    start_key: encode_bytes(b"a").into(),
                    end_key: encode_bytes(b"b").into(),
                },
                pdpb::KeyRange {
                    start_key: encode_bytes(b"c").into(),
                    end_key: encode_bytes(b"z").into(),
                },
            ],
            limit: 10,
            need_buckets: false,
            contain_all_key_range: true,
        })
        .await
        .expect("batch scan")
        .into_inner();
    assert_eq!(err_type(&batch.header), None);
    let ids: Vec<u64> = batch
        .regions
        .iter()
        .filter_map(|r| r.region.as_ref().map(|r| r.id))
        .collect();
    assert_eq!(ids.len(), 2, "deduplicated: {ids:?}");

    // PD-driven split.
    let split = pd
        .split_regions(pdpb::SplitRegionsRequest {
            header: header(&cluster),
            split_keys: vec![encode_bytes(b"t").into()],
            retry_limit: 0,
        })
        .await
        .expect("split")
        .into_inner();
    assert_eq!(split.finished_percentage, 100);
    assert_eq!(split.regions_id.len(), 1);
    assert_eq!(cluster.region_count(), 3);
}

#[tokio::test]
async fn stores_lookup() {
    let cluster = MockCluster::builder().stores(2).build();
    let (served, mut pd) = serve(&cluster).await;
    let all = pd
        .get_all_stores(pdpb::GetAllStoresRequest {
            header: header(&cluster),
            exclude_tombstone_stores: true,
        })
        .await
        .expect("all")
        .into_inner();
    assert_eq!(all.stores.len(), 2);
    for s in &all.stores {
        assert_eq!(
            Some(s.address.clone()),
            served.store_addr(s.id).map(|a| a.to_string())
        );
    }
    let unknown = pd
        .get_store(pdpb::GetStoreRequest {
            header: header(&cluster),
            store_id: 4242,
        })
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!(err_type(&unknown.header), Some(pdpb::ErrorType::Unknown));
    assert!(unknown.store.is_none());
}

#[tokio::test]
async fn gc_api_rules() {
    let cluster = MockCluster::builder().build();
    let (_served, mut pd) = serve(&cluster).await;
    let h = || header(&cluster);

    let adv = pd
        .advance_txn_safe_point(pdpb::AdvanceTxnSafePointRequest {
            header: h(),
            keyspace_scope: None,
            target: 100,
        })
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!((adv.old_txn_safe_point, adv.new_txn_safe_point), (0, 100));

    // GC safe point may not pass the txn safe point.
    let over = pd
        .advance_gc_safe_point(pdpb::AdvanceGcSafePointRequest {
            header: h(),
            keyspace_scope: None,
            target: 101,
        })
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!(err_type(&over.header), Some(pdpb::ErrorType::Unknown));

    let ok = pd
        .advance_gc_safe_point(pdpb::AdvanceGcSafePointRequest {
            header: h(),
            keyspace_scope: None,
            target: 90,
        })
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!((ok.old_gc_safe_point, ok.new_gc_safe_point), (0, 90));

    // Legacy UpdateGCSafePoint: a smaller value is ignored (max rule).
    let legacy = pd
        .update_gc_safe_point(pdpb::UpdateGcSafePointRequest {
            header: h(),
            safe_point: 10,
        })
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!(legacy.new_safe_point, 90);

    // A barrier holds the txn safe point back and is named.
    let set = pd
        .set_gc_barrier(pdpb::SetGcBarrierRequest {
            header: h(),
            keyspace_scope: None,
            barrier_id: "backup".into(),
            barrier_ts: 150,
            ttl_seconds: 3600,
        })
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!(set.new_barrier_info.map(|b| b.barrier_ts), Some(150));
    let blocked = pd
        .advance_txn_safe_point(pdpb::AdvanceTxnSafePointRequest {
            header: h(),
            keyspace_scope: None,
            target: 200,
        })
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!(blocked.new_txn_safe_point, 150);
    assert!(blocked.blocker_description.contains("backup"));

    let behind = pd
        .set_gc_barrier(pdpb::SetGcBarrierRequest {
            header: h(),
            keyspace_scope: None,
            barrier_id: "late".into(),
            barrier_ts: 120,
            ttl_seconds: 60,
        })
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!(err_type(&behind.header), Some(pdpb::ErrorType::Unknown));

    let state = pd
        .get_gc_state(pdpb::GetGcStateRequest {
            header: h(),
            keyspace_scope: None,
            exclude_gc_barriers: false,
            include_global_gc_barriers: true,
        })
        .await
        .expect("rpc")
        .into_inner()
        .gc_state
        .expect("state");
    assert_eq!((state.txn_safe_point, state.gc_safe_point), (150, 90));
    assert_eq!(state.gc_barriers.len(), 1);

    let get = pd
        .get_gc_safe_point(pdpb::GetGcSafePointRequest { header: h() })
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!(get.safe_point, 90);
}

#[tokio::test]
async fn keyspaces_load() {
    let cluster = MockCluster::builder()
        .api_version(ApiVersion::V2)
        .keyspace("ks1", 1)
        .build();
    let served = cluster
        .serve_grpc(ServeOptions::default())
        .await
        .expect("serve");
    let ch = Channel::from_shared(served.pd_url())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut ks = KeyspaceClient::new(ch);
    let load = |name: &str| keyspacepb::LoadKeyspaceRequest {
        header: header(&cluster),
        name: name.to_string(),
        namespace: None,
    };
    let r = ks
        .load_keyspace(load("ks1"))
        .await
        .expect("rpc")
        .into_inner();
    let meta = r.keyspace.expect("meta");
    assert_eq!(
        meta.keyspace,
        Some(keyspacepb::keyspace_meta::Keyspace::Id(1))
    );
    assert_eq!(meta.state(), keyspacepb::KeyspaceState::Enabled);
    let d = ks
        .load_keyspace(load("DEFAULT"))
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!(
        d.keyspace.and_then(|k| k.keyspace),
        Some(keyspacepb::keyspace_meta::Keyspace::Id(0))
    );
    let missing = ks
        .load_keyspace(load("nope"))
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!(
        err_type(&missing.header),
        Some(pdpb::ErrorType::EntryNotFound)
    );
    let all = ks
        .get_all_keyspaces(keyspacepb::GetAllKeyspacesRequest {
            header: header(&cluster),
            start_keyspace: None,
            limit: 0,
            namespace: None,
        })
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!(all.keyspaces.len(), 2);
}

/// One HTTP/1.1 GET over a raw socket; returns (status line, body).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("http response");
    let status = head.lines().next().unwrap_or_default().to_string();
    (status, body.to_string())
}

/// Strips HTTP/1.1 chunked framing if present.
fn dechunk(body: &str) -> String {
    if body.trim_start().starts_with('{') || body.trim_start().starts_with('[') {
        return body.to_string();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

#[tokio::test]
async fn http_api_on_the_pd_port() {
    let cluster = MockCluster::builder().stores(2).split_keys([b"m"]).build();
    let served = cluster
        .serve_grpc(ServeOptions::default())
        .await
        .expect("serve");
    let (status, body) = http_get(served.pd_addr(), "/pd/api/v1/regions").await;
    assert!(status.contains("200"), "{status}");
    let v: serde_json::Value = serde_json::from_str(&dechunk(&body)).expect("json");
    assert_eq!(v["count"], 2);
    assert_eq!(v["regions"].as_array().map(Vec::len), Some(2));
    assert!(v["regions"][0]["epoch"]["version"].as_u64().is_some());

    let (status, body) = http_get(served.pd_addr(), "/pd/api/v1/stores").await;
    assert!(status.contains("200"), "{status}");
    let v: serde_json::Value = serde_json::from_str(&dechunk(&body)).expect("json");
    assert_eq!(v["count"], 2);

    let (status, _) = http_get(served.pd_addr(), "/no/such/path").await;
    assert!(status.contains("404"), "{status}");
}
