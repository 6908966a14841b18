//! Domain values to protobuf and back: the one place the wire format meets
//! the rest. One module per feature; they sit below the features (not inside
//! them) because the outbox, below the features too, encodes the same values
//! into its events. Requests become domain values in each feature's
//! `validate.rs` (wire → domain, refusing what is invalid).
pub mod auth;
pub mod booking;
pub mod catalog;

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
