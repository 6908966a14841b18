//! BookingService handlers.
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{
    repo::{self, cancel_reason_to_proto},
    validate,
};
use crate::{
    auth::layer::caller,
    cache::{Cache, Generation},
    clock::Clock,
    db::Database,
    entity::booking,
    error::{AppError, AppResult},
    ids::{BookingId, ShowId},
    metrics::Metrics,
    proto::{self, booking_service_server::BookingService},
    wire::timestamp,
};

pub struct BookingApi {
    db: Database,
    cache: Cache,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
}

/// Why a booking was refused, as the `reason` label of `theatre_bookings_failed_total`.
fn failure_reason(err: &AppError) -> &'static str {
    match err {
        AppError::SeatsTaken(_) => "seats_taken",
        AppError::NotFound { .. } => "show_not_found",
        AppError::FailedPrecondition(_) => "show_started",
        AppError::InvalidArgument { .. } => "invalid_argument",
        AppError::Unauthenticated(_) | AppError::PermissionDenied(_) => "unauthenticated",
        AppError::AlreadyExists(_) => "conflict",
        AppError::Unavailable(_)
        | AppError::ResourceExhausted { .. }
        | AppError::DeadlineExceeded(_) => "unavailable",
        AppError::Database(_) | AppError::Internal(_) => "internal",
    }
}

impl BookingApi {
    pub fn new(db: Database, cache: Cache, clock: Arc<dyn Clock>, metrics: Metrics) -> Self {
        Self {
            db,
            cache,
            clock,
            metrics,
        }
    }

    async fn book(
        &self,
        request: &Request<proto::CreateBookingRequest>,
    ) -> AppResult<booking::Model> {
        let caller = caller(request)?;
        let new = validate::new_booking(request.get_ref())?;
        let booking =
            repo::create_booking(&self.db, caller.user_id, &new, self.clock.now()).await?;
        self.seats_changed(new.show_id).await;
        tracing::info!(booking_id = %booking.id, show_id = %new.show_id, seats = new.seat_ids.len(), "booking confirmed");
        Ok(booking)
    }

    /// Seat maps and availability counts of `show` are stale after a claim or release.
    async fn seats_changed(&self, show: ShowId) {
        self.cache
            .invalidate(&[Generation::SeatsOf(show), Generation::Seats])
            .await;
    }
}

pub fn booking_to_proto(b: booking::Model) -> proto::Booking {
    let status = match b.status {
        booking::Status::Confirmed => proto::BookingStatus::Confirmed,
        booking::Status::Cancelled => proto::BookingStatus::Cancelled,
    };
    proto::Booking {
        seat_ids: b.seat_list(),
        id: b.id.to_string(),
        show_id: b.show_id.map(|s| s.to_string()).unwrap_or_default(),
        status: status.into(),
        total_cents: b.total_cents,
        created_at: Some(timestamp(b.created_at)),
        movie_title: b.movie_title,
        theatre_name: b.theatre_name,
        starts_at: Some(timestamp(b.starts_at)),
        user_id: b.user_id.to_string(),
        cancel_reason: b
            .cancel_reason
            .map(cancel_reason_to_proto)
            .unwrap_or(proto::CancelReason::Unspecified)
            .into(),
        cancelled_at: b.cancelled_at.map(timestamp),
    }
}

#[tonic::async_trait]
impl BookingService for BookingApi {
    async fn create_booking(
        &self,
        request: Request<proto::CreateBookingRequest>,
    ) -> Result<Response<proto::CreateBookingResponse>, Status> {
        let booking = match self.book(&request).await {
            Ok(booking) => {
                self.metrics.booking_confirmed();
                booking
            }
            Err(err) => {
                self.metrics.booking_failed(failure_reason(&err));
                return Err(err.into());
            }
        };
        Ok(Response::new(proto::CreateBookingResponse {
            booking: Some(booking_to_proto(booking)),
        }))
    }

    async fn list_my_bookings(
        &self,
        request: Request<proto::ListMyBookingsRequest>,
    ) -> Result<Response<proto::ListMyBookingsResponse>, Status> {
        let caller = caller(&request)?;
        let bookings = repo::list_for_user(self.db.conn(), caller.user_id).await?;
        Ok(Response::new(proto::ListMyBookingsResponse {
            bookings: bookings.into_iter().map(booking_to_proto).collect(),
        }))
    }

    async fn get_booking(
        &self,
        request: Request<proto::GetBookingRequest>,
    ) -> Result<Response<proto::GetBookingResponse>, Status> {
        let caller = caller(&request)?;
        let id = BookingId::parse("booking_id", &request.get_ref().booking_id)?;
        let booking = repo::get_for_user(self.db.conn(), caller.user_id, id).await?;
        Ok(Response::new(proto::GetBookingResponse {
            booking: Some(booking_to_proto(booking)),
        }))
    }

    async fn cancel_booking(
        &self,
        request: Request<proto::CancelBookingRequest>,
    ) -> Result<Response<proto::CancelBookingResponse>, Status> {
        let caller = caller(&request)?;
        let id = BookingId::parse("booking_id", &request.get_ref().booking_id)?;
        let booking = repo::cancel_for_user(&self.db, caller.user_id, id, self.clock.now()).await?;
        if let Some(show) = booking.show_id {
            self.seats_changed(ShowId(show)).await;
        }
        tracing::info!(booking_id = %id, "booking cancelled by user");
        self.metrics.booking_cancelled();
        Ok(Response::new(proto::CancelBookingResponse {
            booking: Some(booking_to_proto(booking)),
        }))
    }
}
