//! A show as it is listed: with its movie's title, its theatre's name and
//! each row's prices and availability.
use crate::{entity::show, ids::Cents};

/// One row of a show's layout with its availability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowSummary {
    pub label: String,
    pub seats: i32,
    pub price_cents: Cents,
    pub available: i32,
}

/// A show with what a listing needs to display it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShowView {
    pub show: show::Model,
    pub movie_title: String,
    pub theatre_name: String,
    pub rows: Vec<RowSummary>,
}
