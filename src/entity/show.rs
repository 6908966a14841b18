use crate::ids::{MovieId, ShowId, TheatreId};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "shows")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: ShowId,
    pub movie_id: MovieId,
    pub theatre_id: TheatreId,
    pub starts_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    /// Until when the show occupies its theatre: the movie's end plus the
    /// changeover. No two shows of a theatre occupy it at once.
    pub occupied_until: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::movie::Entity",
        from = "Column::MovieId",
        to = "super::movie::Column::Id",
        on_delete = "Cascade"
    )]
    Movie,
    #[sea_orm(
        belongs_to = "super::theatre::Entity",
        from = "Column::TheatreId",
        to = "super::theatre::Column::Id",
        on_delete = "Restrict"
    )]
    Theatre,
    #[sea_orm(has_many = "super::seat::Entity")]
    Seat,
    #[sea_orm(has_many = "super::booking::Entity")]
    Booking,
}

impl Related<super::movie::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Movie.def()
    }
}

impl Related<super::theatre::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Theatre.def()
    }
}

impl Related<super::seat::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Seat.def()
    }
}

impl Related<super::booking::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Booking.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
