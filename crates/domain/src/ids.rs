//! Identities: newtypes over UUIDs, so a `UserId` can never be passed where an `InboxId`
//! is meant.
//!
//! Conversations between fixed parties get *deterministic* ids (UUID v5 over the org and
//! the parties): "one conversation per pair" then needs no lookup table, and two racing
//! "start" commands for the same pair land on the same stream, where the conversation
//! actor serialises them. Channels and groups get random ids.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::phone_number::PhoneNumber;

/// A string that is not a UUID was given where an id was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {kind}: expected a UUID")]
pub struct IdParseError {
    /// Which id type was being parsed, e.g. "UserId".
    pub kind: &'static str,
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random (v4) id.
            pub fn random() -> Self {
                Self(Uuid::new_v4())
            }

            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        /// A UUID string in JSON (bincode writes its 16 bytes).
        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }

            fn schema_id() -> Cow<'static, str> {
                Cow::Borrowed(concat!(module_path!(), "::", stringify!($name)))
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string", "format": "uuid" })
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|_| IdParseError {
                    kind: stringify!($name),
                })
            }
        }
    };
}

uuid_id!(
    /// An organization (tenant); also the identity of its directory stream.
    OrgId
);
uuid_id!(
    /// A user (extension) of one organization.
    UserId
);
uuid_id!(
    /// A conversation of any kind; see [`ConversationId::external`] and
    /// [`ConversationId::direct`] for the deterministic ones.
    ConversationId
);
uuid_id!(
    /// A shared team inbox.
    InboxId
);
uuid_id!(
    /// An SMS queue.
    QueueId
);
uuid_id!(
    /// A message within a conversation; chosen by the caller so a retried post is
    /// recognised.
    MessageId
);
uuid_id!(
    /// A phonebook contact.
    ContactId
);
uuid_id!(
    /// A stored file or image, referenced by messages (the bytes live outside the log).
    AttachmentId
);
uuid_id!(
    /// One call or video activity entry within a conversation.
    CallId
);

/// Namespace of the v5 conversation ids. Changing it would orphan every existing
/// External and Direct conversation stream, so it is fixed forever.
const CONVERSATION_NAMESPACE: Uuid = Uuid::from_u128(0x6d1f_54a2_0c39_4b5e_9a57_3e0f_2b8c_41d7);

impl ConversationId {
    /// The one External conversation between `our` business number and `their` number in
    /// `org`.
    pub fn external(org: OrgId, our: &PhoneNumber, their: &PhoneNumber) -> Self {
        let mut name = Vec::with_capacity(64);
        name.extend_from_slice(b"external\0");
        name.extend_from_slice(org.as_uuid().as_bytes());
        name.extend_from_slice(our.as_str().as_bytes());
        // '\0' never occurs in a phone number, so ("+1234", "5") and ("+123", "45") differ.
        name.push(0);
        name.extend_from_slice(their.as_str().as_bytes());
        Self(Uuid::new_v5(&CONVERSATION_NAMESPACE, &name))
    }

    /// The one Direct conversation between users `a` and `b` in `org`, whichever of them
    /// starts it.
    pub fn direct(org: OrgId, a: UserId, b: UserId) -> Self {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        let mut name = Vec::with_capacity(64);
        name.extend_from_slice(b"direct\0");
        name.extend_from_slice(org.as_uuid().as_bytes());
        name.extend_from_slice(low.as_uuid().as_bytes());
        name.extend_from_slice(high.as_uuid().as_bytes());
        Self(Uuid::new_v5(&CONVERSATION_NAMESPACE, &name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).unwrap()
    }

    #[test]
    fn ids_round_trip_through_display_and_from_str() {
        let id = UserId::random();
        assert_eq!(id.to_string().parse::<UserId>(), Ok(id));
        assert_eq!(
            "not-a-uuid".parse::<InboxId>(),
            Err(IdParseError { kind: "InboxId" })
        );
    }

    #[test]
    fn external_id_is_stable_per_org_and_pair() {
        let org = OrgId::random();
        let our = number("+16135550100");
        let their = number("+16135550199");
        assert_eq!(
            ConversationId::external(org, &our, &their),
            ConversationId::external(org, &our, &their)
        );
        assert_ne!(
            ConversationId::external(org, &our, &their),
            ConversationId::external(org, &their, &our)
        );
        assert_ne!(
            ConversationId::external(org, &our, &their),
            ConversationId::external(OrgId::random(), &our, &their)
        );
    }

    #[test]
    fn direct_id_ignores_order_but_not_org() {
        let org = OrgId::random();
        let (a, b) = (UserId::random(), UserId::random());
        assert_eq!(
            ConversationId::direct(org, a, b),
            ConversationId::direct(org, b, a)
        );
        assert_ne!(
            ConversationId::direct(org, a, b),
            ConversationId::direct(OrgId::random(), a, b)
        );
        assert_ne!(
            ConversationId::direct(org, a, b),
            ConversationId::direct(org, a, UserId::random())
        );
    }

    #[test]
    fn the_id_namespace_never_changes() {
        // Pinned: a change here would silently split every existing conversation in two.
        let org = OrgId::from_uuid(Uuid::from_u128(1));
        let id = ConversationId::external(org, &number("+15550001111"), &number("+15550002222"));
        assert_eq!(id.to_string(), "aa97a5ca-078c-53de-8175-79411a26d31b");
    }
}
