//! One typed configuration: defaults that run the embedded setup (SQLite
//! file, generated token key) with no settings at all, overridden by the
//! config file (`theatre.toml`), overridden by the environment.
mod file;
mod load;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

pub use file::ConfigFile;
pub use load::SETTINGS;

pub use crate::{
    auth::throttle::{SignUpPolicy, ThrottlePolicy},
    limits::Limits,
};

#[derive(Debug, thiserror::Error)]
#[error("invalid setting {name}={value:?}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
    pub reason: String,
}

/// Where the PASETO signing key comes from.
#[derive(Clone)]
pub enum TokenKeySource {
    /// A PASERK `k4.secret.…` string given directly.
    Paserk(String),
    /// A file holding the PASERK; created with a fresh key when missing.
    File(PathBuf),
}

impl std::fmt::Debug for TokenKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Paserk(_) => f.write_str("Paserk(<redacted>)"),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// An administrator ensured at start-up (created, or promoted if the email exists).
#[derive(Clone)]
pub struct AdminBootstrap {
    pub email: String,
    pub password: String,
}

impl std::fmt::Debug for AdminBootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminBootstrap")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The Redis read-through cache. Without a URL caching is off.
#[derive(Clone)]
pub struct CacheConfig {
    /// `REDIS_URL`, e.g. `redis://127.0.0.1:6379`.
    pub redis_url: Option<String>,
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
        }
    }
}

impl std::fmt::Debug for CacheConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A Redis URL may carry a password.
        f.debug_struct("CacheConfig")
            .field("redis_url", &self.redis_url.as_ref().map(|_| "<redacted>"))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("movie_ttl", &self.movie_ttl)
            .field("show_ttl", &self.show_ttl)
            .field("seat_map_ttl", &self.seat_map_ttl)
            .finish()
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

/// How shows may be scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShowPolicy {
    /// `THEATRE_SHOW_CHANGEOVER_MINUTES`: how long a theatre stays occupied
    /// after a show's movie ends (cleaning, the next audience coming in).
    pub changeover: Duration,
    /// `THEATRE_SHOW_HORIZON_DAYS`: how far ahead a show may be scheduled.
    pub horizon: Duration,
}

impl Default for ShowPolicy {
    fn default() -> Self {
        Self {
            changeover: Duration::from_secs(15 * 60),
            horizon: Duration::from_secs(730 * 24 * 3600),
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

#[derive(Clone)]
pub struct Config {
    /// `THEATRE_ADDR`: gRPC listen address.
    pub addr: SocketAddr,
    /// `DATABASE_URL`: `sqlite://…` or `postgres://…`.
    pub database_url: String,
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
    /// `THEATRE_CORS_ORIGINS`: comma-separated origins allowed to use grpc-web.
    pub cors_origins: CorsOrigins,
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

/// `scheme://user:password@host/…` with the password replaced.
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, None), |(a, p)| (a, Some(p)));
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
    let redacted = if userinfo.contains(':') {
        format!("{user}:<redacted>")
    } else {
        user.to_owned()
    };
    match path {
        Some(path) => format!("{scheme}://{redacted}@{host}/{path}"),
        None => format!("{scheme}://{redacted}@{host}"),
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("database_url", &redact_url_password(&self.database_url))
            .field("db_max_connections", &self.db_max_connections)
            .field("token_key", &self.token_key)
            .field("token_ttl", &self.token_ttl)
            .field("bootstrap_admin", &self.bootstrap_admin)
            .field("cache", &self.cache)
            .field("kafka", &self.kafka)
            .field("cors_origins", &self.cors_origins)
            .field("health_interval", &self.health_interval)
            .field("health_timeout", &self.health_timeout)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("log_format", &self.log_format)
            .field("metrics_addr", &self.metrics_addr)
            .field("limits", &self.limits)
            .field("login_throttle", &self.login_throttle)
            .field("signup_throttle", &self.signup_throttle)
            .field("shows", &self.shows)
            .finish()
    }
}

pub const DEFAULT_ADDR: &str = "127.0.0.1:50051";
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://theatre.db?mode=rwc";
pub const DEFAULT_TOKEN_KEY_FILE: &str = "theatre.key";

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: DEFAULT_ADDR.parse().expect("default address parses"),
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            db_max_connections: 10,
            token_key: TokenKeySource::File(PathBuf::from(DEFAULT_TOKEN_KEY_FILE)),
            token_ttl: Duration::from_secs(3600),
            bootstrap_admin: None,
            cache: CacheConfig::default(),
            kafka: KafkaConfig::default(),
            cors_origins: CorsOrigins::Localhost,
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
