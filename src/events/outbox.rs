//! The outbox writer.
use chrono::{DateTime, Utc};
use prost::Message;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, NotSet, PaginatorTrait, QueryFilter, QueryOrder, Set,
};

use crate::{entity::outbox_event, error::AppResult, proto, wire::timestamp};

/// Version of the payload schemas in `events.proto`.
pub const SCHEMA_VERSION: u32 = 1;

/// The topic family, key and type name of an event.
fn routing(event: &proto::event_envelope::Payload) -> (&'static str, String, &'static str) {
    use proto::event_envelope::Payload as E;
    let id = |m: &Option<proto::Movie>| m.as_ref().map(|m| m.id.clone()).unwrap_or_default();
    match event {
        E::MovieCreated(e) => ("movie", id(&e.movie), "theatre.v1.MovieCreated"),
        E::MovieUpdated(e) => ("movie", id(&e.movie), "theatre.v1.MovieUpdated"),
        E::MovieDeleted(e) => ("movie", e.movie_id.clone(), "theatre.v1.MovieDeleted"),
        E::ShowCreated(e) => (
            "show",
            e.show.as_ref().map(|s| s.id.clone()).unwrap_or_default(),
            "theatre.v1.ShowCreated",
        ),
        E::ShowDeleted(e) => ("show", e.show_id.clone(), "theatre.v1.ShowDeleted"),
        E::BookingConfirmed(e) => (
            "booking",
            e.booking_id.clone(),
            "theatre.v1.BookingConfirmed",
        ),
        E::BookingCancelled(e) => (
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

/// Wraps `event` in its envelope and encodes it for the outbox.
pub fn encode(now: DateTime<Utc>, event: proto::event_envelope::Payload) -> Encoded {
    let (aggregate_type, aggregate_id, event_type) = routing(&event);
    let id = uuid::Uuid::now_v7();
    let envelope = proto::EventEnvelope {
        event_id: id.to_string(),
        event_type: event_type.to_owned(),
        occurred_at: Some(timestamp(now)),
        aggregate_id: aggregate_id.clone(),
        schema_version: SCHEMA_VERSION,
        payload: Some(event),
    };
    Encoded {
        id,
        aggregate_type,
        aggregate_id,
        event_type,
        payload: envelope.encode_to_vec(),
    }
}

/// Appends `event` to the outbox inside the caller's transaction.
pub async fn record(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    event: proto::event_envelope::Payload,
) -> AppResult<()> {
    let e = encode(now, event);
    // Nothing is read back: RETURNING the row (payload included) cost a
    // decode on every write for a value no caller used.
    let row = outbox_event::ActiveModel {
        seq: NotSet,
        id: Set(e.id),
        aggregate_type: Set(e.aggregate_type.to_owned()),
        aggregate_id: Set(e.aggregate_id),
        event_type: Set(e.event_type.to_owned()),
        payload: Set(e.payload),
        created_at: Set(now),
        published_at: Set(None),
    };
    outbox_event::Entity::insert(row)
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
