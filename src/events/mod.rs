//! Business events. Each is written to the outbox table in the same transaction
//! as the change it describes; a relay (see the Kafka issue) publishes them.
pub mod outbox;

pub use crate::proto::event_envelope::Payload as Event;
pub use outbox::record;
