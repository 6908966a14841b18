//! Movies, theatres, shows and their seat layouts.
pub mod near_reads;
pub mod repo;
pub mod service;
pub mod validate;
