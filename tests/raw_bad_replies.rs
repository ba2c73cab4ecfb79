//! RawClient against a fake store stack that sends bad replies, and bad client parts:
//! typed errors, never silent data loss.

use std::sync::Arc;

use parking_lot::Mutex;
use tikv_tower::config::{ApiVersion, RawConfig};
use tikv_tower::raw::{RawClient, RawClientParts, RawService};
use tikv_tower::Error;
use tikv_tower_layers::request::{Request, Response};
use tikv_tower_layers::testing::StaticLocator;
use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::{StoreRequest, StoreResponse};
use tower::util::BoxCloneSyncService;

/// A store that answers every RawScan with `keys` and records the requests it saw.
fn fake_store(keys: Vec<Vec<u8>>, seen: Arc<Mutex<Vec<StoreRequest>>>) -> RawService {
    BoxCloneSyncService::new(tower::service_fn(move |req: Request| {
        seen.lock().push(req.inner.clone());
        let kvs = keys
            .iter()
            .map(|k| kvrpcpb::KvPair {
                key: k.clone().into(),
                value: b"v".to_vec().into(),
                ..Default::default()
            })
            .collect();
        async move {
            Ok(Response {
                inner: StoreResponse::RawScan(Box::new(kvrpcpb::RawScanResponse {
                    kvs,
                    ..Default::default()
                })),
                details: Default::default(),
            })
        }
    }))
}

fn parts(api_version: ApiVersion, keyspace_id: Option<u32>, config: RawConfig) -> RawClientParts {
    RawClientParts {
        cluster_id: 1,
        api_version,
        keyspace_id,
        config,
        regions: StaticLocator::split_at(&[]),
        on_close: None,
        store: None,
    }
}

#[tokio::test]
async fn a_key_outside_the_keyspace_is_an_error_not_a_dropped_pair() {
    let seen = Arc::default();
    // Keyspace 5's prefix is `r\0\0\x05`; the second key belongs to keyspace 6.
    let store = fake_store(vec![b"r\0\0\x05a".to_vec(), b"r\0\0\x06b".to_vec()], seen);
    let client =
        RawClient::from_parts(store, parts(ApiVersion::V2, Some(5), RawConfig::default())).unwrap();
    let err = client.scan(.., 10).await.unwrap_err();
    assert!(
        matches!(&err, Error::KeyOutsideKeyspace { keyspace_id: 5, key } if key == b"r\0\0\x06b"),
        "{err:?}"
    );

    // Keys inside the keyspace come back without the prefix.
    let store = fake_store(vec![b"r\0\0\x05a".to_vec()], Arc::default());
    let client =
        RawClient::from_parts(store, parts(ApiVersion::V2, Some(5), RawConfig::default())).unwrap();
    let pairs = client.scan(.., 10).await.unwrap();
    assert_eq!(pairs.len(), 1);
    assert_eq!(&pairs[0].key[..], b"a");
}

#[tokio::test]
async fn keyspace_ids_wider_than_24_bits_are_refused() {
    let store = fake_store(Vec::new(), Arc::default());
    let err = RawClient::from_parts(
        store.clone(),
        parts(ApiVersion::V2, Some(1 << 24), RawConfig::default()),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("24 bits")),
        "{err:?}"
    );
    assert!(RawClient::from_parts(
        store,
        parts(ApiVersion::V2, Some((1 << 24) - 1), RawConfig::default())
    )
    .is_ok());
}

#[tokio::test]
async fn unbounded_reverse_scan_sends_the_bounded_upper_key() {
    let seen: Arc<Mutex<Vec<StoreRequest>>> = Arc::default();
    let store = fake_store(Vec::new(), seen.clone());
    let raw = RawConfig {
        max_key_size: 16,
        ..RawConfig::default()
    };
    let client = RawClient::from_parts(store, parts(ApiVersion::V1, None, raw)).unwrap();
    for _ in 0..2 {
        assert!(client.reverse_scan(.., 5).await.unwrap().is_empty());
    }
    let seen = seen.lock();
    assert_eq!(seen.len(), 2);
    for req in seen.iter() {
        match req {
            StoreRequest::RawScan(r) => {
                assert!(r.reverse);
                assert_eq!(r.start_key.as_ref(), &[0xFF; 17][..]);
                assert!(r.end_key.is_empty());
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    // A max key size beyond an entry is refused up front.
    let huge = RawConfig {
        max_key_size: usize::MAX,
        ..RawConfig::default()
    };
    let err = RawClient::from_parts(
        fake_store(Vec::new(), Arc::default()),
        parts(ApiVersion::V1, None, huge),
    )
    .unwrap_err();
    assert!(err.is_invalid_argument(), "{err:?}");
}
