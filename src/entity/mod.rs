//! SeaORM entities, one file per table. The schema itself (including the
//! cascades the relations describe) is created by the `migration` crate.
pub mod booking;
pub mod movie;
pub mod outbox_event;
pub mod seat;
pub mod show;
pub mod theatre;
pub mod user;
