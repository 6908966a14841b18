//! Catalog queries. Writes take the unit of work's transaction (`store::Tx`)
//! and record their domain events on it; reads take any connection.
use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::validate::{MoviePatch, NewMovie, NewShow, NewTheatre};
use crate::page::PageRequest;
use crate::{
    booking::repo::cancel_bookings_on_shows,
    domain::{Event, MovieDeleted, RowSummary, ShowDeleted, ShowView},
    entity::{booking::CancelReason, movie, seat, show, theatre},
    error::{AppError, AppResult, Reason, is_deadlock, is_exclusion_violation},
    ids::{Cents, MovieId, SeatId, ShowId, TheatreId},
    store::Tx,
};

fn not_found_if_fk(err: sea_orm::DbErr, entity: &'static str, id: impl ToString) -> AppError {
    match err.sql_err() {
        Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_)) => AppError::not_found(entity, id),
        _ => err.into(),
    }
}

pub async fn create_movie(tx: &mut Tx, new: NewMovie) -> AppResult<movie::Model> {
    let now = tx.now();
    let created = movie::ActiveModel {
        id: Set(MovieId::new()),
        title: Set(new.title),
        description: Set(new.description),
        duration_minutes: Set(new.duration_minutes),
        genre: Set(new.genre),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(tx.conn())
    .await?;
    tx.record(Event::MovieCreated(created.clone()));
    Ok(created)
}

pub async fn update_movie(
    tx: &mut Tx,
    id: MovieId,
    patch: MoviePatch,
    changeover: Duration,
) -> AppResult<movie::Model> {
    let existing = movie::Entity::find_by_id(id)
        .lock_exclusive()
        .one(tx.conn())
        .await?
        .ok_or_else(|| AppError::not_found("movie", id))?;
    let mut row: movie::ActiveModel = existing.into();
    if let Some(v) = patch.title {
        row.title = Set(v);
    }
    if let Some(v) = patch.description {
        row.description = Set(v);
    }
    if let Some(v) = patch.duration_minutes {
        row.duration_minutes = Set(v);
        reschedule_occupancy(tx, id, v, changeover).await?;
    }
    if let Some(v) = patch.genre {
        row.genre = Set(v);
    }
    row.updated_at = Set(tx.now());
    let updated = row.update(tx.conn()).await?;
    tx.record(Event::MovieUpdated(updated.clone()));
    Ok(updated)
}

/// A new running time moves the end of the movie's shows that have not
/// started yet; one that would then overlap the next show in its theatre
/// refuses the whole update. Shows already started keep the occupancy they had.
async fn reschedule_occupancy(
    tx: &Tx,
    movie: MovieId,
    minutes: i32,
    changeover: Duration,
) -> AppResult<()> {
    let upcoming = show::Entity::find()
        .filter(show::Column::MovieId.eq(movie))
        .filter(show::Column::StartsAt.gt(tx.now()))
        .order_by_asc(show::Column::Id)
        .lock_exclusive()
        .all(tx.conn())
        .await?;
    for show in upcoming {
        let slot = (
            show.starts_at,
            occupied_until(show.starts_at, minutes, changeover),
        );
        if let Some(other) = occupant(tx.conn(), show.theatre_id, slot, Some(show.id)).await? {
            return Err(AppError::FailedPrecondition(
                Reason::TheatreOccupied,
                format!(
                    "duration_minutes: show {} would overlap: {}",
                    show.id,
                    overlap(show.theatre_id, &other)
                ),
            ));
        }
        let id = show.id;
        let mut row: show::ActiveModel = show.into();
        row.occupied_until = Set(slot.1);
        row.update(tx.conn()).await.map_err(|e| {
            if is_exclusion_violation(&e) {
                AppError::FailedPrecondition(
                    Reason::TheatreOccupied,
                    format!("duration_minutes: show {id} would overlap a show scheduled meanwhile"),
                )
            } else {
                e.into()
            }
        })?;
    }
    Ok(())
}

pub struct MovieDeletion {
    pub deleted_shows: usize,
    pub cancelled_bookings: usize,
}

/// Deletes a movie; the database cascades to its shows and their seats.
///
/// Lock order (PostgreSQL): the movie row, then its shows, both FOR UPDATE. A
/// concurrent CreateShow holds a key-share lock on the movie through its
/// foreign key and a concurrent booking one on its show through its own, so each
/// either finishes first (and its show or booking is seen and handled here) or
/// waits and then finds its parent gone. No booking can stay CONFIRMED on a
/// deleted show.
pub async fn delete_movie(tx: &mut Tx, id: MovieId) -> AppResult<MovieDeletion> {
    movie::Entity::find_by_id(id)
        .lock_exclusive()
        .one(tx.conn())
        .await?
        .ok_or_else(|| AppError::not_found("movie", id))?;
    let show_ids: Vec<ShowId> = show::Entity::find()
        .select_only()
        .column(show::Column::Id)
        .filter(show::Column::MovieId.eq(id))
        .order_by_asc(show::Column::Id)
        .lock_exclusive()
        .into_tuple()
        .all(tx.conn())
        .await?;
    let cancelled = cancel_bookings_on_shows(tx, &show_ids, CancelReason::MovieDeleted).await?;
    movie::Entity::delete_by_id(id).exec(tx.conn()).await?;
    tx.record(Event::MovieDeleted(MovieDeleted {
        movie: id,
        shows: show_ids.clone(),
        cancelled_bookings: cancelled.clone(),
    }));
    Ok(MovieDeletion {
        deleted_shows: show_ids.len(),
        cancelled_bookings: cancelled.len(),
    })
}

pub async fn get_movie(conn: &impl ConnectionTrait, id: MovieId) -> AppResult<movie::Model> {
    movie::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found("movie", id))
}

/// A page of movies in id (= creation) order, and whether more follow.
pub async fn list_movies(
    conn: &impl ConnectionTrait,
    page: &PageRequest<Uuid>,
) -> AppResult<(Vec<movie::Model>, bool)> {
    let mut query = movie::Entity::find().order_by_asc(movie::Column::Id);
    if let Some(after) = page.after {
        query = query.filter(movie::Column::Id.gt(after));
    }
    Ok(page.of(query.limit(page.size + 1).all(conn).await?))
}

pub async fn create_theatre(tx: &mut Tx, new: NewTheatre) -> AppResult<theatre::Model> {
    let created = theatre::ActiveModel {
        id: Set(TheatreId::new()),
        name: Set(new.name),
        city: Set(new.city),
        created_at: Set(tx.now()),
    }
    .insert(tx.conn())
    .await
    .map_err(AppError::from)
    .map_err(|e| {
        if e.is_unique_violation() {
            AppError::AlreadyExists(
                Reason::TheatreExists,
                "name: a theatre with this name already exists in this city".into(),
            )
        } else {
            e
        }
    })?;
    tx.record(Event::TheatreCreated(created.clone()));
    Ok(created)
}

/// Theatres by city then name (unique together, so the pair is a cursor).
pub async fn list_theatres(
    conn: &impl ConnectionTrait,
    page: &PageRequest<(String, String)>,
) -> AppResult<(Vec<theatre::Model>, bool)> {
    let mut query = theatre::Entity::find()
        .order_by_asc(theatre::Column::City)
        .order_by_asc(theatre::Column::Name);
    if let Some((city, name)) = &page.after {
        query = query.filter(
            Condition::any()
                .add(theatre::Column::City.gt(city.as_str()))
                .add(
                    Condition::all()
                        .add(theatre::Column::City.eq(city.as_str()))
                        .add(theatre::Column::Name.gt(name.as_str())),
                ),
        );
    }
    Ok(page.of(query.limit(page.size + 1).all(conn).await?))
}

/// Until when a show of `minutes` starting at `starts` occupies its theatre.
fn occupied_until(starts: DateTime<Utc>, minutes: i32, changeover: Duration) -> DateTime<Utc> {
    starts
        + chrono::Duration::minutes(i64::from(minutes))
        + chrono::Duration::from_std(changeover).unwrap_or_default()
}

/// The first show of `theatre`, other than `except`, that occupies it at some
/// moment of `[starts, until)`.
async fn occupant(
    conn: &impl ConnectionTrait,
    theatre: TheatreId,
    (starts, until): (DateTime<Utc>, DateTime<Utc>),
    except: Option<ShowId>,
) -> AppResult<Option<show::Model>> {
    let mut query = show::Entity::find()
        .filter(show::Column::TheatreId.eq(theatre))
        .filter(show::Column::StartsAt.lt(until))
        .filter(show::Column::OccupiedUntil.gt(starts));
    if let Some(except) = except {
        query = query.filter(show::Column::Id.ne(except));
    }
    Ok(query.order_by_asc(show::Column::StartsAt).one(conn).await?)
}

fn overlap(theatre: TheatreId, other: &show::Model) -> AppError {
    AppError::FailedPrecondition(
        Reason::TheatreOccupied,
        format!(
            "theatre {theatre} is occupied by show {} from {} until {} (changeover included)",
            other.id,
            other.starts_at.to_rfc3339(),
            other.occupied_until.to_rfc3339(),
        ),
    )
}

/// Schedules a show. A theatre is one room: a show that would overlap another
/// of the same theatre (start to the movie's end plus the changeover) is
/// refused naming that show. The check inside the transaction gives the
/// precise answer; on PostgreSQL the exclusion constraint
/// `ex_shows_theatre_occupancy` settles concurrent CreateShows that both
/// passed it (the second waits for the first and fails), on SQLite the single
/// writer makes the check itself race-free.
pub async fn create_show(tx: &mut Tx, new: NewShow, changeover: Duration) -> AppResult<ShowView> {
    let movie = movie::Entity::find_by_id(new.movie_id)
        .lock_shared()
        .one(tx.conn())
        .await?
        .ok_or_else(|| AppError::not_found("movie", new.movie_id))?;
    let theatre = theatre::Entity::find_by_id(new.theatre_id)
        .lock_shared()
        .one(tx.conn())
        .await?
        .ok_or_else(|| AppError::not_found("theatre", new.theatre_id))?;
    let slot = (
        new.starts_at,
        occupied_until(new.starts_at, movie.duration_minutes, changeover),
    );
    if let Some(other) = occupant(tx.conn(), theatre.id, slot, None).await? {
        return Err(overlap(theatre.id, &other));
    }
    let created = insert_show(tx, &new, slot).await?;
    let mut seats = Vec::new();
    for row in &new.rows {
        for number in 1..=row.seats {
            seats.push(seat::ActiveModel {
                show_id: Set(created.id),
                seat_id: Set(SeatId::in_row(&row.label, number)),
                row_label: Set(row.label.clone()),
                number: Set(number),
                position: Set(seats.len() as i32),
                price_cents: Set(row.price_cents),
                booking_id: Set(None),
            });
        }
    }
    // Bounded by the layout limits (50 rows × 100 seats); chunks keep every
    // statement under SQLite's bind-parameter limit.
    for chunk in seats.chunks(500) {
        seat::Entity::insert_many(chunk.to_vec())
            .exec(tx.conn())
            .await?;
    }
    let view = ShowView {
        show: created,
        movie_title: movie.title,
        theatre_name: theatre.name,
        rows: new
            .rows
            .iter()
            .map(|r| RowSummary {
                label: r.label.clone(),
                seats: r.seats,
                price_cents: r.price_cents,
                available: r.seats,
            })
            .collect(),
    };
    tx.record(Event::ShowCreated(view.clone()));
    Ok(view)
}

/// Inserts the show row. A concurrent CreateShow that committed an
/// overlapping show after our check fails the insert on the exclusion
/// constraint; a savepoint keeps the transaction usable, so the answer can
/// name the show that won.
async fn insert_show(
    tx: &Tx,
    new: &NewShow,
    slot: (DateTime<Utc>, DateTime<Utc>),
) -> AppResult<show::Model> {
    let row = show::ActiveModel {
        id: Set(ShowId::new()),
        movie_id: Set(new.movie_id),
        theatre_id: Set(new.theatre_id),
        starts_at: Set(slot.0),
        occupied_until: Set(slot.1),
        created_at: Set(tx.now()),
    };
    // Two inserts of overlapping slots can each wait for the other's
    // exclusion check, and PostgreSQL then aborts one with a deadlock. That
    // insert is tried again in a new savepoint: it waits for the other to
    // end, and is refused as occupied if that one committed.
    let mut deadlocks = 0;
    let outcome = loop {
        let savepoint = tx.conn().begin().await?;
        match row.clone().insert(&savepoint).await {
            Ok(created) => {
                savepoint.commit().await?;
                break Ok(created);
            }
            Err(e) if deadlocks < 3 && is_deadlock(&e) => {
                savepoint.rollback().await?;
                deadlocks += 1;
            }
            Err(e) => {
                savepoint.rollback().await?;
                break Err(e);
            }
        }
    };
    match outcome {
        Ok(created) => Ok(created),
        Err(e) if is_exclusion_violation(&e) => Err(
            match occupant(tx.conn(), new.theatre_id, slot, None).await? {
                Some(other) => overlap(new.theatre_id, &other),
                None => AppError::FailedPrecondition(
                    Reason::TheatreOccupied,
                    format!(
                        "theatre {} is occupied by another show at that time",
                        new.theatre_id
                    ),
                ),
            },
        ),
        Err(e) => Err(not_found_if_fk(e, "movie", new.movie_id)),
    }
}

/// Deletes a show and its seats; its bookings are cancelled. Returns how many.
pub async fn delete_show(tx: &mut Tx, id: ShowId) -> AppResult<usize> {
    let existing = show::Entity::find_by_id(id)
        .lock_exclusive()
        .one(tx.conn())
        .await?
        .ok_or_else(|| AppError::not_found("show", id))?;
    let cancelled = cancel_bookings_on_shows(tx, &[id], CancelReason::ShowDeleted).await?;
    show::Entity::delete_by_id(id).exec(tx.conn()).await?;
    tx.record(Event::ShowDeleted(ShowDeleted {
        show: id,
        movie: existing.movie_id,
        cancelled_bookings: cancelled.clone(),
    }));
    Ok(cancelled.len())
}

pub async fn get_show(conn: &impl ConnectionTrait, id: ShowId) -> AppResult<ShowView> {
    let show = show::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found("show", id))?;
    Ok(show_views(conn, vec![show]).await?.remove(0))
}

/// Shows in start order, of one movie or of all.
/// Shows by start time (then id, so the pair is a cursor).
pub async fn list_shows(
    conn: &impl ConnectionTrait,
    movie: Option<MovieId>,
    page: &PageRequest<(DateTime<Utc>, Uuid)>,
) -> AppResult<(Vec<ShowView>, bool)> {
    let mut query = show::Entity::find()
        .order_by_asc(show::Column::StartsAt)
        .order_by_asc(show::Column::Id);
    if let Some(movie) = movie {
        get_movie(conn, movie).await?;
        query = query.filter(show::Column::MovieId.eq(movie));
    }
    if let Some((starts, id)) = page.after {
        query = query.filter(
            Condition::any().add(show::Column::StartsAt.gt(starts)).add(
                Condition::all()
                    .add(show::Column::StartsAt.eq(starts))
                    .add(show::Column::Id.gt(id)),
            ),
        );
    }
    let (shows, more) = page.of(query.limit(page.size + 1).all(conn).await?);
    Ok((show_views(conn, shows).await?, more))
}

/// Joins shows with their movie titles, theatre names and per-row seat counts,
/// in three queries whatever the number of shows.
async fn show_views(
    conn: &impl ConnectionTrait,
    shows: Vec<show::Model>,
) -> AppResult<Vec<ShowView>> {
    if shows.is_empty() {
        return Ok(Vec::new());
    }
    let show_ids: Vec<ShowId> = shows.iter().map(|s| s.id).collect();
    let movie_ids: Vec<MovieId> = shows.iter().map(|s| s.movie_id).collect();
    let theatre_ids: Vec<TheatreId> = shows.iter().map(|s| s.theatre_id).collect();
    let titles: HashMap<MovieId, String> = movie::Entity::find()
        .select_only()
        .columns([movie::Column::Id, movie::Column::Title])
        .filter(movie::Column::Id.is_in(movie_ids))
        .into_tuple()
        .all(conn)
        .await?
        .into_iter()
        .collect();
    let names: HashMap<TheatreId, String> = theatre::Entity::find()
        .select_only()
        .columns([theatre::Column::Id, theatre::Column::Name])
        .filter(theatre::Column::Id.is_in(theatre_ids))
        .into_tuple()
        .all(conn)
        .await?
        .into_iter()
        .collect();
    let row_stats: Vec<(ShowId, String, i64, Cents, i32, i64)> = seat::Entity::find()
        .select_only()
        .column(seat::Column::ShowId)
        .column(seat::Column::RowLabel)
        .column_as(seat::Column::SeatId.count(), "seats")
        .column_as(seat::Column::PriceCents.max(), "price_cents")
        .column_as(seat::Column::Position.min(), "first_position")
        .column_as(
            Expr::case(seat::Column::BookingId.is_null(), 1)
                .finally(0)
                .sum(),
            "available",
        )
        .filter(seat::Column::ShowId.is_in(show_ids))
        .group_by(seat::Column::ShowId)
        .group_by(seat::Column::RowLabel)
        .into_tuple()
        .all(conn)
        .await?;
    let mut rows: HashMap<ShowId, Vec<(i32, RowSummary)>> = HashMap::new();
    for (show_id, label, seats, price_cents, first, available) in row_stats {
        rows.entry(show_id).or_default().push((
            first,
            RowSummary {
                label,
                seats: seats as i32,
                price_cents,
                available: available as i32,
            },
        ));
    }
    Ok(shows
        .into_iter()
        .map(|show| {
            let mut show_rows = rows.remove(&show.id).unwrap_or_default();
            show_rows.sort_by_key(|(first, _)| *first);
            ShowView {
                movie_title: titles.get(&show.movie_id).cloned().unwrap_or_default(),
                theatre_name: names.get(&show.theatre_id).cloned().unwrap_or_default(),
                rows: show_rows.into_iter().map(|(_, r)| r).collect(),
                show,
            }
        })
        .collect())
}

pub async fn seat_map(conn: &impl ConnectionTrait, id: ShowId) -> AppResult<Vec<seat::Model>> {
    let seats = seat::Entity::find()
        .filter(seat::Column::ShowId.eq(id))
        .order_by_asc(seat::Column::Position)
        .all(conn)
        .await?;
    if seats.is_empty() {
        // Every show has at least one seat, so no seats means no show.
        return Err(AppError::not_found("show", id));
    }
    Ok(seats)
}
