//! Region buckets (opt-in): PD hands them out to `need_buckets` lookups (PD
//! `GetRegion` / `BatchScanRegions` / `QueryRegion` with `need_buckets`), versions grow
//! on range changes and new reports, and a `BucketVersionNotMatch` fault carries the
//! region's latest buckets, as TiKV's coprocessor endpoint does
//! (`src/coprocessor/endpoint.rs`, `handle_unary_request_impl`).

use tikv_tower_mockstore::cluster::BoundaryEncoding;
use tikv_tower_mockstore::fault::{FaultRule, InjectedError};
use tikv_tower_mockstore::MockCluster;
use tikv_tower_proto::pdpb::{self, pd_server::Pd};
use tikv_tower_proto::rpc::{RpcKind, StoreResponse};
use tikv_tower_proto::{kvrpcpb, metapb};
use tonic::Request;

mod common;

use common::send_to_leader;

fn cluster(buckets: bool) -> MockCluster {
    MockCluster::builder()
        .boundary_encoding(BoundaryEncoding::Raw)
        .region_buckets(buckets)
        .build()
}

fn header(c: &MockCluster) -> Option<pdpb::RequestHeader> {
    Some(pdpb::RequestHeader {
        cluster_id: c.cluster_id(),
        ..Default::default()
    })
}

async fn buckets_of(c: &MockCluster, key: &[u8], need_buckets: bool) -> Option<metapb::Buckets> {
    c.pd()
        .get_region(Request::new(pdpb::GetRegionRequest {
            header: header(c),
            region_key: key.to_vec().into(),
            need_buckets,
        }))
        .await
        .expect("rpc")
        .into_inner()
        .buckets
}

#[tokio::test]
async fn pd_reports_buckets_only_when_enabled_and_asked() {
    let off = cluster(false);
    assert_eq!(buckets_of(&off, b"k", true).await, None);
    let on = cluster(true);
    assert_eq!(buckets_of(&on, b"k", false).await, None);
    let b = buckets_of(&on, b"k", true).await.expect("buckets");
    let region = on.region_by_key(b"k").expect("region");
    assert_eq!(b.region_id, region.id);
    assert_eq!(b.keys, vec![bytes::Bytes::new(), bytes::Bytes::new()]);
    assert!(b.version > 0);
}

#[tokio::test]
async fn versions_grow_on_split_and_on_new_reports() {
    let c = cluster(true);
    let v0 = buckets_of(&c, b"k", true).await.expect("buckets").version;
    let id = c.region_by_key(b"k").expect("region").id;
    let v1 = c.refresh_buckets(id).expect("refreshed");
    assert!(v1 > v0);
    assert_eq!(
        buckets_of(&c, b"k", true).await.map(|b| b.version),
        Some(v1)
    );
    c.split_keys([b"m"]).expect("split");
    let left = buckets_of(&c, b"a", true).await.expect("left");
    let right = buckets_of(&c, b"x", true).await.expect("right");
    assert!(left.version > v1 && right.version > v1);
    assert_eq!(&left.keys[1][..], b"m");
    assert_eq!(&right.keys[0][..], b"m");
    // BatchScanRegions and QueryRegion carry them too; ScanRegions (no such flag) never.
    let scanned = c
        .pd()
        .batch_scan_regions(Request::new(pdpb::BatchScanRegionsRequest {
            header: header(&c),
            need_buckets: true,
            ranges: vec![pdpb::KeyRange::default()],
            ..Default::default()
        }))
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!(scanned.regions.len(), 2);
    assert!(scanned.regions.iter().all(|r| r.buckets.is_some()));
    let plain = c
        .pd()
        .scan_regions(Request::new(pdpb::ScanRegionsRequest {
            header: header(&c),
            ..Default::default()
        }))
        .await
        .expect("rpc")
        .into_inner();
    assert!(plain.regions.iter().all(|r| r.buckets.is_none()));
    // Without buckets mode there is nothing to refresh.
    assert_eq!(cluster(false).refresh_buckets(id), None);
}

#[tokio::test]
async fn an_injected_bucket_version_not_match_names_the_latest_buckets() {
    let c = cluster(true);
    let id = c.region_by_key(b"k").expect("region").id;
    c.refresh_buckets(id);
    let latest = buckets_of(&c, b"k", true).await.expect("buckets");
    let fault = c.faults().inject(
        FaultRule::region_error(InjectedError::BucketVersionNotMatch)
            .for_kind(RpcKind::RawGet)
            .once(),
    );
    let get = kvrpcpb::RawGetRequest {
        key: "k".into(),
        ..Default::default()
    };
    let resp = send_to_leader(&c, b"k", 0, get.clone().into()).await;
    let err = resp.region_error().cloned().expect("region error");
    let m = err.bucket_version_not_match.expect("BucketVersionNotMatch");
    assert_eq!((m.version, m.keys), (latest.version, latest.keys));
    assert_eq!(c.faults().fired(fault), 1);
    match send_to_leader(&c, b"k", 0, get.into()).await {
        StoreResponse::RawGet(r) => assert!(r.region_error.is_none() && r.not_found),
        other => panic!("{other:?}"),
    }
}
