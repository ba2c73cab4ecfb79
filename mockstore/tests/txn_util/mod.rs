//! Shared helpers of the `txn_*` engine tests: a harness around one
//! [`TxnEngine`] and one store's [`ConcurrencyManager`], request builders and
//! `must_*` assertions in the style of TiKV's test helpers.
#![allow(dead_code)]

use tikv_tower_mockstore::mvcc::store::KeyData;
use tikv_tower_mockstore::mvcc::{ConcurrencyManager, Lock, TxnEngine, Write, WriteType};
use tikv_tower_proto::kvrpcpb::{self, Op};

/// The whole key space as a region.
pub const ALL: (&[u8], &[u8]) = (b"", b"");

/// A TSO timestamp from a physical ms and a logical part.
pub fn tso(physical_ms: u64, logical: u64) -> u64 {
    (physical_ms << 18) | logical
}

/// A mutation.
pub fn mutation(op: Op, key: &[u8], value: &[u8]) -> kvrpcpb::Mutation {
    kvrpcpb::Mutation {
        op: op as i32,
        key: key.to_vec().into(),
        value: value.to_vec().into(),
        assertion: 0,
    }
}

/// A Put mutation.
pub fn put(key: &[u8], value: &[u8]) -> kvrpcpb::Mutation {
    mutation(Op::Put, key, value)
}

/// A Del mutation.
pub fn del(key: &[u8]) -> kvrpcpb::Mutation {
    mutation(Op::Del, key, b"")
}

/// A Lock mutation.
pub fn lock_m(key: &[u8]) -> kvrpcpb::Mutation {
    mutation(Op::Lock, key, b"")
}

/// An Insert mutation.
pub fn insert(key: &[u8], value: &[u8]) -> kvrpcpb::Mutation {
    mutation(Op::Insert, key, value)
}

/// A CheckNotExists mutation.
pub fn check_not_exists(key: &[u8]) -> kvrpcpb::Mutation {
    mutation(Op::CheckNotExists, key, b"")
}

/// An optimistic prewrite request.
pub fn prewrite_req(
    muts: Vec<kvrpcpb::Mutation>,
    primary: &[u8],
    start_ts: u64,
) -> kvrpcpb::PrewriteRequest {
    kvrpcpb::PrewriteRequest {
        context: Some(kvrpcpb::Context::default()),
        mutations: muts,
        primary_lock: primary.to_vec().into(),
        start_version: start_ts,
        lock_ttl: 3000,
        ..Default::default()
    }
}

/// A pessimistic lock request for `keys`.
pub fn lock_req(
    keys: &[&[u8]],
    primary: &[u8],
    start_ts: u64,
    for_update_ts: u64,
) -> kvrpcpb::PessimisticLockRequest {
    kvrpcpb::PessimisticLockRequest {
        context: Some(kvrpcpb::Context::default()),
        mutations: keys
            .iter()
            .map(|k| mutation(Op::PessimisticLock, k, b""))
            .collect(),
        primary_lock: primary.to_vec().into(),
        start_version: start_ts,
        lock_ttl: 3000,
        for_update_ts,
        wait_timeout: -1,
        ..Default::default()
    }
}

/// The engine under test plus one store's concurrency manager.
pub struct H {
    pub e: TxnEngine,
    pub cm: ConcurrencyManager,
}

impl Default for H {
    fn default() -> Self {
        H::new()
    }
}

impl H {
    pub fn new() -> H {
        H {
            e: TxnEngine::default(),
            cm: ConcurrencyManager::new(),
        }
    }

    pub fn prewrite(&self, req: kvrpcpb::PrewriteRequest) -> kvrpcpb::PrewriteResponse {
        self.e.prewrite(&self.cm, &req, ALL)
    }

    pub fn must_prewrite(&self, req: kvrpcpb::PrewriteRequest) -> kvrpcpb::PrewriteResponse {
        let r = self.prewrite(req);
        assert!(r.errors.is_empty(), "prewrite failed: {:?}", r.errors);
        r
    }

    pub fn must_prewrite_put(&self, key: &[u8], value: &[u8], primary: &[u8], start_ts: u64) {
        self.must_prewrite(prewrite_req(vec![put(key, value)], primary, start_ts));
    }

    pub fn must_prewrite_del(&self, key: &[u8], primary: &[u8], start_ts: u64) {
        self.must_prewrite(prewrite_req(vec![del(key)], primary, start_ts));
    }

    pub fn must_prewrite_lock(&self, key: &[u8], primary: &[u8], start_ts: u64) {
        self.must_prewrite(prewrite_req(vec![lock_m(key)], primary, start_ts));
    }

    /// A pessimistic prewrite of one Put with the given action.
    pub fn pessimistic_prewrite(
        &self,
        m: kvrpcpb::Mutation,
        primary: &[u8],
        start_ts: u64,
        for_update_ts: u64,
        action: kvrpcpb::prewrite_request::PessimisticAction,
    ) -> kvrpcpb::PrewriteResponse {
        let mut req = prewrite_req(vec![m], primary, start_ts);
        req.for_update_ts = for_update_ts;
        req.pessimistic_actions = vec![action as i32];
        self.prewrite(req)
    }

    pub fn commit(&self, keys: &[&[u8]], start_ts: u64, commit_ts: u64) -> kvrpcpb::CommitResponse {
        let req = kvrpcpb::CommitRequest {
            context: Some(kvrpcpb::Context::default()),
            start_version: start_ts,
            keys: keys.iter().map(|k| k.to_vec()).map(Into::into).collect(),
            commit_version: commit_ts,
            ..Default::default()
        };
        self.e.commit(&self.cm, &req, ALL)
    }

    pub fn must_commit(&self, keys: &[&[u8]], start_ts: u64, commit_ts: u64) {
        let r = self.commit(keys, start_ts, commit_ts);
        assert!(r.error.is_none(), "commit failed: {:?}", r.error);
        assert_eq!(r.commit_version, commit_ts);
    }

    pub fn must_put(&self, key: &[u8], value: &[u8], start_ts: u64, commit_ts: u64) {
        self.must_prewrite_put(key, value, key, start_ts);
        self.must_commit(&[key], start_ts, commit_ts);
    }

    pub fn must_delete(&self, key: &[u8], start_ts: u64, commit_ts: u64) {
        self.must_prewrite_del(key, key, start_ts);
        self.must_commit(&[key], start_ts, commit_ts);
    }

    pub fn rollback(&self, keys: &[&[u8]], start_ts: u64) -> kvrpcpb::BatchRollbackResponse {
        let req = kvrpcpb::BatchRollbackRequest {
            context: Some(kvrpcpb::Context::default()),
            start_version: start_ts,
            keys: keys.iter().map(|k| k.to_vec()).map(Into::into).collect(),
            ..Default::default()
        };
        self.e.batch_rollback(&self.cm, &req, ALL)
    }

    pub fn must_rollback(&self, keys: &[&[u8]], start_ts: u64) {
        let r = self.rollback(keys, start_ts);
        assert!(r.error.is_none(), "rollback failed: {:?}", r.error);
    }

    pub fn get_req(&self, key: &[u8], ts: u64) -> kvrpcpb::GetResponse {
        let req = kvrpcpb::GetRequest {
            context: Some(kvrpcpb::Context::default()),
            key: key.to_vec().into(),
            version: ts,
            need_commit_ts: true,
        };
        self.e.get(&self.cm, &req, ALL)
    }

    /// The value at `ts` (None if absent); panics on a key error.
    pub fn must_get(&self, key: &[u8], ts: u64) -> Option<Vec<u8>> {
        let r = self.get_req(key, ts);
        assert!(r.error.is_none(), "get failed: {:?}", r.error);
        if r.not_found {
            None
        } else {
            Some(r.value.into())
        }
    }

    pub fn must_get_locked(&self, key: &[u8], ts: u64) -> kvrpcpb::LockInfo {
        let r = self.get_req(key, ts);
        r.error
            .and_then(|e| e.locked)
            .unwrap_or_else(|| panic!("expected a lock on {key:?}"))
    }

    pub fn pessimistic_lock(
        &self,
        req: kvrpcpb::PessimisticLockRequest,
    ) -> kvrpcpb::PessimisticLockResponse {
        futures_lite_block_on(self.e.pessimistic_lock(&self.cm, &req, ALL))
    }

    pub fn must_pessimistic_lock(
        &self,
        key: &[u8],
        primary: &[u8],
        start_ts: u64,
        for_update_ts: u64,
    ) {
        let r = self.pessimistic_lock(lock_req(&[key], primary, start_ts, for_update_ts));
        assert!(
            r.errors.is_empty(),
            "pessimistic lock failed: {:?}",
            r.errors
        );
    }

    pub fn lock(&self, key: &[u8]) -> Option<Lock> {
        self.e.store().load_lock(key)
    }

    pub fn must_locked(&self, key: &[u8], start_ts: u64) -> Lock {
        let l = self
            .lock(key)
            .unwrap_or_else(|| panic!("no lock on {key:?}"));
        assert_eq!(l.ts, start_ts, "lock on {key:?} belongs to another txn");
        l
    }

    pub fn must_unlocked(&self, key: &[u8]) {
        assert!(
            self.lock(key).is_none(),
            "unexpected lock on {key:?}: {:?}",
            self.lock(key)
        );
    }

    pub fn data(&self, key: &[u8]) -> Option<KeyData> {
        self.e.store().with_key(key, |d| d.cloned())
    }

    /// The record at exactly `commit_ts`.
    pub fn write_at(&self, key: &[u8], commit_ts: u64) -> Option<Write> {
        self.data(key)
            .and_then(|d| d.writes.get(&commit_ts).cloned())
    }

    pub fn must_rollback_record(&self, key: &[u8], start_ts: u64, protected: bool) {
        let w = self
            .write_at(key, start_ts)
            .unwrap_or_else(|| panic!("no record at {start_ts} on {key:?}"));
        assert_eq!(w.write_type, WriteType::Rollback);
        assert_eq!(w.protected, protected, "protected flag of rollback");
    }

    pub fn must_no_record(&self, key: &[u8], commit_ts: u64) {
        assert!(
            self.write_at(key, commit_ts).is_none(),
            "unexpected record at {commit_ts}"
        );
    }

    pub fn check_txn_status(
        &self,
        primary: &[u8],
        lock_ts: u64,
        caller_start_ts: u64,
        current_ts: u64,
        rollback_if_not_exist: bool,
    ) -> kvrpcpb::CheckTxnStatusResponse {
        let req = kvrpcpb::CheckTxnStatusRequest {
            context: Some(kvrpcpb::Context::default()),
            primary_key: primary.to_vec().into(),
            lock_ts,
            caller_start_ts,
            current_ts,
            rollback_if_not_exist,
            ..Default::default()
        };
        self.e.check_txn_status(&self.cm, &req, ALL)
    }
}

/// Runs a future to completion on a fresh current-thread runtime.
pub fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
        .block_on(f)
}
