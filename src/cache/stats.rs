//! Cache counters, kept in one place for the metrics exporter.
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct CacheStats {
    hits: AtomicU64,
    near_hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    invalidations: AtomicU64,
    /// Reads that waited for another request's load instead of querying.
    coalesced: AtomicU64,
    near_waits: AtomicU64,
    near_lapses: AtomicU64,
}

/// A point-in-time copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounts {
    /// Reads answered from the cache: Redis or this instance's copy.
    pub hits: u64,
    /// The hits answered from this instance's copy (`near`), without Redis.
    pub near_hits: u64,
    pub misses: u64,
    pub errors: u64,
    pub invalidations: u64,
    pub coalesced: u64,
    /// Writes that waited for other instances to drop their copies.
    pub near_waits: u64,
    /// Instances that never acknowledged a write's invalidation, so the write
    /// waited until their lease ran out (an instance gone without leaving).
    pub near_lapses: u64,
}

impl CacheStats {
    pub(super) fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }
    pub(super) fn near_hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
        self.near_hits.fetch_add(1, Ordering::Relaxed);
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

    pub(super) fn near_wait(&self, lapsed: usize) {
        self.near_waits.fetch_add(1, Ordering::Relaxed);
        self.near_lapses.fetch_add(lapsed as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> CacheCounts {
        CacheCounts {
            hits: self.hits.load(Ordering::Relaxed),
            near_hits: self.near_hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
            coalesced: self.coalesced.load(Ordering::Relaxed),
            near_waits: self.near_waits.load(Ordering::Relaxed),
            near_lapses: self.near_lapses.load(Ordering::Relaxed),
        }
    }
}
