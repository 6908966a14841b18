//! BookingService handlers.
use tonic::{Request, Response, Status};

use super::{repo, validate};
use crate::{
    auth::layer::caller,
    entity::booking,
    error::{AppError, AppResult},
    ids::BookingId,
    metrics::Metrics,
    page::Pages,
    proto::{self, booking_service_server::BookingService},
    store::Store,
};

pub struct BookingApi {
    store: Store,
    booker: repo::Booker,
    metrics: Metrics,
    pages: Pages,
}

/// Why a booking was refused, as the `reason` label of `theatre_bookings_failed_total`.
fn failure_reason(err: &AppError) -> &'static str {
    match err {
        AppError::SeatsTaken(_) => "seats_taken",
        AppError::NotFound { .. } => "show_not_found",
        AppError::FailedPrecondition(..) => "show_started",
        AppError::InvalidArgument { .. } => "invalid_argument",
        AppError::Unauthenticated(..) | AppError::PermissionDenied(_) => "unauthenticated",
        AppError::AlreadyExists(..) => "conflict",
        AppError::Unavailable(_)
        | AppError::ResourceExhausted { .. }
        | AppError::DeadlineExceeded(_) => "unavailable",
        AppError::Database(_) | AppError::Internal(_) => "internal",
    }
}

impl BookingApi {
    pub fn new(store: Store, metrics: Metrics, pages: Pages) -> Self {
        Self {
            booker: repo::Booker::new(store.clone(), metrics.clone()),
            store,
            metrics,
            pages,
        }
    }

    async fn book(
        &self,
        request: &Request<proto::CreateBookingRequest>,
    ) -> AppResult<booking::Model> {
        let caller = caller(request)?;
        let new = validate::new_booking(request.get_ref())?;
        let booking = self.booker.create_booking(caller.user_id, &new).await?;
        tracing::info!(booking_id = %booking.id, show_id = %new.show_id, seats = new.seat_ids.len(), "booking confirmed");
        Ok(booking)
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
            booking: Some(booking.into()),
        }))
    }

    async fn list_my_bookings(
        &self,
        request: Request<proto::ListMyBookingsRequest>,
    ) -> Result<Response<proto::ListMyBookingsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.get_ref();
        // A token continues this user's listing only.
        let listing = format!("bookings:{}", caller.user_id);
        let page = self
            .pages
            .request(&listing, req.page_size, &req.page_token)?;
        let (bookings, more) =
            repo::list_for_user(self.store.reader(), caller.user_id, &page).await?;
        let last = bookings.last().map(|b| b.id.0);
        Ok(Response::new(proto::ListMyBookingsResponse {
            next_page_token: self.pages.next(&listing, last, more),
            bookings: bookings.into_iter().map(Into::into).collect(),
        }))
    }

    async fn get_booking(
        &self,
        request: Request<proto::GetBookingRequest>,
    ) -> Result<Response<proto::GetBookingResponse>, Status> {
        let caller = caller(&request)?;
        let id = BookingId::parse("booking_id", &request.get_ref().booking_id)?;
        let booking = repo::get_for_user(self.store.reader(), caller.user_id, id).await?;
        Ok(Response::new(proto::GetBookingResponse {
            booking: Some(booking.into()),
        }))
    }

    async fn cancel_booking(
        &self,
        request: Request<proto::CancelBookingRequest>,
    ) -> Result<Response<proto::CancelBookingResponse>, Status> {
        let caller = caller(&request)?;
        let id = BookingId::parse("booking_id", &request.get_ref().booking_id)?;
        let booking = self
            .store
            .write(async |tx| repo::cancel_for_user(tx, caller.user_id, id).await)
            .await?;
        tracing::info!(booking_id = %id, "booking cancelled by user");
        self.metrics.booking_cancelled();
        Ok(Response::new(proto::CancelBookingResponse {
            booking: Some(booking.into()),
        }))
    }
}
