//! Phone numbers in E.164 form (`+` then 8 to 15 digits, the first not `0`).
//!
//! Every number in the domain is a [`PhoneNumber`], so two spellings of one number
//! ("+1 (613) 555-0123" and "+16135550123") can never become two conversations or two
//! phonebook entries.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::limits::{MAX_PHONE_DIGITS, MIN_PHONE_DIGITS};

/// A validated, normalised E.164 number, e.g. `+16135550123`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

/// Why a string is not a phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PhoneNumberError {
    /// No country code: we never guess one, so a number must start with `+`.
    #[error("a phone number must start with + and its country code")]
    MissingPlus,
    #[error(
        "a phone number may hold only digits, spaces, dashes, dots and parentheses, not {0:?}"
    )]
    InvalidCharacter(char),
    #[error("a phone number has {MIN_PHONE_DIGITS} to {MAX_PHONE_DIGITS} digits, not {digits}")]
    WrongLength { digits: usize },
    #[error("a country code never starts with 0")]
    LeadingZero,
}

impl PhoneNumber {
    /// Parses a number as people type it: spaces, dashes, dots and parentheses are
    /// dropped, so "+44 (20) 7946-0958" becomes "+442079460958".
    ///
    /// # Errors
    /// [`PhoneNumberError`] naming what is wrong.
    pub fn parse(input: &str) -> Result<Self, PhoneNumberError> {
        let mut significant = input
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}'));
        if significant.next() != Some('+') {
            return Err(PhoneNumberError::MissingPlus);
        }
        let mut normalised = String::with_capacity(MAX_PHONE_DIGITS + 1);
        normalised.push('+');
        for c in significant {
            if !c.is_ascii_digit() {
                return Err(PhoneNumberError::InvalidCharacter(c));
            }
            normalised.push(c);
        }
        let digits = normalised.len() - 1;
        if !(MIN_PHONE_DIGITS..=MAX_PHONE_DIGITS).contains(&digits) {
            return Err(PhoneNumberError::WrongLength { digits });
        }
        if normalised.as_bytes()[1] == b'0' {
            return Err(PhoneNumberError::LeadingZero);
        }
        Ok(Self(normalised))
    }

    /// The E.164 form, e.g. `+16135550123`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PhoneNumber {
    type Err = PhoneNumberError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = PhoneNumberError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(number: PhoneNumber) -> Self {
        number.0
    }
}

/// The normalised E.164 string serde writes (`+`, a first digit that is not 0, then the
/// rest of the 8 to 15 digits).
impl JsonSchema for PhoneNumber {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("PhoneNumber")
    }

    fn schema_id() -> Cow<'static, str> {
        Cow::Borrowed(concat!(module_path!(), "::PhoneNumber"))
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let pattern = format!(
            "^\\+[1-9][0-9]{{{},{}}}$",
            MIN_PHONE_DIGITS - 1,
            MAX_PHONE_DIGITS - 1
        );
        json_schema!({
            "type": "string",
            "description": "A phone number in E.164 form, e.g. +16135550123.",
            "pattern": pattern,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_e164_and_common_formatting() {
        let canonical = PhoneNumber::parse("+16135550123").unwrap();
        assert_eq!(canonical.as_str(), "+16135550123");
        for typed in [
            "+1 613 555 0123",
            "+1-613-555-0123",
            "+1 (613) 555-0123",
            "+1.613.555.0123",
            "  +16135550123 ",
            "(+1) 613 555 0123",
        ] {
            assert_eq!(PhoneNumber::parse(typed), Ok(canonical.clone()), "{typed}");
        }
    }

    #[test]
    fn accepts_the_length_bounds() {
        assert!(PhoneNumber::parse("+12345678").is_ok());
        assert!(PhoneNumber::parse("+123456789012345").is_ok());
    }

    #[test]
    fn rejects_what_is_not_e164() {
        assert_eq!(
            PhoneNumber::parse("6135550123"),
            Err(PhoneNumberError::MissingPlus)
        );
        assert_eq!(PhoneNumber::parse(""), Err(PhoneNumberError::MissingPlus));
        assert_eq!(
            PhoneNumber::parse("+1613555012a"),
            Err(PhoneNumberError::InvalidCharacter('a'))
        );
        assert_eq!(
            PhoneNumber::parse("+1+6135550123"),
            Err(PhoneNumberError::InvalidCharacter('+'))
        );
        assert_eq!(
            PhoneNumber::parse("+1234567"),
            Err(PhoneNumberError::WrongLength { digits: 7 })
        );
        assert_eq!(
            PhoneNumber::parse("+1234567890123456"),
            Err(PhoneNumberError::WrongLength { digits: 16 })
        );
        assert_eq!(
            PhoneNumber::parse("+0123456789"),
            Err(PhoneNumberError::LeadingZero)
        );
        assert_eq!(
            PhoneNumber::parse("+١٢٣٤٥٦٧٨٩"),
            Err(PhoneNumberError::InvalidCharacter('١'))
        );
    }

    #[test]
    fn the_json_schema_pattern_is_the_e164_form() {
        let schema = schemars::schema_for!(PhoneNumber);
        assert_eq!(
            schema.get("pattern").and_then(|p| p.as_str()),
            Some("^\\+[1-9][0-9]{7,14}$")
        );
        assert_eq!(schema.get("type").and_then(|p| p.as_str()), Some("string"));
    }

    #[test]
    fn deserialising_validates() {
        let config = bincode::config::standard();
        let good = bincode::serde::encode_to_vec("+1 613 555 0123", config).unwrap();
        let (number, _): (PhoneNumber, usize) =
            bincode::serde::decode_from_slice(&good, config).unwrap();
        assert_eq!(number.as_str(), "+16135550123");
        let bad = bincode::serde::encode_to_vec("555", config).unwrap();
        assert!(bincode::serde::decode_from_slice::<PhoneNumber, _>(&bad, config).is_err());
    }
}
