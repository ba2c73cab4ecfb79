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
//!   ([`RpcKind::as_str`]) and classification ([`RpcKind::is_read_only`],
//!   [`RpcKind::is_raw`], [`RpcKind::in_batch_commands`]);
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

/// Declares the RPC table once and generates the enums and their conversions from it.
///
/// `batched` entries travel in the BatchCommands oneof under the named `cmd` variant;
/// `unary` entries only exist as unary gRPC methods.
macro_rules! store_rpcs {
    (
        batched {
            $( $bv:ident($breq:ident, $bresp:ident) = $bname:literal, cmd $bcmd:ident; )*
        }
        unary {
            $( $uv:ident($ureq:ident, $uresp:ident) = $uname:literal; )*
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
    };
}

store_rpcs! {
    batched {
        Get(GetRequest, GetResponse) = "KvGet", cmd Get;
        Scan(ScanRequest, ScanResponse) = "KvScan", cmd Scan;
        BatchGet(BatchGetRequest, BatchGetResponse) = "KvBatchGet", cmd BatchGet;
        Prewrite(PrewriteRequest, PrewriteResponse) = "KvPrewrite", cmd Prewrite;
        Commit(CommitRequest, CommitResponse) = "KvCommit", cmd Commit;
        Cleanup(CleanupRequest, CleanupResponse) = "KvCleanup", cmd Cleanup;
        BatchRollback(BatchRollbackRequest, BatchRollbackResponse) = "KvBatchRollback", cmd BatchRollback;
        PessimisticLock(PessimisticLockRequest, PessimisticLockResponse) = "KvPessimisticLock", cmd PessimisticLock;
        PessimisticRollback(PessimisticRollbackRequest, PessimisticRollbackResponse) = "KVPessimisticRollback", cmd PessimisticRollback;
        TxnHeartBeat(TxnHeartBeatRequest, TxnHeartBeatResponse) = "KvTxnHeartBeat", cmd TxnHeartBeat;
        CheckTxnStatus(CheckTxnStatusRequest, CheckTxnStatusResponse) = "KvCheckTxnStatus", cmd CheckTxnStatus;
        CheckSecondaryLocks(CheckSecondaryLocksRequest, CheckSecondaryLocksResponse) = "KvCheckSecondaryLocks", cmd CheckSecondaryLocks;
        ResolveLock(ResolveLockRequest, ResolveLockResponse) = "KvResolveLock", cmd ResolveLock;
        ScanLock(ScanLockRequest, ScanLockResponse) = "KvScanLock", cmd ScanLock;
        Gc(GcRequest, GcResponse) = "KvGC", cmd Gc;
        DeleteRange(DeleteRangeRequest, DeleteRangeResponse) = "KvDeleteRange", cmd DeleteRange;
        Flush(FlushRequest, FlushResponse) = "KvFlush", cmd Flush;
        BufferBatchGet(BufferBatchGetRequest, BufferBatchGetResponse) = "KvBufferBatchGet", cmd BufferBatchGet;
        RawGet(RawGetRequest, RawGetResponse) = "RawGet", cmd RawGet;
        RawBatchGet(RawBatchGetRequest, RawBatchGetResponse) = "RawBatchGet", cmd RawBatchGet;
        RawPut(RawPutRequest, RawPutResponse) = "RawPut", cmd RawPut;
        RawBatchPut(RawBatchPutRequest, RawBatchPutResponse) = "RawBatchPut", cmd RawBatchPut;
        RawDelete(RawDeleteRequest, RawDeleteResponse) = "RawDelete", cmd RawDelete;
        RawBatchDelete(RawBatchDeleteRequest, RawBatchDeleteResponse) = "RawBatchDelete", cmd RawBatchDelete;
        RawScan(RawScanRequest, RawScanResponse) = "RawScan", cmd RawScan;
        RawBatchScan(RawBatchScanRequest, RawBatchScanResponse) = "RawBatchScan", cmd RawBatchScan;
        RawDeleteRange(RawDeleteRangeRequest, RawDeleteRangeResponse) = "RawDeleteRange", cmd RawDeleteRange;
    }
    unary {
        RawGetKeyTtl(RawGetKeyTtlRequest, RawGetKeyTtlResponse) = "RawGetKeyTTL";
        RawCompareAndSwap(RawCasRequest, RawCasResponse) = "RawCompareAndSwap";
        RawChecksum(RawChecksumRequest, RawChecksumResponse) = "RawChecksum";
        UnsafeDestroyRange(UnsafeDestroyRangeRequest, UnsafeDestroyRangeResponse) = "UnsafeDestroyRange";
        SplitRegion(SplitRegionRequest, SplitRegionResponse) = "SplitRegion";
        MvccGetByKey(MvccGetByKeyRequest, MvccGetByKeyResponse) = "MvccGetByKey";
        MvccGetByStartTs(MvccGetByStartTsRequest, MvccGetByStartTsResponse) = "MvccGetByStartTs";
    }
}

impl RpcKind {
    /// Whether the RPC only reads data (no lock, write or metadata change), so it may be
    /// served by a follower or a stale-read replica when the context allows.
    pub const fn is_read_only(self) -> bool {
        matches!(
            self,
            RpcKind::Get
                | RpcKind::Scan
                | RpcKind::BatchGet
                | RpcKind::ScanLock
                | RpcKind::BufferBatchGet
                | RpcKind::RawGet
                | RpcKind::RawBatchGet
                | RpcKind::RawScan
                | RpcKind::RawBatchScan
                | RpcKind::RawGetKeyTtl
                | RpcKind::RawChecksum
                | RpcKind::MvccGetByKey
                | RpcKind::MvccGetByStartTs
        )
    }

    /// Whether the RPC belongs to the raw (non-transactional) key-value API.
    pub const fn is_raw(self) -> bool {
        matches!(
            self,
            RpcKind::RawGet
                | RpcKind::RawBatchGet
                | RpcKind::RawPut
                | RpcKind::RawBatchPut
                | RpcKind::RawDelete
                | RpcKind::RawBatchDelete
                | RpcKind::RawScan
                | RpcKind::RawBatchScan
                | RpcKind::RawDeleteRange
                | RpcKind::RawGetKeyTtl
                | RpcKind::RawCompareAndSwap
                | RpcKind::RawChecksum
        )
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
        assert_eq!(RpcKind::ALL.len(), 34);
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
        };
        req.context_mut().region_id = kind as u64 + 1;
        req
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
