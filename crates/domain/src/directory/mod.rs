//! The directory of one organization (stream `directory-<org id>`): its users and their
//! roles, its business numbers (SMS registration, routing, who may send from them), per-user
//! settings and the phonebook.
//!
//! Other aggregates never read it directly: the actor layer looks up what they need here
//! (a user's role, a [`SenderNumber`](crate::conversation::SenderNumber), a number's
//! routing) and passes it in their commands.
//!
//! - `state`: [`Directory`] and its [`Aggregate`](crate::Aggregate) implementation.
//! - `users`: the organization, users, roles and settings.
//! - `extension`: validated extension numbers.
//! - `numbers`: business numbers, [`Routing`], assignments.
//! - `contacts`: the phonebook and [`Directory::resolve_name`].
//! - `command`, `event`, `rejection`: the aggregate's vocabulary.

mod command;
mod contacts;
mod event;
mod extension;
mod numbers;
mod rejection;
mod state;
mod users;

#[cfg(test)]
mod tests;

pub use command::{ContactDetails, DirectoryCommand, IssuedDirectoryCommand};
pub use contacts::{Contact, ContactOwner, ContactScope};
pub use event::{
    ContactAdded, ContactDeleted, ContactUpdated, DirectoryEvent, NumberAdded, NumberAssigned,
    NumberRouted, NumberSmsRegistered, NumberSmsUnregistered, NumberUnassigned,
    OrganizationCreated, RoleChanged, TextMessagesToDeskPhoneSet, UserAdded, UserRenamed,
    DIRECTORY_EVENT_TYPES,
};
pub use extension::{Extension, ExtensionError};
pub use numbers::{BusinessNumber, Routing};
pub use rejection::DirectoryRejection;
pub use state::{Directory, Organization};
pub use users::{User, UserSettings};
