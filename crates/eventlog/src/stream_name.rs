//! Stream names: `category-id`, e.g. `conversation-6f1c…`.
//!
//! The category is everything before the first `-`; it groups streams for projections
//! (`read_category`, category subscriptions). Names are validated once, here, so the key
//! layouts can rely on them: they are never empty, never longer than [`MAX_LEN`] bytes, and
//! contain no control characters (the keys use `0xFF` as a separator, which UTF-8 never
//! produces).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest stream name accepted, in bytes.
pub const MAX_LEN: usize = 200;

/// A validated `category-id` stream name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamName(String);

/// Why a string is not a stream name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamNameError {
    #[error("stream name is empty")]
    Empty,
    #[error("stream name is longer than {MAX_LEN} bytes")]
    TooLong,
    #[error("stream name must be `category-id` with a non-empty category and id")]
    NotCategoryId,
    #[error("stream category may hold only ASCII letters, digits and `_`")]
    BadCategory,
    #[error("stream name contains whitespace or a control character")]
    BadCharacter,
}

impl StreamName {
    /// Validates `name` as `category-id`.
    ///
    /// # Errors
    /// [`StreamNameError`] naming the rule that was broken.
    pub fn new(name: impl Into<String>) -> Result<Self, StreamNameError> {
        let name = name.into();
        if name.is_empty() {
            return Err(StreamNameError::Empty);
        }
        if name.len() > MAX_LEN {
            return Err(StreamNameError::TooLong);
        }
        if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(StreamNameError::BadCharacter);
        }
        let (category, id) = name.split_once('-').ok_or(StreamNameError::NotCategoryId)?;
        if category.is_empty() || id.is_empty() {
            return Err(StreamNameError::NotCategoryId);
        }
        if !is_valid_category(category) {
            return Err(StreamNameError::BadCategory);
        }
        Ok(Self(name))
    }

    /// Builds `category-id` from its parts.
    ///
    /// # Errors
    /// As [`StreamName::new`].
    pub fn from_parts(category: &str, id: impl fmt::Display) -> Result<Self, StreamNameError> {
        Self::new(format!("{category}-{id}"))
    }

    /// The category: everything before the first `-`.
    pub fn category(&self) -> &str {
        self.0.split_once('-').map(|(c, _)| c).unwrap_or(&self.0)
    }

    /// The id: everything after the first `-`.
    pub fn id(&self) -> &str {
        self.0.split_once('-').map(|(_, id)| id).unwrap_or("")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `category` is a valid category name (ASCII letters, digits, `_`; non-empty).
pub fn is_valid_category(category: &str) -> bool {
    !category.is_empty()
        && category.len() <= MAX_LEN
        && category
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl TryFrom<String> for StreamName {
    type Error = StreamNameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<StreamName> for String {
    fn from(value: StreamName) -> Self {
        value.0
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::str::FromStr for StreamName {
    type Err = StreamNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_category_id_and_splits_at_first_dash() {
        let s = StreamName::new("conversation-6f1c-aa").unwrap();
        assert_eq!(s.category(), "conversation");
        assert_eq!(s.id(), "6f1c-aa");
    }

    #[test]
    fn rejects_malformed_names() {
        assert_eq!(StreamName::new(""), Err(StreamNameError::Empty));
        assert_eq!(
            StreamName::new("nodash"),
            Err(StreamNameError::NotCategoryId)
        );
        assert_eq!(StreamName::new("-id"), Err(StreamNameError::NotCategoryId));
        assert_eq!(StreamName::new("cat-"), Err(StreamNameError::NotCategoryId));
        assert_eq!(
            StreamName::new("ca t-1"),
            Err(StreamNameError::BadCharacter)
        );
        assert_eq!(StreamName::new("$all-1"), Err(StreamNameError::BadCategory));
        assert_eq!(
            StreamName::new("a\u{0}b-1"),
            Err(StreamNameError::BadCharacter)
        );
        assert_eq!(
            StreamName::new(format!("c-{}", "x".repeat(MAX_LEN))),
            Err(StreamNameError::TooLong)
        );
    }
}
