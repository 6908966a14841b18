//! Reading the settings: defaults, then the config file, then the environment.
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use super::*;

/// Every setting, as its environment variable. In `theatre.toml` the same
/// setting is the name in lower case without the `THEATRE_` prefix.
pub const SETTINGS: &[&str] = &[
    "THEATRE_CONFIG",
    "THEATRE_ADDR",
    "DATABASE_URL",
    "THEATRE_DB_MAX_CONNECTIONS",
    "THEATRE_TOKEN_KEY",
    "THEATRE_TOKEN_KEY_FILE",
    "THEATRE_TOKEN_TTL_SECS",
    "THEATRE_ADMIN_EMAIL",
    "THEATRE_ADMIN_PASSWORD",
    "THEATRE_CORS_ORIGINS",
    "THEATRE_CORS_HEADERS",
    "THEATRE_WEB_DIR",
    "REDIS_URL",
    "THEATRE_CACHE_PREFIX",
    "THEATRE_CACHE_TIMEOUT_MS",
    "THEATRE_CACHE_MOVIE_TTL_MS",
    "THEATRE_CACHE_SHOW_TTL_MS",
    "THEATRE_CACHE_SEAT_MAP_TTL_MS",
    "THEATRE_CACHE_NEAR_ENTRIES",
    "KAFKA_BROKERS",
    "THEATRE_KAFKA_TOPIC_CATALOG",
    "THEATRE_KAFKA_TOPIC_BOOKINGS",
    "THEATRE_KAFKA_PARTITIONS",
    "THEATRE_OUTBOX_BATCH",
    "THEATRE_OUTBOX_POLL_MS",
    "THEATRE_OUTBOX_RETENTION_SECS",
    "THEATRE_HEALTH_INTERVAL_MS",
    "THEATRE_HEALTH_TIMEOUT_MS",
    "THEATRE_SHUTDOWN_GRACE_MS",
    "THEATRE_LOG_FORMAT",
    "THEATRE_METRICS_ADDR",
    "THEATRE_MAX_MESSAGE_BYTES",
    "THEATRE_RPC_DEADLINE_MS",
    "THEATRE_MAX_IN_FLIGHT",
    "THEATRE_MAX_QUEUED",
    "THEATRE_LOGIN_FAILURES_PER_EMAIL",
    "THEATRE_LOGIN_FAILURES_PER_PEER",
    "THEATRE_LOGIN_WINDOW_SECS",
    "THEATRE_SIGNUPS_PER_PEER",
    "THEATRE_SIGNUP_WINDOW_SECS",
    "THEATRE_SHOW_CHANGEOVER_MINUTES",
    "THEATRE_SHOW_HORIZON_DAYS",
];

impl Config {
    /// Defaults < config file < process environment. The file is
    /// `THEATRE_CONFIG` if set (it must exist), else `theatre.toml` in the
    /// working directory if there is one.
    pub fn load() -> Result<Self, ConfigError> {
        let env = |name: &str| std::env::var(name).ok();
        let file = ConfigFile::locate(env("THEATRE_CONFIG"))?;
        Self::from_sources(env, file.as_ref())
    }

    /// Defaults < `file` < `env`; an error from a file value says where it came from.
    pub fn from_sources(
        env: impl Fn(&str) -> Option<String>,
        file: Option<&ConfigFile>,
    ) -> Result<Self, ConfigError> {
        Self::from_lookup(|name| env(name).or_else(|| file?.get(name))).map_err(|mut err| {
            if let Some(file) =
                file.filter(|f| env(err.name).is_none() && f.get(err.name).is_some())
            {
                err.reason = format!("{} (from {})", err.reason, file.describe(err.name));
            }
            err
        })
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
            config.database_url = ConnectionUrl::new(url);
        }
        if let Some(n) = lookup("THEATRE_DB_MAX_CONNECTIONS") {
            config.db_max_connections = parse_setting("THEATRE_DB_MAX_CONNECTIONS", &n)?;
        }
        config.token_key = TokenKeySource::File(default_key_file(config.database_url.expose()));
        if let Some(path) = lookup("THEATRE_TOKEN_KEY_FILE") {
            config.token_key = TokenKeySource::File(PathBuf::from(path));
        }
        if let Some(key) = lookup("THEATRE_TOKEN_KEY") {
            config.token_key = TokenKeySource::Paserk(Secret::new(key));
        }
        if let Some(secs) = lookup("THEATRE_TOKEN_TTL_SECS") {
            let secs: u64 = parse_setting("THEATRE_TOKEN_TTL_SECS", &secs)?;
            config.token_ttl = Duration::from_secs(secs);
        }
        if !config.database_url.expose().starts_with("sqlite:") {
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
        if let Some(headers) = lookup("THEATRE_CORS_HEADERS") {
            let list: Vec<String> = headers
                .split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect();
            if let Some(bad) = list
                .iter()
                .find(|h| http::HeaderName::try_from(h.as_str()).is_err())
            {
                return Err(ConfigError {
                    name: "THEATRE_CORS_HEADERS",
                    value: headers.clone(),
                    reason: format!("{bad:?} is not a header name"),
                });
            }
            config.cors_headers = list;
        }
        if let Some(dir) = lookup("THEATRE_WEB_DIR").filter(|d| !d.is_empty()) {
            config.web_dir = Some(PathBuf::from(dir));
        }
        if let Some(url) = lookup("REDIS_URL").filter(|u| !u.is_empty()) {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(ConfigError {
                    name: "REDIS_URL",
                    value: "<redacted>".into(),
                    reason: "must start with redis:// or rediss://".into(),
                });
            }
            config.cache.redis_url = Some(ConnectionUrl::new(url));
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
                *slot = Duration::from_millis(parse_at_least(name, &ms, 1)?);
            }
        }
        if let Some(entries) = lookup("THEATRE_CACHE_NEAR_ENTRIES") {
            config.cache.near_entries = parse_setting("THEATRE_CACHE_NEAR_ENTRIES", &entries)?;
        }
        if let Some(ms) = lookup("THEATRE_HEALTH_INTERVAL_MS") {
            config.health_interval =
                Duration::from_millis(parse_setting("THEATRE_HEALTH_INTERVAL_MS", &ms)?);
        }
        if let Some(ms) = lookup("THEATRE_HEALTH_TIMEOUT_MS") {
            config.health_timeout =
                Duration::from_millis(parse_at_least("THEATRE_HEALTH_TIMEOUT_MS", &ms, 1)?);
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
        config.metrics_addr = match lookup("THEATRE_METRICS_ADDR") {
            Some(off) if off.is_empty() || off.eq_ignore_ascii_case("off") => None,
            Some(addr) => Some(parse_setting("THEATRE_METRICS_ADDR", &addr)?),
            None => config.metrics_addr,
        };
        read_limits(&lookup, &mut config.limits)?;
        read_throttle(&lookup, &mut config.login_throttle)?;
        if let Some(n) = lookup("THEATRE_SIGNUPS_PER_PEER") {
            config.signup_throttle.per_peer = parse_setting("THEATRE_SIGNUPS_PER_PEER", &n)?;
        }
        if let Some(secs) = lookup("THEATRE_SIGNUP_WINDOW_SECS") {
            config.signup_throttle.window =
                Duration::from_secs(parse_at_least("THEATRE_SIGNUP_WINDOW_SECS", &secs, 1)?);
        }
        if let Some(minutes) = lookup("THEATRE_SHOW_CHANGEOVER_MINUTES") {
            let minutes: u32 = parse_setting("THEATRE_SHOW_CHANGEOVER_MINUTES", &minutes)?;
            config.shows.changeover = Duration::from_secs(u64::from(minutes) * 60);
        }
        if let Some(days) = lookup("THEATRE_SHOW_HORIZON_DAYS") {
            let days: u32 = parse_at_least("THEATRE_SHOW_HORIZON_DAYS", &days, 1)?;
            config.shows.horizon = Duration::from_secs(u64::from(days) * 24 * 3600);
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
                config.bootstrap_admin = Some(AdminBootstrap {
                    email,
                    password: Secret::new(password),
                })
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

fn read_limits(
    lookup: &impl Fn(&str) -> Option<String>,
    limits: &mut Limits,
) -> Result<(), ConfigError> {
    if let Some(n) = lookup("THEATRE_MAX_MESSAGE_BYTES") {
        limits.max_message_bytes = parse_at_least("THEATRE_MAX_MESSAGE_BYTES", &n, 1024)?;
    }
    if let Some(ms) = lookup("THEATRE_RPC_DEADLINE_MS") {
        limits.rpc_deadline =
            Duration::from_millis(parse_at_least("THEATRE_RPC_DEADLINE_MS", &ms, 1)?);
    }
    if let Some(n) = lookup("THEATRE_MAX_IN_FLIGHT") {
        limits.max_in_flight = parse_at_least("THEATRE_MAX_IN_FLIGHT", &n, 1)?;
    }
    if let Some(n) = lookup("THEATRE_MAX_QUEUED") {
        limits.max_queued = parse_setting("THEATRE_MAX_QUEUED", &n)?;
    }
    Ok(())
}

fn read_throttle(
    lookup: &impl Fn(&str) -> Option<String>,
    throttle: &mut ThrottlePolicy,
) -> Result<(), ConfigError> {
    if let Some(n) = lookup("THEATRE_LOGIN_FAILURES_PER_EMAIL") {
        throttle.per_email = parse_setting("THEATRE_LOGIN_FAILURES_PER_EMAIL", &n)?;
    }
    if let Some(n) = lookup("THEATRE_LOGIN_FAILURES_PER_PEER") {
        throttle.per_peer = parse_setting("THEATRE_LOGIN_FAILURES_PER_PEER", &n)?;
    }
    if let Some(secs) = lookup("THEATRE_LOGIN_WINDOW_SECS") {
        throttle.window =
            Duration::from_secs(parse_at_least("THEATRE_LOGIN_WINDOW_SECS", &secs, 1)?);
    }
    Ok(())
}

fn parse_at_least<T>(name: &'static str, value: &str, min: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
    T::Err: std::fmt::Display,
{
    let parsed: T = parse_setting(name, value)?;
    if parsed < min {
        return Err(ConfigError {
            name,
            value: value.to_owned(),
            reason: format!("must be at least {min}"),
        });
    }
    Ok(parsed)
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
mod tests;
