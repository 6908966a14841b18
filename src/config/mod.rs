//! One typed configuration: defaults that run the embedded setup (SQLite
//! file, generated token key) with no settings at all, overridden by the
//! config file (`theatre.toml`), overridden by the environment.
mod file;
mod load;
mod policy;
mod secret;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

pub use file::ConfigFile;
pub use load::SETTINGS;

pub use policy::{Limits, ShowPolicy, SignUpPolicy, ThrottlePolicy};
pub use secret::{ConnectionUrl, Secret, redact_url_password};

#[derive(Debug, thiserror::Error)]
#[error("invalid setting {name}={value:?}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
    pub reason: String,
}

/// Where the PASETO signing key comes from.
#[derive(Debug, Clone)]
pub enum TokenKeySource {
    /// A PASERK `k4.secret.…` string given directly.
    Paserk(Secret<String>),
    /// A file holding the PASERK; created with a fresh key when missing.
    File(PathBuf),
}

/// An administrator ensured at start-up (created, or promoted if the email exists).
#[derive(Debug, Clone)]
pub struct AdminBootstrap {
    pub email: String,
    pub password: Secret<String>,
}

/// The Redis read-through cache. Without a URL caching is off.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// `REDIS_URL`, e.g. `redis://127.0.0.1:6379`.
    pub redis_url: Option<ConnectionUrl>,
    /// `THEATRE_CACHE_PREFIX`: prepended to every key (several deployments can share a Redis).
    pub prefix: String,
    /// `THEATRE_CACHE_TIMEOUT_MS`: how long one Redis command may take before the
    /// request falls back to the database.
    pub timeout: Duration,
    /// `THEATRE_CACHE_MOVIE_TTL_MS`: GetMovie and ListMovies pages.
    pub movie_ttl: Duration,
    /// `THEATRE_CACHE_SHOW_TTL_MS`: GetShow and ListShows.
    pub show_ttl: Duration,
    /// `THEATRE_CACHE_SEAT_MAP_TTL_MS`: GetSeatMap.
    pub seat_map_ttl: Duration,
    /// `THEATRE_CACHE_NEAR_ENTRIES`: how many cached reads this instance also
    /// keeps in its own memory (`cache::near`); 0 turns that copy off.
    pub near_entries: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            prefix: "theatre:".into(),
            timeout: Duration::from_millis(20),
            movie_ttl: Duration::from_secs(300),
            show_ttl: Duration::from_secs(60),
            seat_map_ttl: Duration::from_secs(5),
            near_entries: 10_000,
        }
    }
}

/// The Kafka relay of the event outbox. Without brokers events wait in the outbox.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `KAFKA_BROKERS`: comma-separated `host:port` bootstrap brokers.
    pub brokers: Vec<String>,
    /// `THEATRE_KAFKA_TOPIC_CATALOG`: movie and show events.
    pub catalog_topic: String,
    /// `THEATRE_KAFKA_TOPIC_BOOKINGS`: booking events.
    pub bookings_topic: String,
    /// `THEATRE_KAFKA_PARTITIONS`: partitions of topics the relay creates.
    pub partitions: i32,
    /// `THEATRE_OUTBOX_BATCH`: events per relay batch.
    pub batch_size: u64,
    /// `THEATRE_OUTBOX_POLL_MS`: pause between relay polls when the outbox is empty.
    pub poll_interval: Duration,
    /// `THEATRE_OUTBOX_RETENTION_SECS`: published events older than this are pruned.
    pub retention: Duration,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: Vec::new(),
            catalog_topic: "theatre.movies".into(),
            bookings_topic: "theatre.bookings".into(),
            partitions: 3,
            batch_size: 500,
            poll_interval: Duration::from_millis(100),
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Which browser origins may call the service through grpc-web.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No cross-origin calls (the default with PostgreSQL, i.e. in production).
    None,
    /// `http(s)://localhost` and `127.0.0.1` on any port (the embedded default, for local frontends).
    Localhost,
    /// Exactly these origins.
    List(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `THEATRE_ADDR`: gRPC listen address.
    pub addr: SocketAddr,
    /// `DATABASE_URL`: `sqlite://…` or `postgres://…`.
    pub database_url: ConnectionUrl,
    /// `THEATRE_DB_MAX_CONNECTIONS`: connection pool size.
    pub db_max_connections: u32,
    /// `THEATRE_TOKEN_KEY` or `THEATRE_TOKEN_KEY_FILE`.
    pub token_key: TokenKeySource,
    /// `THEATRE_TOKEN_TTL_SECS`: lifetime of access tokens.
    pub token_ttl: Duration,
    /// `THEATRE_ADMIN_EMAIL` + `THEATRE_ADMIN_PASSWORD`.
    pub bootstrap_admin: Option<AdminBootstrap>,
    pub cache: CacheConfig,
    pub kafka: KafkaConfig,
    /// `THEATRE_CORS_ORIGINS`: comma-separated origins allowed to call from a
    /// browser (grpc-web and HTTP/JSON).
    pub cors_origins: CorsOrigins,
    /// `THEATRE_CORS_HEADERS`: request headers browsers may send beyond those
    /// the protocols need (authorization, content-type, grpc-web's own,
    /// grpc-timeout, x-request-id); by default the W3C trace context.
    pub cors_headers: Vec<String>,
    /// `THEATRE_WEB_DIR`: the built seat-map page (`web/dist`), served under
    /// `/web/`; `None` (the default) serves no page.
    pub web_dir: Option<PathBuf>,
    /// `THEATRE_HEALTH_INTERVAL_MS`: how often dependencies are checked for health.
    pub health_interval: Duration,
    /// `THEATRE_HEALTH_TIMEOUT_MS`: how long the database probe may take
    /// before the database counts as lost.
    pub health_timeout: Duration,
    /// `THEATRE_SHUTDOWN_GRACE_MS`: how long in-flight calls may run after a
    /// shutdown starts before their connections are dropped.
    pub shutdown_grace: Duration,
    /// `THEATRE_LOG_FORMAT`: `text` or `json`.
    pub log_format: LogFormat,
    /// `THEATRE_METRICS_ADDR`: Prometheus `/metrics` listener; `None` (`off`) disables it.
    pub metrics_addr: Option<SocketAddr>,
    pub limits: Limits,
    pub login_throttle: ThrottlePolicy,
    pub signup_throttle: SignUpPolicy,
    pub shows: ShowPolicy,
}

pub const DEFAULT_ADDR: &str = "127.0.0.1:50051";
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://theatre.db?mode=rwc";
pub const DEFAULT_TOKEN_KEY_FILE: &str = "theatre.key";

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: DEFAULT_ADDR.parse().expect("default address parses"),
            database_url: ConnectionUrl::new(DEFAULT_DATABASE_URL),
            db_max_connections: 10,
            token_key: TokenKeySource::File(PathBuf::from(DEFAULT_TOKEN_KEY_FILE)),
            token_ttl: Duration::from_secs(3600),
            bootstrap_admin: None,
            cache: CacheConfig::default(),
            kafka: KafkaConfig::default(),
            cors_origins: CorsOrigins::Localhost,
            cors_headers: vec!["traceparent".into(), "tracestate".into()],
            web_dir: None,
            health_interval: Duration::from_secs(2),
            health_timeout: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
            log_format: LogFormat::Text,
            metrics_addr: Some(
                DEFAULT_METRICS_ADDR
                    .parse()
                    .expect("default address parses"),
            ),
            limits: Limits::default(),
            login_throttle: ThrottlePolicy::default(),
            signup_throttle: SignUpPolicy::default(),
            shows: ShowPolicy::default(),
        }
    }
}

impl Config {
    /// What a test server runs with: `database_url`, ephemeral ports on
    /// loopback, its token key in `dir`, quick health checks and a short
    /// shutdown grace, the sign-up throttle off (a suite signs hundreds of
    /// users up from one address; the throttle's own test turns it on).
    pub fn for_test(database_url: impl Into<String>, dir: &std::path::Path) -> Self {
        let loopback = || "127.0.0.1:0".parse().expect("loopback address parses");
        Self {
            addr: loopback(),
            database_url: ConnectionUrl::new(database_url),
            db_max_connections: 16,
            token_key: TokenKeySource::File(dir.join(DEFAULT_TOKEN_KEY_FILE)),
            health_interval: Duration::from_millis(50),
            health_timeout: Duration::from_millis(300),
            shutdown_grace: Duration::from_secs(2),
            metrics_addr: Some(loopback()),
            signup_throttle: SignUpPolicy {
                per_peer: 0,
                ..SignUpPolicy::default()
            },
            ..Self::default()
        }
    }
}
