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
//! by themselves. A batch that fails as a whole (a deadlock, a lost
//! connection) is retried one booking at a time, so each member gets its own
//! answer.
use std::{collections::HashSet, sync::Arc};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, SqlErr, Statement, Value,
    sea_query::ArrayType,
};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinSet,
};

use crate::{
    cache::Cache,
    domain::Event,
    entity::booking,
    error::{AppError, AppResult},
    events::outbox,
    metrics::Metrics,
};

/// Batches being claimed at once (a slot is free again as soon as the
/// database has answered). On this two-core machine, with 50 clients booking
/// and everything else on the same cores: two slots made 1,885 bookings/s in
/// batches of 4.9 at 0.33 ms of PostgreSQL CPU per booking; four, 1,899/s in
/// batches of 3.0 at 0.40 ms; one, 787/s in batches of 20, each waiting for
/// the last. Two gets as far for less of the database.
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
    pub fn start(conn: DatabaseConnection, cache: Cache, metrics: Metrics) -> Self {
        let (queue, waiting) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            conn,
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
    cache: Cache,
    metrics: Metrics,
}

/// Sends what is waiting whenever a slot is free; see the module docs.
async fn gather(shared: Arc<Shared>, mut arrivals: mpsc::UnboundedReceiver<Pending>) {
    let mut waiting: Vec<Pending> = Vec::new();
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
            Some(_) = running.join_next(), if !running.is_empty() => {}
            else => break,
        }
        while running.len() < IN_FLIGHT && !waiting.is_empty() {
            // Split what waits evenly over the free slots.
            let free = IN_FLIGHT - running.len();
            let size = waiting.len().div_ceil(free).min(MAX_BATCH);
            let batch = take_batch(&mut waiting, size);
            shared.metrics.claim_batch(batch.len());
            running.spawn(claim_batch(shared.clone(), batch));
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

/// Claims `batch` in one call, tells the cache what its bookings made stale,
/// and answers each member; a failed call is retried member by member.
async fn claim_batch(shared: Arc<Shared>, mut batch: Vec<Pending>) {
    // One lock order on shows for all batches (the function's header says why).
    batch.sort_by_key(|p| p.claim.booking.show_id.map(|s| s.0));
    let claims: Vec<&Claim> = batch.iter().map(|p| &p.claim).collect();
    let started = std::time::Instant::now();
    let answer = call(&shared.conn, &claims).await;
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
        Err(err) if batch.len() == 1 => {
            let pending = batch.pop().expect("one member");
            let _ = pending.reply.send(alone(err));
        }
        Err(err) => {
            tracing::warn!(error = %err, size = batch.len(), "claim batch failed; claiming its members one by one");
            let mut retries = JoinSet::new();
            for pending in batch {
                let shared = shared.clone();
                retries.spawn(async move {
                    let answer = call(&shared.conn, &[&pending.claim])
                        .await
                        .map(|mut o| o.pop().expect("one outcome per claim"))
                        .or_else(alone);
                    if let Ok(Outcome::Booked) = answer {
                        let confirmed = Event::BookingConfirmed(pending.claim.booking.clone());
                        shared.cache.invalidate(&[confirmed]).await;
                    }
                    let _ = pending.reply.send(answer);
                });
            }
            retries.join_all().await;
        }
    }
}

/// A lone booking's failed call: a foreign-key violation means the show was
/// deleted between the function's read and its insert.
fn alone(err: DbErr) -> AppResult<Outcome> {
    match err.sql_err() {
        Some(SqlErr::ForeignKeyConstraintViolation(_)) => Ok(Outcome::NotFound),
        _ => Err(err.into()),
    }
}

/// The statement, `claim_bookings` with one array element per booking.
const CLAIM_BOOKINGS_SQL: &str = include_str!("sql/claim_bookings_call.sql");

fn array(kind: ArrayType, values: impl IntoIterator<Item = Value>) -> Value {
    Value::Array(kind, Some(Box::new(values.into_iter().collect())))
}

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
    let mut outcomes = vec![None; claims.len()];
    for row in rows {
        let n: i32 = row.try_get("", "n")?;
        let outcome: String = row.try_get("", "outcome")?;
        let seats: Option<Vec<String>> = row.try_get("", "seats")?;
        let outcome = match outcome.as_str() {
            "OK" => Outcome::Booked,
            "SOLD" => Outcome::Sold(seats.unwrap_or_default()),
            "TAKEN" => Outcome::Taken(seats.unwrap_or_default()),
            "KEY_USED" => Outcome::KeyUsed,
            "NOT_FOUND" => Outcome::NotFound,
            "STARTED" => Outcome::Started,
            "STALE" => Outcome::Stale,
            other => {
                return Err(DbErr::Custom(format!("claim_bookings answered {other:?}")));
            }
        };
        let slot = usize::try_from(n - 1)
            .ok()
            .and_then(|i| outcomes.get_mut(i))
            .ok_or_else(|| DbErr::Custom(format!("claim_bookings answered for booking {n}")))?;
        *slot = Some(outcome);
    }
    outcomes
        .into_iter()
        .map(|o| o.ok_or_else(|| DbErr::Custom("claim_bookings skipped a booking".into())))
        .collect()
}
