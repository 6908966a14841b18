//! Theatre: a gRPC backend for cinema seat booking.
//!
//! `main.rs` parses the command line and calls into [`server::App`]; the tests
//! start the same `App` in-process on an ephemeral port.
pub mod auth;
pub mod booking;
pub mod cache;
pub mod call;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod conn;
pub mod cors;
pub mod db;
pub mod domain;
pub mod entity;
pub mod error;
pub mod events;
pub mod health;
pub mod ids;
pub mod limits;
pub mod logs;
pub mod methods;
pub mod metrics;
pub mod page;
pub mod rest;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod validate;
pub mod web;
pub mod wire;

/// Code generated from `proto/theatre/v1` by `build.rs`.
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("theatre.v1");

    /// Encoded `FileDescriptorSet` of the whole contract, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/theatre_descriptor.bin"));
}

pub use config::Config;
pub use server::{App, RunningServer};
