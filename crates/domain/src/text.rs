//! Message texts and whose data they are: the unit of retention and erasure.
//!
//! Every text a customer-facing or internal message carries is a [`Text`]. The domain
//! decides it in the clear and says, with its [`TextKey`], whose data it is (the customers
//! of the conversation, or nobody outside the organization for internal chat) and on which
//! day it was written. The actor layer seals it under that key before the log stores it
//! and opens it when an event is read back; a text whose key was destroyed — one
//! customer's data erased on request, or the organization's retention reached its day —
//! reads as [`Text::Erased`], while the stored bytes (and so the log's hash chains) stay
//! exactly as they were written ("crypto-shredding").

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conversation::ConversationKind;
use crate::ids::OrgId;
use crate::phone_number::PhoneNumber;

/// Milliseconds in a day: texts are keyed per UTC day, the granularity of retention.
pub const DAY_MS: u64 = 86_400_000;

/// What a text shows once its key is gone.
pub const ERASED: &str = "[erased]";

/// Which key a text is sealed under: the organization, the customers whose data it is, and
/// the day it was written. Each (organization, customer, day) — or (organization, day) for
/// internal chat — has a key of its own; a text of several customers (a group MMS) needs
/// all of theirs, so erasing any one of them erases it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct TextKey {
    pub org: OrgId,
    /// The customers (external numbers) the text belongs to, sorted; empty for chat among
    /// teammates.
    pub customers: Vec<PhoneNumber>,
    /// Days since 1970-01-01 (UTC) when it was written.
    pub day: u32,
}

impl TextKey {
    /// The key of a text written at `at_ms` by or to these customers.
    pub fn new(org: OrgId, mut customers: Vec<PhoneNumber>, at_ms: u64) -> Self {
        customers.sort();
        customers.dedup();
        Self {
            org,
            customers,
            day: day_of(at_ms),
        }
    }

    /// The key of a message of a conversation of this kind: its external numbers are the
    /// customers (one for an External conversation, each of a group's), none for internal
    /// chat.
    pub fn for_conversation(org: OrgId, kind: &ConversationKind, at_ms: u64) -> Self {
        let customers = kind.external_numbers().into_iter().cloned().collect();
        Self::new(org, customers, at_ms)
    }
}

/// The UTC day (days since the Unix epoch) of a time in milliseconds.
pub fn day_of(at_ms: u64) -> u32 {
    u32::try_from(at_ms / DAY_MS).unwrap_or(u32::MAX)
}

/// A message text, as decided, as stored, or after its key was destroyed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Text {
    /// Readable: as the domain decided it (with the key it is to be sealed under), or
    /// opened after reading, or from a log written before texts were sealed (`key: None`,
    /// stored in the clear).
    Plain { text: String, key: Option<TextKey> },
    /// As the log stores it: XChaCha20-Poly1305 under the data key of `key`; `check` tells
    /// that data key from a later one of the same name (a key destroyed and made again).
    Sealed {
        key: TextKey,
        check: Vec<u8>,
        nonce: Vec<u8>,
        ciphertext: Vec<u8>,
    },
    /// Its key is gone: erased on request or by the organization's retention.
    Erased { key: TextKey },
}

impl Text {
    /// A text decided now, to be sealed under `key`.
    pub fn new(text: impl Into<String>, key: TextKey) -> Self {
        Text::Plain {
            text: text.into(),
            key: Some(key),
        }
    }

    /// A text stored in the clear (events written before sealing, fixtures).
    pub fn unsealed(text: impl Into<String>) -> Self {
        Text::Plain {
            text: text.into(),
            key: None,
        }
    }

    /// The words, when they are readable.
    pub fn as_plain(&self) -> Option<&str> {
        match self {
            Text::Plain { text, .. } => Some(text),
            Text::Sealed { .. } | Text::Erased { .. } => None,
        }
    }

    /// What to show: the words, [`ERASED`], or `[sealed]` when nobody opened it.
    pub fn shown(&self) -> &str {
        match self {
            Text::Plain { text, .. } => text,
            Text::Erased { .. } => ERASED,
            Text::Sealed { .. } => "[sealed]",
        }
    }

    /// Whether its key is gone.
    pub fn is_erased(&self) -> bool {
        matches!(self, Text::Erased { .. })
    }

    /// The key it is (to be) sealed under; `None` for a text stored in the clear.
    pub fn key(&self) -> Option<&TextKey> {
        match self {
            Text::Plain { key, .. } => key.as_ref(),
            Text::Sealed { key, .. } | Text::Erased { key } => Some(key),
        }
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.shown())
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_plain() == Some(*other)
    }
}

/// Events that carry texts: the actor layer seals them before writing and opens them after
/// reading. Implemented by every event enum (most have none).
pub trait Texts {
    /// Every text of this event.
    fn texts_mut(&mut self) -> Vec<&mut Text> {
        Vec::new()
    }

    /// Whether it carries a text to seal (so most events are written without a copy).
    fn has_texts(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UserId;

    fn n(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).unwrap()
    }

    #[test]
    fn a_text_belongs_to_the_customers_of_its_conversation_and_its_day() {
        let org = OrgId::random();
        let external = ConversationKind::External {
            our: n("+16135550100"),
            their: n("+16135550142"),
        };
        let key = TextKey::for_conversation(org, &external, 3 * DAY_MS + 5);
        assert_eq!(key.customers, vec![n("+16135550142")]);
        assert_eq!(key.day, 3);
        let group = ConversationKind::Group {
            our: n("+16135550100"),
            users: [UserId::random()].into(),
            externals: [n("+16135550199"), n("+16135550142")].into(),
        };
        let key = TextKey::for_conversation(org, &group, DAY_MS - 1);
        assert_eq!(key.customers, vec![n("+16135550142"), n("+16135550199")]);
        assert_eq!(key.day, 0);
        let direct = ConversationKind::Direct {
            a: UserId::random(),
            b: UserId::random(),
        };
        assert!(TextKey::for_conversation(org, &direct, 0)
            .customers
            .is_empty());
    }

    #[test]
    fn only_a_readable_text_shows_its_words() {
        let key = TextKey::new(OrgId::random(), vec![], 0);
        assert_eq!(Text::new("hi", key.clone()).as_plain(), Some("hi"));
        assert_eq!(Text::new("hi", key.clone()), "hi");
        let erased = Text::Erased { key };
        assert_eq!(erased.as_plain(), None);
        assert_eq!(erased.to_string(), ERASED);
        assert!(erased.is_erased());
    }
}
