//! The outbox writer.
use chrono::{DateTime, Utc};
use prost::Message;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, NotSet, PaginatorTrait, QueryFilter, QueryOrder, Set,
};

use crate::{
    domain::Event,
    entity::outbox_event,
    error::AppResult,
    ids::BookingId,
    proto::{self, event_envelope::Payload},
    wire::timestamp,
};

/// Version of the payload schemas in `events.proto`.
pub const SCHEMA_VERSION: u32 = 1;

/// The contract's form of `event`, or `None` for an event the contract does
/// not publish. The only place a domain event becomes protobuf.
fn wire(event: &Event) -> Option<Payload> {
    let ids = |ids: &[BookingId]| ids.iter().map(ToString::to_string).collect();
    Some(match event.clone() {
        Event::MovieCreated(movie) => Payload::MovieCreated(proto::MovieCreated {
            movie: Some(movie.into()),
        }),
        Event::MovieUpdated(movie) => Payload::MovieUpdated(proto::MovieUpdated {
            movie: Some(movie.into()),
        }),
        Event::MovieDeleted(d) => Payload::MovieDeleted(proto::MovieDeleted {
            movie_id: d.movie.to_string(),
            deleted_show_ids: d.shows.iter().map(ToString::to_string).collect(),
            cancelled_booking_ids: ids(&d.cancelled_bookings),
        }),
        Event::ShowCreated(view) => Payload::ShowCreated(proto::ShowCreated {
            show: Some(view.into()),
        }),
        Event::ShowDeleted(d) => Payload::ShowDeleted(proto::ShowDeleted {
            show_id: d.show.to_string(),
            movie_id: d.movie.to_string(),
            cancelled_booking_ids: ids(&d.cancelled_bookings),
        }),
        Event::BookingConfirmed(b) => Payload::BookingConfirmed(proto::BookingConfirmed {
            booking_id: b.id.to_string(),
            user_id: b.user_id.to_string(),
            show_id: b.show_id.map(|s| s.to_string()).unwrap_or_default(),
            seat_ids: b.seat_ids.0.into_iter().map(String::from).collect(),
            total_cents: b.total_cents.0,
        }),
        Event::BookingCancelled(c) => Payload::BookingCancelled(proto::BookingCancelled {
            booking_id: c.booking.to_string(),
            user_id: c.user.to_string(),
            show_id: c.show.map(|s| s.to_string()).unwrap_or_default(),
            seat_ids: c.seats.into_iter().map(String::from).collect(),
            reason: proto::CancelReason::from(c.reason).into(),
        }),
        Event::TheatreCreated(_) | Event::AccountCreated { .. } | Event::RoleChanged { .. } => {
            return None;
        }
    })
}

/// The topic family, key and type name of a published event.
fn routing(event: &Payload) -> (&'static str, String, &'static str) {
    let id = |m: &Option<proto::Movie>| m.as_ref().map(|m| m.id.clone()).unwrap_or_default();
    match event {
        Payload::MovieCreated(e) => ("movie", id(&e.movie), "theatre.v1.MovieCreated"),
        Payload::MovieUpdated(e) => ("movie", id(&e.movie), "theatre.v1.MovieUpdated"),
        Payload::MovieDeleted(e) => ("movie", e.movie_id.clone(), "theatre.v1.MovieDeleted"),
        Payload::ShowCreated(e) => (
            "show",
            e.show.as_ref().map(|s| s.id.clone()).unwrap_or_default(),
            "theatre.v1.ShowCreated",
        ),
        Payload::ShowDeleted(e) => ("show", e.show_id.clone(), "theatre.v1.ShowDeleted"),
        Payload::BookingConfirmed(e) => (
            "booking",
            e.booking_id.clone(),
            "theatre.v1.BookingConfirmed",
        ),
        Payload::BookingCancelled(e) => (
            "booking",
            e.booking_id.clone(),
            "theatre.v1.BookingCancelled",
        ),
    }
}

/// An event as its outbox row stores it.
pub struct Encoded {
    pub id: uuid::Uuid,
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub event_type: &'static str,
    /// Encoded `theatre.v1.EventEnvelope`.
    pub payload: Vec<u8>,
}

/// Wraps `event` in its envelope and encodes it for the outbox; `None` for an
/// event the contract does not publish.
pub fn encode(now: DateTime<Utc>, event: &Event) -> Option<Encoded> {
    let payload = wire(event)?;
    let (aggregate_type, aggregate_id, event_type) = routing(&payload);
    let id = uuid::Uuid::now_v7();
    let envelope = proto::EventEnvelope {
        event_id: id.to_string(),
        event_type: event_type.to_owned(),
        occurred_at: Some(timestamp(now)),
        aggregate_id: aggregate_id.clone(),
        schema_version: SCHEMA_VERSION,
        payload: Some(payload),
    };
    Some(Encoded {
        id,
        aggregate_type,
        aggregate_id,
        event_type,
        payload: envelope.encode_to_vec(),
    })
}

/// Appends the published ones of `events` to the outbox inside the caller's
/// transaction, as one statement, in the order they were recorded.
pub async fn append(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    events: &[Event],
) -> AppResult<()> {
    // Nothing is read back: RETURNING the rows (payload included) cost a
    // decode on every write for a value no caller used.
    let rows: Vec<outbox_event::ActiveModel> = events
        .iter()
        .filter_map(|event| encode(now, event))
        .map(|e| outbox_event::ActiveModel {
            seq: NotSet,
            id: Set(e.id),
            aggregate_type: Set(e.aggregate_type.to_owned()),
            aggregate_id: Set(e.aggregate_id),
            event_type: Set(e.event_type.to_owned()),
            payload: Set(e.payload),
            created_at: Set(now),
            published_at: Set(None),
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    outbox_event::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Events not yet acknowledged by the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unpublished {
    pub count: u64,
    /// When the oldest of them was written; `None` when there are none.
    pub oldest: Option<DateTime<Utc>>,
}

pub async fn unpublished(conn: &impl ConnectionTrait) -> Result<Unpublished, sea_orm::DbErr> {
    let pending =
        || outbox_event::Entity::find().filter(outbox_event::Column::PublishedAt.is_null());
    let count = pending().count(conn).await?;
    let oldest = if count == 0 {
        None
    } else {
        pending()
            .order_by_asc(outbox_event::Column::Seq)
            .one(conn)
            .await?
            .map(|event| event.created_at)
    };
    Ok(Unpublished { count, oldest })
}
