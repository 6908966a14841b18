//! Booking queries, including the seat-claim transaction.
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, JoinType,
    QueryFilter, QueryOrder, QuerySelect, RelationTrait, Set, SqlErr,
    sea_query::{Expr, ExprTrait, IntoCondition, LockBehavior, LockType, Query},
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
    ids::{BookingId, UserId},
    proto,
};

/// Books every requested seat or none.
///
/// Contention design: a loser must never wait on a winner. One lock-free read
/// takes the show and the requested seats, so seats that are already sold are
/// refused at once. The claim is then a single `UPDATE` of the requested seats
/// that are still free, restricted to the rows a `FOR UPDATE SKIP LOCKED`
/// subquery could lock (PostgreSQL; SQLite has one writer at a time): a seat
/// that another in-flight booking holds is not waited for but left out, and
/// the seats the update returns are the ones this booking got. Fewer than
/// requested means some were taken, and the transaction rolls back. No
/// transaction queues behind another's row locks (no lock chains, no
/// deadlocks, no pool exhaustion).
///
/// The booking row is inserted before the seats are claimed, so a concurrent
/// retry with the same idempotency key waits on the unique index instead of
/// losing the seats to its own first attempt. A repeated key is answered from
/// the failure path: the original booking holds the key (unique violation) or
/// the seats (taken), and the original is replayed. A first attempt, the
/// common case, pays no lookup.
///
/// Statements per booking: the read, then `BEGIN`, the booking insert, the
/// claim, the outbox insert and `COMMIT` (`bench/pg/claim.sql` runs the same).
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

/// Seat ids of `wanted` that are not in `have`, in the order asked for.
fn missing<'a>(wanted: &[String], have: impl Iterator<Item = &'a str> + Clone) -> Vec<String> {
    wanted
        .iter()
        .filter(|id| !have.clone().any(|h| h == id.as_str()))
        .cloned()
        .collect()
}

/// One row of the booking read: the show with what a booking snapshots of
/// it, joined with one requested seat (NULLs when none of them exist).
#[derive(Debug, FromQueryResult)]
struct ShowSeatRow {
    starts_at: DateTime<Utc>,
    movie_title: String,
    theatre_name: String,
    seat_id: Option<String>,
    price_cents: Option<i64>,
    booking_id: Option<Uuid>,
}

/// A show with what a booking snapshots of it and the total of the seats asked for.
struct BookableShow {
    starts_at: DateTime<Utc>,
    movie_title: String,
    theatre_name: String,
    total_cents: i64,
}

/// The show, its movie title and theatre name and the requested seats, in one
/// lock-free query; refuses a missing or started show, unknown and sold seats.
async fn bookable_show(
    conn: &impl ConnectionTrait,
    new: &NewBooking,
    now: DateTime<Utc>,
) -> AppResult<BookableShow> {
    let wanted = new.seat_ids.clone();
    let requested = show::Relation::Seat.def().on_condition(move |_, seats| {
        Expr::col((seats, seat::Column::SeatId))
            .is_in(wanted.clone())
            .into_condition()
    });
    let rows = show::Entity::find_by_id(new.show_id.0)
        .select_only()
        .column(show::Column::StartsAt)
        .column_as(movie::Column::Title, "movie_title")
        .column_as(theatre::Column::Name, "theatre_name")
        .column(seat::Column::SeatId)
        .column(seat::Column::PriceCents)
        .column(seat::Column::BookingId)
        .join(JoinType::InnerJoin, show::Relation::Movie.def())
        .join(JoinType::InnerJoin, show::Relation::Theatre.def())
        .join(JoinType::LeftJoin, requested)
        .into_model::<ShowSeatRow>()
        .all(conn)
        .await?;
    let first = rows
        .first()
        .ok_or_else(|| AppError::not_found("show", new.show_id))?;
    if first.starts_at <= now {
        return Err(AppError::FailedPrecondition(format!(
            "show {} has already started",
            new.show_id
        )));
    }
    let unknown = missing(
        &new.seat_ids,
        rows.iter().filter_map(|r| r.seat_id.as_deref()),
    );
    if !unknown.is_empty() {
        return Err(AppError::invalid(
            "seat_ids",
            format!("no such seats in this show: {}", unknown.join(", ")),
        ));
    }
    let mut sold: Vec<String> = rows
        .iter()
        .filter(|r| r.booking_id.is_some())
        .filter_map(|r| r.seat_id.clone())
        .collect();
    if !sold.is_empty() {
        sold.sort();
        return Err(AppError::SeatsTaken(sold));
    }
    Ok(BookableShow {
        starts_at: first.starts_at,
        movie_title: first.movie_title.clone(),
        theatre_name: first.theatre_name.clone(),
        total_cents: rows.iter().filter_map(|r| r.price_cents).sum(),
    })
}

/// Gives `booking` every seat of `wanted` that is free and not locked by
/// another transaction; returns the seat ids it got.
async fn claim(
    tx: &WriteTx,
    show: Uuid,
    wanted: &[String],
    booking: Uuid,
) -> AppResult<Vec<String>> {
    let lockable = Query::select()
        .column(seat::Column::SeatId)
        .from(seat::Entity)
        .and_where(seat::Column::ShowId.eq(show))
        .and_where(seat::Column::SeatId.is_in(wanted.to_vec()))
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .to_owned();
    let claimed = seat::Entity::update_many()
        .col_expr(seat::Column::BookingId, Expr::value(booking))
        .filter(seat::Column::ShowId.eq(show))
        .filter(seat::Column::SeatId.in_subquery(lockable))
        .filter(seat::Column::BookingId.is_null())
        .exec_with_returning(&**tx)
        .await?;
    Ok(claimed.into_iter().map(|s| s.seat_id).collect())
}

async fn claim_seats(
    db: &Database,
    user: UserId,
    new: &NewBooking,
    now: DateTime<Utc>,
) -> AppResult<booking::Model> {
    // Read-only checks first, outside any write transaction or lock.
    let show = bookable_show(db.conn(), new, now).await?;

    let tx = db.begin_write().await?;
    // The insert's foreign-key check takes a key-share lock on the show, so a
    // concurrent DeleteShow/DeleteMovie (FOR UPDATE on the show) either waits
    // for this booking and then cancels it, or deletes first and the insert
    // fails on the foreign key: the show is gone.
    let booking_id = BookingId::new();
    let booking = booking::ActiveModel {
        id: Set(booking_id.0),
        user_id: Set(user.0),
        show_id: Set(Some(new.show_id.0)),
        status: Set(Status::Confirmed),
        seat_ids: Set(new.seat_ids.join(",")),
        total_cents: Set(show.total_cents),
        movie_title: Set(show.movie_title),
        theatre_name: Set(show.theatre_name),
        starts_at: Set(show.starts_at),
        idempotency_key: Set(new.idempotency_key.clone()),
        cancel_reason: Set(None),
        cancelled_at: Set(None),
        created_at: Set(now),
    }
    .insert(&*tx)
    .await
    .map_err(|e| {
        if matches!(e.sql_err(), Some(SqlErr::ForeignKeyConstraintViolation(_))) {
            AppError::not_found("show", new.show_id)
        } else {
            e.into()
        }
    })?;

    let claimed = claim(&tx, new.show_id.0, &new.seat_ids, booking_id.0).await?;
    // Seats left out are held by another in-flight booking or were sold since
    // the read. Either way they are taken, and nothing is kept.
    let mut taken = missing(&new.seat_ids, claimed.iter().map(String::as_str));
    if !taken.is_empty() {
        taken.sort();
        return Err(AppError::SeatsTaken(taken));
    }
    let confirmed = proto::BookingConfirmed {
        booking_id: booking_id.to_string(),
        user_id: user.to_string(),
        show_id: new.show_id.to_string(),
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
