//! Facts owned by other aggregates that a conversation's decisions depend on.
//!
//! A conversation never reads the directory or an inbox: the actor layer looks these up
//! just before it sends the command, and `decide` enforces the rule with them. The facts
//! are only as fresh as that lookup, which is the same guarantee a user has when they
//! press a button.

use serde::{Deserialize, Serialize};

use crate::phone_number::PhoneNumber;

/// The From number picked for an SMS, as the directory sees it for the sender
/// (see `Directory::sender_number`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderNumber {
    pub number: PhoneNumber,
    /// The number may send SMS at all.
    pub sms_registered: bool,
    /// The directory assigns the number to the sending user.
    pub assigned_to_sender: bool,
}

/// What other aggregates say about the acting user and this conversation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorFacts {
    /// The directory assigns the conversation's business number (`our`) to the actor.
    /// This is what makes a user a participant of a (non-inbox) External conversation:
    /// the conversation belongs to the line, so whoever holds the line sees its history.
    pub holds_our_number: bool,
    /// The inbox holding the conversation lists the actor as a team member.
    pub inbox_member: bool,
    /// The actor is an admin of the organization: admins see every inbox conversation
    /// and may take any over, on the team or not.
    #[serde(default)]
    pub admin: bool,
    /// The conversation is on an SMS queue's number and the actor may read it: one of the
    /// queue's agents while no agent holds it (waiting, or closed: the queue's History),
    /// or an admin. Only the agent who claimed it (`holds_our_number`) writes.
    #[serde(default)]
    pub queue_reader: bool,
}
