use sea_orm::entity::prelude::*;

/// A business event waiting for (or past) delivery to Kafka. Written in the
/// same transaction as the change it describes.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox_events")]
pub struct Model {
    /// Database-assigned order of writes; the relay publishes in this order.
    #[sea_orm(primary_key)]
    pub seq: i64,
    /// The event id (UUIDv7), consumers' dedupe key.
    #[sea_orm(unique)]
    pub id: Uuid,
    /// `movie`, `show` or `booking`: selects the topic.
    pub aggregate_type: String,
    /// The record key, so one aggregate's events stay ordered.
    pub aggregate_id: String,
    pub event_type: String,
    /// Encoded `theatre.v1.EventEnvelope`.
    pub payload: Vec<u8>,
    pub created_at: DateTimeUtc,
    pub published_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
