//! The optional config file. It holds the same settings as the environment,
//! each named in lower case without the `THEATRE_` prefix:
//!
//! ```toml
//! addr = "0.0.0.0:50051"
//! database_url = "postgres://theatre@db/theatre"
//! kafka_brokers = ["k1:9092", "k2:9092"]
//! rpc_deadline_ms = 5000
//! ```
//!
//! An unknown key is an error, so a typo cannot silently leave a default.
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use toml::Value;

use super::{ConfigError, SETTINGS};

pub const DEFAULT_CONFIG_FILE: &str = "theatre.toml";

/// The key of `setting` (an environment variable name) in the file.
pub fn file_key(setting: &str) -> String {
    setting
        .strip_prefix("THEATRE_")
        .unwrap_or(setting)
        .to_ascii_lowercase()
}

#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
    /// Values by setting name.
    values: HashMap<&'static str, String>,
}

fn file_error(path: &Path, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        name: "THEATRE_CONFIG",
        value: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Scalars as the environment would spell them; lists comma-separated.
fn as_setting(value: Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s),
        Value::Integer(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Array(_) | Value::Table(_) => None,
                scalar => as_setting(scalar),
            })
            .collect::<Option<Vec<_>>>()
            .map(|items| items.join(",")),
        Value::Datetime(_) | Value::Table(_) => None,
    }
}

impl ConfigFile {
    /// `explicit` (from `THEATRE_CONFIG`) must exist; otherwise `theatre.toml`
    /// in the working directory is read if it is there.
    pub fn locate(explicit: Option<String>) -> Result<Option<Self>, ConfigError> {
        match explicit {
            Some(path) => Self::read(Path::new(&path)).map(Some),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                Self::read(Path::new(DEFAULT_CONFIG_FILE)).map(Some)
            }
            None => Ok(None),
        }
    }

    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e.to_string()))?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| file_error(path, e.to_string()))?;
        let mut values = HashMap::new();
        for (key, value) in table {
            let setting = SETTINGS
                .iter()
                .find(|s| **s != "THEATRE_CONFIG" && file_key(s) == key)
                .ok_or_else(|| file_error(path, format!("unknown setting `{key}`")))?;
            let value = as_setting(value).ok_or_else(|| {
                file_error(
                    path,
                    format!("`{key}` must be a string, number, boolean or list of them"),
                )
            })?;
            values.insert(*setting, value);
        }
        Ok(Self {
            path: path.to_owned(),
            values,
        })
    }

    pub fn get(&self, setting: &str) -> Option<String> {
        self.values.get(setting).cloned()
    }

    /// Where `setting` was set, for error messages.
    pub fn describe(&self, setting: &str) -> String {
        format!("`{}` in {}", file_key(setting), self.path.display())
    }
}
