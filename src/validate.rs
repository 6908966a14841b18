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
