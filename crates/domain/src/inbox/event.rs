//! What happened to an inbox. Every variant is a stored schema: add a new type or a new
//! version, never change one in place.
//!
//! bincode encodes an enum variant by its position, so new variants go at the end and
//! existing ones are never reordered or removed.

use serde::{Deserialize, Serialize};

use crate::aggregate::DomainEvent;
use crate::command_meta::Actor;
use crate::ids::{InboxId, OrgId, UserId};
use crate::phone_number::PhoneNumber;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InboxEvent {
    InboxCreated(InboxCreated),
    InboxMemberAdded(InboxMemberAdded),
    InboxMemberRemoved(InboxMemberRemoved),
    InboxRenamed(InboxRenamed),
}

/// Every event type name this aggregate writes, in variant order (which is how bincode
/// tells variants apart), for schema files and upcasters.
pub const INBOX_EVENT_TYPES: [&str; 4] = [
    "InboxCreated",
    "InboxMemberAdded",
    "InboxMemberRemoved",
    "InboxRenamed",
];

impl DomainEvent for InboxEvent {
    fn event_type(&self) -> &'static str {
        match self {
            InboxEvent::InboxCreated(_) => "InboxCreated",
            InboxEvent::InboxMemberAdded(_) => "InboxMemberAdded",
            InboxEvent::InboxMemberRemoved(_) => "InboxMemberRemoved",
            InboxEvent::InboxRenamed(_) => "InboxRenamed",
        }
    }

    fn schema_version(&self) -> u16 {
        1
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxCreated {
    pub id: InboxId,
    pub org: OrgId,
    pub name: String,
    pub number: PhoneNumber,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxMemberAdded {
    pub user: UserId,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxMemberRemoved {
    pub user: UserId,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxRenamed {
    pub name: String,
    pub by: Actor,
    pub at_ms: u64,
}
