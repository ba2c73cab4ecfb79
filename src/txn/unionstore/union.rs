//! The union view: the buffer over a backing snapshot (client-go `KVUnionStore`,
//! `UnionIter`).
//!
//! Reads consult the buffer first: a buffered value wins, a buffered tombstone hides the
//! snapshot's value, and keys the buffer does not hold (or holds only flags for) are read from
//! the snapshot. Iteration merges the buffer's range iterator with the snapshot's, lazily: the
//! snapshot is scanned in batches ([`UnionIter::with_batch_size`], client-go's scan batch of
//! 256) only as the merge consumes them, forward or reverse.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::iter::Peekable;

use super::iter::Iter;
use super::membuffer::MemBuffer;

/// A key-value pair read from a snapshot.
pub type KvPair = (Vec<u8>, Vec<u8>);

/// The backing snapshot of a transaction: committed data as of the start timestamp (client-go
/// `uSnapshot`: `Get`, `Iter`, `IterReverse`). The transaction's TiKV snapshot implements it;
/// tests use the `BTreeMap` implementation.
pub trait SnapshotSource {
    /// What a read can fail with.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The committed value of `key`, if any.
    fn get(&self, key: &[u8]) -> impl Future<Output = Result<Option<Vec<u8>>, Self::Error>> + Send;

    /// Up to `limit` pairs with keys in `[lower, upper)` (empty `upper`: unbounded), ascending
    /// from `lower`, or descending from `upper` when `reverse`. Fewer than `limit` pairs means
    /// the range is exhausted.
    fn scan(
        &self,
        lower: &[u8],
        upper: &[u8],
        limit: usize,
        reverse: bool,
    ) -> impl Future<Output = Result<Vec<KvPair>, Self::Error>> + Send;
}

impl SnapshotSource for BTreeMap<Vec<u8>, Vec<u8>> {
    type Error = Infallible;

    fn get(&self, key: &[u8]) -> impl Future<Output = Result<Option<Vec<u8>>, Infallible>> + Send {
        std::future::ready(Ok(BTreeMap::get(self, key).cloned()))
    }

    fn scan(
        &self,
        lower: &[u8],
        upper: &[u8],
        limit: usize,
        reverse: bool,
    ) -> impl Future<Output = Result<Vec<KvPair>, Infallible>> + Send {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let hi = if upper.is_empty() {
            Unbounded
        } else {
            Excluded(upper.to_vec())
        };
        let range = self.range::<Vec<u8>, _>((Included(lower.to_vec()), hi));
        let take = |it: &mut dyn Iterator<Item = (&Vec<u8>, &Vec<u8>)>| {
            it.take(limit)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Vec<_>>()
        };
        let out = if lower > upper && !upper.is_empty() {
            Vec::new()
        } else if reverse {
            take(&mut range.rev())
        } else {
            take(&mut range.into_iter())
        };
        std::future::ready(Ok(out))
    }
}

/// The buffer and a snapshot read together (client-go `KVUnionStore`).
pub struct UnionStore<'a, S> {
    buffer: &'a MemBuffer,
    snapshot: &'a S,
}

impl<'a, S: SnapshotSource> UnionStore<'a, S> {
    /// A union of `buffer` over `snapshot` (client-go `NewUnionStore`).
    pub fn new(buffer: &'a MemBuffer, snapshot: &'a S) -> Self {
        UnionStore { buffer, snapshot }
    }

    /// The buffer.
    pub fn buffer(&self) -> &'a MemBuffer {
        self.buffer
    }

    /// The value of `key`: the buffer's if it has one (a tombstone reads as absent), else the
    /// snapshot's; an empty value reads as absent (client-go `KVUnionStore.Get`).
    pub async fn get(&self, key: &[u8]) -> Result<Option<Cow<'a, [u8]>>, S::Error> {
        if let Some(v) = self.buffer.get(key) {
            return Ok((!v.is_empty()).then_some(Cow::Borrowed(v)));
        }
        let v = self.snapshot.get(key).await?;
        Ok(v.filter(|v| !v.is_empty()).map(Cow::Owned))
    }

    /// Whether the key's existence check is postponed (client-go `HasPresumeKeyNotExists`).
    pub fn has_presume_key_not_exists(&self, key: &[u8]) -> bool {
        self.buffer
            .get_flags(key)
            .is_some_and(|f| f.has_presume_key_not_exists())
    }

    /// Pairs in `[lower, upper)` ascending (empty `upper`: unbounded) (client-go
    /// `KVUnionStore.Iter`).
    pub fn iter(&self, lower: &'a [u8], upper: &'a [u8]) -> UnionIter<'a, S> {
        UnionIter::new(
            self.buffer.iter(lower, upper),
            self.snapshot,
            lower,
            upper,
            false,
        )
    }

    /// Pairs in `[lower, upper)` descending (client-go `KVUnionStore.IterReverse`).
    pub fn iter_reverse(&self, lower: &'a [u8], upper: &'a [u8]) -> UnionIter<'a, S> {
        UnionIter::new(
            self.buffer.iter_reverse(lower, upper),
            self.snapshot,
            lower,
            upper,
            true,
        )
    }
}

/// client-go's scan batch size (`scanBatchSize`).
pub const DEFAULT_SCAN_BATCH: usize = 256;

/// A lazy merge of a buffer iterator and a snapshot scan (client-go `UnionIter`). Call
/// [`next`](Self::next) until it returns `Ok(None)`.
pub struct UnionIter<'a, S> {
    dirty: Peekable<Iter<'a>>,
    snapshot: &'a S,
    /// Forward: next scan starts here; reverse: the fixed lower bound.
    lower: Cow<'a, [u8]>,
    /// Forward: the fixed upper bound; reverse: next scan ends here.
    upper: Cow<'a, [u8]>,
    batch: VecDeque<KvPair>,
    batch_size: usize,
    exhausted: bool,
    reverse: bool,
}

impl<'a, S: SnapshotSource> UnionIter<'a, S> {
    /// Merges `dirty` (a buffer iterator over `[lower, upper)` in the same direction) with a
    /// scan of `snapshot` over the same range (client-go `NewUnionIter`).
    pub fn new(
        dirty: Iter<'a>,
        snapshot: &'a S,
        lower: &'a [u8],
        upper: &'a [u8],
        reverse: bool,
    ) -> Self {
        UnionIter {
            dirty: dirty.peekable(),
            snapshot,
            lower: Cow::Borrowed(lower),
            upper: Cow::Borrowed(upper),
            batch: VecDeque::new(),
            batch_size: DEFAULT_SCAN_BATCH,
            exhausted: false,
            reverse,
        }
    }

    /// Sets how many pairs each snapshot scan asks for (at least 1).
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    async fn fill(&mut self) -> Result<(), S::Error> {
        while self.batch.is_empty() && !self.exhausted {
            let got = self
                .snapshot
                .scan(&self.lower, &self.upper, self.batch_size, self.reverse)
                .await?;
            self.exhausted = got.len() < self.batch_size;
            let Some(last) = got.last().map(|(k, _)| k.clone()) else {
                self.exhausted = true;
                break;
            };
            // Keep only pairs inside the remaining range, in order: a misbehaving source must
            // not make the merge loop or go backwards.
            let (lo, hi) = (self.lower.clone(), self.upper.clone());
            let in_range = |k: &[u8]| k >= &lo[..] && (hi.is_empty() || k < &hi[..]);
            let mut prev: Option<Vec<u8>> = None;
            for (k, v) in got {
                let ordered = prev
                    .as_ref()
                    .is_none_or(|p| if self.reverse { k < *p } else { k > *p });
                if in_range(&k) && ordered && !v.is_empty() {
                    prev = Some(k.clone());
                    self.batch.push_back((k, v));
                }
            }
            // Advance the remaining range past the batch; a source that does not make progress
            // ends the scan instead of looping.
            if self.reverse {
                if last.is_empty() || last[..] < lo[..] || (!hi.is_empty() && last[..] >= hi[..]) {
                    self.exhausted = true;
                }
                self.upper = Cow::Owned(last);
            } else {
                let mut next = last;
                next.push(0);
                if next[..] <= lo[..] {
                    self.exhausted = true;
                }
                self.lower = Cow::Owned(next);
            }
        }
        Ok(())
    }

    /// The next pair, or `None` at the end.
    #[allow(clippy::should_implement_trait)]
    pub async fn next(&mut self) -> Result<Option<(Cow<'a, [u8]>, Cow<'a, [u8]>)>, S::Error> {
        loop {
            self.fill().await?;
            let order = match (self.dirty.peek(), self.batch.front()) {
                (None, None) => return Ok(None),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(d), Some((sk, _))) => {
                    let c = d.key.cmp(&sk[..]);
                    if self.reverse {
                        c.reverse()
                    } else {
                        c
                    }
                }
            };
            if order == Ordering::Greater {
                if let Some((k, v)) = self.batch.pop_front() {
                    return Ok(Some((Cow::Owned(k), Cow::Owned(v))));
                }
                continue;
            }
            if order == Ordering::Equal {
                self.batch.pop_front();
            }
            let Some(d) = self.dirty.next() else {
                continue;
            };
            match d.value {
                Some(v) if !v.is_empty() => {
                    return Ok(Some((Cow::Borrowed(d.key), Cow::Borrowed(v))));
                }
                // A tombstone hides the snapshot's value (or nothing).
                _ => continue,
            }
        }
    }

    /// Drains the iterator into owned pairs.
    pub async fn collect_all(mut self) -> Result<Vec<KvPair>, S::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = self.next().await? {
            out.push((k.into_owned(), v.into_owned()));
        }
        Ok(out)
    }
}
