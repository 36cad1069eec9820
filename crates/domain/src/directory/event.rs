//! What happened to an organization's directory. Every variant is a stored schema: add a
//! new type or a new version, never change one in place (see [`crate::schema`]).
//!
//! The log stores a variant's inner struct under the type name and version the envelope
//! carries, so the order of the variants does not matter to it; new variants still go at
//! the end, so the enum's own serde form stays stable too.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::command_meta::{Actor, Role};
use crate::directory::command::ContactDetails;
use crate::directory::contacts::ContactOwner;
use crate::directory::extension::Extension;
use crate::directory::numbers::Routing;
use crate::ids::{ContactId, OrgId, UserId};
use crate::phone_number::PhoneNumber;
use crate::schema::versioned_events;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirectoryEvent {
    OrganizationCreated(OrganizationCreated),
    UserAdded(UserAdded),
    RoleChanged(RoleChanged),
    TextMessagesToDeskPhoneSet(TextMessagesToDeskPhoneSet),
    NumberAdded(NumberAdded),
    NumberSmsRegistered(NumberSmsRegistered),
    NumberSmsUnregistered(NumberSmsUnregistered),
    NumberRouted(NumberRouted),
    NumberAssigned(NumberAssigned),
    NumberUnassigned(NumberUnassigned),
    ContactAdded(ContactAdded),
    ContactUpdated(ContactUpdated),
    ContactDeleted(ContactDeleted),
    UserRenamed(UserRenamed),
}

/// Every event type name this aggregate writes, in variant order (the order of
/// [`VersionedEvent::SCHEMAS`](crate::schema::VersionedEvent::SCHEMAS)).
pub const DIRECTORY_EVENT_TYPES: [&str; 14] = [
    "OrganizationCreated",
    "UserAdded",
    "RoleChanged",
    "TextMessagesToDeskPhoneSet",
    "NumberAdded",
    "NumberSmsRegistered",
    "NumberSmsUnregistered",
    "NumberRouted",
    "NumberAssigned",
    "NumberUnassigned",
    "ContactAdded",
    "ContactUpdated",
    "ContactDeleted",
    "UserRenamed",
];

versioned_events! {
    DirectoryEvent {
        OrganizationCreated(OrganizationCreated) = 1,
        UserAdded(UserAdded) = 1,
        RoleChanged(RoleChanged) = 1,
        TextMessagesToDeskPhoneSet(TextMessagesToDeskPhoneSet) = 1,
        NumberAdded(NumberAdded) = 1,
        NumberSmsRegistered(NumberSmsRegistered) = 1,
        NumberSmsUnregistered(NumberSmsUnregistered) = 1,
        NumberRouted(NumberRouted) = 1,
        NumberAssigned(NumberAssigned) = 1,
        NumberUnassigned(NumberUnassigned) = 1,
        ContactAdded(ContactAdded) = 1,
        ContactUpdated(ContactUpdated) = 1,
        ContactDeleted(ContactDeleted) = 1,
        UserRenamed(UserRenamed) = 1,
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrganizationCreated {
    pub org: OrgId,
    pub name: String,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserAdded {
    pub user: UserId,
    pub name: String,
    pub extension: Extension,
    pub role: Role,
    pub by: Actor,
    pub at_ms: u64,
}

/// A user's name changed (by themself or an admin).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserRenamed {
    pub user: UserId,
    pub name: String,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RoleChanged {
    pub user: UserId,
    pub role: Role,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TextMessagesToDeskPhoneSet {
    pub user: UserId,
    pub enabled: bool,
    pub by: Actor,
    pub at_ms: u64,
}

/// A business number joined the organization, not yet SMS-registered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NumberAdded {
    pub number: PhoneNumber,
    pub route: Routing,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NumberSmsRegistered {
    pub number: PhoneNumber,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NumberSmsUnregistered {
    pub number: PhoneNumber,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NumberRouted {
    pub number: PhoneNumber,
    pub to: Routing,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NumberAssigned {
    pub number: PhoneNumber,
    pub user: UserId,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NumberUnassigned {
    pub number: PhoneNumber,
    pub user: UserId,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ContactAdded {
    pub contact: ContactId,
    pub owner: ContactOwner,
    /// Already validated and normalised (trimmed, numbers deduplicated).
    pub details: ContactDetails,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ContactUpdated {
    pub contact: ContactId,
    pub details: ContactDetails,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ContactDeleted {
    pub contact: ContactId,
    pub by: Actor,
    pub at_ms: u64,
}

/// No texts: names and settings are not message bodies.
impl crate::text::Texts for DirectoryEvent {}
