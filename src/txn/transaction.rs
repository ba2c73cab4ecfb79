//! [`Transaction`]: the read side of client-go's `transaction.KVTxn`, and its local write
//! buffer.
//!
//! A transaction reads through the union view ([`UnionStore`]) of its write buffer
//! ([`MemBuffer`]) over its [`Snapshot`] at the start ts: a key it set reads as set, a key
//! it deleted reads as absent, every other key is read from the snapshot (client-go
//! `KVTxn.Get` / `BatchGet` / `Iter` / `IterReverse` over `KVUnionStore`). Writes
//! ([`set`](Transaction::set), [`delete`](Transaction::delete)) only fill the buffer:
//! committing them (prewrite / commit, or rollback) is the committer's work and is not
//! offered here — a `Transaction` never claims to have committed anything. Dropping it
//! discards the buffer.

use std::collections::HashMap;

use bytes::Bytes;

use super::options::TxnOptions;
use super::snapshot::Snapshot;
use super::unionstore::{KvPair as UnionPair, MemBuffer, SnapshotSource, UnionStore};
use crate::error::{Error, Result};
use crate::raw::{IntoBytes, KeyRange};

/// A transaction's reads and buffered writes (see the [module docs](self)).
#[derive(Debug)]
pub struct Transaction {
    snapshot: Snapshot,
    buffer: MemBuffer,
    pessimistic: bool,
}

impl Transaction {
    pub(crate) fn new(snapshot: Snapshot, options: TxnOptions) -> Self {
        Transaction {
            snapshot,
            buffer: MemBuffer::new(),
            pessimistic: options.pessimistic,
        }
    }

    /// The start ts (client-go `KVTxn.StartTS`).
    pub fn start_ts(&self) -> u64 {
        self.snapshot.ts()
    }

    /// Whether the transaction was begun pessimistic (client-go `KVTxn.IsPessimistic`).
    pub fn is_pessimistic(&self) -> bool {
        self.pessimistic
    }

    /// The snapshot at the start ts (client-go `KVTxn.GetSnapshot`).
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The snapshot, to change its read options (client-go `KVTxn.GetSnapshot().Set*`).
    pub fn snapshot_mut(&mut self) -> &mut Snapshot {
        &mut self.snapshot
    }

    /// The write buffer (client-go `KVTxn.GetMemBuffer`).
    pub fn mem_buffer(&self) -> &MemBuffer {
        &self.buffer
    }

    /// The write buffer, mutable (staging, flags).
    pub fn mem_buffer_mut(&mut self) -> &mut MemBuffer {
        &mut self.buffer
    }

    /// Buffers `key = value` (client-go `KVTxn.Set`).
    pub fn set(&mut self, key: impl IntoBytes, value: impl IntoBytes) -> Result<()> {
        let key = key.into_bytes();
        if key.is_empty() {
            return Err(Error::EmptyKey);
        }
        self.buffer
            .set(&key, &value.into_bytes())
            .map_err(Error::other)
    }

    /// Buffers the deletion of `key` (client-go `KVTxn.Delete`).
    pub fn delete(&mut self, key: impl IntoBytes) -> Result<()> {
        let key = key.into_bytes();
        if key.is_empty() {
            return Err(Error::EmptyKey);
        }
        self.buffer.delete(&key).map_err(Error::other)
    }

    /// Keys buffered (sets and deletes) (client-go `KVTxn.Len`).
    pub fn len(&self) -> usize {
        self.buffer.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }

    /// Whether the buffer holds writes (client-go `KVTxn.IsReadOnly`, negated).
    pub fn is_read_only(&self) -> bool {
        !self.buffer.dirty()
    }

    /// The value of `key` in the union view (client-go `KVTxn.Get`).
    pub async fn get(&self, key: impl IntoBytes) -> Result<Option<Bytes>> {
        let key = key.into_bytes();
        if key.is_empty() {
            return Err(Error::EmptyKey);
        }
        let union = UnionStore::new(&self.buffer, &self.snapshot);
        Ok(union
            .get(&key)
            .await?
            .map(|v| Bytes::copy_from_slice(v.as_ref())))
    }

    /// The values of the present `keys` in the union view, keyed by key (client-go
    /// `KVTxn.BatchGet`): buffered keys answer from the buffer, the rest in one snapshot
    /// `batch_get`.
    pub async fn batch_get<K: IntoBytes>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<HashMap<Bytes, Bytes>> {
        let mut out = HashMap::new();
        let mut rest = Vec::new();
        for key in keys {
            let key = key.into_bytes();
            if key.is_empty() {
                return Err(Error::EmptyKey);
            }
            match self.buffered(&key) {
                Some(Some(v)) => {
                    out.insert(key, v);
                }
                Some(None) => {}
                None => rest.push(key),
            }
        }
        if !rest.is_empty() {
            out.extend(self.snapshot.batch_get(rest).await?);
        }
        Ok(out)
    }

    /// What the buffer says of `key`: `Some(Some(v))` set, `Some(None)` deleted, `None`
    /// not buffered (flags only count as not buffered; a tombstone is an empty value).
    fn buffered(&self, key: &[u8]) -> Option<Option<Bytes>> {
        let v = self.buffer.get(key)?;
        Some((!v.is_empty()).then(|| Bytes::copy_from_slice(v)))
    }

    /// Up to `limit` pairs of `range` in the union view, ascending (client-go
    /// `KVTxn.Iter`), or descending from the range's end when `reverse` (client-go
    /// `KVTxn.IterReverse`). The snapshot side is scanned lazily in batches of the
    /// snapshot's `scan_batch_size`.
    pub async fn scan(
        &self,
        range: impl Into<KeyRange>,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Bytes, Bytes)>> {
        let range = range.into();
        range.validate()?;
        let lower: &[u8] = &range.start;
        let upper: &[u8] = range.end.as_deref().unwrap_or(&[]);
        let union = UnionStore::new(&self.buffer, &self.snapshot);
        let mut it = if reverse {
            union.iter_reverse(lower, upper)
        } else {
            union.iter(lower, upper)
        }
        .with_batch_size(self.snapshot.options().scan_batch_size);
        let mut out = Vec::new();
        while out.len() < limit {
            match it.next().await? {
                Some((k, v)) => out.push((
                    Bytes::copy_from_slice(k.as_ref()),
                    Bytes::copy_from_slice(v.as_ref()),
                )),
                None => break,
            }
        }
        Ok(out)
    }
}

/// The snapshot as the union view's backing store (client-go `uSnapshot`).
impl SnapshotSource for Snapshot {
    type Error = Error;

    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(Snapshot::get(self, Bytes::copy_from_slice(key))
            .await?
            .map(|v| v.to_vec()))
    }

    async fn scan(
        &self,
        lower: &[u8],
        upper: &[u8],
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<UnionPair>> {
        let range = KeyRange::new(Bytes::copy_from_slice(lower), Bytes::copy_from_slice(upper));
        let entries = Snapshot::scan(self, range, limit, reverse).await?;
        Ok(entries
            .into_iter()
            .map(|e| (e.key.to_vec(), e.value.to_vec()))
            .collect())
    }
}
