//! Cache counters, kept in one place for the metrics exporter.
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct CacheStats {
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    invalidations: AtomicU64,
    /// Reads that waited for another request's load instead of querying.
    coalesced: AtomicU64,
}

/// A point-in-time copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounts {
    pub hits: u64,
    pub misses: u64,
    pub errors: u64,
    pub invalidations: u64,
    pub coalesced: u64,
}

impl CacheStats {
    pub(super) fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }
    pub(super) fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }
    pub(super) fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
    pub(super) fn invalidation(&self) {
        self.invalidations.fetch_add(1, Ordering::Relaxed);
    }
    pub(super) fn coalesced(&self) {
        self.coalesced.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> CacheCounts {
        CacheCounts {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
            coalesced: self.coalesced.load(Ordering::Relaxed),
        }
    }
}
