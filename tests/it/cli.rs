//! The `theatre` binary: configuration errors and `config print`.
use std::process::Command;

fn theatre() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_theatre"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

/// Runs `cmd`, which must succeed.
fn succeed(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn a_bad_setting_is_named_and_exits_non_zero() {
    let out = theatre()
        .env("THEATRE_ADDR", "not-an-address")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("THEATRE_ADDR"), "{stderr}");
    assert!(stderr.contains("not-an-address"), "{stderr}");
}

#[test]
fn config_print_shows_settings_but_no_secret() {
    let mut out = theatre();
    out.args(["config", "print"])
        .env("THEATRE_ADDR", "127.0.0.1:6000")
        .env("THEATRE_TOKEN_KEY", "k4.secret.TOPSECRETKEYMATERIAL")
        .env("THEATRE_ADMIN_EMAIL", "root@theatre.test")
        .env("THEATRE_ADMIN_PASSWORD", "hunter2-password")
        .env("REDIS_URL", "redis://:redispass@127.0.0.1:6379")
        .env("KAFKA_BROKERS", "127.0.0.1:9092")
        .env(
            "DATABASE_URL",
            "postgres://app:dbpassword@127.0.0.1:5432/theatre",
        );
    let out = succeed(&mut out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("127.0.0.1:6000"), "{stdout}");
    assert!(stdout.contains("root@theatre.test"), "{stdout}");
    assert!(stdout.contains("127.0.0.1:9092"), "{stdout}");
    assert!(
        stdout.contains("postgres://app:<redacted>@127.0.0.1:5432/theatre"),
        "{stdout}"
    );
    for secret in [
        "TOPSECRETKEYMATERIAL",
        "hunter2-password",
        "redispass",
        "dbpassword",
    ] {
        assert!(!stdout.contains(secret), "{secret} leaked: {stdout}");
    }
    assert!(stdout.contains("<redacted>"));
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    // `user create` logs while migrating and creating; every line must be JSON.
    let mut out = theatre();
    out.current_dir(dir.path())
        .args([
            "user",
            "create",
            "--email",
            "ops@theatre.test",
            "--role",
            "admin",
        ])
        .env("THEATRE_USER_PASSWORD", "ops-password-1")
        .env("THEATRE_LOG_FORMAT", "json");
    let out = succeed(&mut out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.lines().count() > 0, "something was logged");
    for line in stderr.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(value.get("level").is_some(), "{line}");
    }
    assert!(!stderr.contains("ops-password-1"));
    let bad = theatre().env("THEATRE_LOG_FORMAT", "xml").output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("THEATRE_LOG_FORMAT"));
}

#[test]
fn the_config_file_sits_between_defaults_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("theatre.toml");
    std::fs::write(
        &file,
        "addr = \"127.0.0.1:6001\"\nrpc_deadline_ms = 2500\nkafka_brokers = [\"k1:9092\", \"k2:9092\"]\n",
    )
    .unwrap();
    let out = succeed(
        theatre()
            .args(["config", "print"])
            .env("THEATRE_CONFIG", &file)
            .env("THEATRE_RPC_DEADLINE_MS", "3000"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("127.0.0.1:6001"), "{stdout}");
    assert!(stdout.contains("rpc_deadline: 3s"), "env wins: {stdout}");
    assert!(stdout.contains("\"k2:9092\""), "{stdout}");

    // theatre.toml in the working directory is read without THEATRE_CONFIG.
    let out = succeed(theatre().args(["config", "print"]).current_dir(dir.path()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("rpc_deadline: 2.5s"), "{stdout}");

    std::fs::write(&file, "adress = \"127.0.0.1:1\"\n").unwrap();
    let out = theatre()
        .args(["config", "print"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("THEATRE_CONFIG"), "{stderr}");
    assert!(stderr.contains("unknown setting `adress`"), "{stderr}");

    let out = theatre()
        .args(["config", "print"])
        .env("THEATRE_CONFIG", dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "a named file must exist");
}
