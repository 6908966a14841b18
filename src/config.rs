//! One typed configuration, read from the environment with defaults that run
//! the embedded setup (SQLite file, generated token key) with no settings at all.
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
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
    /// `THEATRE_SHUTDOWN_GRACE_MS`: how long in-flight calls may run after a
    /// shutdown starts before their connections are dropped.
    pub shutdown_grace: Duration,
    /// `THEATRE_LOG_FORMAT`: `text` or `json`.
    pub log_format: LogFormat,
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
            .field("shutdown_grace", &self.shutdown_grace)
            .field("log_format", &self.log_format)
            .finish()
    }
}

pub const DEFAULT_ADDR: &str = "127.0.0.1:50051";
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
            shutdown_grace: Duration::from_secs(10),
            log_format: LogFormat::Text,
        }
    }
}

impl Config {
    /// Defaults overridden by the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Defaults overridden by `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        if let Some(addr) = lookup("THEATRE_ADDR") {
            config.addr = parse_setting("THEATRE_ADDR", &addr)?;
        }
        if let Some(url) = lookup("DATABASE_URL") {
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                return Err(ConfigError {
                    name: "DATABASE_URL",
                    value: url,
                    reason: "must start with sqlite:, postgres:// or postgresql://".into(),
                });
            }
            config.database_url = url;
        }
        if let Some(n) = lookup("THEATRE_DB_MAX_CONNECTIONS") {
            config.db_max_connections = parse_setting("THEATRE_DB_MAX_CONNECTIONS", &n)?;
        }
        config.token_key = TokenKeySource::File(default_key_file(&config.database_url));
        if let Some(path) = lookup("THEATRE_TOKEN_KEY_FILE") {
            config.token_key = TokenKeySource::File(PathBuf::from(path));
        }
        if let Some(key) = lookup("THEATRE_TOKEN_KEY") {
            config.token_key = TokenKeySource::Paserk(key);
        }
        if let Some(secs) = lookup("THEATRE_TOKEN_TTL_SECS") {
            let secs: u64 = parse_setting("THEATRE_TOKEN_TTL_SECS", &secs)?;
            config.token_ttl = Duration::from_secs(secs);
        }
        if !config.database_url.starts_with("sqlite:") {
            config.cors_origins = CorsOrigins::None;
        }
        if let Some(origins) = lookup("THEATRE_CORS_ORIGINS") {
            let list: Vec<String> = origins
                .split(',')
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect();
            if let Some(bad) = list
                .iter()
                .find(|o| !(o.starts_with("http://") || o.starts_with("https://")))
            {
                return Err(ConfigError {
                    name: "THEATRE_CORS_ORIGINS",
                    value: origins.clone(),
                    reason: format!("{bad:?} is not an origin such as https://app.example.com"),
                });
            }
            config.cors_origins = if list.is_empty() {
                CorsOrigins::None
            } else {
                CorsOrigins::List(list)
            };
        }
        if let Some(url) = lookup("REDIS_URL").filter(|u| !u.is_empty()) {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(ConfigError {
                    name: "REDIS_URL",
                    value: "<redacted>".into(),
                    reason: "must start with redis:// or rediss://".into(),
                });
            }
            config.cache.redis_url = Some(url);
        }
        if let Some(prefix) = lookup("THEATRE_CACHE_PREFIX") {
            config.cache.prefix = prefix;
        }
        for (name, slot) in [
            ("THEATRE_CACHE_TIMEOUT_MS", &mut config.cache.timeout),
            ("THEATRE_CACHE_MOVIE_TTL_MS", &mut config.cache.movie_ttl),
            ("THEATRE_CACHE_SHOW_TTL_MS", &mut config.cache.show_ttl),
            (
                "THEATRE_CACHE_SEAT_MAP_TTL_MS",
                &mut config.cache.seat_map_ttl,
            ),
        ] {
            if let Some(ms) = lookup(name) {
                let ms: u64 = parse_setting(name, &ms)?;
                if ms == 0 {
                    return Err(ConfigError {
                        name,
                        value: ms.to_string(),
                        reason: "must be at least 1".into(),
                    });
                }
                *slot = Duration::from_millis(ms);
            }
        }
        if let Some(ms) = lookup("THEATRE_HEALTH_INTERVAL_MS") {
            config.health_interval =
                Duration::from_millis(parse_setting("THEATRE_HEALTH_INTERVAL_MS", &ms)?);
        }
        if let Some(ms) = lookup("THEATRE_SHUTDOWN_GRACE_MS") {
            config.shutdown_grace =
                Duration::from_millis(parse_setting("THEATRE_SHUTDOWN_GRACE_MS", &ms)?);
        }
        if let Some(format) = lookup("THEATRE_LOG_FORMAT") {
            config.log_format = match format.to_ascii_lowercase().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(ConfigError {
                        name: "THEATRE_LOG_FORMAT",
                        value: format,
                        reason: "must be text or json".into(),
                    });
                }
            };
        }
        if let Some(brokers) = lookup("KAFKA_BROKERS") {
            config.kafka.brokers = brokers
                .split(',')
                .map(str::trim)
                .filter(|b| !b.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(topic) = lookup("THEATRE_KAFKA_TOPIC_CATALOG") {
            config.kafka.catalog_topic = topic;
        }
        if let Some(topic) = lookup("THEATRE_KAFKA_TOPIC_BOOKINGS") {
            config.kafka.bookings_topic = topic;
        }
        if let Some(n) = lookup("THEATRE_KAFKA_PARTITIONS") {
            config.kafka.partitions = parse_setting("THEATRE_KAFKA_PARTITIONS", &n)?;
        }
        if let Some(n) = lookup("THEATRE_OUTBOX_BATCH") {
            config.kafka.batch_size = parse_setting("THEATRE_OUTBOX_BATCH", &n)?;
        }
        if let Some(ms) = lookup("THEATRE_OUTBOX_POLL_MS") {
            config.kafka.poll_interval =
                Duration::from_millis(parse_setting("THEATRE_OUTBOX_POLL_MS", &ms)?);
        }
        if let Some(secs) = lookup("THEATRE_OUTBOX_RETENTION_SECS") {
            config.kafka.retention =
                Duration::from_secs(parse_setting("THEATRE_OUTBOX_RETENTION_SECS", &secs)?);
        }
        match (
            lookup("THEATRE_ADMIN_EMAIL"),
            lookup("THEATRE_ADMIN_PASSWORD"),
        ) {
            (Some(email), Some(password)) => {
                config.bootstrap_admin = Some(AdminBootstrap { email, password })
            }
            (None, None) => {}
            (Some(email), None) => {
                return Err(ConfigError {
                    name: "THEATRE_ADMIN_PASSWORD",
                    value: String::new(),
                    reason: format!("must be set together with THEATRE_ADMIN_EMAIL={email}"),
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError {
                    name: "THEATRE_ADMIN_EMAIL",
                    value: String::new(),
                    reason: "must be set together with THEATRE_ADMIN_PASSWORD".into(),
                });
            }
        }
        Ok(config)
    }
}

/// The generated key lives beside a SQLite database file (so the two move
/// together); with PostgreSQL, in the working directory.
fn default_key_file(database_url: &str) -> PathBuf {
    let sqlite_path = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or(rest));
    match sqlite_path {
        Some(path) if !path.is_empty() && path != ":memory:" => Path::new(path)
            .parent()
            .map(|dir| dir.join(DEFAULT_TOKEN_KEY_FILE))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_TOKEN_KEY_FILE)),
        _ => PathBuf::from(DEFAULT_TOKEN_KEY_FILE),
    }
}

fn parse_setting<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e: T::Err| ConfigError {
        name,
        value: value.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    fn key_file(c: &Config) -> PathBuf {
        match &c.token_key {
            TokenKeySource::File(path) => path.clone(),
            TokenKeySource::Paserk(_) => panic!("expected a key file"),
        }
    }

    #[test]
    fn embedded_default_keeps_the_key_beside_the_database() {
        assert_eq!(
            key_file(&config(&[]).unwrap()),
            PathBuf::from("theatre.key")
        );
        let c = config(&[("DATABASE_URL", "sqlite:///var/lib/theatre/t.db?mode=rwc")]).unwrap();
        assert_eq!(key_file(&c), PathBuf::from("/var/lib/theatre/theatre.key"));
        let c = config(&[("DATABASE_URL", "postgres://u@h/db")]).unwrap();
        assert_eq!(key_file(&c), PathBuf::from("theatre.key"));
        let c = config(&[("THEATRE_TOKEN_KEY_FILE", "/etc/k")]).unwrap();
        assert_eq!(key_file(&c), PathBuf::from("/etc/k"));
    }

    #[test]
    fn redis_and_kafka_come_from_the_environment() {
        let c = config(&[]).unwrap();
        assert!(c.cache.redis_url.is_none(), "caching off by default");
        assert!(
            c.kafka.brokers.is_empty(),
            "events wait in the outbox by default"
        );
        let c = config(&[
            ("REDIS_URL", "redis://127.0.0.1:6379/2"),
            ("THEATRE_CACHE_SEAT_MAP_TTL_MS", "1500"),
            ("KAFKA_BROKERS", "a:9092, b:9092"),
            ("THEATRE_KAFKA_TOPIC_BOOKINGS", "bk"),
            ("THEATRE_KAFKA_PARTITIONS", "6"),
        ])
        .unwrap();
        assert_eq!(
            c.cache.redis_url.as_deref(),
            Some("redis://127.0.0.1:6379/2")
        );
        assert_eq!(c.cache.seat_map_ttl, Duration::from_millis(1500));
        assert_eq!(c.kafka.brokers, ["a:9092", "b:9092"]);
        assert_eq!(c.kafka.bookings_topic, "bk");
        assert_eq!(c.kafka.partitions, 6);
        assert_eq!(
            config(&[("REDIS_URL", "http://x")]).unwrap_err().name,
            "REDIS_URL"
        );
        let err = config(&[("THEATRE_CACHE_TIMEOUT_MS", "0")]).unwrap_err();
        assert_eq!(err.name, "THEATRE_CACHE_TIMEOUT_MS");
        let debug = format!(
            "{:?}",
            config(&[("REDIS_URL", "redis://:hunter2@h:6379")]).unwrap()
        );
        assert!(
            !debug.contains("hunter2"),
            "Redis password redacted in Debug"
        );
    }

    #[test]
    fn cors_defaults_to_localhost_only_in_the_embedded_setup() {
        assert_eq!(config(&[]).unwrap().cors_origins, CorsOrigins::Localhost);
        let pg = config(&[("DATABASE_URL", "postgres://u@h/db")]).unwrap();
        assert_eq!(pg.cors_origins, CorsOrigins::None);
        let listed = config(&[(
            "THEATRE_CORS_ORIGINS",
            "https://a.test/, http://b.test:8080",
        )])
        .unwrap();
        assert_eq!(
            listed.cors_origins,
            CorsOrigins::List(vec!["https://a.test".into(), "http://b.test:8080".into()])
        );
        let err = config(&[("THEATRE_CORS_ORIGINS", "a.test")]).unwrap_err();
        assert_eq!(err.name, "THEATRE_CORS_ORIGINS");
    }

    #[test]
    fn url_passwords_are_redacted() {
        assert_eq!(
            redact_url_password("postgres://app:s3cret@db:5432/theatre"),
            "postgres://app:<redacted>@db:5432/theatre"
        );
        assert_eq!(
            redact_url_password("postgres://app@db/theatre"),
            "postgres://app@db/theatre"
        );
        assert_eq!(
            redact_url_password("sqlite://theatre.db?mode=rwc"),
            "sqlite://theatre.db?mode=rwc"
        );
    }

    #[test]
    fn bad_settings_are_named() {
        let err = config(&[("THEATRE_ADDR", "not-an-address")]).unwrap_err();
        assert_eq!(err.name, "THEATRE_ADDR");
        let err = config(&[("DATABASE_URL", "mysql://x")]).unwrap_err();
        assert_eq!(err.name, "DATABASE_URL");
        let err = config(&[("THEATRE_ADMIN_EMAIL", "a@b.c")]).unwrap_err();
        assert_eq!(err.name, "THEATRE_ADMIN_PASSWORD");
        let debug = format!(
            "{:?}",
            config(&[("THEATRE_TOKEN_KEY", "k4.secret.SECRET")]).unwrap()
        );
        assert!(!debug.contains("SECRET"), "secrets are redacted in Debug");
    }
}
