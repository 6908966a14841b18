//! The integration tests, one binary (it links once): each module is one
//! area of the service, every business test on SQLite and PostgreSQL, through
//! real sockets; `common` is the harness.
mod architecture;
mod auth;
mod booking;
mod cache;
mod catalog;
mod cli;
mod clients;

mod common;
mod contract;
mod errors;
mod events;
mod grpc_web;
mod health;
mod known;
mod limits;
mod metrics;
mod migrations;
mod outages;
mod paging;
mod race;
mod rest;
mod rules;
mod shutdown;
mod telemetry;
mod web;
