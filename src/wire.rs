//! Conversions between domain values and protobuf wire types used by several services.
use chrono::{DateTime, Utc};
use prost_types::Timestamp;

use crate::error::{AppError, AppResult};

pub fn timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// A required timestamp field; `field` names it in the error.
pub fn from_timestamp(field: &'static str, ts: Option<Timestamp>) -> AppResult<DateTime<Utc>> {
    let ts = ts.ok_or_else(|| AppError::invalid(field, "is required"))?;
    u32::try_from(ts.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(ts.seconds, nanos))
        .ok_or_else(|| AppError::invalid(field, "is not a valid timestamp"))
}
