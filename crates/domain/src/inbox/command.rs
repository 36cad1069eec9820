//! What callers ask of an inbox. Every inbox command is an admin power.

use serde::{Deserialize, Serialize};

use crate::command_meta::Issued;
use crate::ids::{InboxId, UserId};
use crate::phone_number::PhoneNumber;

/// An [`InboxCommand`] with who issues it and when.
pub type IssuedInboxCommand = Issued<InboxCommand>;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InboxCommand {
    /// `number_is_ours`: the directory lists `number` as one of the organization's
    /// business numbers. Routing the number to the inbox is the directory's next step.
    CreateInbox {
        id: InboxId,
        name: String,
        number: PhoneNumber,
        number_is_ours: bool,
    },
    /// `user_exists`: the directory knows `user`.
    AddMember {
        user: UserId,
        user_exists: bool,
    },
    RemoveMember {
        user: UserId,
    },
    RenameInbox {
        name: String,
    },
}
