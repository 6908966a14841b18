//! Input checks for catalog writes and listings.
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::{
    error::{AppError, AppResult},
    ids::{Cents, MovieId, TheatreId},
    proto,
    validate::{AllFields, bounded_text, in_range, required_text},
    wire::from_timestamp,
};

pub const MAX_ROWS: usize = 50;
pub const MAX_SEATS_PER_ROW: i32 = 100;
pub const MAX_PRICE_CENTS: i64 = 10_000_000;

pub struct NewMovie {
    pub title: String,
    pub description: String,
    pub duration_minutes: i32,
    pub genre: String,
}

/// The fields of a movie to change; `None` leaves a field as it is.
#[derive(Default)]
pub struct MoviePatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub duration_minutes: Option<i32>,
    pub genre: Option<String>,
}

fn title(raw: &str) -> AppResult<String> {
    required_text("title", raw, 200)
}
fn description(raw: &str) -> AppResult<String> {
    bounded_text("description", raw, 2000)
}
fn duration(raw: i32) -> AppResult<i32> {
    in_range("duration_minutes", raw, 1..=1000)
}
fn genre(raw: &str) -> AppResult<String> {
    required_text("genre", raw, 50)
}

pub fn new_movie(req: &proto::CreateMovieRequest) -> AppResult<NewMovie> {
    let (title, description, duration_minutes, genre) = (
        title(&req.title),
        description(&req.description),
        duration(req.duration_minutes),
        genre(&req.genre),
    )
        .all_fields()?;
    Ok(NewMovie {
        title,
        description,
        duration_minutes,
        genre,
    })
}

pub fn movie_patch(req: &proto::UpdateMovieRequest) -> AppResult<(MovieId, MoviePatch)> {
    let (id, title, description, duration_minutes, genre) = (
        MovieId::parse("movie_id", &req.movie_id),
        req.title.as_deref().map(title).transpose(),
        req.description.as_deref().map(description).transpose(),
        req.duration_minutes.map(duration).transpose(),
        req.genre.as_deref().map(genre).transpose(),
    )
        .all_fields()?;
    let patch = MoviePatch {
        title,
        description,
        duration_minutes,
        genre,
    };
    if patch.title.is_none()
        && patch.description.is_none()
        && patch.duration_minutes.is_none()
        && patch.genre.is_none()
    {
        return Err(AppError::invalid(
            "movie",
            "set at least one of title, description, duration_minutes, genre",
        ));
    }
    Ok((id, patch))
}

pub struct NewTheatre {
    pub name: String,
    pub city: String,
}

pub fn new_theatre(req: &proto::CreateTheatreRequest) -> AppResult<NewTheatre> {
    let (name, city) = (
        required_text("name", &req.name, 100),
        required_text("city", &req.city, 100),
    )
        .all_fields()?;
    Ok(NewTheatre { name, city })
}

pub struct RowLayout {
    pub label: String,
    pub seats: i32,
    pub price_cents: Cents,
}

pub struct NewShow {
    pub movie_id: MovieId,
    pub theatre_id: TheatreId,
    pub starts_at: DateTime<Utc>,
    pub rows: Vec<RowLayout>,
}

/// A show request as a valid show: ids parse, it starts after `now` and no
/// later than `horizon` after it, and its rows are a well-formed layout.
pub fn new_show(
    req: &proto::CreateShowRequest,
    now: DateTime<Utc>,
    horizon: Duration,
) -> AppResult<NewShow> {
    let (movie_id, theatre_id, starts_at, rows) = (
        MovieId::parse("movie_id", &req.movie_id),
        TheatreId::parse("theatre_id", &req.theatre_id),
        show_start(req.starts_at, now, horizon),
        layout(&req.rows),
    )
        .all_fields()?;
    Ok(NewShow {
        movie_id,
        theatre_id,
        starts_at,
        rows,
    })
}

/// A show's start: in the future, and at most `horizon` ahead.
fn show_start(
    raw: Option<prost_types::Timestamp>,
    now: DateTime<Utc>,
    horizon: Duration,
) -> AppResult<DateTime<Utc>> {
    let starts_at = from_timestamp("starts_at", raw)?;
    if starts_at <= now {
        return Err(AppError::invalid("starts_at", "must be in the future"));
    }
    let latest = chrono::Duration::from_std(horizon)
        .ok()
        .and_then(|h| now.checked_add_signed(h));
    if latest.is_some_and(|latest| starts_at > latest) {
        return Err(AppError::invalid(
            "starts_at",
            format!(
                "must be at most {} days ahead",
                horizon.as_secs() / (24 * 3600)
            ),
        ));
    }
    Ok(starts_at)
}

/// The seat layout: 1 to MAX_ROWS rows with distinct labels.
fn layout(req_rows: &[proto::SeatRow]) -> AppResult<Vec<RowLayout>> {
    if req_rows.is_empty() {
        return Err(AppError::invalid("rows", "at least one row is required"));
    }
    if req_rows.len() > MAX_ROWS {
        return Err(AppError::invalid(
            "rows",
            format!("at most {MAX_ROWS} rows"),
        ));
    }
    let mut rows: Vec<RowLayout> = Vec::with_capacity(req_rows.len());
    for (i, row) in req_rows.iter().enumerate() {
        let label = row.label.trim();
        if label.is_empty() || label.len() > 3 || !label.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(AppError::invalid(
                format!("rows[{i}].label"),
                "must be 1 to 3 capital letters",
            ));
        }
        if rows.iter().any(|r| r.label == label) {
            return Err(AppError::invalid(
                format!("rows[{i}].label"),
                format!("duplicate row label {label}"),
            ));
        }
        if !(1..=MAX_SEATS_PER_ROW).contains(&row.seats) {
            return Err(AppError::invalid(
                format!("rows[{i}].seats"),
                format!("must be between 1 and {MAX_SEATS_PER_ROW}"),
            ));
        }
        if !(1..=MAX_PRICE_CENTS).contains(&row.price_cents) {
            return Err(AppError::invalid(
                format!("rows[{i}].price_cents"),
                format!("must be between 1 and {MAX_PRICE_CENTS}"),
            ));
        }
        rows.push(RowLayout {
            label: label.to_owned(),
            seats: row.seats,
            price_cents: Cents(row.price_cents),
        });
    }
    Ok(rows)
}
