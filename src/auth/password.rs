//! argon2id password hashing (OWASP parameters: m=19 MiB, t=2, p=1, the crate
//! defaults). Hashing is CPU-bound, so it runs on the blocking pool.
use std::sync::LazyLock;

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use password_hash::{SaltString, rand_core::OsRng};

use crate::error::{AppError, AppResult};

pub async fn hash(password: String) -> AppResult<String> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|e| AppError::Internal(format!("password hashing task failed: {e}")))?
}

fn hash_blocking(password: &str) -> AppResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(format!("password hashing failed: {e}")))
}

/// A hash to verify against when the email is unknown, so that a login for a
/// missing account costs the same time as one with a wrong password.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_blocking("not-a-real-password").expect("hashing a constant succeeds"));

/// Verifies `password` against `stored`, or against a dummy hash when there is
/// no account, and answers whether it matched.
pub async fn verify(password: String, stored: Option<String>) -> AppResult<bool> {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let parsed = PasswordHash::new(&stored)
            .map_err(|e| AppError::Internal(format!("stored password hash is malformed: {e}")))?;
        let matched = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(known && matched)
    })
    .await
    .map_err(|e| AppError::Internal(format!("password verification task failed: {e}")))?
}
