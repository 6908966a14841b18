//! The application error and its single mapping to the wire.
//!
//! Client mistakes map to precise codes whose messages name the field or seat;
//! database and other internal failures are logged here and answered with a
//! bare `INTERNAL`, so no SQL or secret ever reaches a client.
use sea_orm::{DbErr, RuntimeErr, SqlErr};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{entity} {id} not found")]
    NotFound { entity: &'static str, id: String },
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// Seats that another booking holds; the whole booking was refused.
    #[error("seats already booked: {}", .0.join(", "))]
    SeatsTaken(Vec<String>),
    /// A conflict the client may retry (deadlock, serialization failure).
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    Unavailable(String),
    /// Refused to protect the service (overload, login throttling); the
    /// client may retry after `retry_after`.
    #[error("{message}")]
    ResourceExhausted {
        message: String,
        retry_after: std::time::Duration,
    },
    #[error("{0}")]
    DeadlineExceeded(String),
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
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

/// SQLSTATEs PostgreSQL uses for conflicts that a retry resolves.
const RETRYABLE_SQLSTATES: &[&str] = &["40001", "40P01"];

/// The SQLSTATE and message of an error the database itself raised.
pub fn raised(err: &DbErr) -> Option<(std::borrow::Cow<'_, str>, &str)> {
    let (DbErr::Exec(RuntimeErr::SqlxError(sqlx)) | DbErr::Query(RuntimeErr::SqlxError(sqlx))) =
        err
    else {
        return None;
    };
    let db = sqlx.as_database_error()?;
    Some((db.code()?, db.message()))
}

fn classify_db_error(err: &DbErr) -> Option<AppError> {
    if let DbErr::ConnectionAcquire(_) = err {
        return Some(AppError::Unavailable(
            "database is busy, retry later".into(),
        ));
    }
    let (code, _) = raised(err)?;
    if RETRYABLE_SQLSTATES.contains(&code.as_ref()) {
        return Some(AppError::Aborted(
            "conflicting concurrent update, retry".into(),
        ));
    }
    // SQLITE_BUSY (5) / SQLITE_LOCKED (6) after the busy timeout.
    if code == "5" || code == "6" {
        return Some(AppError::Aborted("database is locked, retry".into()));
    }
    None
}

impl From<AppError> for Status {
    fn from(err: AppError) -> Self {
        // The wire message of a client error is its Display text.
        let message = err.to_string();
        match err {
            AppError::InvalidArgument { field, reason } => Status::with_error_details(
                Code::InvalidArgument,
                message,
                ErrorDetails::with_bad_request_violation(field, reason),
            ),
            AppError::Unauthenticated(m) => Status::unauthenticated(m),
            AppError::PermissionDenied(m) => Status::permission_denied(m),
            AppError::NotFound { .. } => Status::not_found(message),
            AppError::AlreadyExists(m) => Status::already_exists(m),
            AppError::FailedPrecondition(m) => Status::failed_precondition(m),
            AppError::SeatsTaken(seats) => {
                let mut details = ErrorDetails::new();
                for seat in seats {
                    details.add_precondition_failure_violation(
                        "SEAT_TAKEN",
                        seat,
                        "seat is already booked",
                    );
                }
                Status::with_error_details(Code::FailedPrecondition, message, details)
            }
            AppError::Aborted(m) => Status::aborted(m),
            AppError::Unavailable(m) => Status::unavailable(m),
            AppError::ResourceExhausted { retry_after, .. } => Status::with_error_details(
                Code::ResourceExhausted,
                message,
                ErrorDetails::with_retry_info(Some(retry_after)),
            ),
            AppError::DeadlineExceeded(m) => Status::deadline_exceeded(m),
            AppError::Database(db) => match classify_db_error(&db) {
                Some(mapped) => {
                    tracing::warn!(error = %db, "retryable database error");
                    mapped.into()
                }
                None => {
                    tracing::error!(error = %db, "database error");
                    Status::internal("internal error")
                }
            },
            AppError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;
