//! [`Scanner`]: a lazy iterator over a snapshot's key range, forward or reverse (client-go
//! `txnsnapshot.Scanner`).
//!
//! Entries are fetched `scan_batch_size` at a time (256 by default) with `KvScan`; the
//! shard layer carries a batch across region boundaries and re-splits it when a region
//! splits or its leader moves mid-scan, and the lock-resolving layer resolves each lock a
//! batch meets and retries it (client-go `Scanner.getData` + `resolveCurrentLock`). A
//! batch shorter than asked ends the scan; otherwise the next batch starts right after
//! the last key (forward) or below it (reverse). The safety checks run before every
//! batch, as client-go runs `CheckVisibility` in `getData`.
//!
//! `KvScan` does not return commit timestamps; with
//! [`need_commit_ts`](super::options::SnapshotOptions::need_commit_ts) each batch's keys
//! are read again with one `BatchGet(need_commit_ts)` at the same ts (same snapshot, so
//! the same values), which costs one more RPC per batch.
//!
//! Use [`Scanner::next`] or turn it into a [`Stream`] with [`Scanner::into_stream`].

use std::collections::VecDeque;

use bytes::Bytes;
use futures::Stream;
use tikv_tower_proto::kvrpcpb;

use super::snapshot::{ReadDetails, Snapshot};
use crate::error::{Error, Result};
use crate::raw::KeyRange;

/// One entry of a scan: key, value (empty when key-only) and commit ts (0 unless asked
/// for).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KvEntry {
    /// The key (keyspace prefix removed).
    pub key: Bytes,
    /// The value.
    pub value: Bytes,
    /// The commit ts, with `need_commit_ts`.
    pub commit_ts: u64,
}

/// A lazy forward or reverse iterator (see the [module docs](self)).
#[derive(Debug)]
pub struct Scanner {
    snapshot: Snapshot,
    /// Encoded bounds: `[lower, upper)`; for a forward scan `lower` moves up, for a
    /// reverse one `upper` moves down.
    lower: Bytes,
    upper: Bytes,
    reverse: bool,
    batch: VecDeque<KvEntry>,
    eof: bool,
    details: Vec<ReadDetails>,
}

impl Scanner {
    pub(crate) fn new(snapshot: Snapshot, range: KeyRange, reverse: bool) -> Result<Scanner> {
        range.validate()?;
        let core = snapshot.core().clone();
        let (lower, mut upper) = core.codec.encode_range(&range.start, range.end.as_ref());
        if reverse && upper.is_empty() {
            upper = core.reverse_upper.clone();
        }
        let eof = !upper.is_empty() && lower >= upper;
        Ok(Scanner {
            snapshot,
            lower,
            upper,
            reverse,
            batch: VecDeque::new(),
            eof,
            details: Vec::new(),
        })
    }

    /// The details of each batch fetched so far.
    pub fn exec_details(&self) -> &[ReadDetails] {
        &self.details
    }

    /// The next entry, `None` at the end (client-go `Scanner.Next` + `Key` / `Value`).
    pub async fn next(&mut self) -> Result<Option<KvEntry>> {
        loop {
            if let Some(e) = self.batch.pop_front() {
                return Ok(Some(e));
            }
            if self.eof {
                return Ok(None);
            }
            self.fetch().await?;
        }
    }

    /// The scanner as a [`Stream`] of entries.
    pub fn into_stream(self) -> impl Stream<Item = Result<KvEntry>> + Send {
        futures::stream::try_unfold(
            self,
            |mut s| async move { Ok(s.next().await?.map(|e| (e, s))) },
        )
    }

    /// Fetches the next batch (client-go `Scanner.getData`).
    async fn fetch(&mut self) -> Result<()> {
        let snap = &self.snapshot;
        snap.check().await?;
        let opts = snap.options();
        let limit = opts.scan_batch_size.max(1);
        let (start_key, end_key) = if self.reverse {
            (self.upper.clone(), self.lower.clone())
        } else {
            (self.lower.clone(), self.upper.clone())
        };
        let req = kvrpcpb::ScanRequest {
            context: Some(opts.context()),
            start_key,
            end_key,
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
            version: snap.ts(),
            key_only: opts.key_only,
            reverse: self.reverse,
            sample_step: opts.sample_step,
        };
        let op = snap.op();
        let res = snap.send(snap.core().stack.clone(), req, op.clone()).await;
        snap.learn(&op);
        let (reply, exec) = res?;
        if let Some(e) = reply.region_error {
            return Err(Error::from_region_error(e));
        }
        if let Some(e) = reply.error {
            return Err(Error::from_key_error(e));
        }
        self.details.push(ReadDetails::new(exec, None));
        let got = reply.pairs.len();
        if got < limit {
            self.eof = true;
        }
        let mut last: Option<Bytes> = None;
        let mut entries = Vec::with_capacity(got);
        for pair in reply.pairs {
            if let Some(e) = pair.error {
                return Err(Error::from_key_error(*e));
            }
            last = Some(pair.key.clone());
            entries.push(KvEntry {
                key: snap.decode(pair.key)?,
                value: pair.value,
                commit_ts: pair.commit_ts,
            });
        }
        match last {
            Some(k) if self.reverse => self.upper = k,
            Some(k) => {
                let mut next = Vec::with_capacity(k.len() + 1);
                next.extend_from_slice(&k);
                next.push(0);
                self.lower = next.into();
            }
            None => self.eof = true,
        }
        if snap.options().need_commit_ts && !entries.is_empty() {
            self.fill_commit_ts(&mut entries).await?;
        }
        self.batch.extend(entries);
        Ok(())
    }

    /// Reads the commit ts of a batch's keys (see the [module docs](self)).
    async fn fill_commit_ts(&mut self, entries: &mut [KvEntry]) -> Result<()> {
        let keys: Vec<Bytes> = entries.iter().map(|e| e.key.clone()).collect();
        let (found, details) = self.snapshot.batch_get_with_details(keys).await?;
        self.details.extend(details);
        for e in entries {
            match found.get(&e.key) {
                Some(v) => e.commit_ts = v.commit_ts,
                None => {
                    return Err(Error::Other(std::sync::Arc::new(std::io::Error::other(
                        format!(
                            "key {:?} scanned at ts {} but absent from a BatchGet at the same ts",
                            e.key,
                            self.snapshot.ts()
                        ),
                    ))))
                }
            }
        }
        Ok(())
    }
}
