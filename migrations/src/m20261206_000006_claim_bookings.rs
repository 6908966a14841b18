//! `claim_bookings`: a batch of bookings in one statement and one transaction
//! (group commit, `sql/claim_bookings.sql`). PostgreSQL only; `claim_booking`
//! stays, for the bench's per-booking ceiling P.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const CLAIM_BOOKINGS: &str = include_str!("../sql/claim_bookings.sql");

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() == DbBackend::Postgres {
            m.get_connection()
                .execute_unprepared(CLAIM_BOOKINGS)
                .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() == DbBackend::Postgres {
            m.get_connection()
                .execute_unprepared(
                    "DROP FUNCTION IF EXISTS claim_bookings(uuid[], uuid[], uuid[], int[], text[], \
                     bigint[], text[], text[], timestamptz[], text[], uuid[], text[], text[], text[], bytea[], \
                     timestamptz[])",
                )
                .await?;
        }
        Ok(())
    }
}
