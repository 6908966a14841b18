//! Seat bookings: the atomic seat claim, idempotent retries and cancellation.
pub mod batch;
mod direct;
pub mod freed;
pub mod known;
pub mod repo;
pub mod service;
pub mod validate;
