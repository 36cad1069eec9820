//! What happened to an inbox. Every variant is a stored schema: add a new type or a new
//! version, never change one in place (see [`crate::schema`]).
//!
//! The log stores a variant's inner struct under the type name and version the envelope
//! carries, so the order of the variants does not matter to it; new variants still go at
//! the end, so the enum's own serde form stays stable too.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::command_meta::Actor;
use crate::ids::{InboxId, OrgId, UserId};
use crate::phone_number::PhoneNumber;
use crate::schema::versioned_events;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InboxEvent {
    InboxCreated(InboxCreated),
    InboxMemberAdded(InboxMemberAdded),
    InboxMemberRemoved(InboxMemberRemoved),
    InboxRenamed(InboxRenamed),
}

/// Every event type name this aggregate writes, in variant order (the order of
/// [`VersionedEvent::SCHEMAS`](crate::schema::VersionedEvent::SCHEMAS)).
pub const INBOX_EVENT_TYPES: [&str; 4] = [
    "InboxCreated",
    "InboxMemberAdded",
    "InboxMemberRemoved",
    "InboxRenamed",
];

versioned_events! {
    InboxEvent {
        InboxCreated(InboxCreated) = 1,
        InboxMemberAdded(InboxMemberAdded) = 1,
        InboxMemberRemoved(InboxMemberRemoved) = 1,
        InboxRenamed(InboxRenamed) = 1,
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InboxCreated {
    pub id: InboxId,
    pub org: OrgId,
    pub name: String,
    pub number: PhoneNumber,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InboxMemberAdded {
    pub user: UserId,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InboxMemberRemoved {
    pub user: UserId,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InboxRenamed {
    pub name: String,
    pub by: Actor,
    pub at_ms: u64,
}

/// No texts: names and settings are not message bodies.
impl crate::text::Texts for InboxEvent {}
