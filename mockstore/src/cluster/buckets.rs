//! Region buckets (opt-in, [`MockClusterBuilder::region_buckets`](super::MockClusterBuilder::region_buckets)).
//!
//! TiKV splits a region's range into buckets (`coprocessor.region-bucket-size`, 50 MiB by
//! default), reports them to PD (`ReportBuckets`), and PD hands them out with a region
//! when a client asks `need_buckets` and the store config enables buckets (PD
//! `GetRegion` / `ScanRegions` / `BatchScanRegions` / `QueryRegion`). Each refresh of a
//! region's buckets carries a larger version.
//!
//! The mock's data is far below the bucket size, so a region is one bucket spanning its
//! range (keys `[start, end]` in boundary form). Its version changes whenever the region's
//! range changes (it grows with the epoch `version`, so a split or merge yields newer
//! buckets) and on [`MockCluster::refresh_buckets`] (a new bucket report for an unchanged
//! range).
//!
//! TiKV checks a request's `Context.buckets_version` against the region's buckets only in
//! the coprocessor endpoint (`src/coprocessor/endpoint.rs`,
//! `handle_unary_request_impl`: `BucketVersionNotMatch` with the latest version and keys
//! when the request carries a non-zero, older version). Coprocessor is outside the RPCs
//! this project speaks, so, like TiKV for those RPCs, the mock never answers
//! `BucketVersionNotMatch` on its own. [`bucket_version_check`] is TiKV's check; a fault
//! rule (`InjectedError::BucketVersionNotMatch`, control API `bucket_version_not_match`)
//! answers the error TiKV would, carrying the region's latest buckets.

use tikv_tower_proto::{errorpb, metapb};

use super::{MockCluster, Region};

/// The bucket version of a region at epoch `version` after `refreshes` reports: grows
/// with both.
fn bucket_version(epoch_version: u64, refreshes: u64) -> u64 {
    (epoch_version << 24) | (refreshes & 0x00FF_FFFF)
}

impl MockCluster {
    /// Whether regions carry buckets.
    pub fn buckets_enabled(&self) -> bool {
        self.inner.config.region_buckets
    }

    /// The buckets of `region` as PD reports them (`None` when buckets are off).
    pub fn region_buckets(&self, region: &Region) -> Option<metapb::Buckets> {
        if !self.buckets_enabled() {
            return None;
        }
        let refreshes = self
            .inner
            .bucket_refreshes
            .lock()
            .get(&region.id)
            .copied()
            .unwrap_or(0);
        Some(metapb::Buckets {
            region_id: region.id,
            version: bucket_version(region.epoch.version, refreshes),
            keys: vec![
                region.start_key.clone().into(),
                region.end_key.clone().into(),
            ],
            ..Default::default()
        })
    }

    /// A new bucket report for region `id` (same range, newer version), as TiKV sends
    /// after recomputing bucket stats. Returns the new version; `None` when buckets are off
    /// or the region is unknown.
    pub fn refresh_buckets(&self, id: u64) -> Option<u64> {
        let region = self.region(id)?;
        if !self.buckets_enabled() {
            return None;
        }
        *self.inner.bucket_refreshes.lock().entry(id).or_default() += 1;
        self.region_buckets(&region).map(|b| b.version)
    }
}

/// TiKV's bucket check (`src/coprocessor/endpoint.rs`, `handle_unary_request_impl`): a
/// request carrying a non-zero `buckets_version` older than the region's latest buckets
/// gets `BucketVersionNotMatch` with the latest version and keys (returned); a request
/// without one (0) or a region without buckets passes (`None`).
pub fn bucket_version_check(
    latest: Option<&metapb::Buckets>,
    request_version: u64,
) -> Option<errorpb::Error> {
    match latest {
        Some(b) if b.version > request_version && request_version != 0 => {
            Some(bucket_version_not_match(b))
        }
        _ => None,
    }
}

/// The `BucketVersionNotMatch` region error naming `latest` (version and keys).
pub fn bucket_version_not_match(latest: &metapb::Buckets) -> errorpb::Error {
    errorpb::Error {
        message: format!("bucket version not match, latest {}", latest.version),
        bucket_version_not_match: Some(errorpb::BucketVersionNotMatch {
            version: latest.version,
            keys: latest.keys.clone(),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written from TiKV `handle_unary_request_impl`'s condition.
    #[test]
    fn the_check_refuses_only_older_non_zero_versions() {
        let b = metapb::Buckets {
            version: 10,
            keys: vec![b"a".to_vec().into(), b"z".to_vec().into()],
            ..Default::default()
        };
        assert!(bucket_version_check(None, 3).is_none());
        assert!(bucket_version_check(Some(&b), 0).is_none());
        assert!(bucket_version_check(Some(&b), 10).is_none());
        assert!(bucket_version_check(Some(&b), 11).is_none());
        let e = bucket_version_check(Some(&b), 9).expect("older");
        let m = e.bucket_version_not_match.expect("kind");
        assert_eq!((m.version, m.keys), (10, b.keys.clone()));
    }

    #[test]
    fn versions_grow_with_the_epoch_and_with_refreshes() {
        assert!(bucket_version(2, 0) > bucket_version(1, 5));
        assert!(bucket_version(1, 6) > bucket_version(1, 5));
    }
}
