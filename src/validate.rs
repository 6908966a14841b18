//! Field checks shared by every service. Each returns the cleaned value or an
//! `INVALID_ARGUMENT` naming the field.
use crate::error::{AppError, AppResult};

/// A required single-line text: trimmed, 1..=max characters, no control characters.
pub fn required_text(field: &'static str, raw: &str, max: usize) -> AppResult<String> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(AppError::invalid(field, "is required"));
    }
    bounded_text(field, value, max)
}

/// Free text that may be empty (descriptions): at most `max` characters.
pub fn bounded_text(field: &'static str, raw: &str, max: usize) -> AppResult<String> {
    let value = raw.trim();
    if value.chars().count() > max {
        return Err(AppError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(AppError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

/// An integer within `range`.
pub fn in_range<T>(
    field: &'static str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> AppResult<T>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(AppError::invalid(
            field,
            format!("must be between {} and {}", range.start(), range.end()),
        ))
    }
}

/// Checks several fields at once: their values if all are valid, otherwise
/// one INVALID_ARGUMENT listing every invalid field (AIP-193: a client fixes
/// them all in one go). An error that is not about a field is returned as is.
pub trait AllFields {
    type Values;
    fn all_fields(self) -> AppResult<Self::Values>;
}

macro_rules! all_fields {
    ($($t:ident $v:ident),+) => {
        impl<$($t),+> AllFields for ($(AppResult<$t>,)+) {
            type Values = ($($t,)+);
            fn all_fields(self) -> AppResult<Self::Values> {
                let ($($v,)+) = self;
                let mut violations = Vec::new();
                $(
                    let $v = match $v {
                        Ok(value) => Some(value),
                        Err(AppError::InvalidArgument { violations: v }) => {
                            violations.extend(v);
                            None
                        }
                        Err(other) => return Err(other),
                    };
                )+
                match ($($v,)+) {
                    ($(Some($v),)+) => Ok(($($v,)+)),
                    _ => Err(AppError::InvalidArgument { violations }),
                }
            }
        }
    };
}

all_fields!(A a, B b);
all_fields!(A a, B b, C c);
all_fields!(A a, B b, C c, D d);
all_fields!(A a, B b, C c, D d, E e);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_fields_lists_every_invalid_field_and_passes_other_errors_through() {
        let ok: AppResult<(i32, &str)> = (Ok(1), Ok("a")).all_fields();
        assert_eq!(ok.unwrap(), (1, "a"));
        let both: AppResult<(i32, i32)> = (
            Err(AppError::invalid("a", "bad")),
            Err(AppError::invalid("b", "worse")),
        )
            .all_fields();
        match both {
            Err(AppError::InvalidArgument { violations }) => assert_eq!(
                violations,
                [("a".into(), "bad".into()), ("b".into(), "worse".into())]
            ),
            other => panic!("{other:?}"),
        }
        let other: AppResult<(i32, i32)> = (
            Err(AppError::invalid("a", "bad")),
            Err(AppError::Internal("x".into())),
        )
            .all_fields();
        assert!(matches!(other, Err(AppError::Internal(_))));
    }
}
