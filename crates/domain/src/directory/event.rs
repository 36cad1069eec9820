//! What happened to an organization's directory. Every variant is a stored schema: add a
//! new type or a new version, never change one in place.
//!
//! bincode encodes an enum variant by its position, so new variants go at the end and
//! existing ones are never reordered or removed.

use serde::{Deserialize, Serialize};

use crate::aggregate::DomainEvent;
use crate::command_meta::{Actor, Role};
use crate::directory::command::ContactDetails;
use crate::directory::contacts::ContactOwner;
use crate::directory::extension::Extension;
use crate::directory::numbers::Routing;
use crate::ids::{ContactId, OrgId, UserId};
use crate::phone_number::PhoneNumber;

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
}

/// Every event type name this aggregate writes, in variant order (which is how bincode
/// tells variants apart), for schema files and upcasters.
pub const DIRECTORY_EVENT_TYPES: [&str; 13] = [
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
];

impl DomainEvent for DirectoryEvent {
    fn event_type(&self) -> &'static str {
        match self {
            DirectoryEvent::OrganizationCreated(_) => "OrganizationCreated",
            DirectoryEvent::UserAdded(_) => "UserAdded",
            DirectoryEvent::RoleChanged(_) => "RoleChanged",
            DirectoryEvent::TextMessagesToDeskPhoneSet(_) => "TextMessagesToDeskPhoneSet",
            DirectoryEvent::NumberAdded(_) => "NumberAdded",
            DirectoryEvent::NumberSmsRegistered(_) => "NumberSmsRegistered",
            DirectoryEvent::NumberSmsUnregistered(_) => "NumberSmsUnregistered",
            DirectoryEvent::NumberRouted(_) => "NumberRouted",
            DirectoryEvent::NumberAssigned(_) => "NumberAssigned",
            DirectoryEvent::NumberUnassigned(_) => "NumberUnassigned",
            DirectoryEvent::ContactAdded(_) => "ContactAdded",
            DirectoryEvent::ContactUpdated(_) => "ContactUpdated",
            DirectoryEvent::ContactDeleted(_) => "ContactDeleted",
        }
    }

    fn schema_version(&self) -> u16 {
        1
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationCreated {
    pub org: OrgId,
    pub name: String,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAdded {
    pub user: UserId,
    pub name: String,
    pub extension: Extension,
    pub role: Role,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleChanged {
    pub user: UserId,
    pub role: Role,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextMessagesToDeskPhoneSet {
    pub user: UserId,
    pub enabled: bool,
    pub by: Actor,
    pub at_ms: u64,
}

/// A business number joined the organization, not yet SMS-registered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberAdded {
    pub number: PhoneNumber,
    pub route: Routing,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberSmsRegistered {
    pub number: PhoneNumber,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberSmsUnregistered {
    pub number: PhoneNumber,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberRouted {
    pub number: PhoneNumber,
    pub to: Routing,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberAssigned {
    pub number: PhoneNumber,
    pub user: UserId,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberUnassigned {
    pub number: PhoneNumber,
    pub user: UserId,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactAdded {
    pub contact: ContactId,
    pub owner: ContactOwner,
    /// Already validated and normalised (trimmed, numbers deduplicated).
    pub details: ContactDetails,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactUpdated {
    pub contact: ContactId,
    pub details: ContactDetails,
    pub by: Actor,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactDeleted {
    pub contact: ContactId,
    pub by: Actor,
    pub at_ms: u64,
}
