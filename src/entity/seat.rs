use crate::ids::{BookingId, Cents, SeatId, ShowId};
use sea_orm::entity::prelude::*;

/// One seat of one show. `booking_id` is NULL while the seat is available; the
/// seat claim only ever sets it where it is still NULL.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "seats")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub show_id: ShowId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub seat_id: SeatId,
    pub row_label: String,
    pub number: i32,
    /// Display order within the show (row by row, seat by seat).
    pub position: i32,
    pub price_cents: Cents,
    pub booking_id: Option<BookingId>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::show::Entity",
        from = "Column::ShowId",
        to = "super::show::Column::Id",
        on_delete = "Cascade"
    )]
    Show,
    #[sea_orm(
        belongs_to = "super::booking::Entity",
        from = "Column::BookingId",
        to = "super::booking::Column::Id",
        on_delete = "SetNull"
    )]
    Booking,
}

impl Related<super::show::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Show.def()
    }
}

impl Related<super::booking::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Booking.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
