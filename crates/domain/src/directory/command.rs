//! What callers ask of an organization's directory.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::command_meta::{Issued, Role};
use crate::directory::contacts::ContactScope;
use crate::directory::extension::Extension;
use crate::directory::numbers::Routing;
use crate::ids::{ContactId, UserId};
use crate::phone_number::PhoneNumber;

/// A [`DirectoryCommand`] with who issues it and when.
pub type IssuedDirectoryCommand = Issued<DirectoryCommand>;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirectoryCommand {
    /// Provisions the organization `meta.org` with its first user, who is an admin (an
    /// organization nobody can administer would be stuck). System only.
    CreateOrganization {
        name: String,
        first_admin: UserId,
        first_admin_name: String,
        first_admin_extension: Extension,
    },
    /// Admin only. The extension must be free in the organization.
    AddUser {
        user: UserId,
        name: String,
        extension: Extension,
        role: Role,
    },
    /// Admin only; the last admin cannot be demoted.
    ChangeRole { user: UserId, role: Role },
    /// The user themself, or an admin.
    SetTextMessagesToDeskPhone { user: UserId, enabled: bool },
    /// The user themself, or an admin.
    RenameUser { user: UserId, name: String },
    /// Admin only. `destination_exists`: the caller confirmed that the inbox or queue
    /// named by `route` exists in this organization and serves this number (the directory
    /// knows users itself and ignores it for [`Routing::User`]).
    AddNumber {
        number: PhoneNumber,
        route: Routing,
        destination_exists: bool,
    },
    /// Admin only (or the System, for a carrier's registration callback).
    SetSmsRegistration {
        number: PhoneNumber,
        registered: bool,
    },
    /// Admin only; `destination_exists` as for [`DirectoryCommand::AddNumber`].
    RouteNumber {
        number: PhoneNumber,
        to: Routing,
        destination_exists: bool,
    },
    /// Admin only: lets `user` send from `number` (a personal or shared line).
    AssignNumber { number: PhoneNumber, user: UserId },
    /// Admin only.
    UnassignNumber { number: PhoneNumber, user: UserId },
    /// Any user; a personal contact belongs to the user who adds it.
    AddContact {
        contact: ContactId,
        scope: ContactScope,
        details: ContactDetails,
    },
    /// Organization contacts: any user. Personal contacts: their owner only.
    UpdateContact {
        contact: ContactId,
        details: ContactDetails,
    },
    /// Same rule as [`DirectoryCommand::UpdateContact`].
    DeleteContact { contact: ContactId },
}

/// What a phonebook entry says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ContactDetails {
    pub name: String,
    /// Empty when there is none.
    pub company: String,
    /// In the order the user gave them (the first is shown first); duplicates are dropped.
    pub numbers: Vec<PhoneNumber>,
}
