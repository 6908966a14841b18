//! PostgreSQL test databases: each test gets its own, copied from a template
//! that already has the schema (`CREATE DATABASE … TEMPLATE`, as crates.io's
//! test databases are made), and drops it when it ends.
//!
//! The template is made once per version of `migrations/`: its name carries
//! a hash of their files, so a changed migration gets a new template and an
//! old one is never used. Test processes run in parallel (nextest runs each
//! test in a process of its own); an advisory lock lets one of them build the
//! template while the others wait, and the build is renamed into place only
//! once it is complete.
use std::{
    collections::hash_map::DefaultHasher,
    hash::{Hash, Hasher},
    path::Path,
};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

/// Where PostgreSQL test databases are created; one per test.
pub fn pg_base_url() -> String {
    std::env::var("THEATRE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// Identifies the template builders' advisory lock.
const TEMPLATE_LOCK: i64 = 0x7468_6561_7472_6574;

/// A hash of every file under `migrations/src` and `migrations/sql`.
fn migrations_hash() -> u64 {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<_> = ["src", "sql"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(root.join(dir)).expect("migrations/ is readable"))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    let mut hasher = DefaultHasher::new();
    for file in files {
        file.file_name().hash(&mut hasher);
        std::fs::read(&file).unwrap().hash(&mut hasher);
    }
    hasher.finish()
}

async fn exists(admin: &DatabaseConnection, name: &str) -> bool {
    let query = Statement::from_sql_and_values(
        admin.get_database_backend(),
        "SELECT 1 FROM pg_database WHERE datname = $1",
        [name.into()],
    );
    admin.query_one_raw(query).await.unwrap().is_some()
}

/// The migrated template for this version of `migrations/`, built if missing.
async fn template(admin: &DatabaseConnection, base: &str) -> String {
    let name = format!("theatre_tpl_{:016x}", migrations_hash());
    if exists(admin, &name).await {
        return name;
    }
    let lock = format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})");
    admin.execute_unprepared(&lock).await.unwrap();
    if !exists(admin, &name).await {
        let building = format!("theatre_tpl_building_{}", uuid::Uuid::now_v7().simple());
        let create = format!("CREATE DATABASE {building}");
        admin.execute_unprepared(&create).await.unwrap();
        // The service's own start-up migrates it.
        let db = theatre::db::Database::connect(&format!("{base}/{building}"), 1)
            .await
            .expect("migrate the template");
        db.close().await.unwrap();
        for statement in [
            format!("ALTER DATABASE {building} RENAME TO {name}"),
            // Not connectable, so no session (autovacuum's included) can
            // keep a copy from being made.
            format!("ALTER DATABASE {name} IS_TEMPLATE true ALLOW_CONNECTIONS false"),
        ] {
            admin.execute_unprepared(&statement).await.unwrap();
        }
    }
    let unlock = format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})");
    admin.execute_unprepared(&unlock).await.unwrap();
    name
}

/// A new database with the current schema; its URL.
pub async fn fresh_pg_database() -> String {
    new_database(true).await
}

/// A new database without any schema (for migration tests); its URL.
pub async fn empty_pg_database() -> String {
    new_database(false).await
}

async fn new_database(migrated: bool) -> String {
    let base = pg_base_url();
    let admin = sea_orm::Database::connect(format!("{base}/postgres"))
        .await
        .expect("PostgreSQL must be running on 127.0.0.1:5432 (scripts/test starts it)");
    let name = format!("theatre_test_{}", uuid::Uuid::now_v7().simple());
    let create = if migrated {
        let template = template(&admin, &base).await;
        format!("CREATE DATABASE {name} TEMPLATE {template}")
    } else {
        format!("CREATE DATABASE {name}")
    };
    admin
        .execute_unprepared(&create)
        .await
        .expect("create test database");
    admin.close().await.ok();
    format!("{base}/{name}")
}

/// A test database that is dropped when this is, its connections with it
/// (the test is over; whatever still holds one is about to exit). It waits
/// for the drop: nextest ends a test's leftover processes with it, and the
/// databases a suite leaves behind slow every later one (autovacuum visits
/// each).
pub struct DroppedAtEnd(pub String);

impl Drop for DroppedAtEnd {
    fn drop(&mut self) {
        drop_database(&self.0);
    }
}

fn drop_database(url: &str) {
    let Some((_, name)) = url.rsplit_once('/') else {
        return;
    };
    let base = pg_base_url();
    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    let _ = std::process::Command::new("psql")
        .args(["-X", "-q", "-d", &format!("{base}/postgres"), "-c", &drop])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}
