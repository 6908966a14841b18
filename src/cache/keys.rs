//! What is cached, under which key, and which writes make it stale.
use std::time::Duration;

use uuid::Uuid;

use crate::{
    config::CacheConfig,
    domain::Event,
    ids::{MovieId, ShowId},
};

/// A cached read: the encoded protobuf response of one RPC with its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Entry {
    Movie(MovieId),
    MoviePage {
        size: u64,
        after: Option<Uuid>,
    },
    Show(ShowId),
    ShowList {
        movie: Option<MovieId>,
        size: u64,
        after: Option<(chrono::DateTime<chrono::Utc>, Uuid)>,
    },
    SeatMap(ShowId),
}

/// A generation counter in Redis. Every cache key embeds the current value of
/// the generations its data depends on; a write bumps them after it commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// Any movie created, updated or deleted.
    Movies,
    /// Any show created or deleted, or a movie change that shows display.
    Shows,
    /// Seat availability of any show changed (ListShows shows every show's count).
    Seats,
    /// Seat availability of one show changed.
    SeatsOf(ShowId),
    /// Seats of one show were freed (a booking cancelled) or the show was
    /// deleted: what a booking may be refused for from memory
    /// (`booking::known`) no longer holds. Bumped on nothing else, so a rush
    /// of bookings leaves it alone.
    FreedOf(ShowId),
}

impl Generation {
    /// The generations whose cached reads `event` makes stale, bumped once
    /// its write has committed (`store::Store::write`). Exhaustive, so a new
    /// kind of event must say what it invalidates.
    pub fn stale_after(event: &Event) -> Vec<Generation> {
        let seats_of = |show: ShowId| vec![Self::SeatsOf(show), Self::Seats];
        match event {
            Event::MovieCreated(_) => vec![Self::Movies],
            // Shows display the movie title.
            Event::MovieUpdated(_) => vec![Self::Movies, Self::Shows],
            // The cascade removed its shows and their seats.
            Event::MovieDeleted(d) => [Self::Movies, Self::Shows, Self::Seats]
                .into_iter()
                .chain(d.shows.iter().map(|&show| Self::FreedOf(show)))
                .collect(),
            Event::ShowCreated(_) => vec![Self::Shows],
            Event::ShowDeleted(d) => vec![
                Self::Shows,
                Self::Seats,
                Self::SeatsOf(d.show),
                Self::FreedOf(d.show),
            ],
            Event::BookingConfirmed(b) => b.show_id.map(seats_of).unwrap_or_default(),
            // Without a show (deleted meanwhile) there are no seats to free;
            // the deletion's own event invalidates.
            Event::BookingCancelled(c) => c
                .show
                .map(|show| [seats_of(show), vec![Self::FreedOf(show)]].concat())
                .unwrap_or_default(),
            // No theatre or account data is cached.
            Event::TheatreCreated(_) | Event::AccountCreated { .. } | Event::RoleChanged { .. } => {
                Vec::new()
            }
        }
    }

    /// Every generation `events` make stale, each once.
    pub fn stale_after_all(events: &[Event]) -> Vec<Generation> {
        let mut stale: Vec<Generation> = Vec::new();
        for generation in events.iter().flat_map(Self::stale_after) {
            if !stale.contains(&generation) {
                stale.push(generation);
            }
        }
        stale
    }

    pub fn key(&self, prefix: &str) -> String {
        match self {
            Self::Movies => format!("{prefix}gen:movies"),
            Self::Shows => format!("{prefix}gen:shows"),
            Self::Seats => format!("{prefix}gen:seats"),
            Self::SeatsOf(show) => format!("{prefix}gen:seats:{show}"),
            Self::FreedOf(show) => format!("{prefix}gen:freed:{show}"),
        }
    }
}

impl Entry {
    pub fn generations(&self) -> Vec<Generation> {
        match self {
            Self::Movie(_) | Self::MoviePage { .. } => vec![Generation::Movies],
            Self::Show(id) | Self::SeatMap(id) => vec![Generation::Shows, Generation::SeatsOf(*id)],
            Self::ShowList { .. } => vec![Generation::Shows, Generation::Seats],
        }
    }

    pub fn ttl(&self, config: &CacheConfig) -> Duration {
        match self {
            Self::Movie(_) | Self::MoviePage { .. } => config.movie_ttl,
            Self::Show(_) | Self::ShowList { .. } => config.show_ttl,
            Self::SeatMap(_) => config.seat_map_ttl,
        }
    }

    /// The value key for this entry at the given epoch and generations.
    pub fn key(&self, prefix: &str, epoch: i64, generations: &[i64]) -> String {
        let gens: Vec<String> = generations.iter().map(i64::to_string).collect();
        format!("{}e{epoch}:g{}", self.key_stem(prefix), gens.join("."))
    }

    /// The part of the value key before the counters (the lookup script
    /// appends them in Redis).
    pub fn key_stem(&self, prefix: &str) -> String {
        let what = match self {
            Self::Movie(id) => format!("movie:{id}"),
            Self::MoviePage { size, after } => format!(
                "movies:{size}:{}",
                after.map(|a| a.to_string()).unwrap_or_default()
            ),
            Self::Show(id) => format!("show:{id}"),
            Self::ShowList { movie, size, after } => format!(
                "shows:{}:{size}:{}",
                movie.map(|m| m.to_string()).unwrap_or_default(),
                after
                    .map(|(at, id)| format!("{}.{id}", at.timestamp_micros()))
                    .unwrap_or_default()
            ),
            Self::SeatMap(id) => format!("seatmap:{id}"),
        };
        format!("{prefix}v1:{what}:")
    }
}

/// Bumped when this instance could not invalidate (Redis unreachable during a
/// write): every key embeds it, so bumping it orphans everything cached before.
pub fn epoch_key(prefix: &str) -> String {
    format!("{prefix}gen:epoch")
}
