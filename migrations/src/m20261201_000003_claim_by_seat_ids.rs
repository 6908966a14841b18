//! The claim's UPDATE restricted to the requested seat ids on both sides, so
//! its plan is bounded by the seats asked for whatever the statistics say
//! (`sql/claim_booking.sql` says why). Replaces the function of
//! `m20261125_000002` in place; its signature is unchanged.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const CLAIM_BOOKING: &str = include_str!("../sql/claim_booking.sql");

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() == DbBackend::Postgres {
            m.get_connection().execute_unprepared(CLAIM_BOOKING).await?;
        }
        Ok(())
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        // The previous body differs only in its plan, not in what it does.
        Ok(())
    }
}
