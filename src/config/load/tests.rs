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
        ("THEATRE_CACHE_NEAR_ENTRIES", "0"),
        ("KAFKA_BROKERS", "a:9092, b:9092"),
        ("THEATRE_KAFKA_TOPIC_BOOKINGS", "bk"),
        ("THEATRE_KAFKA_PARTITIONS", "6"),
    ])
    .unwrap();
    assert_eq!(
        c.cache.redis_url.as_ref().map(ConnectionUrl::expose),
        Some("redis://127.0.0.1:6379/2")
    );
    assert_eq!(c.cache.seat_map_ttl, Duration::from_millis(1500));
    assert_eq!(c.cache.near_entries, 0);
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
fn browsers_may_send_the_trace_context_and_the_headers_configured() {
    assert_eq!(
        config(&[]).unwrap().cors_headers,
        ["traceparent", "tracestate"]
    );
    let custom = config(&[("THEATRE_CORS_HEADERS", "X-Tenant, traceparent")]).unwrap();
    assert_eq!(custom.cors_headers, ["x-tenant", "traceparent"]);
    assert!(
        config(&[("THEATRE_CORS_HEADERS", "")])
            .unwrap()
            .cors_headers
            .is_empty()
    );
    let err = config(&[("THEATRE_CORS_HEADERS", "bad header")]).unwrap_err();
    assert_eq!(err.name, "THEATRE_CORS_HEADERS");
}

#[test]
fn the_page_is_served_only_from_a_configured_directory() {
    assert_eq!(config(&[]).unwrap().web_dir, None);
    assert_eq!(config(&[("THEATRE_WEB_DIR", "")]).unwrap().web_dir, None);
    assert_eq!(
        config(&[("THEATRE_WEB_DIR", "web/dist")]).unwrap().web_dir,
        Some(PathBuf::from("web/dist"))
    );
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
    assert_eq!(
        c.database_url.expose(),
        "postgres://u@h/db",
        "file beats default"
    );
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
    let readme = include_str!("../../../README.md");
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
