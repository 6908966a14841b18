//! Movies, theatres, shows and their seat layouts.
pub mod repo;
pub mod service;
pub mod validate;
