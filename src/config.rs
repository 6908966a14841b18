//! One typed configuration, read from the environment with defaults that run
//! the embedded setup (SQLite file, generated token key) with no settings at all.
use std::{net::SocketAddr, path::PathBuf, time::Duration};

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

#[derive(Debug, Clone)]
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
