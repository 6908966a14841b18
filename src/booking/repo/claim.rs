//! The booking itself: what is known of the show, the seat claim,
//! idempotent replay.
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    QueryFilter, SqlErr,
    sea_query::{Expr, LockBehavior, LockType, Query},
};

use crate::{
    booking::{
        batch::{Claim, ClaimBatcher, Outcome},
        known::{KnownShow, KnownShows, no_such_seats, read_show, show_started},
        validate::{IdempotencyKey, NewBooking},
    },
    domain::Event,
    entity::{
        booking::{self, SeatList, Status},
        seat,
    },
    error::{AppError, AppResult},
    events::outbox,
    ids::{BookingId, Cents, SeatId, ShowId, UserId},
    metrics::Metrics,
    store::{Store, Tx},
};

/// Books every requested seat or none.
///
/// Contention design: a loser never waits on a winner, and most losers never
/// reach the database. What this instance knows of the show
/// (`booking::known`) refuses a booking of a seat it knows is sold, a seat the
/// show does not have, or a started show, once Redis confirms that no seat of
/// the show was freed since (one GET); it also prices the booking, so a
/// booking that goes on needs no read of its own.
///
/// The claim itself never waits for a lock: it updates the requested seats
/// that are still free, restricted to the rows a `FOR UPDATE SKIP LOCKED`
/// subquery could lock (PostgreSQL; SQLite has one writer at a time), so a
/// seat another in-flight booking holds is left out, and fewer seats than
/// requested means some were taken and nothing is kept.
///
/// PostgreSQL: the booking joins a batch (`booking::batch`, group commit); one
/// call of `claim_bookings` checks the snapshot it was priced from, inserts
/// the booking, claims the seats and writes the outbox event for every
/// booking of the batch, in one transaction. SQLite: a lock-free read of the
/// show and the seats, then the same writes as one transaction.
///
/// The booking row is inserted before the seats are claimed, so a concurrent
/// retry with the same idempotency key waits on the unique index instead of
/// losing the seats to its own first attempt. A repeated key is answered from
/// the failure path: the original booking holds the key or the seats, and the
/// original is replayed. A first attempt, the common case, pays no lookup.
pub struct Booker {
    store: Store,
    known: KnownShows,
    /// PostgreSQL's group commit; `None` on SQLite.
    batcher: Option<ClaimBatcher>,
}

impl Booker {
    pub fn new(store: Store, metrics: Metrics) -> Self {
        let batcher = (store.backend() == DbBackend::Postgres)
            .then(|| ClaimBatcher::start(store.db(), store.cache().clone(), metrics));
        Self {
            known: KnownShows::new(store.clone()),
            store,
            batcher,
        }
    }

    pub async fn create_booking(
        &self,
        user: UserId,
        new: &NewBooking,
    ) -> AppResult<booking::Model> {
        match self.claim_seats(user, new).await {
            Ok(booking) => Ok(booking),
            Err(err) => match &new.idempotency_key {
                Some(key) => match find_by_key(self.store.reader(), user, key).await? {
                    Some(existing) => replay(existing, new),
                    None => Err(err),
                },
                None => Err(err),
            },
        }
    }

    async fn claim_seats(&self, user: UserId, new: &NewBooking) -> AppResult<booking::Model> {
        let now = self.store.now();
        let known = self.known.get(new.show_id).await?;
        if let Some(refusal) = self.known.refusal(&known, new, now).await {
            return Err(refusal);
        }
        match &self.batcher {
            Some(batcher) => self.claim_batched(batcher, known, user, new, now).await,
            None => {
                let claimed = claim_alone(&self.store, user, new, now).await;
                // One writer at a time: a seat found taken is sold.
                match &claimed {
                    Ok(_) => known.sold(new.seat_ids.iter().cloned()),
                    Err(AppError::SeatsTaken(taken)) => known.sold(named(new, taken)),
                    Err(_) => {}
                }
                claimed
            }
        }
    }

    /// PostgreSQL: priced from what is known of the show, claimed in a batch.
    /// A snapshot the function finds stale is reloaded once.
    async fn claim_batched(
        &self,
        batcher: &ClaimBatcher,
        mut known: Arc<KnownShow>,
        user: UserId,
        new: &NewBooking,
        now: DateTime<Utc>,
    ) -> AppResult<booking::Model> {
        for _ in 0..2 {
            let Some(total_cents) = known.total(&new.seat_ids) else {
                // Unknown seats, in a snapshot that may be behind: read again.
                self.known.forget(new.show_id, &known);
                known = self.known.load(new.show_id).await?;
                continue;
            };
            let show = BookableShow {
                starts_at: known.starts_at,
                movie_title: known.movie_title.clone(),
                theatre_name: known.theatre_name.clone(),
                total_cents,
            };
            let booking = show.booking(user, new, now);
            let confirmed = Event::BookingConfirmed(booking.clone());
            let event = outbox::encode(now, &confirmed)
                .ok_or_else(|| AppError::Internal("a booking has no published event".into()))?;
            let outcome = batcher
                .claim(Claim {
                    booking: booking.clone(),
                    event,
                })
                .await?;
            return match outcome {
                // The batch has told the cache.
                Outcome::Booked => {
                    known.sold(new.seat_ids.iter().cloned());
                    Ok(booking)
                }
                Outcome::Sold(seats) => {
                    known.sold(named(new, &seats));
                    Err(AppError::SeatsTaken(seats))
                }
                // Held by another in-flight claim, which may yet fail: not
                // known to be sold.
                Outcome::Taken(seats) => Err(AppError::SeatsTaken(seats)),
                Outcome::KeyUsed => Err(AppError::invalid(
                    "idempotency_key",
                    "was already used for a different booking",
                )),
                Outcome::NotFound => {
                    self.known.forget(new.show_id, &known);
                    Err(AppError::not_found("show", new.show_id))
                }
                Outcome::Started => Err(show_started(new.show_id)),
                Outcome::Stale => {
                    self.known.forget(new.show_id, &known);
                    known = self.known.load(new.show_id).await?;
                    continue;
                }
            };
        }
        match known.total(&new.seat_ids) {
            None => Err(no_such_seats(&known.unknown(&new.seat_ids))),
            Some(_) => Err(AppError::Unavailable(
                "the show changed while it was being booked, retry".into(),
            )),
        }
    }
}

/// The seats of `new` that `names` lists.
fn named<'a>(new: &'a NewBooking, names: &'a [String]) -> impl Iterator<Item = SeatId> + 'a {
    new.seat_ids
        .iter()
        .filter(|s| names.iter().any(|n| n == s.as_str()))
        .cloned()
}

/// Seat ids of `wanted` that are not in `have`, in the order asked for.
fn missing<'a>(wanted: &[SeatId], have: impl Iterator<Item = &'a SeatId> + Clone) -> Vec<String> {
    wanted
        .iter()
        .filter(|id| !have.clone().any(|h| h == *id))
        .map(ToString::to_string)
        .collect()
}

/// A show with what a booking snapshots of it and the total of the seats asked for.
struct BookableShow {
    starts_at: DateTime<Utc>,
    movie_title: String,
    theatre_name: String,
    total_cents: Cents,
}

impl BookableShow {
    /// The confirmed booking of `new` by `user` on this show, made at `now`.
    fn booking(self, user: UserId, new: &NewBooking, now: DateTime<Utc>) -> booking::Model {
        booking::Model {
            id: BookingId::new(),
            user_id: user,
            show_id: Some(new.show_id),
            status: Status::Confirmed,
            seat_ids: SeatList(new.seat_ids.clone()),
            total_cents: self.total_cents,
            movie_title: self.movie_title,
            theatre_name: self.theatre_name,
            starts_at: self.starts_at,
            idempotency_key: new.idempotency_key.clone().map(String::from),
            cancel_reason: None,
            cancelled_at: None,
            created_at: now,
        }
    }
}

/// Refuses a missing or started show, unknown and sold seats.
async fn bookable_show(
    conn: &DatabaseConnection,
    new: &NewBooking,
    now: DateTime<Utc>,
) -> AppResult<BookableShow> {
    let rows = read_show(conn, new.show_id, Some(new.seat_ids.clone())).await?;
    let first = rows
        .first()
        .ok_or_else(|| AppError::not_found("show", new.show_id))?;
    if first.starts_at <= now {
        return Err(show_started(new.show_id));
    }
    let unknown = missing(
        &new.seat_ids,
        rows.iter().filter_map(|r| r.seat_id.as_ref()),
    );
    if !unknown.is_empty() {
        return Err(no_such_seats(&unknown));
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

/// SQLite: the read, then the writes as one transaction.
async fn claim_alone(
    store: &Store,
    user: UserId,
    new: &NewBooking,
    now: DateTime<Utc>,
) -> AppResult<booking::Model> {
    // Read-only checks first, outside the write transaction.
    let show = bookable_show(store.reader(), new, now).await?;
    let booking = show.booking(user, new, now);
    let confirmed = Event::BookingConfirmed(booking.clone());
    store
        .write_at(now, async |tx| {
            claim_in_transaction(tx, &booking, new).await?;
            tx.record(confirmed);
            Ok(())
        })
        .await
        // The booking insert's foreign-key check fails if the show was
        // deleted since the read.
        .map_err(|err| match err {
            AppError::Database(e)
                if matches!(e.sql_err(), Some(SqlErr::ForeignKeyConstraintViolation(_))) =>
            {
                AppError::not_found("show", new.show_id)
            }
            other => other,
        })?;
    Ok(booking)
}

/// SQLite: the booking's writes in the unit of work's transaction, which
/// appends the outbox event.
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
