//! Checks of client-supplied names and counts against [`crate::limits`], shared by every
//! aggregate so the same mistake gets the same code everywhere.

/// A field of a command breaks a limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidInput {
    #[error("{field} must not be blank")]
    Blank { field: &'static str },
    #[error("{field} is {len} characters long; at most {max} are allowed")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{field} has {count} entries; at most {max} are allowed")]
    TooMany {
        field: &'static str,
        count: usize,
        max: usize,
    },
}

impl InvalidInput {
    pub fn code(&self) -> &'static str {
        match self {
            InvalidInput::Blank { .. } => "blank",
            InvalidInput::TooLong { .. } => "too_long",
            InvalidInput::TooMany { .. } => "too_many",
        }
    }
}

/// A required name, trimmed (surrounding spaces never make two names differ).
///
/// # Errors
/// [`InvalidInput::Blank`] or [`InvalidInput::TooLong`].
pub fn required_name(field: &'static str, value: &str, max: usize) -> Result<String, InvalidInput> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(InvalidInput::Blank { field });
    }
    max_chars(field, trimmed, max)?;
    Ok(trimmed.to_owned())
}

/// An optional name, trimmed; blank means "none" and is kept as the empty string.
///
/// # Errors
/// [`InvalidInput::TooLong`].
pub fn optional_name(field: &'static str, value: &str, max: usize) -> Result<String, InvalidInput> {
    let trimmed = value.trim();
    max_chars(field, trimmed, max)?;
    Ok(trimmed.to_owned())
}

/// Checks the length of `value` in characters.
///
/// # Errors
/// [`InvalidInput::TooLong`].
pub fn max_chars(field: &'static str, value: &str, max: usize) -> Result<(), InvalidInput> {
    // Counting stops one past the limit, so a huge value costs no more than a legal one.
    let len = value.chars().take(max + 1).count();
    if len > max {
        return Err(InvalidInput::TooLong {
            field,
            len: value.chars().count(),
            max,
        });
    }
    Ok(())
}

/// Checks how many entries a list has.
///
/// # Errors
/// [`InvalidInput::TooMany`].
pub fn max_count(field: &'static str, count: usize, max: usize) -> Result<(), InvalidInput> {
    if count > max {
        return Err(InvalidInput::TooMany { field, count, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded_in_chars() {
        assert_eq!(required_name("name", "  Sales ", 5), Ok("Sales".into()));
        assert_eq!(
            required_name("name", "   ", 5),
            Err(InvalidInput::Blank { field: "name" })
        );
        assert_eq!(
            required_name("name", "🎉🎉🎉🎉🎉", 5),
            Ok("🎉🎉🎉🎉🎉".into())
        );
        assert_eq!(
            required_name("name", "🎉🎉🎉🎉🎉🎉", 5),
            Err(InvalidInput::TooLong {
                field: "name",
                len: 6,
                max: 5
            })
        );
        assert_eq!(optional_name("company", "  ", 5), Ok(String::new()));
    }

    #[test]
    fn counts_are_bounded() {
        assert_eq!(max_count("numbers", 10, 10), Ok(()));
        assert_eq!(
            max_count("numbers", 11, 10).map_err(|e| e.code()),
            Err("too_many")
        );
    }
}
