//! Bookings on the wire.
use super::timestamp;
use crate::{
    entity::booking::{self, CancelReason, Status},
    proto,
};

impl From<CancelReason> for proto::CancelReason {
    fn from(reason: CancelReason) -> Self {
        match reason {
            CancelReason::ByUser => Self::ByUser,
            CancelReason::ShowDeleted => Self::ShowDeleted,
            CancelReason::MovieDeleted => Self::MovieDeleted,
        }
    }
}

impl From<Status> for proto::BookingStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Confirmed => Self::Confirmed,
            Status::Cancelled => Self::Cancelled,
        }
    }
}

impl From<booking::Model> for proto::Booking {
    fn from(b: booking::Model) -> Self {
        Self {
            seat_ids: b.seat_ids.0.into_iter().map(String::from).collect(),
            id: b.id.to_string(),
            show_id: b.show_id.map(|s| s.to_string()).unwrap_or_default(),
            status: proto::BookingStatus::from(b.status).into(),
            total_cents: b.total_cents.0,
            created_at: Some(timestamp(b.created_at)),
            movie_title: b.movie_title,
            theatre_name: b.theatre_name,
            starts_at: Some(timestamp(b.starts_at)),
            user_id: b.user_id.to_string(),
            cancel_reason: b
                .cancel_reason
                .map_or(proto::CancelReason::Unspecified, Into::into)
                .into(),
            cancelled_at: b.cancelled_at.map(timestamp),
        }
    }
}
