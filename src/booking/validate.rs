//! Input checks for bookings.
use crate::{
    error::{AppError, AppResult},
    ids::{SeatId, ShowId},
    proto,
    validate::AllFields,
    validate::bounded_text,
};

pub const MAX_SEATS_PER_BOOKING: usize = 10;
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 100;

/// What makes a repeated CreateBooking the same one: at most
/// [`MAX_IDEMPOTENCY_KEY_CHARS`], trimmed, never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// `None` for an empty (absent) key.
    pub fn parse(raw: &str) -> AppResult<Option<Self>> {
        let key = bounded_text("idempotency_key", raw, MAX_IDEMPOTENCY_KEY_CHARS)?;
        Ok((!key.is_empty()).then_some(Self(key)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<IdempotencyKey> for String {
    fn from(key: IdempotencyKey) -> Self {
        key.0
    }
}

pub struct NewBooking {
    pub show_id: ShowId,
    /// In the order requested; distinct.
    pub seat_ids: Vec<SeatId>,
    pub idempotency_key: Option<IdempotencyKey>,
}

pub fn new_booking(req: &proto::CreateBookingRequest) -> AppResult<NewBooking> {
    let (show_id, seat_ids, idempotency_key) = (
        ShowId::parse("show_id", &req.show_id),
        seat_list(&req.seat_ids),
        IdempotencyKey::parse(&req.idempotency_key),
    )
        .all_fields()?;
    Ok(NewBooking {
        show_id,
        seat_ids,
        idempotency_key,
    })
}

/// 1 to MAX_SEATS_PER_BOOKING distinct seat ids.
fn seat_list(raw_seats: &[String]) -> AppResult<Vec<SeatId>> {
    if raw_seats.is_empty() {
        return Err(AppError::invalid(
            "seat_ids",
            "at least one seat is required",
        ));
    }
    if raw_seats.len() > MAX_SEATS_PER_BOOKING {
        return Err(AppError::invalid(
            "seat_ids",
            format!("at most {MAX_SEATS_PER_BOOKING} seats per booking"),
        ));
    }
    let mut seat_ids: Vec<SeatId> = Vec::with_capacity(raw_seats.len());
    for (i, raw) in raw_seats.iter().enumerate() {
        let seat = SeatId::parse(format!("seat_ids[{i}]"), raw)?;
        if seat_ids.contains(&seat) {
            return Err(AppError::invalid(
                format!("seat_ids[{i}]"),
                format!("seat {seat} is listed twice"),
            ));
        }
        seat_ids.push(seat);
    }
    Ok(seat_ids)
}
