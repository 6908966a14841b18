//! Checks for sign-up, login and role changes.
use crate::{
    error::{AppError, AppResult},
    validate::required_text,
};

pub const MIN_PASSWORD_CHARS: usize = 8;
/// Bounds the argon2 input so a huge password cannot be used to burn CPU.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// A syntactically plausible address, normalised to lower case: a value of
/// this type is one ([`Email::parse`] is the only way to make one).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> AppResult<Self> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(AppError::invalid("email", "is required"));
        }
        if email.len() > 254 {
            return Err(AppError::invalid("email", "must be at most 254 characters"));
        }
        let valid = match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && local.len() <= 64
                    && !domain.contains('@')
                    && domain.contains('.')
                    && domain.split('.').all(|label| !label.is_empty())
                    && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            }
            None => false,
        };
        if valid {
            Ok(Self(email))
        } else {
            Err(AppError::invalid("email", "is not a valid email address"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn new_password(raw: &str) -> AppResult<String> {
    let chars = raw.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(AppError::invalid(
            "password",
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(AppError::invalid(
            "password",
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(raw.to_owned())
}

/// At login only presence and the upper bound matter: a wrong password is UNAUTHENTICATED.
pub fn login_password(raw: &str) -> AppResult<String> {
    if raw.is_empty() {
        return Err(AppError::invalid("password", "is required"));
    }
    if raw.chars().count() > MAX_PASSWORD_CHARS {
        return Err(AppError::invalid(
            "password",
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(raw.to_owned())
}

pub fn display_name(raw: &str) -> AppResult<String> {
    required_text("display_name", raw, 100)
}
