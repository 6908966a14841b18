//! Accounts, passwords, tokens and the per-method authorization layer.
pub mod accounts;
pub mod layer;
pub mod password;
pub mod repo;
pub mod service;
pub mod throttle;
pub mod token;
pub mod validate;

pub use layer::{AdminCaller, AuthLayer, Caller, access_for};
pub use token::TokenIssuer;
