//! The business events. Every write records at least one (`store::Tx::record`);
//! two readers turn each into what they need, each with an exhaustive `match`,
//! so a new kind of event cannot be added without both deciding about it:
//! `events::outbox` (the protobuf envelope published to Kafka, or nothing for
//! events the contract does not publish) and `cache::Generation::stale_after`
//! (which cached reads it makes stale).
use crate::{
    entity::{booking, booking::CancelReason, movie, theatre, user::Role},
    ids::{BookingId, MovieId, SeatId, ShowId, UserId},
};

use super::ShowView;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    MovieCreated(movie::Model),
    MovieUpdated(movie::Model),
    MovieDeleted(MovieDeleted),
    ShowCreated(ShowView),
    ShowDeleted(ShowDeleted),
    BookingConfirmed(booking::Model),
    BookingCancelled(BookingCancelled),
    /// Not published: the contract has no theatre events.
    TheatreCreated(theatre::Model),
    /// Not published: the contract has no account events.
    AccountCreated {
        user: UserId,
        role: Role,
    },
    /// Not published, likewise.
    RoleChanged {
        user: UserId,
        role: Role,
    },
}

/// A movie deleted with its shows (the database cascades) and the bookings
/// that were cancelled on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovieDeleted {
    pub movie: MovieId,
    pub shows: Vec<ShowId>,
    pub cancelled_bookings: Vec<BookingId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShowDeleted {
    pub show: ShowId,
    pub movie: MovieId,
    pub cancelled_bookings: Vec<BookingId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingCancelled {
    pub booking: BookingId,
    pub user: UserId,
    /// `None` once the show is gone.
    pub show: Option<ShowId>,
    pub seats: Vec<SeatId>,
    pub reason: CancelReason,
}
