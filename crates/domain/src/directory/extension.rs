//! Extension numbers: the short internal numbers users are known by.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::limits::{MAX_EXTENSION_DIGITS, MIN_EXTENSION_DIGITS};

/// A validated extension, e.g. `"101"`. Kept as text because leading zeros are meaningful
/// on some PBXs ("0101" is not "101").
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Extension(String);

/// Why a string is not an extension.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an extension is {MIN_EXTENSION_DIGITS} to {MAX_EXTENSION_DIGITS} digits")]
pub struct ExtensionError;

impl Extension {
    /// # Errors
    /// [`ExtensionError`] unless `input` (trimmed) is 2 to 8 ASCII digits.
    pub fn parse(input: &str) -> Result<Self, ExtensionError> {
        let trimmed = input.trim();
        let valid = (MIN_EXTENSION_DIGITS..=MAX_EXTENSION_DIGITS).contains(&trimmed.len())
            && trimmed.bytes().all(|b| b.is_ascii_digit());
        if valid {
            Ok(Self(trimmed.to_owned()))
        } else {
            Err(ExtensionError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Extension {
    type Err = ExtensionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Extension {
    type Error = ExtensionError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Extension> for String {
    fn from(extension: Extension) -> Self {
        extension.0
    }
}

/// The digits serde writes.
impl JsonSchema for Extension {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Extension")
    }

    fn schema_id() -> Cow<'static, str> {
        Cow::Borrowed(concat!(module_path!(), "::Extension"))
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let pattern = format!("^[0-9]{{{MIN_EXTENSION_DIGITS},{MAX_EXTENSION_DIGITS}}}$");
        json_schema!({
            "type": "string",
            "description": "An extension number, e.g. 101; leading zeros count.",
            "pattern": pattern,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_short_digit_strings() {
        assert_eq!(Extension::parse(" 101 ").unwrap().as_str(), "101");
        assert_eq!(Extension::parse("0101").unwrap().as_str(), "0101");
        assert!(Extension::parse("12345678").is_ok());
    }

    #[test]
    fn the_json_schema_pattern_is_the_digits() {
        let schema = schemars::schema_for!(Extension);
        assert_eq!(
            schema.get("pattern").and_then(|p| p.as_str()),
            Some("^[0-9]{2,8}$")
        );
    }

    #[test]
    fn rejects_anything_else() {
        for bad in ["", "1", "123456789", "10a", "+101", "1 01", "١٠١"] {
            assert_eq!(Extension::parse(bad), Err(ExtensionError), "{bad:?}");
        }
    }
}
