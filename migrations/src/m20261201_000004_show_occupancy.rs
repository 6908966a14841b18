//! Shows in one theatre cannot overlap: each show records until when it
//! occupies its theatre, and PostgreSQL enforces it with an exclusion
//! constraint (`sql/show_slots.postgres.sql`; SQLite checks inside the write
//! transaction, `sql/show_slots.sqlite.sql`).
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let sql = match m.get_database_backend() {
            DbBackend::Postgres => include_str!("../sql/show_slots.postgres.sql"),
            _ => include_str!("../sql/show_slots.sqlite.sql"),
        };
        m.get_connection().execute_unprepared(sql).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() == DbBackend::Postgres {
            m.get_connection()
                .execute_unprepared("ALTER TABLE shows DROP CONSTRAINT ex_shows_theatre_occupancy")
                .await?;
        }
        m.get_connection()
            .execute_unprepared("ALTER TABLE shows DROP COLUMN occupied_until")
            .await?;
        Ok(())
    }
}
