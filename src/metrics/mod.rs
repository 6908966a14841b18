//! Prometheus metrics, served as text on their own HTTP listener
//! (`THEATRE_METRICS_ADDR`, path `/metrics`).
//!
//! Per-RPC counters and latencies use the names of go-grpc-prometheus
//! (`grpc_server_*`), so existing gRPC dashboards work unchanged; everything
//! else is `theatre_*`. Counters that already live with their owner (cache,
//! outbox relay, database statements) are read at scrape time, not copied.
pub mod exporter;
pub mod rpc;

use prometheus_client::{
    encoding::{EncodeLabelSet, prometheus_text},
    metrics::{
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::{ConstGauge, Gauge},
        histogram::Histogram,
    },
    registry::Registry,
};

use crate::{cache::CacheCounts, db::PoolUsage, events::RelayCounts};

/// Latency buckets in seconds: sub-millisecond cache hits up to slow logins.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub grpc_service: &'static str,
    pub grpc_method: &'static str,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandledLabels {
    grpc_service: &'static str,
    grpc_method: &'static str,
    grpc_code: &'static str,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

type HistogramFamily = Family<MethodLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Bookings per `claim_bookings` call (`booking::batch`), up to its maximum of 64.
const BATCH_BUCKETS: [f64; 7] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// The metrics the service itself updates. Cheap to clone (shared handles).
#[derive(Debug, Clone)]
pub struct Metrics {
    started: Family<MethodLabels, Counter>,
    handled: Family<HandledLabels, Counter>,
    handling: HistogramFamily,
    in_flight: Gauge,
    queued: Gauge,
    shed: Counter,
    bookings_confirmed: Counter,
    bookings_failed: Family<ReasonLabels, Counter>,
    bookings_cancelled: Counter,
    claim_batches: Histogram,
    claim_batch_seconds: Histogram,
    login_failures: Counter,
    logins_throttled: Family<ReasonLabels, Counter>,
    signups_throttled: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            started: Family::default(),
            handled: Family::default(),
            handling: Family::new_with_constructor(latency_histogram),
            in_flight: Gauge::default(),
            queued: Gauge::default(),
            shed: Counter::default(),
            bookings_confirmed: Counter::default(),
            bookings_failed: Family::default(),
            bookings_cancelled: Counter::default(),
            claim_batches: Histogram::new(BATCH_BUCKETS),
            claim_batch_seconds: latency_histogram(),
            login_failures: Counter::default(),
            logins_throttled: Family::default(),
            signups_throttled: Counter::default(),
        }
    }
}

/// Values owned elsewhere, read at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub pool: Option<PoolUsage>,
    pub statements: u64,
    pub cache: Option<CacheCounts>,
    /// Relay gauges and whether the broker answered; `None` without Kafka.
    pub relay: Option<(RelayCounts, bool)>,
    /// Unpublished outbox events and the age of the oldest, in seconds;
    /// `None` when the database did not answer.
    pub outbox: Option<(u64, f64)>,
}

impl Metrics {
    pub fn rpc_started(&self, method: MethodLabels) {
        self.started.get_or_create(&method).inc();
        self.in_flight.inc();
    }

    pub fn rpc_finished(&self, method: MethodLabels, code: &'static str, seconds: f64) {
        self.in_flight.dec();
        let handled = HandledLabels {
            grpc_service: method.grpc_service,
            grpc_method: method.grpc_method,
            grpc_code: code,
        };
        self.handled.get_or_create(&handled).inc();
        self.handling.get_or_create(&method).observe(seconds);
    }

    pub fn queued(&self) -> &Gauge {
        &self.queued
    }

    pub fn shed(&self) {
        self.shed.inc();
    }

    pub fn booking_confirmed(&self) {
        self.bookings_confirmed.inc();
    }

    pub fn booking_failed(&self, reason: &'static str) {
        self.bookings_failed
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn booking_cancelled(&self) {
        self.bookings_cancelled.inc();
    }

    /// A `claim_bookings` call of `size` bookings was sent.
    pub fn claim_batch(&self, size: usize) {
        self.claim_batches.observe(size as f64);
    }

    /// A `claim_bookings` call took `seconds`, from send to answer.
    pub fn claim_batch_took(&self, seconds: f64) {
        self.claim_batch_seconds.observe(seconds);
    }

    pub fn login_failed(&self) {
        self.login_failures.inc();
    }

    /// A login refused before its password was checked; `scope` is `email` or `peer`.
    pub fn login_throttled(&self, scope: &'static str) {
        self.logins_throttled
            .get_or_create(&ReasonLabels { reason: scope })
            .inc();
    }

    /// A sign-up refused because its peer address used up its sign-ups.
    pub fn signup_throttled(&self) {
        self.signups_throttled.inc();
    }

    /// The Prometheus text exposition of everything, `snapshot` included.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        let mut registry = Registry::default();
        self.register_own(&mut registry);
        register_snapshot(&mut registry, snapshot);
        let mut text = String::new();
        prometheus_text::encode(&mut text, &registry).expect("writing to a String cannot fail");
        text
    }

    fn register_own(&self, r: &mut Registry) {
        r.register(
            "grpc_server_started",
            "RPCs started on the server",
            self.started.clone(),
        );
        r.register(
            "grpc_server_handled",
            "RPCs completed on the server, by status code",
            self.handled.clone(),
        );
        r.register(
            "grpc_server_handling_seconds",
            "Time from request to response head (unary: the whole call)",
            self.handling.clone(),
        );
        r.register(
            "theatre_rpc_in_flight",
            "RPCs currently being handled",
            self.in_flight.clone(),
        );
        r.register(
            "theatre_rpc_queued",
            "RPCs admitted and waiting for a handler slot (THEATRE_MAX_IN_FLIGHT)",
            self.queued.clone(),
        );
        r.register(
            "theatre_rpc_shed",
            "RPCs refused with RESOURCE_EXHAUSTED because the server was at capacity",
            self.shed.clone(),
        );
        r.register(
            "theatre_bookings_confirmed",
            "Bookings confirmed",
            self.bookings_confirmed.clone(),
        );
        r.register(
            "theatre_bookings_failed",
            "Booking requests refused, by reason",
            self.bookings_failed.clone(),
        );
        r.register(
            "theatre_bookings_cancelled",
            "Bookings cancelled by their owner",
            self.bookings_cancelled.clone(),
        );
        r.register(
            "theatre_claim_batch_size",
            "Bookings claimed per database call (group commit, PostgreSQL)",
            self.claim_batches.clone(),
        );
        r.register(
            "theatre_claim_batch_seconds",
            "Time of one claim_bookings call, from send to answer",
            self.claim_batch_seconds.clone(),
        );
        r.register(
            "theatre_login_failures",
            "Logins refused for a wrong email or password",
            self.login_failures.clone(),
        );
        r.register(
            "theatre_logins_throttled",
            "Logins refused before checking the password, by throttle scope",
            self.logins_throttled.clone(),
        );
        r.register(
            "theatre_signups_throttled",
            "Sign-ups refused because their peer address used up its sign-ups",
            self.signups_throttled.clone(),
        );
    }
}

fn counter(r: &mut Registry, name: &str, help: &str, value: u64) {
    r.register(name, help, ConstCounter::new(value));
}

fn gauge(r: &mut Registry, name: &str, help: &str, value: f64) {
    r.register(name, help, ConstGauge::new(value));
}

fn register_snapshot(r: &mut Registry, s: &Snapshot) {
    counter(
        r,
        "theatre_db_statements",
        "SQL statements executed",
        s.statements,
    );
    if let Some(pool) = s.pool {
        let in_use = pool.open.saturating_sub(pool.idle);
        gauge(
            r,
            "theatre_db_pool_connections_in_use",
            "Pool connections running a statement or transaction",
            in_use as f64,
        );
        gauge(
            r,
            "theatre_db_pool_connections_idle",
            "Open pool connections waiting for work",
            pool.idle as f64,
        );
        gauge(
            r,
            "theatre_db_pool_max_connections",
            "Configured pool size (THEATRE_DB_MAX_CONNECTIONS)",
            pool.max as f64,
        );
    }
    if let Some(cache) = s.cache {
        counter(
            r,
            "theatre_cache_hits",
            "Reads answered from the cache (Redis or this instance's copy)",
            cache.hits,
        );
        counter(
            r,
            "theatre_cache_near_hits",
            "Reads answered from this instance's copy, without Redis",
            cache.near_hits,
        );
        counter(
            r,
            "theatre_cache_misses",
            "Reads loaded from the database and stored",
            cache.misses,
        );
        counter(
            r,
            "theatre_cache_errors",
            "Redis commands that failed or timed out (answered from the database)",
            cache.errors,
        );
        counter(
            r,
            "theatre_cache_invalidations",
            "Generation counters bumped after writes",
            cache.invalidations,
        );
        counter(
            r,
            "theatre_cache_coalesced",
            "Reads that waited on another request's load instead of querying",
            cache.coalesced,
        );
        counter(
            r,
            "theatre_cache_near_waits",
            "Writes that waited for other instances to drop their copies",
            cache.near_waits,
        );
        counter(
            r,
            "theatre_cache_near_lapses",
            "Instances that never acknowledged an invalidation; the write waited out their lease",
            cache.near_lapses,
        );
    }
    if let Some((backlog, oldest_age)) = s.outbox {
        gauge(
            r,
            "theatre_outbox_backlog_events",
            "Events in the outbox not yet acknowledged by Kafka",
            backlog as f64,
        );
        gauge(
            r,
            "theatre_outbox_oldest_event_age_seconds",
            "Age of the oldest unpublished event (0 when none): the publish lag",
            oldest_age,
        );
    }
    if let Some((relay, connected)) = s.relay {
        counter(
            r,
            "theatre_outbox_published",
            "Events acknowledged by Kafka",
            relay.published,
        );
        counter(
            r,
            "theatre_outbox_publish_failures",
            "Relay passes that failed (broker or database)",
            relay.failures,
        );
        gauge(
            r,
            "theatre_outbox_last_batch_lag_seconds",
            "Time from write to acknowledgement of the last published batch",
            relay.lag_ms as f64 / 1000.0,
        );
        gauge(
            r,
            "theatre_events_broker_up",
            "Whether the relay's last pass reached Kafka",
            if connected { 1.0 } else { 0.0 },
        );
    }
}
