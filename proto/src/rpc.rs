//! A typed view of TiKV's store RPCs.
//!
//! TiKV's `Tikv` service exposes one unary gRPC method per command (`KvGet`, `RawPut`, ...)
//! and, for most of them, a second path: the `BatchCommands` bidirectional stream, whose
//! frames carry many requests in a `oneof` tagged with client-chosen request ids.
//!
//! This module gives both paths one vocabulary:
//! - [`StoreRequest`] / [`StoreResponse`]: one variant per store RPC, wrapping the kvrpcpb
//!   message, boxed (`StoreRequest::Get(Box<kvrpcpb::GetRequest>)`, built with `From`);
//! - [`RpcKind`]: the fieldless twin of those enums, with the gRPC method name
//!   ([`RpcKind::as_str`]) and its per-kind facts ([`RpcKind::facts`]: read/write,
//!   timeout class, routing, read ts, API family), all from one table,
//!   [`store_rpc_table!`](crate::store_rpc_table), which other crates also expand to
//!   generate their own per-kind code (tonic dispatch, server handlers);
//! - typed RPCs: [`KvRequest`] binds each request message to its [`KvResponse`], with
//!   [`HasKeyErrors`] / [`HasLocks`] / [`HasServerError`] accessors;
//! - access to the request [`kvrpcpb::Context`] ([`StoreRequest::context_mut`] stamps it)
//!   and to a response's region error ([`StoreResponse::region_error`]);
//! - lossless conversions to and from the BatchCommands oneofs, for the client side
//!   ([`StoreRequest::into_batch_cmd`], [`StoreResponse::from_batch_cmd`]) and the server
//!   side ([`StoreRequest::from_batch_cmd`], [`StoreResponse::into_batch_cmd`]).
//!
//! ```
//! use tikv_tower_proto::{kvrpcpb, rpc::{RpcKind, StoreRequest}};
//!
//! let mut req = StoreRequest::from(kvrpcpb::RawGetRequest { key: b"k"[..].into(), ..Default::default() });
//! req.context_mut().region_id = 42;
//! assert_eq!(req.kind(), RpcKind::RawGet);
//! assert_eq!(req.kind().as_str(), "RawGet");
//! assert_eq!(req.context().map(|c| c.region_id), Some(42));
//! assert!(req.into_batch_cmd().is_ok());
//! ```

use crate::errorpb;
use crate::kvrpcpb;
use crate::tikvpb::batch_commands_request::request::Cmd as BatchRequestCmd;
use crate::tikvpb::batch_commands_response::response::Cmd as BatchResponseCmd;

/// A kvrpcpb request message bound to its response message (client-rust's
/// `KvRequest { type Response }`). Implemented for every row of the table.
///
/// ```
/// use tikv_tower_proto::kvrpcpb::{RawGetRequest, RawGetResponse};
/// use tikv_tower_proto::rpc::{KvRequest, KvResponse, RpcKind, StoreResponse};
///
/// assert_eq!(<RawGetRequest as KvRequest>::KIND, RpcKind::RawGet);
/// let reply = StoreResponse::from(RawGetResponse { value: b"v".to_vec().into(), ..Default::default() });
/// let typed = <RawGetRequest as KvRequest>::Response::from_store(reply).unwrap();
/// assert_eq!(typed.value, &b"v"[..]);
/// // A reply of another kind is handed back, never unwrapped by force.
/// let wrong = StoreResponse::default_for(RpcKind::RawPut);
/// assert!(RawGetResponse::from_store(wrong).is_err());
/// ```
pub trait KvRequest: Into<StoreRequest> + Clone + Send + Sync + 'static {
    /// The reply message of this RPC.
    type Response: KvResponse;
    /// The RPC kind.
    const KIND: RpcKind;
    /// The request context, inserting a default one first if absent.
    fn context_mut(&mut self) -> &mut kvrpcpb::Context;
}

/// A kvrpcpb response message of one RPC kind.
pub trait KvResponse: Into<StoreResponse> + Sized + Send + 'static {
    /// The RPC kind.
    const KIND: RpcKind;
    /// Unwraps a [`StoreResponse`] of this kind; a reply of another kind is handed back.
    #[allow(clippy::result_large_err)] // the Err hands the reply back unchanged
    fn from_store(resp: StoreResponse) -> Result<Self, StoreResponse>;
    /// The region error carried by the reply, if any.
    fn region_error(&self) -> Option<&errorpb::Error>;
}

/// Replies that carry transactional key errors (client-rust `HasKeyErrors`): the
/// top-level `error` / `errors` and the per-pair errors of read replies.
pub trait HasKeyErrors {
    /// Every key error of the reply, top-level first.
    fn key_errors(&self) -> Vec<&kvrpcpb::KeyError>;
}

/// Replies that may report locks blocking a read (client-rust `HasLocks`).
pub trait HasLocks {
    /// The locks reported (in key errors' `locked`).
    fn locks(&self) -> Vec<&kvrpcpb::LockInfo>;
}

impl<T: HasKeyErrors> HasLocks for T {
    fn locks(&self) -> Vec<&kvrpcpb::LockInfo> {
        self.key_errors()
            .into_iter()
            .filter_map(|e| e.locked.as_ref())
            .collect()
    }
}

/// Replies whose failure is a plain `error` string (raw and admin kinds).
pub trait HasServerError {
    /// The server's error message, `None` when empty.
    fn server_error(&self) -> Option<&str>;
}

macro_rules! key_errors {
    (one: $($t:ident),*) => {$(
        impl HasKeyErrors for kvrpcpb::$t {
            fn key_errors(&self) -> Vec<&kvrpcpb::KeyError> {
                self.error.iter().collect()
            }
        }
    )*};
    (many: $($t:ident),*) => {$(
        impl HasKeyErrors for kvrpcpb::$t {
            fn key_errors(&self) -> Vec<&kvrpcpb::KeyError> {
                self.errors.iter().collect()
            }
        }
    )*};
    (pairs: $($t:ident),*) => {$(
        impl HasKeyErrors for kvrpcpb::$t {
            fn key_errors(&self) -> Vec<&kvrpcpb::KeyError> {
                self.error
                    .iter()
                    .chain(self.pairs.iter().filter_map(|p| p.error.as_deref()))
                    .collect()
            }
        }
    )*};
}

key_errors!(one: GetResponse, CommitResponse, BatchRollbackResponse, CleanupResponse,
    TxnHeartBeatResponse, CheckTxnStatusResponse, CheckSecondaryLocksResponse,
    ScanLockResponse, ResolveLockResponse, GcResponse);
key_errors!(many: PrewriteResponse, FlushResponse, PessimisticLockResponse,
    PessimisticRollbackResponse, SplitRegionResponse);
key_errors!(pairs: BatchGetResponse, ScanResponse, BufferBatchGetResponse);

macro_rules! server_errors {
    ($($t:ident),*) => {$(
        impl HasServerError for kvrpcpb::$t {
            fn server_error(&self) -> Option<&str> {
                (!self.error.is_empty()).then_some(self.error.as_str())
            }
        }
    )*};
}

server_errors!(
    DeleteRangeResponse,
    UnsafeDestroyRangeResponse,
    RawGetResponse,
    RawPutResponse,
    RawBatchPutResponse,
    RawDeleteResponse,
    RawBatchDeleteResponse,
    RawDeleteRangeResponse,
    RawGetKeyTtlResponse,
    RawCasResponse,
    RawChecksumResponse,
    MvccGetByKeyResponse,
    MvccGetByStartTsResponse
);

/// `Some(&req.field)` for rows that name a routing-key field, `None` otherwise.
macro_rules! opt_key {
    ($r:ident) => {
        None
    };
    ($r:ident, $f:ident) => {
        Some(&$r.$f)
    };
}

/// `Some(req.field)` for rows that name a read-ts field, `None` otherwise.
macro_rules! opt_ts {
    ($r:ident) => {
        None
    };
    ($r:ident, $f:ident) => {
        Some($r.$f)
    };
}

/// Whether a row names a field.
macro_rules! has_field {
    () => {
        false
    };
    ($f:ident) => {
        true
    };
}

/// The [`KvRequest`] / [`KvResponse`] impls of every row.
macro_rules! typed_rpcs {
    ($( $v:ident($req:ident, $resp:ident) )*) => {$(
        impl KvRequest for kvrpcpb::$req {
            type Response = kvrpcpb::$resp;
            const KIND: RpcKind = RpcKind::$v;
            fn context_mut(&mut self) -> &mut kvrpcpb::Context {
                self.context.get_or_insert_with(Default::default)
            }
        }
        impl KvResponse for kvrpcpb::$resp {
            const KIND: RpcKind = RpcKind::$v;
            fn from_store(resp: StoreResponse) -> Result<Self, StoreResponse> {
                match resp {
                    StoreResponse::$v(r) => Ok(*r),
                    other => Err(other),
                }
            }
            fn region_error(&self) -> Option<&errorpb::Error> {
                self.region_error.as_ref()
            }
        }
    )*};
}

/// Generates the enums, their conversions, the per-kind facts and the typed-RPC impls
/// from the table of [`store_rpc_table!`](crate::store_rpc_table).
macro_rules! store_rpcs {
    (
        batched {
            $( $bv:ident($breq:ident, $bresp:ident) = $bname:literal via $bmeth:ident, cmd $bcmd:ident:
               $bacc:ident, $bto:ident, $broute:ident $(($bkf:ident))?, ts($($btsf:ident)?),
               configurable_read($bcfg:literal), $bapi:ident; )*
        }
        unary {
            $( $uv:ident($ureq:ident, $uresp:ident) = $uname:literal via $umeth:ident:
               $uacc:ident, $uto:ident, $uroute:ident $(($ukf:ident))?, ts($($utsf:ident)?),
               configurable_read($ucfg:literal), $uapi:ident; )*
        }
    ) => {
        /// The kind of a store RPC, one per [`StoreRequest`] variant.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RpcKind {
            $( #[doc = concat!("The `", $bname, "` RPC.")] $bv, )*
            $( #[doc = concat!("The `", $uname, "` RPC (unary only).")] $uv, )*
        }

        impl RpcKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [RpcKind] = &[ $( RpcKind::$bv, )* $( RpcKind::$uv, )* ];

            /// The gRPC method name in the `tikvpb.Tikv` service (e.g. `"KvGet"`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( RpcKind::$bv => $bname, )*
                    $( RpcKind::$uv => $uname, )*
                }
            }

            /// Whether the RPC can travel inside the BatchCommands stream.
            pub const fn in_batch_commands(self) -> bool {
                match self {
                    $( RpcKind::$bv => true, )*
                    $( RpcKind::$uv => false, )*
                }
            }
        }

        /// A store RPC request: one variant per `tikvpb.Tikv` method this crate models.
        ///
        /// Payloads are boxed so the enum is two words: requests and responses move through
        /// every layer's future by value, and unboxed they would be copied hundreds of bytes
        /// at a time (the `Context` alone is over 500). `From` the message builds one.
        #[derive(Debug, Clone, PartialEq)]
        pub enum StoreRequest {
            $( #[doc = concat!("`", $bname, "`.")] $bv(Box<kvrpcpb::$breq>), )*
            $( #[doc = concat!("`", $uname, "`.")] $uv(Box<kvrpcpb::$ureq>), )*
        }

        /// A store RPC response, with the same variant names as [`StoreRequest`].
        #[derive(Debug, Clone, PartialEq)]
        pub enum StoreResponse {
            $( #[doc = concat!("`", $bname, "`.")] $bv(Box<kvrpcpb::$bresp>), )*
            $( #[doc = concat!("`", $uname, "`.")] $uv(Box<kvrpcpb::$uresp>), )*
        }

        $(
            impl From<kvrpcpb::$breq> for StoreRequest {
                fn from(r: kvrpcpb::$breq) -> Self { StoreRequest::$bv(Box::new(r)) }
            }
            impl From<kvrpcpb::$bresp> for StoreResponse {
                fn from(r: kvrpcpb::$bresp) -> Self { StoreResponse::$bv(Box::new(r)) }
            }
        )*
        $(
            impl From<kvrpcpb::$ureq> for StoreRequest {
                fn from(r: kvrpcpb::$ureq) -> Self { StoreRequest::$uv(Box::new(r)) }
            }
            impl From<kvrpcpb::$uresp> for StoreResponse {
                fn from(r: kvrpcpb::$uresp) -> Self { StoreResponse::$uv(Box::new(r)) }
            }
        )*

        impl StoreRequest {
            /// The kind of this request.
            pub fn kind(&self) -> RpcKind {
                match self {
                    $( StoreRequest::$bv(_) => RpcKind::$bv, )*
                    $( StoreRequest::$uv(_) => RpcKind::$uv, )*
                }
            }

            /// The request context, if one is set.
            pub fn context(&self) -> Option<&kvrpcpb::Context> {
                match self {
                    $( StoreRequest::$bv(r) => r.context.as_ref(), )*
                    $( StoreRequest::$uv(r) => r.context.as_ref(), )*
                }
            }

            /// The request context, inserting a default one first if absent.
            pub fn context_mut(&mut self) -> &mut kvrpcpb::Context {
                match self {
                    $( StoreRequest::$bv(r) => r.context.get_or_insert_with(Default::default), )*
                    $( StoreRequest::$uv(r) => r.context.get_or_insert_with(Default::default), )*
                }
            }

            /// Client side: wraps the request into the BatchCommands request oneof.
            ///
            /// Returns the request unchanged in `Err` for kinds that are unary-only.
            #[allow(clippy::result_large_err)] // the Err hands the request back unchanged
            pub fn into_batch_cmd(self) -> Result<BatchRequestCmd, StoreRequest> {
                match self {
                    $( StoreRequest::$bv(r) => Ok(BatchRequestCmd::$bcmd(*r)), )*
                    other => Err(other),
                }
            }

            /// Server side: unwraps a BatchCommands request oneof.
            ///
            /// Returns `None` for the `Empty` probe, which is not a store RPC.
            pub fn from_batch_cmd(cmd: BatchRequestCmd) -> Option<StoreRequest> {
                match cmd {
                    $( BatchRequestCmd::$bcmd(r) => Some(StoreRequest::$bv(Box::new(r))), )*
                    BatchRequestCmd::Empty(_) => None,
                }
            }
        }

        impl StoreResponse {
            /// The kind of this response.
            pub fn kind(&self) -> RpcKind {
                match self {
                    $( StoreResponse::$bv(_) => RpcKind::$bv, )*
                    $( StoreResponse::$uv(_) => RpcKind::$uv, )*
                }
            }

            /// An empty (all-default) response of the given kind.
            pub fn default_for(kind: RpcKind) -> StoreResponse {
                match kind {
                    $( RpcKind::$bv => StoreResponse::$bv(Box::default()), )*
                    $( RpcKind::$uv => StoreResponse::$uv(Box::default()), )*
                }
            }

            /// The region error carried by the response, if any.
            pub fn region_error(&self) -> Option<&errorpb::Error> {
                match self {
                    $( StoreResponse::$bv(r) => r.region_error.as_ref(), )*
                    $( StoreResponse::$uv(r) => r.region_error.as_ref(), )*
                }
            }

            /// Removes and returns the region error, if any.
            pub fn take_region_error(&mut self) -> Option<errorpb::Error> {
                match self {
                    $( StoreResponse::$bv(r) => r.region_error.take(), )*
                    $( StoreResponse::$uv(r) => r.region_error.take(), )*
                }
            }

            /// Sets the region error (replacing any previous one).
            pub fn set_region_error(&mut self, e: errorpb::Error) {
                match self {
                    $( StoreResponse::$bv(r) => r.region_error = Some(e), )*
                    $( StoreResponse::$uv(r) => r.region_error = Some(e), )*
                }
            }

            /// Client side: unwraps a BatchCommands response oneof.
            ///
            /// Returns `None` for the `Empty` probe reply.
            pub fn from_batch_cmd(cmd: BatchResponseCmd) -> Option<StoreResponse> {
                match cmd {
                    $( BatchResponseCmd::$bcmd(r) => Some(StoreResponse::$bv(Box::new(r))), )*
                    BatchResponseCmd::Empty(_) => None,
                }
            }

            /// Server side: wraps the response into the BatchCommands response oneof.
            ///
            /// Returns the response unchanged in `Err` for kinds that are unary-only.
            #[allow(clippy::result_large_err)] // the Err hands the response back unchanged
            pub fn into_batch_cmd(self) -> Result<BatchResponseCmd, StoreResponse> {
                match self {
                    $( StoreResponse::$bv(r) => Ok(BatchResponseCmd::$bcmd(*r)), )*
                    other => Err(other),
                }
            }
        }

        impl RpcKind {
            /// The per-kind facts of this kind's row in the table.
            pub const fn facts(self) -> RpcFacts {
                match self {
                    $( RpcKind::$bv => RpcFacts {
                        access: Access::$bacc,
                        timeout: TimeoutClass::$bto,
                        routing: Routing::$broute,
                        read_ts: has_field!($($btsf)?),
                        configurable_read: $bcfg,
                        api: Api::$bapi,
                        batched: true,
                    }, )*
                    $( RpcKind::$uv => RpcFacts {
                        access: Access::$uacc,
                        timeout: TimeoutClass::$uto,
                        routing: Routing::$uroute,
                        read_ts: has_field!($($utsf)?),
                        configurable_read: $ucfg,
                        api: Api::$uapi,
                        batched: false,
                    }, )*
                }
            }
        }

        impl StoreRequest {
            /// The routing key of a [`Routing::Key`] kind (the field its row names), `None`
            /// for every other routing.
            pub fn routing_key(&self) -> Option<&bytes::Bytes> {
                match self {
                    $( StoreRequest::$bv(_r) => opt_key!(_r $(, $bkf)?), )*
                    $( StoreRequest::$uv(_r) => opt_key!(_r $(, $ukf)?), )*
                }
            }

            /// The read timestamp of a read that may meet locks (the `ts` field its row
            /// names: `Get`, `BatchGet`, `Scan`, `BufferBatchGet`), `None` for other kinds.
            pub fn read_ts(&self) -> Option<u64> {
                match self {
                    $( StoreRequest::$bv(_r) => opt_ts!(_r $(, $btsf)?), )*
                    $( StoreRequest::$uv(_r) => opt_ts!(_r $(, $utsf)?), )*
                }
            }
        }

        typed_rpcs!($( $bv($breq, $bresp) )* $( $uv($ureq, $uresp) )*);
    };
}

/// The store-RPC table: **the one place** the per-kind facts live. Calls the macro named
/// `$callback` with the table as its input, so other crates generate their per-kind code
/// (tonic method dispatch, server handlers) from the same rows.
///
/// Each row: `Variant(Request, Response) = "GrpcMethod" via tonic_method[, cmd BatchCmd]:`
/// then the facts, in order: [`Access`], [`TimeoutClass`], [`Routing`] (`Key(field)` names
/// the field holding the routing key), `ts(field)` (the read timestamp field of a read that
/// meets locks, empty when none), `configurable_read(bool)` (client-go `isReadReq`), and
/// [`Api`]. `batched` rows travel in the BatchCommands oneof under `cmd`; `unary` rows only
/// exist as unary gRPC methods.
///
/// `store_rpc_table!(methods: callback)` calls `callback!` with only
/// `Variant(Request, Response) via tonic_method;` per row (batched and unary alike), for
/// code that needs the method list and none of the facts.
///
/// ```
/// macro_rules! count_rows {
///     (batched { $($b:tt)* } unary { $($u:tt)* }) => { 2 };
/// }
/// assert_eq!(tikv_tower_proto::store_rpc_table!(count_rows), 2);
/// ```
#[macro_export]
macro_rules! store_rpc_table {
    (methods: $callback:ident) => {
        $crate::store_rpc_table!(@call [$crate::__store_rpc_methods] [$callback]);
    };
    ($callback:ident) => {
        $crate::store_rpc_table!(@call [$callback] []);
    };
    (@call [$($callback:tt)*] [$($arg:tt)*]) => {
        $($callback)*! {
        $($arg)*
        batched {
            Get(GetRequest, GetResponse) = "KvGet" via kv_get, cmd Get:
                Read, Short, Key(key), ts(version), configurable_read(true), Txn;
            Scan(ScanRequest, ScanResponse) = "KvScan" via kv_scan, cmd Scan:
                Read, Medium, Range, ts(version), configurable_read(true), Txn;
            BatchGet(BatchGetRequest, BatchGetResponse) = "KvBatchGet" via kv_batch_get, cmd BatchGet:
                Read, Short, Keys, ts(version), configurable_read(true), Txn;
            Prewrite(PrewriteRequest, PrewriteResponse) = "KvPrewrite" via kv_prewrite, cmd Prewrite:
                Write, Short, Keys, ts(), configurable_read(false), Txn;
            Commit(CommitRequest, CommitResponse) = "KvCommit" via kv_commit, cmd Commit:
                Write, Short, Keys, ts(), configurable_read(false), Txn;
            Cleanup(CleanupRequest, CleanupResponse) = "KvCleanup" via kv_cleanup, cmd Cleanup:
                Write, Short, Key(key), ts(), configurable_read(false), Txn;
            BatchRollback(BatchRollbackRequest, BatchRollbackResponse) = "KvBatchRollback" via kv_batch_rollback, cmd BatchRollback:
                Write, Short, Keys, ts(), configurable_read(false), Txn;
            PessimisticLock(PessimisticLockRequest, PessimisticLockResponse) = "KvPessimisticLock" via kv_pessimistic_lock, cmd PessimisticLock:
                Write, Short, Keys, ts(), configurable_read(false), Txn;
            PessimisticRollback(PessimisticRollbackRequest, PessimisticRollbackResponse) = "KVPessimisticRollback" via kv_pessimistic_rollback, cmd PessimisticRollback:
                Write, Short, Keys, ts(), configurable_read(false), Txn;
            TxnHeartBeat(TxnHeartBeatRequest, TxnHeartBeatResponse) = "KvTxnHeartBeat" via kv_txn_heart_beat, cmd TxnHeartBeat:
                Write, Short, Key(primary_lock), ts(), configurable_read(false), Txn;
            CheckTxnStatus(CheckTxnStatusRequest, CheckTxnStatusResponse) = "KvCheckTxnStatus" via kv_check_txn_status, cmd CheckTxnStatus:
                Write, Short, Key(primary_key), ts(), configurable_read(false), Txn;
            CheckSecondaryLocks(CheckSecondaryLocksRequest, CheckSecondaryLocksResponse) = "KvCheckSecondaryLocks" via kv_check_secondary_locks, cmd CheckSecondaryLocks:
                Write, Short, Keys, ts(), configurable_read(false), Txn;
            ResolveLock(ResolveLockRequest, ResolveLockResponse) = "KvResolveLock" via kv_resolve_lock, cmd ResolveLock:
                Write, Short, KeysOrPinned, ts(), configurable_read(false), Txn;
            ScanLock(ScanLockRequest, ScanLockResponse) = "KvScanLock" via kv_scan_lock, cmd ScanLock:
                Read, Medium, Range, ts(), configurable_read(false), Txn;
            Gc(GcRequest, GcResponse) = "KvGC" via kv_gc, cmd Gc:
                Write, Medium, Unrouted, ts(), configurable_read(false), Txn;
            DeleteRange(DeleteRangeRequest, DeleteRangeResponse) = "KvDeleteRange" via kv_delete_range, cmd DeleteRange:
                Write, Medium, EachRegion, ts(), configurable_read(false), Txn;
            Flush(FlushRequest, FlushResponse) = "KvFlush" via kv_flush, cmd Flush:
                Write, Short, Keys, ts(), configurable_read(false), Txn;
            BufferBatchGet(BufferBatchGetRequest, BufferBatchGetResponse) = "KvBufferBatchGet" via kv_buffer_batch_get, cmd BufferBatchGet:
                Read, Short, Keys, ts(version), configurable_read(true), Txn;
            RawGet(RawGetRequest, RawGetResponse) = "RawGet" via raw_get, cmd RawGet:
                Read, Short, Key(key), ts(), configurable_read(false), Raw;
            RawBatchGet(RawBatchGetRequest, RawBatchGetResponse) = "RawBatchGet" via raw_batch_get, cmd RawBatchGet:
                Read, Short, Keys, ts(), configurable_read(false), Raw;
            RawPut(RawPutRequest, RawPutResponse) = "RawPut" via raw_put, cmd RawPut:
                Write, Short, Key(key), ts(), configurable_read(false), Raw;
            RawBatchPut(RawBatchPutRequest, RawBatchPutResponse) = "RawBatchPut" via raw_batch_put, cmd RawBatchPut:
                Write, Short, Keys, ts(), configurable_read(false), Raw;
            RawDelete(RawDeleteRequest, RawDeleteResponse) = "RawDelete" via raw_delete, cmd RawDelete:
                Write, Short, Key(key), ts(), configurable_read(false), Raw;
            RawBatchDelete(RawBatchDeleteRequest, RawBatchDeleteResponse) = "RawBatchDelete" via raw_batch_delete, cmd RawBatchDelete:
                Write, Short, Keys, ts(), configurable_read(false), Raw;
            RawScan(RawScanRequest, RawScanResponse) = "RawScan" via raw_scan, cmd RawScan:
                Read, Medium, Range, ts(), configurable_read(false), Raw;
            RawBatchScan(RawBatchScanRequest, RawBatchScanResponse) = "RawBatchScan" via raw_batch_scan, cmd RawBatchScan:
                Read, Medium, Unrouted, ts(), configurable_read(false), Raw;
            RawDeleteRange(RawDeleteRangeRequest, RawDeleteRangeResponse) = "RawDeleteRange" via raw_delete_range, cmd RawDeleteRange:
                Write, Medium, EachRegion, ts(), configurable_read(false), Raw;
        }
        unary {
            RawGetKeyTtl(RawGetKeyTtlRequest, RawGetKeyTtlResponse) = "RawGetKeyTTL" via raw_get_key_ttl:
                Read, Short, Key(key), ts(), configurable_read(false), Raw;
            RawCompareAndSwap(RawCasRequest, RawCasResponse) = "RawCompareAndSwap" via raw_compare_and_swap:
                Write, Short, Key(key), ts(), configurable_read(false), Raw;
            RawChecksum(RawChecksumRequest, RawChecksumResponse) = "RawChecksum" via raw_checksum:
                Read, Long, EachRegion, ts(), configurable_read(false), Raw;
            UnsafeDestroyRange(UnsafeDestroyRangeRequest, UnsafeDestroyRangeResponse) = "UnsafeDestroyRange" via unsafe_destroy_range:
                Write, Long, Unrouted, ts(), configurable_read(false), Admin;
            SplitRegion(SplitRegionRequest, SplitRegionResponse) = "SplitRegion" via split_region:
                Write, Long, Unrouted, ts(), configurable_read(false), Admin;
            MvccGetByKey(MvccGetByKeyRequest, MvccGetByKeyResponse) = "MvccGetByKey" via mvcc_get_by_key:
                Read, Short, Key(key), ts(), configurable_read(false), Admin;
            MvccGetByStartTs(MvccGetByStartTsRequest, MvccGetByStartTsResponse) = "MvccGetByStartTs" via mvcc_get_by_start_ts:
                Read, Short, Unrouted, ts(), configurable_read(false), Admin;
            StoreSafeTs(StoreSafeTsRequest, StoreSafeTsResponse) = "GetStoreSafeTS" via get_store_safe_ts:
                Read, Short, Unrouted, ts(), configurable_read(false), Admin;
        }
        }
    };
}

/// Flattens the table to `Variant(Request, Response) via tonic_method;` rows for
/// `store_rpc_table!(methods: callback)`.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_rpc_methods {
    (
        $callback:ident
        batched {
            $( $bv:ident($breq:ident, $bresp:ident) = $bname:literal via $bmeth:ident, cmd $bcmd:ident:
               $bacc:ident, $bto:ident, $broute:ident $(($bkf:ident))?, ts($($btsf:ident)?),
               configurable_read($bcfg:literal), $bapi:ident; )*
        }
        unary {
            $( $uv:ident($ureq:ident, $uresp:ident) = $uname:literal via $umeth:ident:
               $uacc:ident, $uto:ident, $uroute:ident $(($ukf:ident))?, ts($($utsf:ident)?),
               configurable_read($ucfg:literal), $uapi:ident; )*
        }
    ) => {
        $callback! {
            $( $bv($breq, $bresp) via $bmeth; )*
            $( $uv($ureq, $uresp) via $umeth; )*
        }
    };
}

store_rpc_table!(store_rpcs);

/// Whether a kind only reads or also writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Reads data only (no lock, write or metadata change): may be served by a follower
    /// or a stale-read replica when the context allows.
    Read,
    /// Writes data, locks or metadata: leader only.
    Write,
}

/// Which default RPC timeout a kind gets (client-go `ReadTimeoutShort` / `Medium` /
/// `Long`; the values live in the timeout layer's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeoutClass {
    /// Requests that read or write a few keys.
    Short,
    /// Requests that may scan a region.
    Medium,
    /// Region-wide maintenance (checksum, destroy range, split).
    Long,
}

/// How a kind is addressed to regions (what the shard and route layers do with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Routing {
    /// One key (the field named in the table): its region.
    Key,
    /// A list of keys or key-carrying items: split by region.
    Keys,
    /// A list of keys, or — when the list is empty — the region the caller pins
    /// (`ResolveLock` of a whole region).
    KeysOrPinned,
    /// A range visited region by region in order, with a limit (scans).
    Range,
    /// A range sent to every region it covers at once (delete-range, checksum).
    EachRegion,
    /// Not addressed by key: the caller pins a region or store.
    Unrouted,
}

/// Which API family a kind belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// Transactional (MVCC) key-value API.
    Txn,
    /// Raw (non-transactional) key-value API.
    Raw,
    /// Store-level maintenance and debugging (split, destroy range, MVCC inspection).
    Admin,
}

/// The per-kind facts of one row of the store-RPC table
/// ([`store_rpc_table!`](crate::store_rpc_table)), read by the transport, the layers and
/// the mockstore instead of their own match lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RpcFacts {
    /// Read-only or write.
    pub access: Access,
    /// Default timeout class.
    pub timeout: TimeoutClass,
    /// How it is routed and sharded.
    pub routing: Routing,
    /// Whether it carries a read timestamp and may meet locks (the resolve-lock layer
    /// resolves them and reads again): [`StoreRequest::read_ts`].
    pub read_ts: bool,
    /// client-go `isReadReq`: a read whose timeout the caller may configure and which,
    /// on a server-side timeout, is retried on another replica.
    pub configurable_read: bool,
    /// API family.
    pub api: Api,
    /// Whether it travels in the BatchCommands stream.
    pub batched: bool,
}

impl RpcKind {
    /// Whether the RPC only reads data (no lock, write or metadata change), so it may be
    /// served by a follower or a stale-read replica when the context allows.
    pub const fn is_read_only(self) -> bool {
        matches!(self.facts().access, Access::Read)
    }

    /// Whether the RPC belongs to the raw (non-transactional) key-value API.
    pub const fn is_raw(self) -> bool {
        matches!(self.facts().api, Api::Raw)
    }

    /// Looks a kind up by its gRPC method name (the inverse of [`RpcKind::as_str`]).
    pub fn from_method(name: &str) -> Option<RpcKind> {
        RpcKind::ALL.iter().copied().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for RpcKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tikvpb;
    use prost::Message;

    #[test]
    fn every_batched_kind_round_trips_through_the_oneofs() {
        let mut batched = 0;
        for &kind in RpcKind::ALL {
            let mut resp = StoreResponse::default_for(kind);
            assert_eq!(resp.kind(), kind);
            resp.set_region_error(errorpb::Error {
                message: "x".into(),
                ..Default::default()
            });
            // A request of this kind: derive it from the default response's kind table.
            let req = request_of(kind);
            assert_eq!(req.kind(), kind);
            match req.clone().into_batch_cmd() {
                Ok(cmd) => {
                    batched += 1;
                    assert!(kind.in_batch_commands(), "{kind}");
                    // Through the wire, too.
                    let frame = tikvpb::BatchCommandsRequest {
                        requests: vec![tikvpb::batch_commands_request::Request { cmd: Some(cmd) }],
                        request_ids: vec![9],
                        client_send_time_ns: 0,
                    };
                    let decoded =
                        tikvpb::BatchCommandsRequest::decode(frame.encode_to_vec().as_slice())
                            .expect("decode request frame");
                    let cmd = decoded.requests[0].cmd.clone().expect("cmd present");
                    assert_eq!(StoreRequest::from_batch_cmd(cmd), Some(req));

                    let rcmd = resp.clone().into_batch_cmd().expect("batched response");
                    assert_eq!(StoreResponse::from_batch_cmd(rcmd), Some(resp.clone()));
                }
                Err(back) => {
                    assert!(!kind.in_batch_commands(), "{kind}");
                    assert_eq!(back, req);
                    assert_eq!(resp.clone().into_batch_cmd(), Err(resp.clone()));
                }
            }
            assert_eq!(resp.region_error().map(|e| e.message.as_str()), Some("x"));
            assert!(resp.take_region_error().is_some());
            assert!(resp.region_error().is_none());
            assert_eq!(RpcKind::from_method(kind.as_str()), Some(kind));
        }
        assert_eq!(batched, 27);
        assert_eq!(RpcKind::ALL.len(), 35);
    }

    /// A request of `kind` with a recognisable context.
    fn request_of(kind: RpcKind) -> StoreRequest {
        let mut req: StoreRequest = match kind {
            RpcKind::Get => kvrpcpb::GetRequest::default().into(),
            RpcKind::Scan => kvrpcpb::ScanRequest::default().into(),
            RpcKind::BatchGet => kvrpcpb::BatchGetRequest::default().into(),
            RpcKind::Prewrite => kvrpcpb::PrewriteRequest::default().into(),
            RpcKind::Commit => kvrpcpb::CommitRequest::default().into(),
            RpcKind::Cleanup => kvrpcpb::CleanupRequest::default().into(),
            RpcKind::BatchRollback => kvrpcpb::BatchRollbackRequest::default().into(),
            RpcKind::PessimisticLock => kvrpcpb::PessimisticLockRequest::default().into(),
            RpcKind::PessimisticRollback => kvrpcpb::PessimisticRollbackRequest::default().into(),
            RpcKind::TxnHeartBeat => kvrpcpb::TxnHeartBeatRequest::default().into(),
            RpcKind::CheckTxnStatus => kvrpcpb::CheckTxnStatusRequest::default().into(),
            RpcKind::CheckSecondaryLocks => kvrpcpb::CheckSecondaryLocksRequest::default().into(),
            RpcKind::ResolveLock => kvrpcpb::ResolveLockRequest::default().into(),
            RpcKind::ScanLock => kvrpcpb::ScanLockRequest::default().into(),
            RpcKind::Gc => kvrpcpb::GcRequest::default().into(),
            RpcKind::DeleteRange => kvrpcpb::DeleteRangeRequest::default().into(),
            RpcKind::Flush => kvrpcpb::FlushRequest::default().into(),
            RpcKind::BufferBatchGet => kvrpcpb::BufferBatchGetRequest::default().into(),
            RpcKind::RawGet => kvrpcpb::RawGetRequest::default().into(),
            RpcKind::RawBatchGet => kvrpcpb::RawBatchGetRequest::default().into(),
            RpcKind::RawPut => kvrpcpb::RawPutRequest::default().into(),
            RpcKind::RawBatchPut => kvrpcpb::RawBatchPutRequest::default().into(),
            RpcKind::RawDelete => kvrpcpb::RawDeleteRequest::default().into(),
            RpcKind::RawBatchDelete => kvrpcpb::RawBatchDeleteRequest::default().into(),
            RpcKind::RawScan => kvrpcpb::RawScanRequest::default().into(),
            RpcKind::RawBatchScan => kvrpcpb::RawBatchScanRequest::default().into(),
            RpcKind::RawDeleteRange => kvrpcpb::RawDeleteRangeRequest::default().into(),
            RpcKind::RawGetKeyTtl => kvrpcpb::RawGetKeyTtlRequest::default().into(),
            RpcKind::RawCompareAndSwap => kvrpcpb::RawCasRequest::default().into(),
            RpcKind::RawChecksum => kvrpcpb::RawChecksumRequest::default().into(),
            RpcKind::UnsafeDestroyRange => kvrpcpb::UnsafeDestroyRangeRequest::default().into(),
            RpcKind::SplitRegion => kvrpcpb::SplitRegionRequest::default().into(),
            RpcKind::MvccGetByKey => kvrpcpb::MvccGetByKeyRequest::default().into(),
            RpcKind::MvccGetByStartTs => kvrpcpb::MvccGetByStartTsRequest::default().into(),
            RpcKind::StoreSafeTs => kvrpcpb::StoreSafeTsRequest::default().into(),
        };
        req.context_mut().region_id = kind as u64 + 1;
        req
    }

    #[test]
    fn facts_agree_with_the_generated_accessors() {
        for &kind in RpcKind::ALL {
            let req = request_of(kind);
            let f = kind.facts();
            assert_eq!(f.batched, kind.in_batch_commands(), "{kind}");
            assert_eq!(
                req.routing_key().is_some(),
                f.routing == Routing::Key,
                "{kind}"
            );
            assert_eq!(req.read_ts().is_some(), f.read_ts, "{kind}");
            // A lock-meeting read is a read, and a configurable read carries a read ts.
            assert!(!f.read_ts || f.access == Access::Read, "{kind}");
            assert_eq!(f.configurable_read, f.read_ts, "{kind}");
            assert_eq!(kind.is_raw(), kind.as_str().starts_with("Raw"), "{kind}");
        }
        let get = StoreRequest::from(kvrpcpb::GetRequest {
            key: b"k".to_vec().into(),
            version: 9,
            ..Default::default()
        });
        assert_eq!(get.routing_key().map(|k| &k[..]), Some(&b"k"[..]));
        assert_eq!(get.read_ts(), Some(9));
        let hb = StoreRequest::from(kvrpcpb::TxnHeartBeatRequest {
            primary_lock: b"p".to_vec().into(),
            ..Default::default()
        });
        assert_eq!(hb.routing_key().map(|k| &k[..]), Some(&b"p"[..]));
        assert_eq!(RpcKind::RawChecksum.facts().timeout, TimeoutClass::Long);
        assert_eq!(RpcKind::ResolveLock.facts().routing, Routing::KeysOrPinned);
    }

    #[test]
    fn typed_replies_and_accessors() {
        let lock = kvrpcpb::LockInfo {
            lock_version: 4,
            ..Default::default()
        };
        let locked = kvrpcpb::KeyError {
            locked: Some(lock.clone()),
            ..Default::default()
        };
        let resp = kvrpcpb::BatchGetResponse {
            pairs: vec![kvrpcpb::KvPair {
                error: Some(Box::new(locked.clone())),
                ..Default::default()
            }],
            error: Some(kvrpcpb::KeyError {
                abort: "x".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(resp.key_errors().len(), 2);
        assert_eq!(resp.locks(), vec![&lock]);
        let store = StoreResponse::from(resp.clone());
        assert_eq!(kvrpcpb::BatchGetResponse::from_store(store), Ok(resp));
        let other = StoreResponse::default_for(RpcKind::Get);
        assert_eq!(
            kvrpcpb::BatchGetResponse::from_store(other.clone()),
            Err(other)
        );
        let put = kvrpcpb::RawPutResponse {
            error: "disk full".into(),
            ..Default::default()
        };
        assert_eq!(put.server_error(), Some("disk full"));
        assert_eq!(kvrpcpb::RawPutResponse::default().server_error(), None);
        assert_eq!(
            <kvrpcpb::RawCasRequest as KvRequest>::KIND,
            RpcKind::RawCompareAndSwap
        );
    }

    #[test]
    fn context_mut_inserts_then_stamps() {
        let mut req = StoreRequest::from(kvrpcpb::PrewriteRequest::default());
        assert!(req.context().is_none());
        req.context_mut().region_id = 3;
        req.context_mut().term = 8;
        let ctx = req.context().expect("context inserted");
        assert_eq!((ctx.region_id, ctx.term), (3, 8));
        match req {
            StoreRequest::Prewrite(p) => assert_eq!(p.context.map(|c| c.region_id), Some(3)),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn empty_probe_is_not_a_store_rpc() {
        let probe = BatchRequestCmd::Empty(tikvpb::BatchCommandsEmptyRequest {
            test_id: 5,
            delay_time: 0,
        });
        assert_eq!(StoreRequest::from_batch_cmd(probe), None);
        let reply = BatchResponseCmd::Empty(tikvpb::BatchCommandsEmptyResponse { test_id: 5 });
        assert_eq!(StoreResponse::from_batch_cmd(reply), None);
    }

    #[test]
    fn classification_table() {
        let cases: &[(RpcKind, &str, bool, bool, bool)] = &[
            // kind, method, read-only, raw, batched
            (RpcKind::Get, "KvGet", true, false, true),
            (
                RpcKind::PessimisticRollback,
                "KVPessimisticRollback",
                false,
                false,
                true,
            ),
            (RpcKind::Gc, "KvGC", false, false, true),
            (RpcKind::Prewrite, "KvPrewrite", false, false, true),
            (RpcKind::RawGet, "RawGet", true, true, true),
            (RpcKind::RawPut, "RawPut", false, true, true),
            (RpcKind::RawGetKeyTtl, "RawGetKeyTTL", true, true, false),
            (
                RpcKind::RawCompareAndSwap,
                "RawCompareAndSwap",
                false,
                true,
                false,
            ),
            (RpcKind::SplitRegion, "SplitRegion", false, false, false),
            (
                RpcKind::MvccGetByStartTs,
                "MvccGetByStartTs",
                true,
                false,
                false,
            ),
        ];
        for &(kind, name, ro, raw, batched) in cases {
            assert_eq!(kind.as_str(), name);
            assert_eq!(kind.is_read_only(), ro, "{name}");
            assert_eq!(kind.is_raw(), raw, "{name}");
            assert_eq!(kind.in_batch_commands(), batched, "{name}");
        }
        assert_eq!(RpcKind::from_method("NoSuch"), None);
    }

    #[test]
    fn get_request_wire_bytes() {
        // context{region_id: 7} key "k" version 5 need_commit_ts true, hand-encoded:
        // field 1 LEN(2) [field 1 varint 7]; field 2 LEN(1) 'k'; field 3 varint 5; field 4 varint 1.
        let req = kvrpcpb::GetRequest {
            context: Some(kvrpcpb::Context {
                region_id: 7,
                ..Default::default()
            }),
            key: bytes::Bytes::from_static(b"k"),
            version: 5,
            need_commit_ts: true,
        };
        let expected = [
            0x0a, 0x02, 0x08, 0x07, 0x12, 0x01, 0x6b, 0x18, 0x05, 0x20, 0x01,
        ];
        assert_eq!(req.encode_to_vec(), expected);
        assert_eq!(kvrpcpb::GetRequest::decode(&expected[..]).ok(), Some(req));

        // Context.keyspace_id is oneof field 32: tag (32<<3)|0 = 256 → varint 0x80 0x02.
        let ctx = kvrpcpb::Context {
            keyspace: Some(kvrpcpb::context::Keyspace::KeyspaceId(1)),
            ..Default::default()
        };
        assert_eq!(ctx.encode_to_vec(), [0x80, 0x02, 0x01]);
    }
}
