//! Typed ids. On the wire every id is a UUIDv7 string; inside, a newtype per
//! entity keeps a show id from being passed where a movie id is expected, down
//! into the entities (the columns are these types, `DeriveValueType`).
use std::fmt;

use sea_orm::DeriveValueType;
use uuid::Uuid;

use crate::error::AppError;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, DeriveValueType)]
        pub struct $name(pub Uuid);

        // Ids are made here (UUIDv7), never by the database.
        impl sea_orm::TryFromU64 for $name {
            fn try_from_u64(_: u64) -> Result<Self, sea_orm::DbErr> {
                Err(sea_orm::DbErr::ConvertFromU64(stringify!($name)))
            }
        }

        impl $name {
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses a wire id; `field` names the request field in the error.
            pub fn parse(field: &'static str, raw: &str) -> Result<Self, AppError> {
                if raw.is_empty() {
                    return Err(AppError::invalid(field, "is required"));
                }
                Uuid::try_parse(raw)
                    .map(Self)
                    .map_err(|_| AppError::invalid(field, "is not a valid id"))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A user account.
    UserId
);
id_type!(
    /// A movie in the catalog.
    MovieId
);
id_type!(
    /// A theatre (venue).
    TheatreId
);
id_type!(
    /// One screening of a movie in a theatre.
    ShowId
);
id_type!(
    /// A booking of one or more seats of a show.
    BookingId
);

/// A seat within a show: one to three capital letters (the row), then a
/// number from 1 to 999 without a leading zero (`A1`, `AB12`). A value of this
/// type is one; [`SeatId::parse`] is the only way to make one from input.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    DeriveValueType,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct SeatId(String);

impl SeatId {
    /// Parses a wire seat id; `field` names the request field in the error.
    pub fn parse(field: impl Into<String>, raw: &str) -> Result<Self, AppError> {
        let letters = raw.chars().take_while(|c| c.is_ascii_uppercase()).count();
        let digits = &raw[letters..];
        let valid = (1..=3).contains(&letters)
            && (1..=3).contains(&digits.len())
            && digits.chars().all(|c| c.is_ascii_digit())
            && !digits.starts_with('0');
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(AppError::invalid(
                field,
                format!("{raw:?} is not a seat id such as A1"),
            ))
        }
    }

    /// The seat `number` of row `row` (a layout's row label, already checked).
    pub fn in_row(row: &str, number: i32) -> Self {
        Self(format!("{row}{number}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl sea_orm::TryFromU64 for SeatId {
    fn try_from_u64(_: u64) -> Result<Self, sea_orm::DbErr> {
        Err(sea_orm::DbErr::ConvertFromU64("SeatId"))
    }
}

impl fmt::Display for SeatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<SeatId> for String {
    fn from(seat: SeatId) -> Self {
        seat.0
    }
}

/// An amount of money in cents (prices, booking totals): not a count, not an
/// id, so it cannot be added to either by mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, DeriveValueType)]
pub struct Cents(pub i64);

impl std::iter::Sum for Cents {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        Self(iter.map(|c| c.0).sum())
    }
}
