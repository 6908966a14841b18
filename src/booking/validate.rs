//! Input checks for bookings.
use crate::{
    error::{AppError, AppResult},
    ids::ShowId,
    proto,
    validate::bounded_text,
};

pub const MAX_SEATS_PER_BOOKING: usize = 10;
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 100;

pub struct NewBooking {
    pub show_id: ShowId,
    /// In the order requested; distinct.
    pub seat_ids: Vec<String>,
    pub idempotency_key: Option<String>,
}

fn is_seat_id(s: &str) -> bool {
    let letters = s.chars().take_while(|c| c.is_ascii_uppercase()).count();
    let digits = &s[letters..];
    (1..=3).contains(&letters)
        && (1..=3).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0')
}

pub fn new_booking(req: &proto::CreateBookingRequest) -> AppResult<NewBooking> {
    let show_id = ShowId::parse("show_id", &req.show_id)?;
    if req.seat_ids.is_empty() {
        return Err(AppError::invalid(
            "seat_ids",
            "at least one seat is required",
        ));
    }
    if req.seat_ids.len() > MAX_SEATS_PER_BOOKING {
        return Err(AppError::invalid(
            "seat_ids",
            format!("at most {MAX_SEATS_PER_BOOKING} seats per booking"),
        ));
    }
    let mut seat_ids: Vec<String> = Vec::with_capacity(req.seat_ids.len());
    for (i, seat) in req.seat_ids.iter().enumerate() {
        if !is_seat_id(seat) {
            return Err(AppError::invalid(
                format!("seat_ids[{i}]"),
                format!("{seat:?} is not a seat id such as A1"),
            ));
        }
        if seat_ids.contains(seat) {
            return Err(AppError::invalid(
                format!("seat_ids[{i}]"),
                format!("seat {seat} is listed twice"),
            ));
        }
        seat_ids.push(seat.clone());
    }
    let key = bounded_text(
        "idempotency_key",
        &req.idempotency_key,
        MAX_IDEMPOTENCY_KEY_CHARS,
    )?;
    Ok(NewBooking {
        show_id,
        seat_ids,
        idempotency_key: (!key.is_empty()).then_some(key),
    })
}
