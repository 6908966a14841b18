//! The booking itself: the read, the seat claim, idempotent replay.
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    FromQueryResult, JoinType, QueryFilter, QuerySelect, RelationTrait, SqlErr, Statement, Value,
    sea_query::{Expr, ExprTrait, IntoCondition, LockBehavior, LockType, Query},
};

use crate::{
    booking::validate::{IdempotencyKey, NewBooking},
    domain::Event,
    entity::{
        booking::{self, SeatList, Status},
        movie, seat, show, theatre,
    },
    error::{AppError, AppResult, Reason, raised},
    events::outbox,
    ids::{BookingId, Cents, SeatId, ShowId, UserId},
    store::{Store, Tx},
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
/// requested means some were taken, and nothing is kept. No transaction
/// queues behind another's row locks (no lock chains, no deadlocks, no pool
/// exhaustion).
///
/// The booking row is inserted before the seats are claimed, so a concurrent
/// retry with the same idempotency key waits on the unique index instead of
/// losing the seats to its own first attempt. A repeated key is answered from
/// the failure path: the original booking holds the key (unique violation) or
/// the seats (taken), and the original is replayed. A first attempt, the
/// common case, pays no lookup.
///
/// Round trips per booking on PostgreSQL: the read, then one call of the
/// `claim_booking` function (`migrations/sql/claim_booking.sql`), which inserts the
/// booking, claims the seats and writes the outbox event as one statement
/// (`bench/pg/claim.sql` runs the same). On SQLite the same three writes run
/// as a transaction.
pub async fn create_booking(
    store: &Store,
    user: UserId,
    new: &NewBooking,
) -> AppResult<booking::Model> {
    match claim_seats(store, user, new).await {
        Ok(booking) => Ok(booking),
        Err(err) => match &new.idempotency_key {
            Some(key) => match find_by_key(store.reader(), user, key).await? {
                Some(existing) => replay(existing, new),
                None => Err(err),
            },
            None => Err(err),
        },
    }
}

/// Seat ids of `wanted` that are not in `have`, in the order asked for.
fn missing<'a>(wanted: &[SeatId], have: impl Iterator<Item = &'a SeatId> + Clone) -> Vec<String> {
    wanted
        .iter()
        .filter(|id| !have.clone().any(|h| h == *id))
        .map(ToString::to_string)
        .collect()
}

/// One row of the booking read: the show with what a booking snapshots of
/// it, joined with one requested seat (NULLs when none of them exist).
#[derive(Debug, FromQueryResult)]
struct ShowSeatRow {
    starts_at: DateTime<Utc>,
    movie_title: String,
    theatre_name: String,
    seat_id: Option<SeatId>,
    price_cents: Option<Cents>,
    booking_id: Option<BookingId>,
}

/// A show with what a booking snapshots of it and the total of the seats asked for.
struct BookableShow {
    starts_at: DateTime<Utc>,
    movie_title: String,
    theatre_name: String,
    total_cents: Cents,
}

/// The booking read on PostgreSQL, the same file the bench runs.
const BOOKABLE_SHOW_SQL: &str = include_str!("../sql/bookable_show.sql");

/// [`BOOKABLE_SHOW_SQL`] for `seats` requested seats: its `($2)` becomes
/// `($2, $3, …)`, one parameter per seat (the file says why).
fn bookable_show_sql(seats: usize) -> String {
    let list: Vec<String> = (2..2 + seats).map(|n| format!("${n}")).collect();
    BOOKABLE_SHOW_SQL.replace("IN ($2)", &format!("IN ({})", list.join(", ")))
}
/// The booking's writes on PostgreSQL, likewise.
const CLAIM_BOOKING_SQL: &str = include_str!("../sql/claim_booking_call.sql");

/// The show, its movie title and theatre name and the requested seats, in one
/// lock-free query: `sql/bookable_show.sql` on PostgreSQL (`postgres`), the
/// same join built by the query builder on SQLite.
async fn show_seat_rows(
    conn: &DatabaseConnection,
    postgres: bool,
    new: &NewBooking,
) -> AppResult<Vec<ShowSeatRow>> {
    if postgres {
        let mut values: Vec<Value> = vec![new.show_id.into()];
        values.extend(new.seat_ids.iter().cloned().map(Value::from));
        let read = Statement::from_sql_and_values(
            DbBackend::Postgres,
            bookable_show_sql(new.seat_ids.len()),
            values,
        );
        return Ok(ShowSeatRow::find_by_statement(read).all(conn).await?);
    }
    let wanted = new.seat_ids.clone();
    let requested = show::Relation::Seat.def().on_condition(move |_, seats| {
        Expr::col((seats, seat::Column::SeatId))
            .is_in(wanted.clone())
            .into_condition()
    });
    Ok(show::Entity::find_by_id(new.show_id)
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
        .await?)
}

/// Refuses a missing or started show, unknown and sold seats.
async fn bookable_show(
    conn: &DatabaseConnection,
    postgres: bool,
    new: &NewBooking,
    now: DateTime<Utc>,
) -> AppResult<BookableShow> {
    let rows = show_seat_rows(conn, postgres, new).await?;
    let first = rows
        .first()
        .ok_or_else(|| AppError::not_found("show", new.show_id))?;
    if first.starts_at <= now {
        return Err(AppError::FailedPrecondition(
            Reason::ShowStarted,
            format!("show {} has already started", new.show_id),
        ));
    }
    let unknown = missing(
        &new.seat_ids,
        rows.iter().filter_map(|r| r.seat_id.as_ref()),
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
        .filter_map(|r| r.seat_id.clone().map(String::from))
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
    tx: &Tx,
    show: ShowId,
    wanted: &[SeatId],
    booking: BookingId,
) -> AppResult<Vec<SeatId>> {
    let lockable = Query::select()
        .column(seat::Column::SeatId)
        .from(seat::Entity)
        .and_where(seat::Column::ShowId.eq(show))
        .and_where(seat::Column::SeatId.is_in(wanted.to_vec()))
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .to_owned();
    // Both sides name the requested seats, so the plan is bounded by them
    // whatever the statistics say of the show (migrations/sql/claim_booking.sql).
    let claimed = seat::Entity::update_many()
        .col_expr(seat::Column::BookingId, Expr::value(booking))
        .filter(seat::Column::ShowId.eq(show))
        .filter(seat::Column::SeatId.is_in(wanted.to_vec()))
        .filter(seat::Column::SeatId.in_subquery(lockable))
        .filter(seat::Column::BookingId.is_null())
        .exec_with_returning(tx.conn())
        .await?;
    Ok(claimed.into_iter().map(|s| s.seat_id).collect())
}

async fn claim_seats(store: &Store, user: UserId, new: &NewBooking) -> AppResult<booking::Model> {
    let now = store.now();
    // Read-only checks first, outside any write transaction or lock.
    // PostgreSQL reads from sql/ and writes in one call; SQLite builds the
    // read and writes in a transaction. Decided once for both halves.
    let postgres = store.backend() == DbBackend::Postgres;
    let show = bookable_show(store.reader(), postgres, new, now).await?;
    let booking = booking::Model {
        id: BookingId::new(),
        user_id: user,
        show_id: Some(new.show_id),
        status: Status::Confirmed,
        seat_ids: SeatList(new.seat_ids.clone()),
        total_cents: show.total_cents,
        movie_title: show.movie_title,
        theatre_name: show.theatre_name,
        starts_at: show.starts_at,
        idempotency_key: new.idempotency_key.clone().map(String::from),
        cancel_reason: None,
        cancelled_at: None,
        created_at: now,
    };
    let confirmed = Event::BookingConfirmed(booking.clone());
    let written = if postgres {
        store
            .write_statement(now, confirmed, async |conn, event| {
                let args = ClaimArgs {
                    booking: &booking,
                    seats: &new.seat_ids,
                    event,
                };
                claim_in_one_call(conn, args).await
            })
            .await
    } else {
        store
            .write_at(now, async |tx| {
                claim_in_transaction(tx, &booking, new).await?;
                tx.record(confirmed);
                Ok(())
            })
            .await
    };
    // The booking insert's foreign-key check takes a key-share lock on the
    // show, so a concurrent DeleteShow/DeleteMovie (FOR UPDATE on the show)
    // either waits for this booking and then cancels it, or deletes first and
    // the insert fails on the foreign key: the show is gone.
    written.map_err(|err| match err {
        AppError::Database(e)
            if matches!(e.sql_err(), Some(SqlErr::ForeignKeyConstraintViolation(_))) =>
        {
            AppError::not_found("show", new.show_id)
        }
        other => other,
    })?;
    Ok(booking)
}

/// SQLSTATE that `claim_booking` raises when a seat could not be claimed; its
/// message lists those seats, comma-separated.
const SEATS_TAKEN_SQLSTATE: &str = "TH409";

/// The arguments of `claim_booking`, by name; [`ClaimArgs::values`] binds
/// them in the order `sql/claim_booking_call.sql` lists.
struct ClaimArgs<'a> {
    booking: &'a booking::Model,
    seats: &'a [SeatId],
    event: outbox::Encoded,
}

impl ClaimArgs<'_> {
    fn values(self) -> [Value; 15] {
        let (b, e) = (self.booking, self.event);
        [
            b.id.into(),
            b.user_id.into(),
            b.show_id.into(),
            self.seats.to_vec().into(),
            b.total_cents.into(),
            b.movie_title.clone().into(),
            b.theatre_name.clone().into(),
            b.starts_at.into(),
            b.idempotency_key.clone().into(),
            b.created_at.into(),
            e.id.into(),
            e.aggregate_type.into(),
            e.aggregate_id.into(),
            e.event_type.into(),
            e.payload.into(),
        ]
    }
}

/// PostgreSQL: the booking insert, the claim and the outbox event as one
/// statement (the function raises, undoing all of it, if a seat was taken).
async fn claim_in_one_call(conn: &DatabaseConnection, args: ClaimArgs<'_>) -> AppResult<()> {
    let call =
        Statement::from_sql_and_values(DbBackend::Postgres, CLAIM_BOOKING_SQL, args.values());
    match conn.execute_raw(call).await {
        Ok(_) => Ok(()),
        Err(err) => match raised(&err) {
            Some((code, message)) if code == SEATS_TAKEN_SQLSTATE => Err(AppError::SeatsTaken(
                message.split(',').map(str::to_owned).collect(),
            )),
            _ => Err(err.into()),
        },
    }
}

/// SQLite (and the reference for the function): the same writes in the
/// unit of work's transaction, which appends the outbox event.
async fn claim_in_transaction(tx: &Tx, b: &booking::Model, new: &NewBooking) -> AppResult<()> {
    booking::ActiveModel::from(b.clone())
        .insert(tx.conn())
        .await?;
    let claimed = claim(tx, new.show_id, &new.seat_ids, b.id).await?;
    // Seats left out are held by another in-flight booking or were sold since
    // the read. Either way they are taken, and nothing is kept.
    let mut taken = missing(&new.seat_ids, claimed.iter());
    if !taken.is_empty() {
        taken.sort();
        return Err(AppError::SeatsTaken(taken));
    }
    Ok(())
}

async fn find_by_key(
    conn: &impl ConnectionTrait,
    user: UserId,
    key: &IdempotencyKey,
) -> AppResult<Option<booking::Model>> {
    Ok(booking::Entity::find()
        .filter(booking::Column::UserId.eq(user))
        .filter(booking::Column::IdempotencyKey.eq(key.as_str()))
        .one(conn)
        .await?)
}

/// The original booking for a repeated key, if the request is the same one.
fn replay(existing: booking::Model, new: &NewBooking) -> AppResult<booking::Model> {
    let same_show = existing.show_id == Some(new.show_id);
    let mut before = existing.seat_ids.0.clone();
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
