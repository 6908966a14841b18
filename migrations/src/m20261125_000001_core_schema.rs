//! Users, catalog (movies, theatres, shows, seats), bookings and the event outbox.
//!
//! Deleting a movie cascades to its shows and from shows to their seats, in the
//! database itself. Bookings are customer history: their show reference is set to
//! NULL instead and they keep a snapshot of what was booked.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    DisplayName,
    PasswordHash,
    Role,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Movies {
    Table,
    Id,
    Title,
    Description,
    DurationMinutes,
    Genre,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Theatres {
    Table,
    Id,
    Name,
    City,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Shows {
    Table,
    Id,
    MovieId,
    TheatreId,
    StartsAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Bookings {
    Table,
    Id,
    UserId,
    ShowId,
    Status,
    SeatIds,
    TotalCents,
    MovieTitle,
    TheatreName,
    StartsAt,
    IdempotencyKey,
    CancelReason,
    CancelledAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Seats {
    Table,
    ShowId,
    SeatId,
    RowLabel,
    Number,
    Position,
    PriceCents,
    BookingId,
}

#[derive(DeriveIden)]
enum OutboxEvents {
    Table,
    Seq,
    Id,
    AggregateType,
    AggregateId,
    EventType,
    Payload,
    CreatedAt,
    PublishedAt,
}

fn fk(
    name: &str,
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(on_delete)
        .on_update(ForeignKeyAction::NoAction)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(pk_uuid(Users::Id))
                .col(string_len_uniq(Users::Email, 254))
                .col(string_len(Users::DisplayName, 100))
                .col(string(Users::PasswordHash))
                .col(string_len(Users::Role, 16))
                .col(timestamp_with_time_zone(Users::CreatedAt))
                .col(timestamp_with_time_zone(Users::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Movies::Table)
                .col(pk_uuid(Movies::Id))
                .col(string_len(Movies::Title, 200))
                .col(text(Movies::Description))
                .col(integer(Movies::DurationMinutes))
                .col(string_len(Movies::Genre, 50))
                .col(timestamp_with_time_zone(Movies::CreatedAt))
                .col(timestamp_with_time_zone(Movies::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Theatres::Table)
                .col(pk_uuid(Theatres::Id))
                .col(string_len(Theatres::Name, 100))
                .col(string_len(Theatres::City, 100))
                .col(timestamp_with_time_zone(Theatres::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_theatres_name_city")
                .table(Theatres::Table)
                .col(Theatres::Name)
                .col(Theatres::City)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Shows::Table)
                .col(pk_uuid(Shows::Id))
                .col(uuid(Shows::MovieId))
                .col(uuid(Shows::TheatreId))
                .col(timestamp_with_time_zone(Shows::StartsAt))
                .col(timestamp_with_time_zone(Shows::CreatedAt))
                .foreign_key(&mut fk(
                    "fk_shows_movie",
                    (Shows::Table, Shows::MovieId),
                    (Movies::Table, Movies::Id),
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "fk_shows_theatre",
                    (Shows::Table, Shows::TheatreId),
                    (Theatres::Table, Theatres::Id),
                    ForeignKeyAction::Restrict,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_shows_movie_starts")
                .table(Shows::Table)
                .col(Shows::MovieId)
                .col(Shows::StartsAt)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_shows_theatre")
                .table(Shows::Table)
                .col(Shows::TheatreId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Bookings::Table)
                .col(pk_uuid(Bookings::Id))
                .col(uuid(Bookings::UserId))
                .col(uuid_null(Bookings::ShowId))
                .col(string_len(Bookings::Status, 16))
                .col(text(Bookings::SeatIds))
                .col(big_integer(Bookings::TotalCents))
                .col(string_len(Bookings::MovieTitle, 200))
                .col(string_len(Bookings::TheatreName, 100))
                .col(timestamp_with_time_zone(Bookings::StartsAt))
                .col(string_len_null(Bookings::IdempotencyKey, 100))
                .col(string_len_null(Bookings::CancelReason, 32))
                .col(timestamp_with_time_zone_null(Bookings::CancelledAt))
                .col(timestamp_with_time_zone(Bookings::CreatedAt))
                .foreign_key(&mut fk(
                    "fk_bookings_user",
                    (Bookings::Table, Bookings::UserId),
                    (Users::Table, Users::Id),
                    ForeignKeyAction::Restrict,
                ))
                .foreign_key(&mut fk(
                    "fk_bookings_show",
                    (Bookings::Table, Bookings::ShowId),
                    (Shows::Table, Shows::Id),
                    ForeignKeyAction::SetNull,
                ))
                .to_owned(),
        )
        .await?;
        // NULL keys are distinct on both backends, so requests without a key never collide.
        m.create_index(
            Index::create()
                .name("ux_bookings_user_idempotency_key")
                .table(Bookings::Table)
                .col(Bookings::UserId)
                .col(Bookings::IdempotencyKey)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_bookings_user_created")
                .table(Bookings::Table)
                .col(Bookings::UserId)
                .col(Bookings::CreatedAt)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_bookings_show")
                .table(Bookings::Table)
                .col(Bookings::ShowId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Seats::Table)
                .col(uuid(Seats::ShowId))
                .col(string_len(Seats::SeatId, 8))
                .col(string_len(Seats::RowLabel, 3))
                .col(integer(Seats::Number))
                .col(integer(Seats::Position))
                .col(big_integer(Seats::PriceCents))
                .col(uuid_null(Seats::BookingId))
                .primary_key(Index::create().col(Seats::ShowId).col(Seats::SeatId))
                .foreign_key(&mut fk(
                    "fk_seats_show",
                    (Seats::Table, Seats::ShowId),
                    (Shows::Table, Shows::Id),
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "fk_seats_booking",
                    (Seats::Table, Seats::BookingId),
                    (Bookings::Table, Bookings::Id),
                    ForeignKeyAction::SetNull,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_seats_booking")
                .table(Seats::Table)
                .col(Seats::BookingId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(OutboxEvents::Table)
                // Assigned by the database at insert: a later write to the same
                // aggregate always gets a larger seq, whatever the app clocks say.
                .col(big_pk_auto(OutboxEvents::Seq))
                .col(uuid_uniq(OutboxEvents::Id))
                .col(string_len(OutboxEvents::AggregateType, 32))
                .col(string_len(OutboxEvents::AggregateId, 64))
                .col(string_len(OutboxEvents::EventType, 64))
                .col(blob(OutboxEvents::Payload))
                .col(timestamp_with_time_zone(OutboxEvents::CreatedAt))
                .col(timestamp_with_time_zone_null(OutboxEvents::PublishedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_outbox_events_unpublished")
                .table(OutboxEvents::Table)
                .col(OutboxEvents::PublishedAt)
                .col(OutboxEvents::Seq)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            OutboxEvents::Table.into_iden(),
            Seats::Table.into_iden(),
            Bookings::Table.into_iden(),
            Shows::Table.into_iden(),
            Theatres::Table.into_iden(),
            Movies::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
