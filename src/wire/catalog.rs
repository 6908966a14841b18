//! Movies, theatres, shows and seats on the wire.
use super::timestamp;
use crate::{
    domain::ShowView,
    entity::{movie, seat, theatre},
    proto,
};

impl From<movie::Model> for proto::Movie {
    fn from(m: movie::Model) -> Self {
        Self {
            id: m.id.to_string(),
            title: m.title,
            description: m.description,
            duration_minutes: m.duration_minutes,
            genre: m.genre,
            created_at: Some(timestamp(m.created_at)),
            updated_at: Some(timestamp(m.updated_at)),
        }
    }
}

impl From<theatre::Model> for proto::Theatre {
    fn from(t: theatre::Model) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name,
            city: t.city,
        }
    }
}

impl From<ShowView> for proto::Show {
    fn from(v: ShowView) -> Self {
        Self {
            id: v.show.id.to_string(),
            movie_id: v.show.movie_id.to_string(),
            theatre_id: v.show.theatre_id.to_string(),
            starts_at: Some(timestamp(v.show.starts_at)),
            total_seats: v.rows.iter().map(|r| r.seats).sum(),
            available_seats: v.rows.iter().map(|r| r.available).sum(),
            rows: v
                .rows
                .into_iter()
                .map(|r| proto::SeatRow {
                    label: r.label,
                    seats: r.seats,
                    price_cents: r.price_cents.0,
                })
                .collect(),
            movie_title: v.movie_title,
            theatre_name: v.theatre_name,
        }
    }
}

impl From<seat::Model> for proto::Seat {
    fn from(s: seat::Model) -> Self {
        let status = if s.booking_id.is_some() {
            proto::SeatStatus::Booked
        } else {
            proto::SeatStatus::Available
        };
        Self {
            seat_id: s.seat_id.into(),
            row: s.row_label,
            number: s.number,
            price_cents: s.price_cents.0,
            status: status.into(),
        }
    }
}
