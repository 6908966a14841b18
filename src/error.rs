//! The application error and its single mapping to the wire.
//!
//! Client mistakes map to precise codes whose messages name the field or seat.
//! A database fault that is not the client's (lost or reset connection, server
//! shutting down or read-only, pool exhausted, a conflict a retry resolves)
//! becomes `UNAVAILABLE` with a retry delay, or `DEADLINE_EXCEEDED`, the moment
//! it is converted, so clients and their retry policies retry it. Whatever is
//! left is our own bug: logged here and answered with a bare `INTERNAL`, so no
//! SQL or secret ever reaches a client.
use std::time::Duration;

use sea_orm::{DbErr, RuntimeErr, SqlErr, sqlx};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Why a call failed, for programs to branch on: `google.rpc.ErrorInfo`'s
/// `reason` (AIP-193) in the domain [`DOMAIN`]. Stable: a reason is never
/// renamed or reused; a new cause gets a new one. The README lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No `authorization: Bearer <token>` header.
    TokenMissing,
    /// An authorization header that is not `Bearer <token>`.
    TokenMalformed,
    /// A token that does not verify.
    TokenInvalid,
    /// A token past its expiry: log in again.
    TokenExpired,
    /// Login with an unknown email or a wrong password.
    BadCredentials,
    /// Sign-up with an email an account already has.
    EmailTaken,
    /// A theatre of that name already exists in that city.
    TheatreExists,
    /// The theatre is occupied by another show at that time.
    TheatreOccupied,
    /// The show has already started.
    ShowStarted,
    /// The booking is already cancelled.
    BookingCancelled,
    /// Too many failed logins for the email or from the address.
    LoginThrottled,
    /// Too many sign-ups from the address.
    SignupThrottled,
    /// The server is at capacity.
    Overloaded,
    /// The request is larger than THEATRE_MAX_MESSAGE_BYTES.
    MessageTooLarge,
    /// HTTP/JSON: no RPC is bound to the path.
    RouteNotFound,
    /// HTTP/JSON: the path is bound, with another verb.
    VerbNotAllowed,
}

/// The `ErrorInfo` domain of every error this service gives.
pub const DOMAIN: &str = "theatre.v1";

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::TokenMissing => "TOKEN_MISSING",
            Reason::TokenMalformed => "TOKEN_MALFORMED",
            Reason::TokenInvalid => "TOKEN_INVALID",
            Reason::TokenExpired => "TOKEN_EXPIRED",
            Reason::BadCredentials => "BAD_CREDENTIALS",
            Reason::EmailTaken => "EMAIL_TAKEN",
            Reason::TheatreExists => "THEATRE_EXISTS",
            Reason::TheatreOccupied => "THEATRE_OCCUPIED",
            Reason::ShowStarted => "SHOW_STARTED",
            Reason::BookingCancelled => "BOOKING_CANCELLED",
            Reason::LoginThrottled => "LOGIN_THROTTLED",
            Reason::SignupThrottled => "SIGNUP_THROTTLED",
            Reason::Overloaded => "OVERLOADED",
            Reason::MessageTooLarge => "MESSAGE_TOO_LARGE",
            Reason::RouteNotFound => "ROUTE_NOT_FOUND",
            Reason::VerbNotAllowed => "VERB_NOT_ALLOWED",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Every invalid field of a request, each with why (`validate::all_fields`
    /// gathers them, so one refusal lists them all).
    #[error("{}", violations.iter().map(|(f, r)| format!("{f}: {r}")).collect::<Vec<_>>().join("; "))]
    InvalidArgument { violations: Vec<(String, String)> },
    #[error("{1}")]
    Unauthenticated(Reason, String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{entity} {id} not found")]
    NotFound { entity: &'static str, id: String },
    #[error("{1}")]
    AlreadyExists(Reason, String),
    #[error("{1}")]
    FailedPrecondition(Reason, String),
    /// Seats that another booking holds; the whole booking was refused.
    #[error("seats already booked: {}", .0.join(", "))]
    SeatsTaken(Vec<String>),
    /// A fault that is not the client's and a retry may not meet (database
    /// unreachable, connection lost, server shutting down); sent with RetryInfo.
    #[error("{0}")]
    Unavailable(String),
    /// Refused to protect the service (overload, login throttling); the
    /// client may retry after `retry_after`.
    #[error("{message}")]
    ResourceExhausted {
        reason: Reason,
        message: String,
        retry_after: std::time::Duration,
    },
    #[error("{0}")]
    DeadlineExceeded(String),
    /// A database error that is our bug (a transient one never becomes this;
    /// see `From<DbErr>`).
    #[error("database error: {0}")]
    Database(DbErr),
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            violations: vec![(field.into(), reason.into())],
        }
    }

    pub fn not_found(entity: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    /// True when the error is a unique-constraint violation from the database.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Self::Database(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))))
    }
}

/// How soon a client is told to retry after a transient database fault.
pub const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_millis(500);

/// The SQLSTATE and message of an error the database itself raised.
pub fn raised(err: &DbErr) -> Option<(std::borrow::Cow<'_, str>, &str)> {
    let db = sqlx_error(err)?.as_database_error()?;
    Some((db.code()?, db.message()))
}

/// True when the database refused a row for an exclusion constraint
/// (PostgreSQL's 23P01; SQLite has none).
pub fn is_exclusion_violation(err: &DbErr) -> bool {
    raised(err).is_some_and(|(code, _)| code == "23P01")
}

/// True when PostgreSQL aborted the statement to break a deadlock (40P01).
pub fn is_deadlock(err: &DbErr) -> bool {
    raised(err).is_some_and(|(code, _)| code == "40P01")
}

fn sqlx_error(err: &DbErr) -> Option<&sqlx::Error> {
    match err {
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => Some(e),
        _ => None,
    }
}

/// What a transient database fault tells the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transient {
    /// Retry: the database is unreachable, restarting, read-only or busy, or
    /// the statement lost a conflict a new attempt resolves.
    Unavailable,
    /// The database cancelled the statement on its own timeout.
    Deadline,
}

/// PostgreSQL SQLSTATEs, by class or in full, that are not the client's fault:
/// connection exceptions (08), a conflict a retry resolves (40001
/// serialization failure, 40P01 deadlock), a read-only transaction (25006, a
/// standby or `default_transaction_read_only`), insufficient resources (53),
/// lock not available (55P03), operator intervention (57P01 admin shutdown,
/// 57P02 crash shutdown, 57P03 cannot connect now, 57P04 database dropped),
/// system errors (58).
fn transient_sqlstate(code: &str) -> Option<Transient> {
    match code {
        "57014" => Some(Transient::Deadline),
        "40001" | "40P01" | "25006" | "55P03" | "57P01" | "57P02" | "57P03" | "57P04" => {
            Some(Transient::Unavailable)
        }
        _ if ["08", "53", "58"]
            .iter()
            .any(|class| code.starts_with(class)) =>
        {
            Some(Transient::Unavailable)
        }
        _ => None,
    }
}

/// SQLite result codes that are not the client's fault (extended codes carry
/// the primary one in their low byte): BUSY 5, LOCKED 6, NOMEM 7, READONLY 8,
/// IOERR 10, FULL 13, CANTOPEN 14, PROTOCOL 15.
fn transient_sqlite(code: &str) -> Option<Transient> {
    match code.parse::<u32>().map(|c| c & 0xff) {
        Ok(5 | 6 | 7 | 8 | 10 | 13 | 14 | 15) => Some(Transient::Unavailable),
        _ => None,
    }
}

fn transient(err: &DbErr) -> Option<Transient> {
    // No connection could be had, whatever the reason the server gave for
    // refusing one (55000 for a database with ALLOW_CONNECTIONS false, 53300
    // too many clients, 28P01 a rotated password): never the client's fault.
    if let DbErr::ConnectionAcquire(_) | DbErr::Conn(_) = err {
        return Some(Transient::Unavailable);
    }
    match sqlx_error(err)? {
        // Each backend's codes are read by its own table: masked like a
        // SQLite code, a numeric SQLSTATE such as 21000 would look like one.
        sqlx::Error::Database(db) => {
            let code = db.code()?;
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                transient_sqlite(&code)
            } else {
                transient_sqlstate(&code)
            }
        }
        // The connection broke (reset, closed by the server, EOF mid-message)
        // or could not be had: the statement may or may not have run, which
        // the idempotency key of a retried write settles.
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => Some(Transient::Unavailable),
        _ => None,
    }
}

impl Transient {
    /// The client's error for this fault, logged once with what caused it.
    fn error(self, cause: &dyn std::fmt::Display) -> AppError {
        match self {
            Transient::Unavailable => {
                tracing::warn!(error = %cause, "database unavailable");
                AppError::Unavailable("database unavailable, retry".into())
            }
            Transient::Deadline => {
                tracing::warn!(error = %cause, "database statement timed out");
                AppError::DeadlineExceeded("database statement timed out".into())
            }
        }
    }
}

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        match transient(&err) {
            Some(transient) => transient.error(&err),
            None => AppError::Database(err),
        }
    }
}

/// An error of the seat claims' own connections (tokio-postgres), read by
/// the same SQLSTATE table as the pool's. Without a SQLSTATE, a connection
/// that closed or failed at the socket is an outage; anything else (a value
/// that would not convert) is our bug.
pub fn from_postgres(err: &tokio_postgres::Error) -> AppError {
    let broken = || {
        err.is_closed() || std::error::Error::source(err).is_some_and(|s| s.is::<std::io::Error>())
    };
    match err.code().map(|code| transient_sqlstate(code.code())) {
        Some(Some(transient)) => transient.error(err),
        None if broken() => Transient::Unavailable.error(err),
        _ => AppError::Internal(format!("seat claim: {err}")),
    }
}

/// A connection of the seat claims' own that could not be opened or
/// prepared: whatever the server said, not the client's fault.
pub fn unreachable(err: &tokio_postgres::Error) -> AppError {
    Transient::Unavailable.error(err)
}

/// A status of `code` whose only detail is the `ErrorInfo` of `reason`.
pub fn status_for(code: Code, reason: Reason, message: impl Into<String>) -> Status {
    let details =
        ErrorDetails::with_error_info(reason.as_str(), DOMAIN, std::collections::HashMap::new());
    Status::with_error_details(code, message.into(), details)
}

impl AppError {
    /// The `ErrorInfo` reason: the variant's own where one kind of error has
    /// several causes, otherwise one per kind.
    fn reason(&self) -> std::borrow::Cow<'static, str> {
        match self {
            AppError::InvalidArgument { .. } => "INVALID_FIELD".into(),
            AppError::Unauthenticated(reason, _)
            | AppError::AlreadyExists(reason, _)
            | AppError::FailedPrecondition(reason, _)
            | AppError::ResourceExhausted { reason, .. } => reason.as_str().into(),
            AppError::PermissionDenied(_) => "ADMIN_REQUIRED".into(),
            // "user with email" (the CLI's lookup) is a user too.
            AppError::NotFound { entity, .. } => {
                let kind = entity.split(' ').next().unwrap_or(entity);
                format!("{}_NOT_FOUND", kind.to_uppercase()).into()
            }
            AppError::SeatsTaken(_) => "SEAT_TAKEN".into(),
            AppError::Unavailable(_) => "UNAVAILABLE".into(),
            AppError::DeadlineExceeded(_) => "DEADLINE_EXCEEDED".into(),
            AppError::Database(_) | AppError::Internal(_) => "INTERNAL".into(),
        }
    }
}

impl From<AppError> for Status {
    fn from(err: AppError) -> Self {
        // The wire message of a client error is its Display text.
        let message = err.to_string();
        let mut details = ErrorDetails::new();
        let mut metadata = std::collections::HashMap::new();
        let reason = err.reason();
        let code = match err {
            AppError::InvalidArgument { violations } => {
                let fields: Vec<&str> = violations.iter().map(|(f, _)| f.as_str()).collect();
                metadata.insert("field".to_owned(), fields.join(","));
                for (field, reason) in violations {
                    details.add_bad_request_violation(field, reason);
                }
                Code::InvalidArgument
            }
            AppError::Unauthenticated(..) => Code::Unauthenticated,
            AppError::PermissionDenied(_) => Code::PermissionDenied,
            AppError::NotFound { entity, id } => {
                details.set_resource_info(entity, id, "", message.clone());
                Code::NotFound
            }
            AppError::AlreadyExists(..) => Code::AlreadyExists,
            AppError::FailedPrecondition(..) => Code::FailedPrecondition,
            AppError::SeatsTaken(seats) => {
                metadata.insert("seats".to_owned(), seats.join(","));
                for seat in seats {
                    details.add_precondition_failure_violation(
                        "SEAT_TAKEN",
                        seat,
                        "seat is already booked",
                    );
                }
                Code::FailedPrecondition
            }
            AppError::Unavailable(_) => {
                details.set_retry_info(Some(UNAVAILABLE_RETRY_AFTER));
                Code::Unavailable
            }
            AppError::ResourceExhausted { retry_after, .. } => {
                details.set_retry_info(Some(retry_after));
                Code::ResourceExhausted
            }
            AppError::DeadlineExceeded(_) => Code::DeadlineExceeded,
            AppError::Database(db) => {
                tracing::error!(error = %db, "database error");
                details.set_error_info(reason, DOMAIN, metadata);
                return Status::with_error_details(Code::Internal, "internal error", details);
            }
            AppError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                details.set_error_info(reason, DOMAIN, metadata);
                return Status::with_error_details(Code::Internal, "internal error", details);
            }
        };
        details.set_error_info(reason, DOMAIN, metadata);
        Status::with_error_details(code, message, details)
    }
}

pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_backend_reads_its_own_codes() {
        assert_eq!(transient_sqlstate("57P01"), Some(Transient::Unavailable));
        assert_eq!(transient_sqlstate("08006"), Some(Transient::Unavailable));
        assert_eq!(transient_sqlstate("57014"), Some(Transient::Deadline));
        // A numeric SQLSTATE whose low byte is SQLITE_READONLY (0x5208 & 0xff
        // = 8) is our bug, not an outage.
        assert_eq!(transient_sqlstate("21000"), None);
        assert_eq!(transient_sqlstate("23505"), None);
        assert_eq!(transient_sqlite("5"), Some(Transient::Unavailable));
        assert_eq!(transient_sqlite("517"), Some(Transient::Unavailable)); // BUSY_SNAPSHOT
        assert_eq!(transient_sqlite("19"), None); // CONSTRAINT
    }

    #[test]
    fn a_connection_that_cannot_be_had_is_unavailable() {
        let refused = DbErr::Conn(sea_orm::RuntimeErr::Internal(
            "not accepting connections".into(),
        ));
        assert_eq!(transient(&refused), Some(Transient::Unavailable));
        let query = DbErr::Query(sea_orm::RuntimeErr::Internal("syntax".into()));
        assert_eq!(transient(&query), None);
    }
}
