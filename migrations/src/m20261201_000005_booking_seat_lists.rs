//! `bookings.seat_ids` as a JSON array (jsonb on PostgreSQL, JSON text on
//! SQLite) instead of a comma-joined string; existing rows are converted.
//! `claim_booking` writes the new form (`sql/claim_booking.v2.sql`).
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES: &str = include_str!("../sql/booking_seat_lists.postgres.sql");
const SQLITE: &str = include_str!("../sql/booking_seat_lists.sqlite.sql");
const CLAIM_BOOKING: &str = include_str!("../sql/claim_booking.v2.sql");
const POSTGRES_DOWN: &str = include_str!("../sql/booking_seat_lists.down.postgres.sql");
const SQLITE_DOWN: &str = include_str!("../sql/booking_seat_lists.down.sqlite.sql");
/// The function as m20261201_000003 left it.
const CLAIM_BOOKING_BEFORE: &str = include_str!("../sql/claim_booking.sql");

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run(m, [POSTGRES, CLAIM_BOOKING], SQLITE).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run(m, [POSTGRES_DOWN, CLAIM_BOOKING_BEFORE], SQLITE_DOWN).await
    }
}

async fn run(m: &SchemaManager<'_>, postgres: [&str; 2], sqlite: &str) -> Result<(), DbErr> {
    let db = m.get_connection();
    if m.get_database_backend() == DbBackend::Postgres {
        for sql in postgres {
            db.execute_unprepared(sql).await?;
        }
    } else {
        db.execute_unprepared(sqlite).await?;
    }
    Ok(())
}
