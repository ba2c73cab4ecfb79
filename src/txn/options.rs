//! Options of snapshot reads (client-go `KVSnapshot.Set*`) and of new transactions
//! (client-go `TxnOption`s).

use std::time::Duration;

use bytes::Bytes;
use tikv_tower_layers::request::RequestTags;
pub use tikv_tower_layers::ReplicaRead;
use tikv_tower_proto::kvrpcpb;
pub use tikv_tower_proto::kvrpcpb::{CommandPri, IsolationLevel};

/// client-go's default scan batch size (`txnsnapshot.DefaultScanBatchSize`).
pub const DEFAULT_SCAN_BATCH_SIZE: usize = 256;
/// The most keys one `BatchGet` request carries (client-go `batchGetSize`).
pub const BATCH_GET_SIZE: usize = 5120;

/// How a snapshot reads (client-go `KVSnapshot` setters). Every field has client-go's
/// default; build with the `with_*` methods.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotOptions {
    /// `SI` (default), `RC` (locks ignored: the latest committed value at the read ts) or
    /// `RCCheckTS` (like RC, but a newer committed version than the read ts fails the read
    /// with a write conflict) (client-go `SetIsolationLevel`).
    pub isolation_level: IsolationLevel,
    /// Return each value's commit ts (client-go `kv.WithReturnCommitTS`).
    pub need_commit_ts: bool,
    /// Do not fill TiKV's block cache (client-go `SetNotFillCache`).
    pub not_fill_cache: bool,
    /// Request priority (client-go `SetPriority`).
    pub priority: CommandPri,
    /// Scans return keys only (client-go `SetKeyOnly`).
    pub key_only: bool,
    /// Scans keep one key in `sample_step` (0 = all) (client-go `SetSampleStep`).
    pub sample_step: u32,
    /// `Context.task_id` (client-go `SetTaskID`).
    pub task_id: u64,
    /// Resource group name (client-go `SetResourceGroupName`).
    pub resource_group_name: Option<String>,
    /// Resource group tag (client-go `SetResourceGroupTag`).
    pub resource_group_tag: Option<Bytes>,
    /// Request source tag (client-go `util.RequestSource` on the context).
    pub request_source: Option<String>,
    /// Timeout of each read RPC; a timed-out attempt is retried, on another replica when
    /// the replica policy has one (client-go `SetKVReadTimeout`).
    pub read_timeout: Option<Duration>,
    /// Which replicas serve the reads (client-go `SetReplicaRead`).
    pub replica_read: ReplicaRead,
    /// Stale read: any replica whose safe ts covers the read ts serves it; on
    /// `DataIsNotReady` the read falls back to the leader, and after meeting a lock it
    /// reads from the leader (client-go `SetIsStalenessReadOnly`).
    pub stale_read: bool,
    /// Keys per scan RPC (client-go `SetScanBatchSize`, default 256).
    pub scan_batch_size: usize,
    /// Concurrent `BatchGet` requests of one `batch_get` (client-go
    /// `batchGetKeysByRegions` runs one goroutine per batch; bounded here).
    pub batch_get_concurrency: usize,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            isolation_level: IsolationLevel::Si,
            need_commit_ts: false,
            not_fill_cache: false,
            priority: CommandPri::Normal,
            key_only: false,
            sample_step: 0,
            task_id: 0,
            resource_group_name: None,
            resource_group_tag: None,
            request_source: None,
            read_timeout: None,
            replica_read: ReplicaRead::Leader,
            stale_read: false,
            scan_batch_size: DEFAULT_SCAN_BATCH_SIZE,
            batch_get_concurrency: 16,
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta] $name:ident($field:ident: $ty:ty);)*) => {
        $(
            #[$doc]
            pub fn $name(mut self, $field: $ty) -> Self {
                self.$field = $field;
                self
            }
        )*
    };
}

impl SnapshotOptions {
    setter! {
        /// Sets [`isolation_level`](Self::isolation_level).
        with_isolation_level(isolation_level: IsolationLevel);
        /// Sets [`need_commit_ts`](Self::need_commit_ts).
        with_need_commit_ts(need_commit_ts: bool);
        /// Sets [`not_fill_cache`](Self::not_fill_cache).
        with_not_fill_cache(not_fill_cache: bool);
        /// Sets [`priority`](Self::priority).
        with_priority(priority: CommandPri);
        /// Sets [`key_only`](Self::key_only).
        with_key_only(key_only: bool);
        /// Sets [`sample_step`](Self::sample_step).
        with_sample_step(sample_step: u32);
        /// Sets [`task_id`](Self::task_id).
        with_task_id(task_id: u64);
        /// Sets [`replica_read`](Self::replica_read).
        with_replica_read(replica_read: ReplicaRead);
        /// Sets [`stale_read`](Self::stale_read).
        with_stale_read(stale_read: bool);
    }

    /// Sets [`scan_batch_size`](Self::scan_batch_size) (at least 1).
    pub fn with_scan_batch_size(mut self, n: usize) -> Self {
        self.scan_batch_size = n.max(1);
        self
    }

    /// Sets [`batch_get_concurrency`](Self::batch_get_concurrency) (at least 1).
    pub fn with_batch_get_concurrency(mut self, n: usize) -> Self {
        self.batch_get_concurrency = n.max(1);
        self
    }

    /// Sets [`resource_group_name`](Self::resource_group_name).
    pub fn with_resource_group_name(mut self, name: impl Into<String>) -> Self {
        self.resource_group_name = Some(name.into());
        self
    }

    /// Sets [`resource_group_tag`](Self::resource_group_tag).
    pub fn with_resource_group_tag(mut self, tag: impl Into<Bytes>) -> Self {
        self.resource_group_tag = Some(tag.into());
        self
    }

    /// Sets [`request_source`](Self::request_source).
    pub fn with_request_source(mut self, source: impl Into<String>) -> Self {
        self.request_source = Some(source.into());
        self
    }

    /// Sets [`read_timeout`](Self::read_timeout).
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = Some(timeout);
        self
    }

    /// The replica policy of a read: stale read wins over `replica_read`.
    pub fn effective_replica_read(&self) -> ReplicaRead {
        if self.stale_read {
            ReplicaRead::StaleRead
        } else {
            self.replica_read
        }
    }

    /// The tags stamped by the tag layer (per-operation values override the stack's).
    pub fn tags(&self) -> RequestTags {
        RequestTags {
            request_source: self.request_source.clone(),
            resource_group_name: self.resource_group_name.clone(),
            resource_group_tag: self.resource_group_tag.clone(),
            priority: Some(self.priority),
            not_fill_cache: Some(self.not_fill_cache),
            ..RequestTags::default()
        }
    }

    /// The context fields the tag layer does not stamp (isolation level, task id).
    pub fn context(&self) -> kvrpcpb::Context {
        kvrpcpb::Context {
            isolation_level: self.isolation_level as i32,
            task_id: self.task_id,
            ..kvrpcpb::Context::default()
        }
    }
}

/// How a transaction starts (client-go `tikv.TxnOption`s of `KVStore.Begin`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TxnOptions {
    /// Start at this ts instead of a fresh TSO (client-go `WithStartTS`).
    pub start_ts: Option<u64>,
    /// Pessimistic (locks taken as the transaction writes) instead of optimistic; the
    /// locking itself comes with the pessimistic-transaction work (client-go
    /// `KVTxn.SetPessimistic`).
    pub pessimistic: bool,
    /// The transaction's snapshot read options.
    pub snapshot: SnapshotOptions,
}

impl TxnOptions {
    /// Optimistic, fresh start ts (client-go's default).
    pub fn optimistic() -> Self {
        TxnOptions::default()
    }

    /// Pessimistic, fresh start ts.
    pub fn pessimistic() -> Self {
        TxnOptions {
            pessimistic: true,
            ..TxnOptions::default()
        }
    }

    /// Start at `ts` (client-go `WithStartTS`).
    pub fn with_start_ts(mut self, ts: u64) -> Self {
        self.start_ts = Some(ts);
        self
    }

    /// Read with these snapshot options.
    pub fn with_snapshot_options(mut self, options: SnapshotOptions) -> Self {
        self.snapshot = options;
        self
    }
}
