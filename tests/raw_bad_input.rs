//! Bad input: typed errors before anything is sent, never a panic.
#![cfg(feature = "embedded")]

mod raw_common;

use raw_common::*;
use tikv_tower::config::{Config, RawConfig};
use tikv_tower::raw::KvPair;
use tikv_tower::Error;

#[tokio::test]
async fn rejected_with_typed_errors() {
    let c = cluster(tikv_tower::config::ApiVersion::V1Ttl, 1, vec![]);
    let raw = RawConfig {
        raft_entry_max_size: 1024,
        max_key_size: 64,
        ..RawConfig::default()
    };
    let client = client(
        &c,
        Config::default()
            .with_api_version(tikv_tower::config::ApiVersion::V1Ttl)
            .with_raw(raw),
    )
    .await;
    let atomic = client.with_atomic_for_cas(true);
    let big = vec![b'x'; 2048];
    let long_key = vec![b'k'; 65];

    type Check = fn(&Error) -> bool;
    let empty: Check = |e| matches!(e, Error::EmptyKey);
    let inverted: Check = |e| matches!(e, Error::InvalidRange { .. });
    let too_large: Check = |e| matches!(e, Error::EntryTooLarge { limit: 1024, .. });
    let key_too_large: Check = |e| {
        matches!(
            e,
            Error::KeyTooLarge {
                limit: 64,
                size: 65
            }
        )
    };
    let over_limit: Check = |e| {
        matches!(
            e,
            Error::MaxScanLimitExceeded {
                limit: 10241,
                max: 10240
            }
        )
    };
    let mismatch: Check = |e| {
        matches!(
            e,
            Error::LengthMismatch {
                what: "ttls",
                expected: 2,
                got: 1
            }
        )
    };
    let not_atomic: Check = |e| matches!(e, Error::AtomicModeRequired);

    let cases: Vec<(&str, tikv_tower::Result<()>, Check)> = vec![
        ("get empty", client.get("").await.map(drop), empty),
        ("put empty", client.put("", "v").await, empty),
        (
            "put ttl empty",
            client.put_with_ttl("", "v", 5).await,
            empty,
        ),
        ("delete empty", client.delete("").await, empty),
        ("ttl empty", client.get_key_ttl("").await.map(drop), empty),
        (
            "batch_get empty",
            client.batch_get(["a", ""]).await.map(drop),
            empty,
        ),
        (
            "batch_put empty",
            client.batch_put([("a", "v"), ("", "v")]).await,
            empty,
        ),
        (
            "batch_delete empty",
            client.batch_delete(["", "b"]).await,
            empty,
        ),
        (
            "cas empty",
            atomic.compare_and_swap("", None, "v").await.map(drop),
            empty,
        ),
        (
            "cad empty",
            atomic.compare_and_delete("", None).await.map(drop),
            empty,
        ),
        (
            "scan inverted",
            client.scan("b".."a", 1).await.map(drop),
            inverted,
        ),
        (
            "reverse inverted",
            client.reverse_scan("b".."a", 1).await.map(drop),
            inverted,
        ),
        (
            "delete_range inverted",
            client.delete_range("z".."a").await,
            inverted,
        ),
        (
            "checksum inverted",
            client.checksum("z".."a").await.map(drop),
            inverted,
        ),
        (
            "put too large",
            client.put("k", big.clone()).await,
            too_large,
        ),
        (
            "batch_put too large",
            client.batch_put([KvPair::new("k", big.clone())]).await,
            too_large,
        ),
        (
            "cas too large",
            atomic
                .compare_and_swap("k", None, big.clone())
                .await
                .map(drop),
            too_large,
        ),
        (
            "put long key",
            client.put(long_key.clone(), "v").await,
            key_too_large,
        ),
        (
            "get long key",
            client.get(long_key.clone()).await.map(drop),
            key_too_large,
        ),
        (
            "scan over limit",
            client.scan(.., 10241).await.map(drop),
            over_limit,
        ),
        (
            "reverse over limit",
            client.reverse_scan(.., 10241).await.map(drop),
            over_limit,
        ),
        (
            "ttl mismatch",
            client
                .batch_put_with_ttl([("a", "1"), ("b", "2")], [1])
                .await,
            mismatch,
        ),
        (
            "cas not atomic",
            client.compare_and_swap("k", None, "v").await.map(drop),
            not_atomic,
        ),
        (
            "cad not atomic",
            client.compare_and_delete("k", None).await.map(drop),
            not_atomic,
        ),
    ];
    for (name, result, check) in cases {
        let err = result.expect_err(name);
        assert!(check(&err), "{name}: {err:?}");
        assert!(err.is_invalid_argument(), "{name}: {err:?}");
    }
    // Nothing was written by the rejected calls.
    assert!(client.scan(.., 100).await.unwrap().is_empty());
    // The scan limit is exactly inclusive.
    client.scan(.., 10240).await.unwrap();
}

#[tokio::test]
async fn bad_configuration_is_typed() {
    let c = cluster(tikv_tower::config::ApiVersion::V1, 1, vec![]);
    let bad = Config::default().with_raw(RawConfig {
        column_family: "nope".into(),
        ..RawConfig::default()
    });
    let err = tikv_tower::RawClient::with_mock_cluster(c.clone(), bad)
        .await
        .unwrap_err();
    assert!(err.is_invalid_argument(), "{err:?}");
    let bad = Config {
        keyspace_name: Some("x".into()),
        ..Config::default()
    };
    let err = tikv_tower::RawClient::with_mock_cluster(c, bad)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}
