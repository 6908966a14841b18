//! PASETO v4.public access tokens (Ed25519).
//!
//! Claims: `sub` (user id), `role`, `iat`, `nbf`, `exp`, `jti`, `iss`. Expiry is
//! checked against the injected [`Clock`], not by pasetors' wall-clock rules, so
//! tests control it.
use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, SecondsFormat, Utc};
use pasetors::{
    Public,
    claims::Claims,
    keys::{AsymmetricKeyPair, AsymmetricPublicKey, AsymmetricSecretKey, Generate},
    paserk::FormatAsPaserk,
    token::UntrustedToken,
    version4::{PublicToken, V4},
};

use crate::{
    clock::Clock,
    config::TokenKeySource,
    entity::user::Role,
    error::{AppError, AppResult, Reason},
    ids::UserId,
};

const ISSUER: &str = "theatre";
/// Binds tokens to this service: a v4.public token signed for another purpose
/// with the same key does not verify here.
const IMPLICIT_ASSERTION: &[u8] = b"theatre.v1.access";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("token key: {0}")]
    Io(#[from] std::io::Error),
    #[error("token key is not a valid k4.secret PASERK")]
    Malformed,
    #[error("token key generation failed")]
    Generate,
}

/// Loads the signing key, generating and saving one (mode 0600) when the key
/// file does not exist yet.
pub fn load_key(source: &TokenKeySource) -> Result<AsymmetricSecretKey<V4>, KeyError> {
    match source {
        TokenKeySource::Paserk(paserk) => parse_key(paserk.expose()),
        TokenKeySource::File(path) if path.exists() => {
            parse_key(std::fs::read_to_string(path)?.trim())
        }
        TokenKeySource::File(path) => {
            let key = AsymmetricKeyPair::<V4>::generate()
                .map_err(|_| KeyError::Generate)?
                .secret;
            write_key_file(path, &key)?;
            tracing::info!(path = %path.display(), "generated a new token signing key");
            Ok(key)
        }
    }
}

fn parse_key(paserk: &str) -> Result<AsymmetricSecretKey<V4>, KeyError> {
    AsymmetricSecretKey::<V4>::try_from(paserk).map_err(|_| KeyError::Malformed)
}

fn write_key_file(path: &Path, key: &AsymmetricSecretKey<V4>) -> Result<(), KeyError> {
    use std::io::Write;
    let mut paserk = String::new();
    key.fmt(&mut paserk).map_err(|_| KeyError::Malformed)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(paserk.as_bytes())?;
    Ok(())
}

/// Formats a key as PASERK (for `THEATRE_TOKEN_KEY`).
pub fn key_to_paserk(key: &AsymmetricSecretKey<V4>) -> String {
    let mut paserk = String::new();
    key.fmt(&mut paserk)
        .expect("formatting a key into a String succeeds");
    paserk
}

/// Who is calling, as proven by a verified token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedClaims {
    pub user_id: UserId,
    pub role: Role,
}

pub struct IssuedToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

pub struct TokenIssuer {
    secret: AsymmetricSecretKey<V4>,
    public: AsymmetricPublicKey<V4>,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    /// Tokens whose signature has been verified, with their claims. Checking
    /// an Ed25519 signature was a quarter of the server's CPU on cached reads
    /// (BENCHMARKS.md); a token is immutable, so the same string verifies the
    /// same way every time. The validity window is still checked on each use.
    /// foldhash, not SipHash: a token is ~375 bytes, and SipHash over it was
    /// 1% of an authenticated call; the keys are signed tokens, which a
    /// caller cannot choose to collide without the signing key.
    verified: Mutex<Verified>,
}

type Verified = HashMap<Box<str>, SignedClaims, foldhash::fast::RandomState>;

/// Past this many remembered tokens, expired ones are dropped, or all if none is.
const VERIFIED_CAPACITY: usize = 10_000;

/// What a token's signature vouches for, before its validity window is checked.
#[derive(Debug, Clone, Copy)]
struct SignedClaims {
    claims: VerifiedClaims,
    not_before: DateTime<Utc>,
    expires: DateTime<Utc>,
}

impl SignedClaims {
    fn valid_at(&self, now: DateTime<Utc>) -> AppResult<VerifiedClaims> {
        if now >= self.expires {
            return Err(AppError::Unauthenticated(
                Reason::TokenExpired,
                "access token expired".into(),
            ));
        }
        if now < self.not_before {
            return Err(AppError::Unauthenticated(
                Reason::TokenInvalid,
                "invalid access token".into(),
            ));
        }
        Ok(self.claims)
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl TokenIssuer {
    /// The key page tokens are derived from (`page::Pages::from_secret`).
    pub fn secret_bytes(&self) -> &[u8] {
        self.secret.as_bytes()
    }

    pub fn new(secret: AsymmetricSecretKey<V4>, ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        let public = AsymmetricPublicKey::<V4>::try_from(&secret)
            .expect("an Ed25519 secret key always has a public key");
        Self {
            secret,
            public,
            ttl,
            clock,
            verified: Mutex::default(),
        }
    }

    pub fn issue(&self, user_id: UserId, role: Role) -> AppResult<IssuedToken> {
        let now = self.clock.now();
        let ttl = chrono::Duration::from_std(self.ttl)
            .map_err(|_| AppError::Internal("token ttl out of range".into()))?;
        let expires_at = now + ttl;
        let claims = (|| {
            let mut claims = Claims::new()?;
            claims.issuer(ISSUER)?;
            claims.subject(&user_id.to_string())?;
            claims.issued_at(&rfc3339(now))?;
            claims.not_before(&rfc3339(now))?;
            claims.expiration(&rfc3339(expires_at))?;
            claims.token_identifier(&uuid::Uuid::now_v7().to_string())?;
            claims.add_additional("role", role_claim(role))?;
            claims.to_string()
        })()
        .map_err(|e| AppError::Internal(format!("building token claims failed: {e}")))?;
        let token = PublicToken::sign(
            &self.secret,
            claims.as_bytes(),
            None,
            Some(IMPLICIT_ASSERTION),
        )
        .map_err(|e| AppError::Internal(format!("signing token failed: {e}")))?;
        Ok(IssuedToken { token, expires_at })
    }

    /// Verifies signature, issuer and validity window; any failure is `UNAUTHENTICATED`.
    pub fn verify(&self, token: &str) -> AppResult<VerifiedClaims> {
        let now = self.clock.now();
        let known = self.remembered().get(token).copied();
        if let Some(signed) = known {
            return signed.valid_at(now);
        }
        let signed = self.verify_signature(token)?;
        let mut remembered = self.remembered();
        if remembered.len() >= VERIFIED_CAPACITY {
            remembered.retain(|_, s| s.expires > now);
            if remembered.len() >= VERIFIED_CAPACITY {
                remembered.clear();
            }
        }
        remembered.insert(token.into(), signed);
        drop(remembered);
        signed.valid_at(now)
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, Verified> {
        self.verified.lock().expect("token cache lock poisoned")
    }

    /// The claims a token's valid signature vouches for (issuer, subject, role, window).
    fn verify_signature(&self, token: &str) -> AppResult<SignedClaims> {
        let invalid =
            || AppError::Unauthenticated(Reason::TokenInvalid, "invalid access token".into());
        let untrusted = UntrustedToken::<Public, V4>::try_from(token).map_err(|_| invalid())?;
        let trusted = PublicToken::verify(&self.public, &untrusted, None, Some(IMPLICIT_ASSERTION))
            .map_err(|_| invalid())?;
        let claims = Claims::from_string(trusted.payload()).map_err(|_| invalid())?;
        let text = |name: &str| claims.get_claim(name).and_then(|v| v.as_str());
        let time = |name: &str| {
            text(name)
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        if text("iss") != Some(ISSUER) {
            return Err(invalid());
        }
        let (Some(not_before), Some(expires)) = (time("nbf"), time("exp")) else {
            return Err(invalid());
        };
        let user_id = text("sub")
            .and_then(|s| uuid::Uuid::try_parse(s).ok())
            .map(UserId)
            .ok_or_else(invalid)?;
        let role = match text("role") {
            Some("USER") => Role::User,
            Some("ADMIN") => Role::Admin,
            _ => return Err(invalid()),
        };
        Ok(SignedClaims {
            claims: VerifiedClaims { user_id, role },
            not_before,
            expires,
        })
    }
}

fn role_claim(role: Role) -> &'static str {
    match role {
        Role::User => "USER",
        Role::Admin => "ADMIN",
    }
}
