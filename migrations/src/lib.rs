//! Schema migrations. One file per change; a file is never edited once it has landed.
pub use sea_orm_migration::prelude::*;

mod m20261125_000001_core_schema;
mod m20261125_000002_claim_booking_fn;
mod m20261201_000003_claim_by_seat_ids;
mod m20261201_000004_show_occupancy;
mod m20261201_000005_booking_seat_lists;
mod m20261206_000006_claim_bookings;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_core_schema::Migration),
            Box::new(m20261125_000002_claim_booking_fn::Migration),
            Box::new(m20261201_000003_claim_by_seat_ids::Migration),
            Box::new(m20261201_000004_show_occupancy::Migration),
            Box::new(m20261201_000005_booking_seat_lists::Migration),
            Box::new(m20261206_000006_claim_bookings::Migration),
        ]
    }
}
