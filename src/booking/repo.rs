//! Booking queries, including the seat-claim transaction.
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QueryOrder,
    QuerySelect, RelationTrait, Set,
    sea_query::{LockBehavior, LockType},
};
use uuid::Uuid;

use super::validate::NewBooking;
use crate::{
    db::{Database, WriteTx},
    entity::{
        booking::{self, CancelReason, Status},
        movie, seat, show, theatre,
    },
    error::{AppError, AppResult},
    events::{self, Event},
    ids::{BookingId, ShowId, UserId},
    proto,
};

/// Books every requested seat or none.
///
/// Contention design: a loser must never wait on a winner. The seats are
/// first read without locks, so seats that are already sold are refused at
/// once. The claim then locks the requested seat rows with `FOR UPDATE SKIP
/// LOCKED` (PostgreSQL; SQLite has one writer at a time): a seat that another
/// in-flight booking holds is not waited for but counted as taken, so under a
/// rush no transaction queues behind another's row locks (no lock chains, no
/// deadlocks, no pool exhaustion). The conditional update that only takes
/// seats whose `booking_id` is still NULL, with its row count checked, is the
/// last line of defence.
///
/// The booking row is inserted before the seats are claimed, so a concurrent
/// retry with the same idempotency key waits on the unique index instead of
/// losing the seats to its own first attempt, and then replays that attempt.
pub async fn create_booking(
    db: &Database,
    user: UserId,
    new: &NewBooking,
    now: DateTime<Utc>,
) -> AppResult<booking::Model> {
    match claim_seats(db, user, new, now).await {
        Ok(booking) => Ok(booking),
        Err(err) => match &new.idempotency_key {
            Some(key) => match find_by_key(db.conn(), user, key).await? {
                Some(existing) => replay(existing, new),
                None => Err(err),
            },
            None => Err(err),
        },
    }
}

/// Seat ids of `wanted` that `seats` does not contain.
fn missing<'a>(wanted: &'a [String], seats: &[seat::Model]) -> Vec<&'a str> {
    wanted
        .iter()
        .filter(|id| !seats.iter().any(|s| &s.seat_id == *id))
        .map(String::as_str)
        .collect()
}

fn taken(seats: &[seat::Model]) -> Vec<String> {
    seats
        .iter()
        .filter(|s| s.booking_id.is_some())
        .map(|s| s.seat_id.clone())
        .collect()
}

/// The show's seats among `wanted`, read without locks; refuses unknown and sold seats.
async fn precheck_seats(
    conn: &impl ConnectionTrait,
    show: Uuid,
    wanted: &[String],
) -> AppResult<Vec<seat::Model>> {
    let seats = seat::Entity::find()
        .filter(seat::Column::ShowId.eq(show))
        .filter(seat::Column::SeatId.is_in(wanted.to_vec()))
        .all(conn)
        .await?;
    let unknown = missing(wanted, &seats);
    if !unknown.is_empty() {
        // The show may have been deleted (its seats cascaded) since it was read.
        if show::Entity::find_by_id(show).one(conn).await?.is_none() {
            return Err(AppError::not_found("show", show));
        }
        return Err(AppError::invalid(
            "seat_ids",
            format!("no such seats in this show: {}", unknown.join(", ")),
        ));
    }
    let sold = taken(&seats);
    if !sold.is_empty() {
        return Err(AppError::SeatsTaken(sold));
    }
    Ok(seats)
}

/// A show with what a booking snapshots of it.
struct BookableShow {
    id: Uuid,
    starts_at: DateTime<Utc>,
    movie_title: String,
    theatre_name: String,
}

/// The show, its movie title and theatre name in one query.
async fn bookable_show(conn: &impl ConnectionTrait, id: ShowId) -> AppResult<BookableShow> {
    let row: Option<(Uuid, DateTime<Utc>, String, String)> = show::Entity::find_by_id(id.0)
        .select_only()
        .column(show::Column::Id)
        .column(show::Column::StartsAt)
        .column(movie::Column::Title)
        .column(theatre::Column::Name)
        .join(JoinType::InnerJoin, show::Relation::Movie.def())
        .join(JoinType::InnerJoin, show::Relation::Theatre.def())
        .into_tuple()
        .one(conn)
        .await?;
    let (id_found, starts_at, movie_title, theatre_name) =
        row.ok_or_else(|| AppError::not_found("show", id))?;
    Ok(BookableShow {
        id: id_found,
        starts_at,
        movie_title,
        theatre_name,
    })
}

async fn claim_seats(
    db: &Database,
    user: UserId,
    new: &NewBooking,
    now: DateTime<Utc>,
) -> AppResult<booking::Model> {
    if let Some(key) = &new.idempotency_key
        && let Some(existing) = find_by_key(db.conn(), user, key).await?
    {
        return replay(existing, new);
    }
    // Read-only checks first, outside any write transaction or lock.
    let show = bookable_show(db.conn(), new.show_id).await?;
    if show.starts_at <= now {
        return Err(AppError::FailedPrecondition(format!(
            "show {} has already started",
            new.show_id
        )));
    }
    let priced = precheck_seats(db.conn(), show.id, &new.seat_ids).await?;

    let tx = db.begin_write().await?;
    // A share lock on the show makes a concurrent DeleteShow/DeleteMovie wait
    // for this booking (and then cancel it) rather than miss it; the show may
    // also have gone since the read above.
    show::Entity::find_by_id(show.id)
        .lock_shared()
        .one(&*tx)
        .await?
        .ok_or_else(|| AppError::not_found("show", new.show_id))?;
    let booking_id = BookingId::new();
    let booking = booking::ActiveModel {
        id: Set(booking_id.0),
        user_id: Set(user.0),
        show_id: Set(Some(show.id)),
        status: Set(Status::Confirmed),
        seat_ids: Set(new.seat_ids.join(",")),
        total_cents: Set(priced.iter().map(|s| s.price_cents).sum()),
        movie_title: Set(show.movie_title.clone()),
        theatre_name: Set(show.theatre_name.clone()),
        starts_at: Set(show.starts_at),
        idempotency_key: Set(new.idempotency_key.clone()),
        cancel_reason: Set(None),
        cancelled_at: Set(None),
        created_at: Set(now),
    }
    .insert(&*tx)
    .await?;

    let locked = seat::Entity::find()
        .filter(seat::Column::ShowId.eq(show.id))
        .filter(seat::Column::SeatId.is_in(new.seat_ids.clone()))
        .order_by_asc(seat::Column::SeatId)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .all(&*tx)
        .await?;
    // Seats missing here are held by another in-flight booking; seats with a
    // booking were sold since the pre-check. Either way they are taken.
    let mut unavailable: Vec<String> = missing(&new.seat_ids, &locked)
        .into_iter()
        .map(str::to_owned)
        .chain(taken(&locked))
        .collect();
    if !unavailable.is_empty() {
        unavailable.sort();
        return Err(AppError::SeatsTaken(unavailable));
    }
    let claimed = seat::Entity::update_many()
        .set(seat::ActiveModel {
            booking_id: Set(Some(booking_id.0)),
            ..Default::default()
        })
        .filter(seat::Column::ShowId.eq(show.id))
        .filter(seat::Column::SeatId.is_in(new.seat_ids.clone()))
        .filter(seat::Column::BookingId.is_null())
        .exec(&*tx)
        .await?
        .rows_affected;
    if claimed != new.seat_ids.len() as u64 {
        // Unreachable while the row locks above hold.
        return Err(AppError::Aborted(
            "seats changed during booking, retry".into(),
        ));
    }
    let confirmed = proto::BookingConfirmed {
        booking_id: booking_id.to_string(),
        user_id: user.to_string(),
        show_id: show.id.to_string(),
        seat_ids: new.seat_ids.clone(),
        total_cents: booking.total_cents,
    };
    events::record(&*tx, now, Event::BookingConfirmed(confirmed)).await?;
    tx.commit().await?;
    Ok(booking)
}

async fn find_by_key(
    conn: &impl ConnectionTrait,
    user: UserId,
    key: &str,
) -> AppResult<Option<booking::Model>> {
    Ok(booking::Entity::find()
        .filter(booking::Column::UserId.eq(user.0))
        .filter(booking::Column::IdempotencyKey.eq(key))
        .one(conn)
        .await?)
}

/// The original booking for a repeated key, if the request is the same one.
fn replay(existing: booking::Model, new: &NewBooking) -> AppResult<booking::Model> {
    let same_show = existing.show_id == Some(new.show_id.0);
    let mut before = existing.seat_list();
    let mut now = new.seat_ids.clone();
    before.sort();
    now.sort();
    if same_show && before == now {
        Ok(existing)
    } else {
        Err(AppError::invalid(
            "idempotency_key",
            "was already used for a different booking",
        ))
    }
}

/// The caller's bookings, newest first.
pub async fn list_for_user(
    conn: &impl ConnectionTrait,
    user: UserId,
) -> AppResult<Vec<booking::Model>> {
    Ok(booking::Entity::find()
        .filter(booking::Column::UserId.eq(user.0))
        .order_by_desc(booking::Column::CreatedAt)
        .order_by_desc(booking::Column::Id)
        .all(conn)
        .await?)
}

/// One of the caller's bookings; another user's booking is NOT_FOUND, not
/// PERMISSION_DENIED, so booking ids cannot be probed.
pub async fn get_for_user(
    conn: &impl ConnectionTrait,
    user: UserId,
    id: BookingId,
) -> AppResult<booking::Model> {
    booking::Entity::find_by_id(id.0)
        .filter(booking::Column::UserId.eq(user.0))
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found("booking", id))
}

pub async fn cancel_for_user(
    db: &Database,
    user: UserId,
    id: BookingId,
    now: DateTime<Utc>,
) -> AppResult<booking::Model> {
    let tx = db.begin_write().await?;
    let existing = booking::Entity::find_by_id(id.0)
        .filter(booking::Column::UserId.eq(user.0))
        .lock_exclusive()
        .one(&*tx)
        .await?
        .ok_or_else(|| AppError::not_found("booking", id))?;
    if existing.status == Status::Cancelled {
        return Err(AppError::FailedPrecondition(format!(
            "booking {id} is already cancelled"
        )));
    }
    if existing.starts_at <= now {
        return Err(AppError::FailedPrecondition(format!(
            "booking {id} cannot be cancelled: the show has already started"
        )));
    }
    let seat_ids = existing.seat_list();
    let show_id = existing.show_id;
    let mut row: booking::ActiveModel = existing.into();
    row.status = Set(Status::Cancelled);
    row.cancel_reason = Set(Some(CancelReason::ByUser));
    row.cancelled_at = Set(Some(now));
    let cancelled = row.update(&*tx).await?;
    seat::Entity::update_many()
        .set(seat::ActiveModel {
            booking_id: Set(None),
            ..Default::default()
        })
        .filter(seat::Column::BookingId.eq(id.0))
        .exec(&*tx)
        .await?;
    let event = booking_cancelled(id.0, user.0, show_id, seat_ids, CancelReason::ByUser);
    events::record(&*tx, now, event).await?;
    tx.commit().await?;
    Ok(cancelled)
}

/// Cancels every confirmed booking on `show_ids` (the shows are about to be
/// deleted) and records an event for each. Returns the cancelled booking ids.
pub async fn cancel_bookings_on_shows(
    tx: &WriteTx,
    show_ids: &[Uuid],
    reason: CancelReason,
    now: DateTime<Utc>,
) -> AppResult<Vec<Uuid>> {
    if show_ids.is_empty() {
        return Ok(Vec::new());
    }
    let affected = booking::Entity::find()
        .filter(booking::Column::ShowId.is_in(show_ids.to_vec()))
        .filter(booking::Column::Status.eq(Status::Confirmed))
        .order_by_asc(booking::Column::Id)
        .all(&**tx)
        .await?;
    if affected.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = affected.iter().map(|b| b.id).collect();
    booking::Entity::update_many()
        .set(booking::ActiveModel {
            status: Set(Status::Cancelled),
            cancel_reason: Set(Some(reason)),
            cancelled_at: Set(Some(now)),
            ..Default::default()
        })
        .filter(booking::Column::Id.is_in(ids.clone()))
        .exec(&**tx)
        .await?;
    for b in affected {
        let seat_ids = b.seat_list();
        let event = booking_cancelled(b.id, b.user_id, b.show_id, seat_ids, reason);
        events::record(&**tx, now, event).await?;
    }
    Ok(ids)
}

fn booking_cancelled(
    booking_id: Uuid,
    user_id: Uuid,
    show_id: Option<Uuid>,
    seat_ids: Vec<String>,
    reason: CancelReason,
) -> Event {
    Event::BookingCancelled(proto::BookingCancelled {
        booking_id: booking_id.to_string(),
        user_id: user_id.to_string(),
        show_id: show_id.map(|s| s.to_string()).unwrap_or_default(),
        seat_ids,
        reason: cancel_reason_to_proto(reason).into(),
    })
}

pub fn cancel_reason_to_proto(reason: CancelReason) -> proto::CancelReason {
    match reason {
        CancelReason::ByUser => proto::CancelReason::ByUser,
        CancelReason::ShowDeleted => proto::CancelReason::ShowDeleted,
        CancelReason::MovieDeleted => proto::CancelReason::MovieDeleted,
    }
}
