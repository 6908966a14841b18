//! Seat bookings: the atomic seat claim, idempotent retries and cancellation.
pub mod repo;
pub mod service;
pub mod validate;
