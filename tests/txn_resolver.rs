//! The lock resolver against the in-process mockstore: locks are written by raw
//! `Prewrite` / `PessimisticLock` / `Commit` RPCs sent through the store core's plain
//! stack (no committer), and reads are typed `Get`s through
//! `store.stack_with_resolver(resolver)`. Time is paused where waiting matters.
#![cfg(feature = "embedded")]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tikv_tower::store::{KvStore, StoreOptions, StoreStack};
use tikv_tower::txn::resolver::{LockResolver, ResolveLocksOptions, ResolverConfig};
use tikv_tower_layers::typed::{send, SendOptions};
use tikv_tower_layers::OpState;
use tikv_tower_mockstore::{Clock, ManualClock, MockCluster};
use tikv_tower_proto::kvrpcpb::{self, Op};
use tikv_tower_proto::rpc::{RpcKind, StoreRequest};

struct Env {
    cluster: MockCluster,
    /// The cluster's clock (TSO physical time), moved with tokio's paused clock.
    clock: ManualClock,
    store: KvStore,
    plain: StoreStack,
    readers: StoreStack,
    resolver: Arc<LockResolver>,
}

async fn env_with(config: ResolverConfig) -> Env {
    let (c, clock) = Clock::manual(1_700_000_000_000);
    let cluster = MockCluster::builder()
        .stores(1)
        .split_keys(["m"])
        .clock(c)
        .build();
    let store = KvStore::in_process(cluster.clone(), StoreOptions::txn())
        .await
        .expect("store");
    let resolver = LockResolver::with_config(&store, config);
    Env {
        plain: store.plain_stack(),
        readers: store.stack_with_resolver(resolver.clone()),
        resolver,
        store,
        cluster,
        clock,
    }
}

async fn env() -> Env {
    env_with(ResolverConfig::default()).await
}

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_owned())
}

/// How one raw prewrite is made.
#[derive(Clone, Default)]
struct Pw {
    ttl: u64,
    min_commit_ts: u64,
    async_secondaries: Option<Vec<&'static str>>,
    txn_size: u64,
}

impl Pw {
    /// These options with a TTL of `ms`.
    fn ttl(mut self, ms: u64) -> Pw {
        self.ttl = ms;
        self
    }

    /// These options with a min commit ts.
    fn min_commit(mut self, ts: u64) -> Pw {
        self.min_commit_ts = ts;
        self
    }

    /// A lock that stays alive for the whole test.
    fn live() -> Pw {
        Pw::default().ttl(20_000)
    }
}

impl Env {
    /// Prewrites `keys` (the first is the primary) and commits the primary only: the
    /// others stay locked by a committed txn. Returns (start ts, commit ts).
    async fn committed_primary(&self, keys: &[&str]) -> (u64, u64) {
        let start = self.ts().await;
        self.prewrite(keys, keys[0], start, Pw::live()).await;
        let commit = self.ts().await;
        self.commit(&keys[..1], start, commit).await;
        (start, commit)
    }

    /// Lets `d` pass on both clocks (the cluster's TSO and tokio's).
    async fn pass(&self, d: Duration) {
        self.clock.advance(d);
        tokio::time::sleep(d).await;
    }

    async fn ts(&self) -> u64 {
        self.store.oracle().get_timestamp().await.expect("ts")
    }

    async fn prewrite(&self, keys: &[&str], primary: &str, start: u64, pw: Pw) {
        let req = kvrpcpb::PrewriteRequest {
            mutations: keys
                .iter()
                .map(|k| kvrpcpb::Mutation {
                    op: Op::Put as i32,
                    key: b(k),
                    value: b(&format!("v-{k}")),
                    ..Default::default()
                })
                .collect(),
            primary_lock: b(primary),
            start_version: start,
            lock_ttl: pw.ttl,
            txn_size: pw.txn_size.max(keys.len() as u64),
            min_commit_ts: pw.min_commit_ts,
            use_async_commit: pw.async_secondaries.is_some(),
            secondaries: if keys.contains(&primary) {
                pw.async_secondaries
                    .unwrap_or_default()
                    .iter()
                    .map(|s| b(s))
                    .collect()
            } else {
                Vec::new()
            },
            ..Default::default()
        };
        let resp = send(self.plain.clone(), req, SendOptions::default())
            .await
            .expect("prewrite");
        assert!(resp.errors.is_empty(), "{:?}", resp.errors);
    }

    async fn commit(&self, keys: &[&str], start: u64, commit: u64) {
        let req = kvrpcpb::CommitRequest {
            start_version: start,
            keys: keys.iter().map(|k| b(k)).collect(),
            commit_version: commit,
            ..Default::default()
        };
        let resp = send(self.plain.clone(), req, SendOptions::default())
            .await
            .expect("commit");
        assert!(resp.error.is_none(), "{:?}", resp.error);
    }

    async fn pessimistic_lock(&self, key: &str, primary: &str, start: u64, ttl: u64) {
        let req = kvrpcpb::PessimisticLockRequest {
            mutations: vec![kvrpcpb::Mutation {
                op: Op::PessimisticLock as i32,
                key: b(key),
                ..Default::default()
            }],
            primary_lock: b(primary),
            start_version: start,
            for_update_ts: start,
            lock_ttl: ttl,
            ..Default::default()
        };
        let resp = send(self.plain.clone(), req, SendOptions::default())
            .await
            .expect("pessimistic lock");
        assert!(resp.errors.is_empty(), "{:?}", resp.errors);
    }

    /// A typed Get through the locking stack.
    async fn get(&self, key: &str, version: u64, op: &Arc<OpState>) -> Option<Bytes> {
        let req = kvrpcpb::GetRequest {
            key: b(key),
            version,
            ..Default::default()
        };
        let resp = send(self.readers.clone(), req, SendOptions::op(op.clone()))
            .await
            .expect("get");
        assert!(resp.error.is_none(), "{:?}", resp.error);
        (!resp.not_found).then_some(resp.value)
    }

    async fn locked_keys(&self) -> Vec<(Bytes, u64)> {
        self.resolver
            .scan_locks(Bytes::new(), Bytes::new(), u64::MAX, 0)
            .await
            .expect("scan locks")
            .into_iter()
            .map(|l| (l.key, l.txn_id))
            .collect()
    }

    fn recorded(&self, kind: RpcKind) -> Vec<StoreRequest> {
        self.cluster
            .recorder()
            .snapshot()
            .into_iter()
            .filter(|r| r.request.kind() == kind)
            .map(|r| r.request)
            .collect()
    }
}

#[tokio::test(start_paused = true)]
async fn a_secondary_lock_of_a_committed_txn_is_committed_and_read() {
    let e = env().await;
    let (start, commit) = e.committed_primary(&["a", "x"]).await;
    let read_ts = e.ts().await;
    let op = OpState::new();
    assert_eq!(e.get("x", read_ts, &op).await, Some(b("v-x")));
    assert_eq!(op.committed_locks(), [start], "read through as committed");
    e.resolver.wait_idle().await;
    assert!(
        e.locked_keys().await.is_empty(),
        "the secondary was committed"
    );
    // Committed at the primary's commit ts: visible at commit, not before.
    assert_eq!(e.get("x", commit, &OpState::new()).await, Some(b("v-x")));
    assert_eq!(e.get("x", commit - 1, &OpState::new()).await, None);
    assert_eq!(
        e.resolver.cached_status(start).map(|s| s.commit_ts()),
        Some(commit)
    );
}

#[tokio::test(start_paused = true)]
async fn a_lock_of_a_rolled_back_txn_is_ignored_and_cleaned() {
    let e = env().await;
    let start = e.ts().await;
    e.prewrite(&["a", "x"], "a", start, Pw::live()).await;
    let rb = kvrpcpb::BatchRollbackRequest {
        start_version: start,
        keys: vec![b("a")],
        ..Default::default()
    };
    send(e.plain.clone(), rb, SendOptions::default())
        .await
        .unwrap();
    let read_ts = e.ts().await;
    let op = OpState::new();
    let t0 = tokio::time::Instant::now();
    assert_eq!(e.get("x", read_ts, &op).await, None);
    assert!(
        t0.elapsed() < Duration::from_millis(100),
        "no wait for a rolled-back txn"
    );
    assert_eq!(op.resolved_locks(), [start]);
    e.resolver.wait_idle().await;
    assert!(e.locked_keys().await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_live_lock_is_waited_for_until_its_owner_commits() {
    let e = Arc::new(env().await);
    e.prewrite(&["seed"], "seed", e.ts().await, Pw::default())
        .await;
    let start = e.ts().await;
    // min_commit_ts 0: CheckTxnStatus cannot push it, so the reader must wait.
    e.prewrite(&["a", "x"], "a", start, Pw::default().ttl(10_000))
        .await;
    let commit = e.ts().await;
    let read_ts = e.ts().await;
    let reader = {
        let e = e.clone();
        tokio::spawn(async move {
            let t0 = tokio::time::Instant::now();
            let v = e.get("x", read_ts, &OpState::new()).await;
            (v, t0.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!reader.is_finished(), "blocked by the live lock");
    e.commit(&["a", "x"], start, commit).await;
    let (v, waited) = reader.await.unwrap();
    assert_eq!(v, Some(b("v-x")));
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(
        waited < Duration::from_secs(10),
        "woke before the TTL: {waited:?}"
    );
    assert!(e.resolver.stats().check_txn_status >= 1);
}

#[tokio::test(start_paused = true)]
async fn an_expired_async_commit_txn_with_every_secondary_prewritten_commits_at_the_max_min_commit_ts(
) {
    let e = env().await;
    let start = e.ts().await;
    let secondaries = Some(vec!["b", "x"]);
    let pw = |min| Pw {
        ttl: 1,
        min_commit_ts: start + min,
        async_secondaries: secondaries.clone(),
        ..Pw::default()
    };
    // The primary "a" in region [, m), secondaries in both regions.
    e.prewrite(&["a"], "a", start, pw(1)).await;
    e.prewrite(&["b"], "a", start, pw(5)).await;
    e.prewrite(&["x"], "a", start, pw(3)).await;
    e.pass(Duration::from_millis(50)).await; // the TTL passes
    let read_ts = e.ts().await;
    assert_eq!(e.get("x", read_ts, &OpState::new()).await, Some(b("v-x")));
    assert_eq!(
        e.resolver.cached_status(start).map(|s| s.commit_ts()),
        Some(start + 5)
    );
    e.resolver.wait_idle().await;
    assert!(e.locked_keys().await.is_empty());
    for k in ["a", "b", "x"] {
        assert_eq!(
            e.get(k, start + 5, &OpState::new()).await,
            Some(b(&format!("v-{k}")))
        );
        assert_eq!(e.get(k, start + 4, &OpState::new()).await, None, "{k}");
    }
    assert_eq!(e.resolver.stats().check_secondary_locks, 1);
}

#[tokio::test(start_paused = true)]
async fn an_expired_async_commit_txn_with_a_missing_secondary_rolls_back() {
    let e = env().await;
    let start = e.ts().await;
    let pw = Pw {
        ttl: 1,
        min_commit_ts: start + 1,
        async_secondaries: Some(vec!["b", "x"]),
        ..Pw::default()
    };
    e.prewrite(&["a"], "a", start, pw.clone()).await;
    e.prewrite(&["x"], "a", start, pw.clone()).await; // "b" never prewritten
    e.pass(Duration::from_millis(50)).await;
    let read_ts = e.ts().await;
    let op = OpState::new();
    assert_eq!(e.get("x", read_ts, &op).await, None);
    assert_eq!(op.resolved_locks(), [start]);
    assert!(e
        .resolver
        .cached_status(start)
        .is_some_and(|s| s.is_rolled_back()));
    e.resolver.wait_idle().await;
    assert!(e.locked_keys().await.is_empty());
    // The missing secondary got a protected rollback: a late prewrite of it fails.
    let late = kvrpcpb::PrewriteRequest {
        mutations: vec![kvrpcpb::Mutation {
            op: Op::Put as i32,
            key: b("b"),
            value: b("late"),
            ..Default::default()
        }],
        primary_lock: b("a"),
        start_version: start,
        lock_ttl: 1,
        use_async_commit: true,
        min_commit_ts: start + 1,
        ..Default::default()
    };
    let resp = send(e.plain.clone(), late, SendOptions::default())
        .await
        .unwrap();
    assert!(
        !resp.errors.is_empty(),
        "late prewrite after the rollback must fail"
    );
}

#[tokio::test(start_paused = true)]
async fn an_async_commit_txn_that_fell_back_to_2pc_is_rolled_back_by_force_sync_commit() {
    let e = env().await;
    let start = e.ts().await;
    let async_pw = Pw {
        ttl: 1,
        min_commit_ts: start + 1,
        async_secondaries: Some(vec!["x"]),
        ..Pw::default()
    };
    e.prewrite(&["a"], "a", start, async_pw).await;
    // The secondary is a plain 2PC lock (client-go TestResolveTxnFallbackFromAsyncCommit).
    e.prewrite(&["x"], "a", start, Pw::default().ttl(1)).await;
    e.pass(Duration::from_millis(50)).await;
    let read_ts = e.ts().await;
    e.cluster.recorder().start();
    assert_eq!(e.get("x", read_ts, &OpState::new()).await, None);
    let forced = e
        .recorded(RpcKind::CheckTxnStatus)
        .into_iter()
        .filter(|r| matches!(r, StoreRequest::CheckTxnStatus(c) if c.force_sync_commit))
        .count();
    assert_eq!(forced, 1, "the primary re-checked with force_sync_commit");
    e.resolver.wait_idle().await;
    let left = e.locked_keys().await;
    assert!(
        left.is_empty(),
        "{left:?} {:?}",
        e.recorded(RpcKind::ResolveLock)
    );
}

#[tokio::test(start_paused = true)]
async fn a_pessimistic_lock_does_not_block_a_read() {
    let e = env().await;
    let start = e.ts().await;
    e.pessimistic_lock("x", "x", start, 20_000).await;
    let read_ts = e.ts().await;
    let t0 = tokio::time::Instant::now();
    assert_eq!(e.get("x", read_ts, &OpState::new()).await, None);
    assert!(t0.elapsed() < Duration::from_millis(50));
    assert_eq!(e.resolver.stats().check_txn_status, 0, "never even asked");
    assert_eq!(e.locked_keys().await, [(b("x"), start)], "and left alone");
}

#[tokio::test(start_paused = true)]
async fn a_lock_whose_min_commit_ts_is_pushed_past_the_read_ts_does_not_block() {
    let e = env().await;
    let start = e.ts().await;
    e.prewrite(
        &["a", "x"],
        "a",
        start,
        Pw::default().ttl(20_000).min_commit(start + 1),
    )
    .await;
    let read_ts = e.ts().await;
    let op = OpState::new();
    e.cluster.recorder().start();
    let t0 = tokio::time::Instant::now();
    assert_eq!(e.get("x", read_ts, &op).await, None);
    assert!(t0.elapsed() < Duration::from_millis(50), "no wait");
    assert_eq!(op.resolved_locks(), [start]);
    let checks = e.recorded(RpcKind::CheckTxnStatus);
    assert_eq!(checks.len(), 1);
    assert!(matches!(&checks[0], StoreRequest::CheckTxnStatus(c) if c.caller_start_ts == read_ts));
    // The primary's min_commit_ts now lies past the read ts.
    let lock = e.resolver.scan_locks("a", "b", u64::MAX, 0).await.unwrap();
    assert!(lock[0].min_commit_ts > read_ts, "{lock:?}");
}

#[tokio::test(start_paused = true)]
async fn a_stale_pessimistic_lock_answered_with_primary_mismatch_is_rolled_back() {
    let e = env().await;
    let start = e.ts().await;
    // The txn's real primary is "c"; "b" is one of its keys, and "a" is a stale
    // pessimistic lock still naming "b" as its primary (tidb#42937).
    e.pessimistic_lock("c", "c", start, 20_000).await;
    e.pessimistic_lock("b", "c", start, 20_000).await;
    e.pessimistic_lock("a", "b", start, 20_000).await;
    let locks = e.resolver.scan_locks("a", "b", u64::MAX, 0).await.unwrap();
    assert_eq!(locks.len(), 1);
    let info = kvrpcpb::LockInfo {
        key: locks[0].key.clone(),
        primary_lock: locks[0].primary.clone(),
        lock_version: start,
        lock_ttl: 20_000,
        lock_type: Op::PessimisticLock as i32,
        lock_for_update_ts: start,
        ..Default::default()
    };
    e.cluster.recorder().start();
    // As the resolve-lock layer would call it for a read that met the lock.
    let outcome = tikv_tower_layers::resolve_lock::LockResolver::resolve(
        &*e.resolver,
        vec![info],
        e.ts().await,
        OpState::new(),
    )
    .await
    .expect("resolve");
    assert!(outcome.wait.is_zero());
    assert!(
        outcome.resolved.is_empty(),
        "a live txn is never put in resolved_locks"
    );
    assert_eq!(e.resolver.stats().pessimistic_rollback, 1);
    let left: Vec<Bytes> = e.locked_keys().await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(left, [b("b"), b("c")], "only the stale lock went");
    let mismatch = e.recorded(RpcKind::CheckTxnStatus);
    assert_eq!(mismatch.len(), 1);
    assert!(mismatch
        .iter()
        .all(|r| matches!(r, StoreRequest::CheckTxnStatus(c)
        if c.resolving_pessimistic_lock && c.verify_is_primary)));
}

#[tokio::test(start_paused = true)]
async fn a_txn_committed_after_the_read_ts_is_ignored_and_not_asked_again() {
    let e = env().await;
    let start = e.ts().await;
    e.prewrite(&["a", "x", "y"], "a", start, Pw::live()).await;
    let read_ts = e.ts().await;
    let commit = e.ts().await;
    e.commit(&["a"], start, commit).await;
    e.cluster.recorder().start();
    let op = OpState::new();
    assert_eq!(
        e.get("x", read_ts, &op).await,
        None,
        "committed after the read"
    );
    assert_eq!(op.resolved_locks(), [start]);
    assert_eq!(e.resolver.stats().check_txn_status, 1);
    // "y" is still locked by the same txn: the same operation reads past it without
    // asking again (its Get carries the version in resolved_locks).
    assert_eq!(e.get("y", read_ts, &op).await, None);
    assert_eq!(e.resolver.stats().check_txn_status, 1);
    let gets = e.recorded(RpcKind::Get);
    let last = gets.last().expect("gets recorded");
    let ctx = last.context().expect("context");
    assert!(ctx.resolved_locks.contains(&start), "{ctx:?}");
}

#[tokio::test(start_paused = true)]
async fn a_thousand_concurrent_readers_of_one_locked_key_send_one_check_txn_status() {
    let e = Arc::new(env().await);
    let _ = e.committed_primary(&["a", "x"]).await;
    let read_ts = e.ts().await;
    e.cluster.recorder().start();
    let mut readers = Vec::new();
    for _ in 0..1000 {
        let e = e.clone();
        readers.push(tokio::spawn(async move {
            e.get("x", read_ts, &OpState::new()).await
        }));
    }
    for r in readers {
        assert_eq!(r.await.unwrap(), Some(b("v-x")));
    }
    assert_eq!(e.recorded(RpcKind::CheckTxnStatus).len(), 1);
    assert_eq!(e.resolver.stats().check_txn_status, 1);
}

#[tokio::test(start_paused = true)]
async fn check_txn_status_pushes_and_resolve_locks_reports_time_to_expiry() {
    // client-go TestCheckTxnStatus.
    let e = env().await;
    let start = e.ts().await;
    e.prewrite(
        &["a", "x"],
        "a",
        start,
        Pw::default().ttl(1_000).min_commit(start + 1),
    )
    .await;
    let now = e.ts().await;
    let check = tikv_tower::txn::resolver::CheckTxnStatus {
        txn_id: start,
        primary: b("a"),
        caller_start_ts: now,
        current_ts: now,
        rollback_if_not_exist: true,
        ..Default::default()
    };
    let s = e
        .resolver
        .check_txn_status(&OpState::new(), check)
        .await
        .unwrap();
    assert!(s.ttl() > 0);
    assert_eq!(s.action(), kvrpcpb::Action::MinCommitTsPushed);
    let lock = e.resolver.scan_locks("x", "y", u64::MAX, 0).await.unwrap();
    let info = |ttl| kvrpcpb::LockInfo {
        key: lock[0].key.clone(),
        primary_lock: lock[0].primary.clone(),
        lock_version: start,
        lock_ttl: ttl,
        txn_size: 2,
        ..Default::default()
    };
    let r = e
        .resolver
        .resolve_locks(&OpState::new(), 0, &[info(1_000)])
        .await
        .unwrap();
    assert!(r.ttl_ms > 0, "alive: {r:?}");
    // TTL 0 = resolve now: rolled back.
    let r = e
        .resolver
        .resolve_locks(&OpState::new(), 0, &[info(0)])
        .await
        .unwrap();
    assert_eq!(r.ttl_ms, 0);
    assert!(e
        .resolver
        .cached_status(start)
        .is_some_and(|s| s.is_rolled_back()));
    assert!(e.locked_keys().await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_lock_whose_primary_is_missing_is_retried_then_rolled_back_once_expired() {
    // client-go TestCheckTxnStatusNoWait: TxnNotFound backs off until the lock met
    // expires, then rollback_if_not_exist rolls the txn back.
    let e = env().await;
    let start = e.ts().await;
    e.prewrite(&["x"], "a", start, Pw::default().ttl(300)).await;
    let lock = e.resolver.scan_locks("x", "y", u64::MAX, 0).await.unwrap();
    let info = kvrpcpb::LockInfo {
        key: lock[0].key.clone(),
        primary_lock: b("a"),
        lock_version: start,
        lock_ttl: 300,
        txn_size: 1,
        ..Default::default()
    };
    let op = OpState::new();
    e.cluster.recorder().start();
    let r = e.resolver.resolve_locks(&op, 0, &[info]).await.unwrap();
    assert_eq!(r.ttl_ms, 0);
    assert!(
        op.total_sleep() > Duration::ZERO,
        "backed off on TxnNotFound"
    );
    let checks = e.recorded(RpcKind::CheckTxnStatus);
    assert!(checks.len() >= 2, "TxnNotFound, then rollback_if_not_exist");
    assert!(
        matches!(checks.last(), Some(StoreRequest::CheckTxnStatus(c)) if c.rollback_if_not_exist)
    );
    assert!(e
        .resolver
        .cached_status(start)
        .is_some_and(|s| s.is_rolled_back()));
    assert!(e.locked_keys().await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn small_txns_are_resolved_per_region_large_ones_region_wide() {
    // client-go TestBatchLiteResolveLocksByRegion (lite threshold 8, split at "m").
    let e = env_with(ResolverConfig {
        lite_threshold: 8,
        ..ResolverConfig::default()
    })
    .await;
    let small = e.ts().await;
    e.prewrite(&["a", "b", "c", "x"], "a", small, Pw::live())
        .await;
    let large = e.ts().await;
    e.prewrite(
        &["p", "d", "y", "z"],
        "p",
        large,
        Pw {
            ttl: 20_000,
            txn_size: 100,
            ..Pw::default()
        },
    )
    .await;
    let c1 = e.ts().await;
    e.commit(&["a"], small, c1).await;
    let c2 = e.ts().await;
    e.commit(&["p"], large, c2).await;
    e.cluster.recorder().start();
    let locks: Vec<kvrpcpb::LockInfo> = ["b", "c", "x", "y"]
        .iter()
        .map(|k| {
            let big = *k == "y";
            kvrpcpb::LockInfo {
                key: b(k),
                primary_lock: if big { b("p") } else { b("a") },
                lock_version: if big { large } else { small },
                lock_ttl: 20_000,
                txn_size: if big { 100 } else { 4 },
                ..Default::default()
            }
        })
        .collect();
    let r = e
        .resolver
        .resolve_locks_with_opts(&OpState::new(), &locks, ResolveLocksOptions::default())
        .await
        .unwrap();
    assert_eq!(r.ttl_ms, 0);
    let resolves: Vec<kvrpcpb::ResolveLockRequest> = e
        .recorded(RpcKind::ResolveLock)
        .into_iter()
        .filter_map(|r| match r {
            StoreRequest::ResolveLock(r) => Some(*r),
            _ => None,
        })
        .collect();
    let lite: Vec<_> = resolves
        .iter()
        .filter(|r| r.start_version == small)
        .collect();
    assert_eq!(lite.len(), 2, "one per region: {lite:?}");
    assert!(lite
        .iter()
        .all(|r| r.commit_version == c1 && !r.keys.is_empty()));
    let mut lite_keys: Vec<Bytes> = lite.iter().flat_map(|r| r.keys.clone()).collect();
    lite_keys.sort();
    assert_eq!(lite_keys, [b("b"), b("c"), b("x")]);
    let wide: Vec<_> = resolves
        .iter()
        .filter(|r| r.start_version == large)
        .collect();
    assert_eq!(wide.len(), 1);
    assert!(wide[0].keys.is_empty() && wide[0].commit_version == c2);
    // The region-wide resolve cleared "y" and "z" (its region), never "d" (the other).
    let left: Vec<Bytes> = e.locked_keys().await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(left, [b("d")]);
}

#[tokio::test(start_paused = true)]
async fn gc_resolves_a_whole_range_and_shared_wrappers_are_never_resolved() {
    let e = env().await;
    let t1 = e.ts().await;
    e.prewrite(&["a", "x"], "a", t1, Pw::live()).await;
    let t2 = e.ts().await;
    e.prewrite(&["b", "y"], "b", t2, Pw::live()).await;
    let c = e.ts().await;
    e.commit(&["a"], t1, c).await;
    let safe_point = e.ts().await;
    let n = e
        .resolver
        .resolve_range(&OpState::new(), Bytes::new(), Bytes::new(), safe_point)
        .await
        .unwrap();
    assert_eq!(
        n, 3,
        "x (commit), b and y (rolled back; a was the primary of t1)"
    );
    assert!(e.locked_keys().await.is_empty());
    assert_eq!(
        e.get("x", safe_point, &OpState::new()).await,
        Some(b("v-x"))
    );
    assert_eq!(e.get("y", safe_point, &OpState::new()).await, None);
    let wrapper = tikv_tower::txn::resolver::Lock {
        key: b("k"),
        lock_type: Op::SharedLock,
        ..Default::default()
    };
    let region = e
        .store
        .region_cache()
        .cached_region(b"k")
        .map(|r| r.ver_id())
        .unwrap_or_default();
    assert!(e
        .resolver
        .batch_resolve_locks(&OpState::new(), &[wrapper], region)
        .await
        .is_err());
}

#[tokio::test(start_paused = true)]
async fn a_read_blocked_past_its_budget_fails_with_resolve_lock_timeout() {
    let e = env().await;
    let start = e.ts().await;
    e.prewrite(&["a", "x"], "a", start, Pw::default().ttl(60_000))
        .await;
    let read_ts = e.ts().await;
    let op = OpState::builder()
        .max_backoff(Duration::from_millis(500))
        .build();
    let req = kvrpcpb::GetRequest {
        key: b("x"),
        version: read_ts,
        ..Default::default()
    };
    let err = send(e.readers.clone(), req, SendOptions::op(op))
        .await
        .expect_err("the lock outlives the budget");
    let err = tikv_tower::Error::from(err);
    assert!(err.is_resolve_lock_timeout(), "{err:?}");
    assert!(!err.is_txn_not_found() && !err.is_primary_mismatch());
    // TxnNotFound is typed and classifiable too.
    let nf = tikv_tower::Error::from(tikv_tower_layers::Error::Key(Box::new(kvrpcpb::KeyError {
        txn_not_found: Some(kvrpcpb::TxnNotFound::default()),
        ..Default::default()
    })));
    assert!(nf.is_txn_not_found());
}

#[tokio::test(start_paused = true)]
async fn a_read_does_not_wait_for_the_cleanup() {
    // client-go TestSnapshotUseResolveForRead: ResolveLock RPCs are slowed by 500 ms; a
    // read of a committed txn's secondary returns at once, the lock is still there right
    // after, and the background cleanup removes it.
    let e = env().await;
    let (start, _) = e.committed_primary(&["a", "x"]).await;
    e.cluster.faults().inject(
        tikv_tower_mockstore::fault::FaultRule::delay(Duration::from_millis(500))
            .for_kind(RpcKind::ResolveLock),
    );
    let read_ts = e.ts().await;
    let t0 = tokio::time::Instant::now();
    assert_eq!(e.get("x", read_ts, &OpState::new()).await, Some(b("v-x")));
    assert!(
        t0.elapsed() < Duration::from_millis(200),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(
        e.locked_keys().await,
        [(b("x"), start)],
        "cleanup still in flight"
    );
    assert_eq!(e.resolver.background_running(), 1);
    e.resolver.wait_idle().await;
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert!(e.locked_keys().await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn pessimistic_region_resolve_rolls_back_every_pessimistic_lock_of_the_txn_in_the_region() {
    // client-go TestPessimisticRollbackWithRead: expired pessimistic locks k1 (primary),
    // k2, k3 and a prewrite lock of the same txn; resolving k3 with
    // pessimistic-region-resolve removes every pessimistic lock of the txn in the region
    // and leaves the prewrite lock.
    let e = env().await;
    let start = e.ts().await;
    for k in ["k1", "k2", "k3"] {
        e.pessimistic_lock(k, "k1", start, 100).await;
    }
    e.prewrite(&["k4"], "k1", start, Pw::default().ttl(100))
        .await;
    e.pass(Duration::from_millis(200)).await;
    let info = kvrpcpb::LockInfo {
        key: b("k3"),
        primary_lock: b("k1"),
        lock_version: start,
        lock_ttl: 100,
        lock_type: Op::PessimisticLock as i32,
        lock_for_update_ts: start,
        ..Default::default()
    };
    let opts = ResolveLocksOptions {
        pessimistic_region_resolve: true,
        ..Default::default()
    };
    e.cluster.recorder().start();
    let r = e
        .resolver
        .resolve_locks_with_opts(&OpState::new(), &[info], opts)
        .await
        .unwrap();
    assert_eq!(r.ttl_ms, 0);
    let rollbacks = e.recorded(RpcKind::PessimisticRollback);
    assert_eq!(rollbacks.len(), 1);
    assert!(matches!(&rollbacks[0], StoreRequest::PessimisticRollback(p) if p.keys.is_empty()));
    assert_eq!(e.locked_keys().await, [(b("k4"), start)]);
}

#[tokio::test(start_paused = true)]
async fn shared_lock_wrappers_resolve_their_holders_and_txn_file_flags_travel() {
    let e = env().await;
    let (start, commit) = e.committed_primary(&["a", "x"]).await;
    let holder = kvrpcpb::LockInfo {
        primary_lock: b("a"),
        lock_version: start,
        lock_ttl: 20_000,
        txn_size: 2,
        is_txn_file: true,
        ..Default::default()
    };
    // A wrapper (version 1, never a real txn) on "x" holding the committed txn's lock.
    let wrapper = kvrpcpb::LockInfo {
        key: b("x"),
        lock_version: 1,
        lock_type: Op::SharedLock as i32,
        shared_lock_infos: vec![holder],
        ..Default::default()
    };
    e.cluster.recorder().start();
    let read_ts = e.ts().await;
    let outcome = tikv_tower_layers::resolve_lock::LockResolver::resolve(
        &*e.resolver,
        vec![wrapper],
        read_ts,
        OpState::new(),
    )
    .await
    .expect("resolve");
    assert_eq!(outcome.committed, [start], "the holder, read through");
    assert!(outcome.resolved.is_empty() && outcome.wait.is_zero());
    e.resolver.wait_idle().await;
    let log = e.cluster.recorder().snapshot();
    assert!(!log.is_empty());
    for r in &log {
        match &r.request {
            StoreRequest::CheckTxnStatus(c) => {
                assert_eq!(c.lock_ts, start, "never the wrapper");
                assert!(c.is_txn_file);
            }
            StoreRequest::ResolveLock(c) => {
                assert_eq!((c.start_version, c.commit_version), (start, commit));
                assert!(c.is_txn_file);
                assert_eq!(c.keys, [b("x")]);
            }
            other => panic!("unexpected {:?}", other.kind()),
        }
    }
    assert!(
        e.locked_keys().await.is_empty(),
        "the holder's lock was committed"
    );
}
