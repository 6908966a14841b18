use crate::ids::{BookingId, Cents, SeatId, ShowId, UserId};
use sea_orm::{FromJsonQueryResult, entity::prelude::*};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Status {
    #[sea_orm(string_value = "CONFIRMED")]
    Confirmed,
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum CancelReason {
    #[sea_orm(string_value = "BY_USER")]
    ByUser,
    #[sea_orm(string_value = "SHOW_DELETED")]
    ShowDeleted,
    #[sea_orm(string_value = "MOVIE_DELETED")]
    MovieDeleted,
}

/// A booking and the snapshot of what was booked (seats, title, theatre, start),
/// which stays readable after the show or movie is deleted (`show_id` then NULL).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "bookings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: BookingId,
    pub user_id: UserId,
    pub show_id: Option<ShowId>,
    pub status: Status,
    /// The seat ids in the order they were requested (a JSON array).
    #[sea_orm(column_type = "JsonBinary")]
    pub seat_ids: SeatList,
    pub total_cents: Cents,
    pub movie_title: String,
    pub theatre_name: String,
    pub starts_at: DateTimeUtc,
    pub idempotency_key: Option<String>,
    pub cancel_reason: Option<CancelReason>,
    pub cancelled_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

/// A booking's seat ids, in the order they were requested.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, FromJsonQueryResult)]
pub struct SeatList(pub Vec<SeatId>);

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Restrict"
    )]
    User,
    #[sea_orm(
        belongs_to = "super::show::Entity",
        from = "Column::ShowId",
        to = "super::show::Column::Id",
        on_delete = "SetNull"
    )]
    Show,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl Related<super::show::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Show.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
