//! Business events. Each is written to the outbox table in the same transaction
//! as the change it describes; the relay publishes them to Kafka.
pub mod outbox;
pub mod partition;
pub mod relay;
pub mod tail;

pub use relay::{Relay, RelayCounts, RelayStats};
