//! A transaction reads its own writes through the union view of its buffer over its
//! snapshot (client-go txn scenarios: misc/Membuffer, scan/iterator over the union).
#![cfg(feature = "embedded")]

mod txn_common;

use bytes::Bytes;
use tikv_tower::txn::TxnOptions;
use txn_common::*;

#[tokio::test]
async fn transaction_reads_its_own_writes_including_deletes() {
    let c = cluster(3, &[b"k3".to_vec()]);
    let client = client(&c).await;
    let w = Writer::new(&client);
    let pairs: Vec<(&[u8], Option<&[u8]>)> = vec![
        (b"k1", Some(b"v1")),
        (b"k2", Some(b"v2")),
        (b"k3", Some(b"v3")),
        (b"k4", Some(b"v4")),
    ];
    w.put_all(&pairs).await;

    let mut txn = client.begin().await.unwrap();
    assert!(!txn.is_pessimistic());
    assert!(txn.is_read_only());
    txn.set("k2", "new2").unwrap();
    txn.delete("k3").unwrap();
    txn.set("k5", "v5").unwrap();
    assert_eq!(txn.len(), 3);
    assert!(!txn.is_read_only());

    // Written by someone else after the txn started: invisible to it.
    w.put(b"k6", b"v6").await;

    assert_eq!(txn.get("k1").await.unwrap().as_deref(), Some(&b"v1"[..]));
    assert_eq!(txn.get("k2").await.unwrap().as_deref(), Some(&b"new2"[..]));
    assert_eq!(txn.get("k3").await.unwrap(), None);
    assert_eq!(txn.get("k5").await.unwrap().as_deref(), Some(&b"v5"[..]));
    assert_eq!(txn.get("k6").await.unwrap(), None);

    let got = txn
        .batch_get(["k1", "k2", "k3", "k4", "k5", "k6"])
        .await
        .unwrap();
    let mut got: Vec<_> = got.into_iter().collect();
    got.sort();
    let b = |s: &'static str| Bytes::from_static(s.as_bytes());
    assert_eq!(
        got,
        vec![
            (b("k1"), b("v1")),
            (b("k2"), b("new2")),
            (b("k4"), b("v4")),
            (b("k5"), b("v5")),
        ]
    );

    let fwd = txn.scan(.., 100, false).await.unwrap();
    assert_eq!(
        fwd,
        vec![
            (b("k1"), b("v1")),
            (b("k2"), b("new2")),
            (b("k4"), b("v4")),
            (b("k5"), b("v5")),
        ]
    );
    let rev = txn.scan(&b"k2"[..]..&b"k5"[..], 100, true).await.unwrap();
    assert_eq!(rev, vec![(b("k4"), b("v4")), (b("k2"), b("new2"))]);
    let limited = txn.scan(.., 2, true).await.unwrap();
    assert_eq!(limited, vec![(b("k5"), b("v5")), (b("k4"), b("v4"))]);

    // Nothing reached the store: other readers see the committed data only.
    let snap = client.snapshot(client.current_timestamp().await.unwrap());
    assert_eq!(snap.get("k2").await.unwrap().as_deref(), Some(&b"v2"[..]));
    assert_eq!(snap.get("k5").await.unwrap(), None);
}

#[tokio::test]
async fn begin_with_start_ts_and_pessimistic() {
    let c = cluster(1, &[]);
    let client = client(&c).await;
    let w = Writer::new(&client);
    let first = w.put(b"a", b"1").await;
    w.put(b"a", b"2").await;
    let txn = client
        .begin_with(TxnOptions::pessimistic().with_start_ts(first))
        .await
        .unwrap();
    assert!(txn.is_pessimistic());
    assert_eq!(txn.start_ts(), first);
    assert_eq!(txn.get("a").await.unwrap().as_deref(), Some(&b"1"[..]));
    assert!(txn.get("").await.unwrap_err().is_invalid_argument());
}
