//! Group commit for seat claims (PostgreSQL): bookings that arrive while
//! others are being claimed are gathered and claimed together, in one call of
//! `claim_bookings` (`migrations/sql/claim_bookings.sql`): one round trip, one
//! transaction and one WAL flush for the lot, each booking still all or
//! nothing and refused on its own. The cache is told once per batch too, what
//! its bookings made stale, before any of them is answered.
//!
//! There is no timer. A claim that finds fewer than [`IN_FLIGHT`] batches
//! running is sent at once, alone, so a lone booking waits for nothing; the
//! claims that arrive while every slot is busy wait for the first slot to free
//! and go in it together (up to [`MAX_BATCH`]), so batches grow with the load
//! by themselves.
//!
//! Each slot has a route to the database, kept from batch to batch: a
//! connection of the claims' own ([`Direct`], tokio-postgres, one exchange
//! per batch) where the URL allows one, otherwise the pool. A batch the
//! database refused as a whole (a deadlock, a statement timeout) claimed
//! nothing, and is retried one booking at a time, so that each member gets
//! its own answer; a batch whose connection broke may have committed, and
//! each member is told `UNAVAILABLE`, which a retry with the same
//! idempotency key settles.
use std::{collections::HashSet, sync::Arc};

use futures_util::future::join_all;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, SqlErr, Statement, Value,
    sea_query::ArrayType,
};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinSet,
};

use super::direct::{Link, Open};
use crate::{
    cache::Cache,
    db::{Database, Direct},
    domain::Event,
    entity::booking,
    error::{self, AppError, AppResult},
    events::outbox,
    metrics::Metrics,
};

/// Batches being claimed at once (a slot is free again as soon as the
/// database has answered). On this two-core machine, with 50 clients booking
/// and everything else on the same cores: two slots made 1,885 bookings/s in
/// batches of 4.9 at 0.33 ms of PostgreSQL CPU per booking; four, 1,899/s in
/// batches of 3.0 at 0.40 ms; one, 787/s in batches of 20, each waiting for
/// the last. Two gets as far for less of the database. Again on the claims'
/// own connections (2026-12-07, four alternating rounds of 8 s): two made
/// 2,568, 1,772, 2,431 and 2,916 bookings/s in batches of 6.4-8.0; three
/// 2,199, 1,708, 2,739 and 2,670 in batches of 4.6-5.8, at 0.43-0.79 ms of
/// PostgreSQL CPU per booking against 0.38-0.71.
pub const IN_FLIGHT: usize = 2;
/// Bookings per call at most.
pub const MAX_BATCH: usize = 64;

/// One booking to claim: the row as it will be written, and its event.
pub struct Claim {
    pub booking: booking::Model,
    pub event: outbox::Encoded,
}

/// What `claim_bookings` said of one booking (the SQL file documents each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Booked,
    /// Seats sold by a committed booking (or an earlier one of the batch).
    Sold(Vec<String>),
    /// Seats held by an in-flight claim, which may yet fail.
    Taken(Vec<String>),
    KeyUsed,
    NotFound,
    Started,
    Stale,
}

struct Pending {
    claim: Claim,
    reply: oneshot::Sender<AppResult<Outcome>>,
}

/// The handle the booking calls share; the batching task ends when the last
/// handle is dropped.
#[derive(Clone)]
pub struct ClaimBatcher {
    queue: mpsc::UnboundedSender<Pending>,
}

impl ClaimBatcher {
    /// Starts the batching task on the current runtime.
    pub fn start(db: &Database, cache: Cache, metrics: Metrics) -> Self {
        let (queue, waiting) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            conn: db.conn().clone(),
            direct: db.direct().cloned(),
            cache,
            metrics,
        });
        tokio::spawn(gather(shared, waiting));
        Self { queue }
    }

    /// Claims one booking as part of whichever batch it joins.
    pub async fn claim(&self, claim: Claim) -> AppResult<Outcome> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { claim, reply })
            .map_err(|_| AppError::Unavailable("the server is shutting down".into()))?;
        answer
            .await
            .map_err(|_| AppError::Internal("a claim batch ended without an answer".into()))?
    }
}

/// What every batch uses.
struct Shared {
    conn: DatabaseConnection,
    direct: Option<Direct>,
    cache: Cache,
    metrics: Metrics,
}

/// How a slot reaches the database.
enum Route {
    Direct(Link),
    Pool(DatabaseConnection),
}

impl Route {
    fn new(shared: &Shared) -> Self {
        match &shared.direct {
            Some(direct) => Route::Direct(Link::new(direct.clone())),
            None => Route::Pool(shared.conn.clone()),
        }
    }

    async fn ready(&mut self) -> Result<Ready<'_>, Failed> {
        match self {
            Route::Direct(link) => link.open().await.map(Ready::Direct),
            Route::Pool(conn) => Ok(Ready::Pool(conn)),
        }
    }
}

/// A route that can take a call now.
enum Ready<'a> {
    Direct(&'a Open),
    Pool(&'a DatabaseConnection),
}

impl Ready<'_> {
    async fn call(&self, claims: &[&Claim]) -> Result<Vec<Outcome>, Failed> {
        match self {
            Ready::Direct(open) => open.call(claims).await,
            Ready::Pool(conn) => call(conn, claims).await.map_err(Failed::from_db),
        }
    }
}

/// A call that failed as a whole.
pub struct Failed {
    /// What each member is told.
    error: AppError,
    /// The database refused the statement: its transaction rolled back, none
    /// of the batch was claimed, and each member may be claimed alone.
    /// Otherwise nothing was sent, or the answer was lost or unreadable, and
    /// the batch may have committed.
    refused: bool,
    /// A foreign-key violation: a show was deleted during the claim.
    show_gone: bool,
}

impl Failed {
    fn from_db(err: DbErr) -> Self {
        Self {
            refused: error::raised(&err).is_some(),
            show_gone: matches!(
                err.sql_err(),
                Some(SqlErr::ForeignKeyConstraintViolation(_))
            ),
            error: err.into(),
        }
    }

    pub fn from_postgres(err: tokio_postgres::Error) -> Self {
        Self {
            refused: err.code().is_some(),
            show_gone: err.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION),
            error: error::from_postgres(&err),
        }
    }

    /// No connection could be opened or prepared: nothing was sent.
    pub fn unsent(err: tokio_postgres::Error) -> Self {
        Self {
            error: error::unreachable(&err),
            refused: false,
            show_gone: false,
        }
    }

    /// The batch ran but its answer could not be read: our bug.
    pub fn unread(err: &dyn std::fmt::Display) -> Self {
        Self {
            error: AppError::Internal(format!("claim_bookings answered badly: {err}")),
            refused: false,
            show_gone: false,
        }
    }

    /// The error again, for one more member of the batch.
    fn again(&self) -> AppError {
        match &self.error {
            AppError::Unavailable(m) => AppError::Unavailable(m.clone()),
            AppError::DeadlineExceeded(m) => AppError::DeadlineExceeded(m.clone()),
            other => AppError::Internal(other.to_string()),
        }
    }

    /// A lone booking's answer: a show deleted under it is not found.
    fn alone(self) -> AppResult<Outcome> {
        if self.show_gone {
            Ok(Outcome::NotFound)
        } else {
            Err(self.error)
        }
    }
}

/// Sends what is waiting whenever a slot is free; see the module docs.
async fn gather(shared: Arc<Shared>, mut arrivals: mpsc::UnboundedReceiver<Pending>) {
    let mut waiting: Vec<Pending> = Vec::new();
    let mut free: Vec<Route> = (0..IN_FLIGHT).map(|_| Route::new(&shared)).collect();
    let mut running = JoinSet::new();
    let mut open = true;
    loop {
        tokio::select! {
            arrived = arrivals.recv(), if open => match arrived {
                Some(pending) => {
                    waiting.push(pending);
                    while let Ok(more) = arrivals.try_recv() {
                        waiting.push(more);
                    }
                }
                None => open = false,
            },
            Some(done) = running.join_next(), if !running.is_empty() => {
                // A batch that panicked took its route with it.
                free.push(done.unwrap_or_else(|_| Route::new(&shared)));
            }
            else => break,
        }
        while !waiting.is_empty()
            && let Some(route) = free.pop()
        {
            // Split what waits evenly over the free slots.
            let size = waiting.len().div_ceil(free.len() + 1).min(MAX_BATCH);
            let batch = take_batch(&mut waiting, size);
            shared.metrics.claim_batch(batch.len());
            running.spawn(claim_batch(shared.clone(), route, batch));
        }
    }
}

/// Up to `size` of `waiting`, oldest first, no two of them wanting the same
/// seat of the same show: such a pair would make one booking's claim depend on
/// whether the other's succeeds, so the later one waits for the next batch.
fn take_batch(waiting: &mut Vec<Pending>, size: usize) -> Vec<Pending> {
    let mut wanted = HashSet::new();
    let (mut batch, mut later) = (Vec::new(), Vec::new());
    for pending in waiting.drain(..) {
        let booking = &pending.claim.booking;
        let seats: Vec<_> = booking
            .seat_ids
            .0
            .iter()
            .map(|seat| (booking.show_id, seat.clone()))
            .collect();
        if batch.len() < size && seats.iter().all(|s| !wanted.contains(s)) {
            wanted.extend(seats);
            batch.push(pending);
        } else {
            later.push(pending);
        }
    }
    *waiting = later;
    batch
}

/// Claims `batch` in one call on `route`, tells the cache what its bookings
/// made stale, and answers each member (see the module docs for a failed
/// call); hands the route back for the next batch.
async fn claim_batch(shared: Arc<Shared>, mut route: Route, mut batch: Vec<Pending>) -> Route {
    // One lock order on shows for all batches (the function's header says why).
    batch.sort_by_key(|p| p.claim.booking.show_id.map(|s| s.0));
    let claims: Vec<&Claim> = batch.iter().map(|p| &p.claim).collect();
    let started = std::time::Instant::now();
    let answer = match route.ready().await {
        Ok(ready) => ready.call(&claims).await,
        Err(unsent) => Err(unsent),
    };
    shared
        .metrics
        .claim_batch_took(started.elapsed().as_secs_f64());
    match answer {
        Ok(outcomes) => {
            let booked: Vec<Event> = batch
                .iter()
                .zip(&outcomes)
                .filter(|(_, outcome)| **outcome == Outcome::Booked)
                .map(|(p, _)| Event::BookingConfirmed(p.claim.booking.clone()))
                .collect();
            // The slot is free once the database has answered: the cache
            // and the answers go on beside the next batch.
            tokio::spawn(async move {
                shared.cache.invalidate(&booked).await;
                for (pending, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = pending.reply.send(Ok(outcome));
                }
            });
        }
        Err(failed) if batch.len() == 1 => {
            let pending = batch.pop().expect("one member");
            let _ = pending.reply.send(failed.alone());
        }
        Err(failed) if failed.refused => {
            tracing::warn!(error = %failed.error, size = batch.len(), "claim batch refused; claiming its members one by one");
            retry_each(&shared, &mut route, batch).await;
        }
        Err(failed) => {
            for pending in batch {
                let _ = pending.reply.send(Err(failed.again()));
            }
        }
    }
    route
}

/// Claims each of `batch` on its own, all at once (pipelined on a
/// connection of the claims' own, on connections of their own from the pool).
async fn retry_each(shared: &Shared, route: &mut Route, batch: Vec<Pending>) {
    let ready = match route.ready().await {
        Ok(ready) => ready,
        Err(failed) => {
            for pending in batch {
                let _ = pending.reply.send(Err(failed.again()));
            }
            return;
        }
    };
    join_all(batch.into_iter().map(|pending| {
        let ready = &ready;
        async move {
            let answer = match ready.call(&[&pending.claim]).await {
                Ok(mut outcomes) => Ok(outcomes.pop().expect("one outcome per claim")),
                Err(failed) => failed.alone(),
            };
            if let Ok(Outcome::Booked) = answer {
                let confirmed = Event::BookingConfirmed(pending.claim.booking.clone());
                shared.cache.invalidate(&[confirmed]).await;
            }
            let _ = pending.reply.send(answer);
        }
    }))
    .await;
}

/// The statement, `claim_bookings` with one array element per booking.
pub const CLAIM_BOOKINGS_SQL: &str = include_str!("sql/claim_bookings_call.sql");

/// Each booking's outcome from the function's rows `(n, outcome, seats)`.
pub fn answers(
    len: usize,
    rows: Vec<(i32, String, Option<Vec<String>>)>,
) -> Result<Vec<Outcome>, String> {
    let mut outcomes = vec![None; len];
    for (n, outcome, seats) in rows {
        let outcome = match outcome.as_str() {
            "OK" => Outcome::Booked,
            "SOLD" => Outcome::Sold(seats.unwrap_or_default()),
            "TAKEN" => Outcome::Taken(seats.unwrap_or_default()),
            "KEY_USED" => Outcome::KeyUsed,
            "NOT_FOUND" => Outcome::NotFound,
            "STARTED" => Outcome::Started,
            "STALE" => Outcome::Stale,
            other => return Err(format!("outcome {other:?}")),
        };
        let slot = usize::try_from(n - 1)
            .ok()
            .and_then(|i| outcomes.get_mut(i))
            .ok_or_else(|| format!("an outcome for booking {n}"))?;
        *slot = Some(outcome);
    }
    outcomes
        .into_iter()
        .map(|o| o.ok_or_else(|| "no outcome for a booking".to_owned()))
        .collect()
}

fn array(kind: ArrayType, values: impl IntoIterator<Item = Value>) -> Value {
    Value::Array(kind, Some(Box::new(values.into_iter().collect())))
}

/// `claim_bookings` for `claims` on the pool.
async fn call(conn: &DatabaseConnection, claims: &[&Claim]) -> Result<Vec<Outcome>, DbErr> {
    let rows = claims.iter().map(|c| &c.booking);
    let strings = |f: &dyn Fn(&Claim) -> String| {
        array(ArrayType::String, claims.iter().map(|c| Value::from(f(c))))
    };
    let values = vec![
        array(ArrayType::Uuid, rows.clone().map(|b| b.id.into())),
        array(ArrayType::Uuid, rows.clone().map(|b| b.user_id.into())),
        array(
            ArrayType::Uuid,
            rows.clone().map(|b| b.show_id.map(|s| s.0).into()),
        ),
        array(
            ArrayType::Int,
            rows.clone().map(|b| (b.seat_ids.0.len() as i32).into()),
        ),
        array(
            ArrayType::String,
            rows.clone()
                .flat_map(|b| b.seat_ids.0.iter().map(|s| s.to_string().into())),
        ),
        array(
            ArrayType::BigInt,
            rows.clone().map(|b| b.total_cents.0.into()),
        ),
        strings(&|c| c.booking.movie_title.clone()),
        strings(&|c| c.booking.theatre_name.clone()),
        array(
            ArrayType::ChronoDateTimeUtc,
            rows.clone().map(|b| b.starts_at.into()),
        ),
        // '' for no key (the driver binds no NULL elements); the function
        // stores NULLIF(key, '') and an empty key is refused by validation.
        strings(&|c| c.booking.idempotency_key.clone().unwrap_or_default()),
        array(ArrayType::Uuid, claims.iter().map(|c| c.event.id.into())),
        strings(&|c| c.event.aggregate_type.to_owned()),
        strings(&|c| c.event.aggregate_id.clone()),
        strings(&|c| c.event.event_type.to_owned()),
        array(
            ArrayType::Bytes,
            claims.iter().map(|c| c.event.payload.clone().into()),
        ),
        array(
            ArrayType::ChronoDateTimeUtc,
            rows.map(|b| b.created_at.into()),
        ),
    ];
    let statement = Statement::from_sql_and_values(DbBackend::Postgres, CLAIM_BOOKINGS_SQL, values);
    let rows = conn.query_all_raw(statement).await?;
    let rows = rows
        .iter()
        .map(|row| {
            Ok((
                row.try_get("", "n")?,
                row.try_get("", "outcome")?,
                row.try_get("", "seats")?,
            ))
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    answers(claims.len(), rows).map_err(|err| DbErr::Custom(format!("claim_bookings: {err}")))
}
