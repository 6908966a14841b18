//! Running the client kits' programs (clients/, built by clients/generate)
//! against a test server.
use std::path::PathBuf;

use super::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp};

/// A path in this repository.
pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs `program args` in the repository with `envs` to its end and returns
/// its standard output; fails the test, with both outputs, unless it exits 0.
pub async fn run_to_end(
    program: PathBuf,
    args: Vec<String>,
    envs: Vec<(&'static str, String)>,
) -> String {
    let shown = format!("{} {}", program.display(), args.join(" "));
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&program)
            .args(&args)
            .envs(envs)
            .current_dir(repo("."))
            .output()
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("{shown}: {e} (clients/generate and web/build make the kits)"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{shown} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The environment the kits' examples and scripts read: the server's address
/// (as a URL and as a gRPC target) and the bootstrap admin.
pub fn kit_env(app: &TestApp) -> Vec<(&'static str, String)> {
    vec![
        ("THEATRE_URL", format!("http://{}", app.server.addr())),
        ("THEATRE_TARGET", app.server.addr().to_string()),
        ("THEATRE_ADMIN_EMAIL", ADMIN_EMAIL.into()),
        ("THEATRE_ADMIN_PASSWORD", ADMIN_PASSWORD.into()),
    ]
}
