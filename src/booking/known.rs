//! What this instance knows of the shows it has been asked to book: what a
//! booking copies of its show (start, movie title, theatre name, seat prices)
//! and which of its seats are sold, so that a booking bound to fail is refused
//! before any database work, and a booking bound to succeed is priced without
//! a read.
//!
//! # Only ever behind the database
//! The sold set may miss seats (another instance sold them; it learns them when
//! the database refuses one), but it may never hold a seat that is free, or a
//! free seat would be refused. Seats are only added once the database has
//! confirmed them sold: this instance's own claims and the seats the database
//! named in a refusal. Seats become free only through a write that bumps the
//! show's [`Generation::FreedOf`](crate::cache::Generation) counter after it
//! commits and before it answers (a cancellation, the show's deletion). A set
//! records that counter as it was *before* the set was read from the database,
//! and a refusal from memory first reads the counter again, in a reading that
//! started after the booking arrived (shared with the refusals that arrived
//! with it, `booking::freed`): if it moved (or cannot be read), the set is
//! dropped, the booking goes to the database, and the next one reloads. So
//! once a cancellation has returned, on any instance, no instance refuses its
//! seats from memory.
//!
//! Without Redis the counter is this instance's own count of such writes: one
//! instance per database, as the cache assumes.
//!
//! The snapshot (start, titles, prices) is only ever used to price a claim that
//! checks it: PostgreSQL's `claim_bookings` answers `STALE` when it no longer
//! matches, and the booking reloads and asks again.
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use sea_orm::{
    DatabaseConnection, EntityTrait, FromQueryResult, JoinType, QuerySelect, RelationTrait,
    sea_query::{Expr, ExprTrait, IntoCondition},
};

use crate::{
    booking::{freed::FreedReadings, validate::NewBooking},
    entity::{movie, seat, show, theatre},
    error::{AppError, AppResult, Reason},
    ids::{Cents, SeatId, ShowId},
    store::Store,
};

/// How many shows an instance keeps; past it, the oldest loaded is dropped.
const CAPACITY: usize = 4096;

/// One show as last read from the database.
#[derive(Debug)]
pub struct KnownShow {
    pub starts_at: DateTime<Utc>,
    pub movie_title: String,
    pub theatre_name: String,
    prices: HashMap<SeatId, Cents>,
    sold: Mutex<HashSet<SeatId>>,
    /// [`crate::cache::Cache::freed_version`] before the read; `None`: it
    /// could not be read, and nothing is refused from this set.
    freed: Option<Vec<i64>>,
    /// Load order, for eviction.
    loaded: u64,
}

impl KnownShow {
    /// The price of `seats`, or `None` if one of them is not a seat of the show.
    pub fn total(&self, seats: &[SeatId]) -> Option<Cents> {
        seats.iter().map(|s| self.prices.get(s).copied()).sum()
    }

    /// Adds seats the database has confirmed sold.
    pub fn sold(&self, seats: impl IntoIterator<Item = SeatId>) {
        self.sold.lock().expect("sold set poisoned").extend(seats);
    }

    /// The seats of `seats` the show does not have, in the order asked for.
    pub fn unknown<'a>(&self, seats: &'a [SeatId]) -> Vec<&'a str> {
        seats
            .iter()
            .filter(|s| !self.prices.contains_key(*s))
            .map(SeatId::as_str)
            .collect()
    }

    /// Why `new` would be refused by the database, if this set says so.
    fn refusal(&self, new: &NewBooking, now: DateTime<Utc>) -> Option<AppError> {
        if self.starts_at <= now {
            return Some(show_started(new.show_id));
        }
        let unknown = self.unknown(&new.seat_ids);
        if !unknown.is_empty() {
            return Some(no_such_seats(&unknown));
        }
        let sold = self.sold.lock().expect("sold set poisoned");
        let mut taken: Vec<String> = new
            .seat_ids
            .iter()
            .filter(|s| sold.contains(*s))
            .map(ToString::to_string)
            .collect();
        drop(sold);
        if taken.is_empty() {
            return None;
        }
        taken.sort();
        Some(AppError::SeatsTaken(taken))
    }
}

/// The refusal of a booking for a show that has started.
pub fn show_started(show: ShowId) -> AppError {
    AppError::FailedPrecondition(
        Reason::ShowStarted,
        format!("show {show} has already started"),
    )
}

/// The refusal of a booking of seats the show does not have.
pub fn no_such_seats(unknown: &[impl AsRef<str>]) -> AppError {
    let names: Vec<&str> = unknown.iter().map(AsRef::as_ref).collect();
    AppError::invalid(
        "seat_ids",
        format!("no such seats in this show: {}", names.join(", ")),
    )
}

/// The shows this instance knows, shared by its booking calls.
pub struct KnownShows {
    store: Store,
    shows: Mutex<HashMap<ShowId, Arc<KnownShow>>>,
    /// Loads in progress: one read per show at a time (a rush's first
    /// thousand calls would otherwise each read the whole show).
    flights: Mutex<HashMap<ShowId, Arc<tokio::sync::Mutex<()>>>>,
    loads: std::sync::atomic::AtomicU64,
    /// The freed counters refusals check, one reading at a time per show.
    freed: FreedReadings,
}

/// One row of a show read: the show with what a booking copies of it,
/// joined with one of its seats (NULLs when it has none of those asked for).
#[derive(Debug, FromQueryResult)]
pub struct ShowSeatRow {
    pub starts_at: DateTime<Utc>,
    pub movie_title: String,
    pub theatre_name: String,
    pub seat_id: Option<SeatId>,
    pub price_cents: Option<Cents>,
    pub booking_id: Option<crate::ids::BookingId>,
}

impl KnownShows {
    pub fn new(store: Store) -> Self {
        Self {
            freed: FreedReadings::new(store.cache().clone()),
            store,
            shows: Mutex::default(),
            flights: Mutex::default(),
            loads: Default::default(),
        }
    }

    /// The show as this instance knows it, read from the database if it does
    /// not (NOT_FOUND if there is no such show).
    pub async fn get(&self, id: ShowId) -> AppResult<Arc<KnownShow>> {
        if let Some(known) = self.known(id) {
            return Ok(known);
        }
        let flight = self
            .flights
            .lock()
            .expect("flights poisoned")
            .entry(id)
            .or_default()
            .clone();
        let _turn = flight.lock().await;
        // Loaded by the flight this one waited for?
        let loaded = match self.known(id) {
            Some(known) => Ok(known),
            None => self.load(id).await,
        };
        self.flights.lock().expect("flights poisoned").remove(&id);
        loaded
    }

    fn known(&self, id: ShowId) -> Option<Arc<KnownShow>> {
        self.shows
            .lock()
            .expect("known shows poisoned")
            .get(&id)
            .cloned()
    }

    /// Reads the show anew and keeps it.
    pub async fn load(&self, id: ShowId) -> AppResult<Arc<KnownShow>> {
        // The counter first: a seat freed after this reading bumps it.
        let freed = self.store.cache().freed_version(id).await;
        let rows = read_show(self.store.reader(), id, None).await?;
        let first = rows
            .first()
            .ok_or_else(|| AppError::not_found("show", id))?;
        let known = Arc::new(KnownShow {
            starts_at: first.starts_at,
            movie_title: first.movie_title.clone(),
            theatre_name: first.theatre_name.clone(),
            prices: rows
                .iter()
                .filter_map(|r| Some((r.seat_id.clone()?, r.price_cents?)))
                .collect(),
            sold: Mutex::new(
                rows.iter()
                    .filter(|r| r.booking_id.is_some())
                    .filter_map(|r| r.seat_id.clone())
                    .collect(),
            ),
            freed,
            loaded: self
                .loads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        });
        let mut shows = self.shows.lock().expect("known shows poisoned");
        if shows.len() >= CAPACITY
            && let Some(oldest) = shows
                .iter()
                .min_by_key(|(_, k)| k.loaded)
                .map(|(id, _)| *id)
        {
            shows.remove(&oldest);
        }
        shows.insert(id, known.clone());
        Ok(known)
    }

    /// Drops what is known of the show, if it is still `known`.
    pub fn forget(&self, id: ShowId, known: &Arc<KnownShow>) {
        let mut shows = self.shows.lock().expect("known shows poisoned");
        if shows.get(&id).is_some_and(|k| Arc::ptr_eq(k, known)) {
            shows.remove(&id);
        }
    }

    /// The refusal the database would give `new`, answered from memory, once
    /// the show's freed counter shows that nothing was freed since `known`
    /// was read (see the module docs). `None`: the database decides.
    pub async fn refusal(
        &self,
        known: &Arc<KnownShow>,
        new: &NewBooking,
        now: DateTime<Utc>,
    ) -> Option<AppError> {
        let refusal = known.refusal(new, now)?;
        let current = self.freed.read(new.show_id).await;
        if known.freed.is_some() && current == known.freed {
            return Some(refusal);
        }
        self.forget(new.show_id, known);
        None
    }
}

/// The show with its movie title, theatre name and its seats (`only` those,
/// if given), in one lock-free query: one row per seat, one row of NULL seat
/// columns when there is none, no row for no show.
pub async fn read_show(
    conn: &DatabaseConnection,
    id: ShowId,
    only: Option<Vec<SeatId>>,
) -> AppResult<Vec<ShowSeatRow>> {
    let seats = show::Relation::Seat.def();
    let seats = match only {
        Some(wanted) => seats.on_condition(move |_, seats| {
            Expr::col((seats, seat::Column::SeatId))
                .is_in(wanted.clone())
                .into_condition()
        }),
        None => seats,
    };
    Ok(show::Entity::find_by_id(id)
        .select_only()
        .column(show::Column::StartsAt)
        .column_as(movie::Column::Title, "movie_title")
        .column_as(theatre::Column::Name, "theatre_name")
        .column(seat::Column::SeatId)
        .column(seat::Column::PriceCents)
        .column(seat::Column::BookingId)
        .join(JoinType::InnerJoin, show::Relation::Movie.def())
        .join(JoinType::InnerJoin, show::Relation::Theatre.def())
        .join(JoinType::LeftJoin, seats)
        .into_model::<ShowSeatRow>()
        .all(conn)
        .await?)
}
