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
    "REDIS_URL",
    "THEATRE_CACHE_PREFIX",
    "THEATRE_CACHE_TIMEOUT_MS",
    "THEATRE_CACHE_MOVIE_TTL_MS",
    "THEATRE_CACHE_SHOW_TTL_MS",
    "THEATRE_CACHE_SEAT_MAP_TTL_MS",
    "KAFKA_BROKERS",
    "THEATRE_KAFKA_TOPIC_CATALOG",
    "THEATRE_KAFKA_TOPIC_BOOKINGS",
    "THEATRE_KAFKA_PARTITIONS",
    "THEATRE_OUTBOX_BATCH",
    "THEATRE_OUTBOX_POLL_MS",
    "THEATRE_OUTBOX_RETENTION_SECS",
    "THEATRE_HEALTH_INTERVAL_MS",
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
                *slot = Duration::from_millis(parse_at_least(name, &ms, 1)?);
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
        config.metrics_addr = match lookup("THEATRE_METRICS_ADDR") {
            Some(off) if off.is_empty() || off.eq_ignore_ascii_case("off") => None,
            Some(addr) => Some(parse_setting("THEATRE_METRICS_ADDR", &addr)?),
            None => config.metrics_addr,
        };
        read_limits(&lookup, &mut config.limits)?;
        read_throttle(&lookup, &mut config.login_throttle)?;
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

    fn file(text: &str) -> Result<ConfigFile, ConfigError> {
        ConfigFile::parse(Path::new("theatre.toml"), text)
    }

    #[test]
    fn the_file_overrides_defaults_and_the_environment_overrides_the_file() {
        let f = file(
            r#"
            addr = "127.0.0.1:6000"
            database_url = "postgres://u@h/db"
            kafka_brokers = ["k1:9092", "k2:9092"]
            rpc_deadline_ms = 2500
            metrics_addr = "off"
            "#,
        )
        .unwrap();
        let env = |name: &str| (name == "THEATRE_ADDR").then(|| "127.0.0.1:7000".to_owned());
        let c = Config::from_sources(env, Some(&f)).unwrap();
        assert_eq!(c.addr, "127.0.0.1:7000".parse().unwrap(), "env wins");
        assert_eq!(c.database_url, "postgres://u@h/db", "file beats default");
        assert_eq!(c.kafka.brokers, ["k1:9092", "k2:9092"]);
        assert_eq!(c.limits.rpc_deadline, Duration::from_millis(2500));
        assert_eq!(c.metrics_addr, None);
        assert_eq!(
            c.cache.prefix, "theatre:",
            "untouched settings keep defaults"
        );
    }

    #[test]
    fn file_mistakes_name_the_key_and_the_file() {
        let err = file("adr = \"x\"").unwrap_err();
        assert_eq!(err.name, "THEATRE_CONFIG");
        assert!(err.reason.contains("unknown setting `adr`"), "{err}");
        let err = file("addr = [").unwrap_err();
        assert_eq!(err.name, "THEATRE_CONFIG");
        let f = file("max_in_flight = 0").unwrap();
        let err = Config::from_sources(|_| None, Some(&f)).unwrap_err();
        assert_eq!(err.name, "THEATRE_MAX_IN_FLIGHT");
        assert!(
            err.to_string().contains("`max_in_flight` in theatre.toml"),
            "{err}"
        );
    }

    #[test]
    fn every_setting_read_is_listed() {
        let asked = std::sync::Mutex::new(Vec::new());
        Config::from_lookup(|name| {
            asked.lock().unwrap().push(name.to_owned());
            None
        })
        .unwrap();
        let mut asked = asked.into_inner().unwrap();
        asked.push("THEATRE_CONFIG".into());
        asked.sort();
        asked.dedup();
        let mut listed: Vec<String> = SETTINGS.iter().map(|s| s.to_string()).collect();
        listed.sort();
        assert_eq!(asked, listed);
    }

    #[test]
    fn every_setting_is_in_the_readme() {
        let readme = include_str!("../../README.md");
        for setting in SETTINGS {
            assert!(
                readme.contains(&format!("`{setting}`")),
                "{setting} is missing from the README's settings table"
            );
        }
    }

    #[test]
    fn limits_and_throttling_are_validated() {
        let c = config(&[
            ("THEATRE_MAX_MESSAGE_BYTES", "2048"),
            ("THEATRE_MAX_QUEUED", "0"),
            ("THEATRE_LOGIN_FAILURES_PER_EMAIL", "3"),
            ("THEATRE_METRICS_ADDR", "127.0.0.1:0"),
        ])
        .unwrap();
        assert_eq!(c.limits.max_message_bytes, 2048);
        assert_eq!(c.limits.max_queued, 0);
        assert_eq!(c.login_throttle.per_email, 3);
        assert_eq!(c.metrics_addr, Some("127.0.0.1:0".parse().unwrap()));
        for (name, value) in [
            ("THEATRE_MAX_MESSAGE_BYTES", "10"),
            ("THEATRE_RPC_DEADLINE_MS", "0"),
            ("THEATRE_LOGIN_WINDOW_SECS", "0"),
            ("THEATRE_METRICS_ADDR", "nowhere"),
        ] {
            assert_eq!(config(&[(name, value)]).unwrap_err().name, name);
        }
    }
}
