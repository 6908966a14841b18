//! `grpc.health.v1` statuses that follow the real dependencies.
//!
//! The database is required: while it does not answer, the overall status ("")
//! and every theatre service are NOT_SERVING. Redis and Kafka are optional:
//! they have entries of their own (`theatre.cache`, `theatre.events`) that go
//! NOT_SERVING while the service itself keeps serving, degraded. Shutting down
//! turns everything NOT_SERVING before the listener stops.
use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio::sync::watch;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{cache::Cache, db::Database, events::RelayStats};

pub const OVERALL: &str = "";
pub const SERVICES: [&str; 3] = [
    "theatre.v1.AuthService",
    "theatre.v1.CatalogService",
    "theatre.v1.BookingService",
];
/// The Redis cache (only reported when `REDIS_URL` is set).
pub const CACHE: &str = "theatre.cache";
/// The Kafka relay (only reported when `KAFKA_BROKERS` is set).
pub const EVENTS: &str = "theatre.events";

pub struct HealthMonitor {
    reporter: HealthReporter,
    db: Database,
    cache: Cache,
    relay: Option<Arc<RelayStats>>,
    interval: Duration,
    /// How long the database probe may take before the database counts as lost.
    probe_timeout: Duration,
    last: HashMap<&'static str, ServingStatus>,
}

fn status(up: bool) -> ServingStatus {
    if up {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

impl HealthMonitor {
    pub fn new(
        reporter: HealthReporter,
        db: Database,
        cache: Cache,
        relay: Option<Arc<RelayStats>>,
        interval: Duration,
        probe_timeout: Duration,
    ) -> Self {
        Self {
            reporter,
            db,
            cache,
            relay,
            interval,
            probe_timeout,
            last: HashMap::new(),
        }
    }

    /// Checks once now, then every interval until `stop` turns true.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            self.check().await;
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = stop.changed() => {}
            }
        }
    }

    pub async fn check(&mut self) {
        let db_up = self.db.answers_within(self.probe_timeout).await;
        for name in std::iter::once(OVERALL).chain(SERVICES) {
            self.set(name, status(db_up)).await;
        }
        if self.cache.enabled() {
            let up = self.cache.ping().await;
            self.set(CACHE, status(up)).await;
        }
        if let Some(relay) = &self.relay {
            let up = relay.connected();
            self.set(EVENTS, status(up)).await;
        }
    }

    /// Watchers are notified on every set, so only changes are set.
    async fn set(&mut self, name: &'static str, new: ServingStatus) {
        if self.last.get(name) != Some(&new) {
            if self.last.contains_key(name) {
                tracing::warn!(service = name, status = ?new, "health status changed");
            }
            self.last.insert(name, new);
            self.reporter.set_service_status(name, new).await;
        }
    }
}

/// Marks every entry NOT_SERVING (shutdown has begun).
pub async fn report_shutting_down(reporter: &HealthReporter) {
    for name in [OVERALL, CACHE, EVENTS].into_iter().chain(SERVICES) {
        reporter
            .set_service_status(name, ServingStatus::NotServing)
            .await;
    }
}
