//! What the features say to each other and to the floors below them: the
//! business events a write records and the read models more than one part
//! of the service needs. No protobuf here (`wire` converts), no SQL (`entity`
//! and the repos).
//!
//! Domain types otherwise live next to their feature (`catalog/validate.rs`,
//! `booking/validate.rs`); these are the ones the outbox and the cache read
//! too, and the features sit above those, so they need a floor of their own.
pub mod event;
pub mod show;

pub use event::{BookingCancelled, Event, MovieDeleted, ShowDeleted};
pub use show::{RowSummary, ShowView};
