//! The four kinds of conversation and who takes part in each.

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::UserId;
use crate::phone_number::PhoneNumber;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConversationKind {
    /// SMS/MMS between one of our business numbers and one external number; one per pair
    /// (see `ConversationId::external`). Its internal side is whoever holds `our` (or, for
    /// an inbox number, the inbox team), which other aggregates know.
    External {
        our: PhoneNumber,
        their: PhoneNumber,
    },
    /// Two distinct internal users; one per pair (see `ConversationId::direct`).
    /// `a < b`, so the same pair is always stored the same way.
    Direct { a: UserId, b: UserId },
    /// A named group of internal users who join and leave. Never empty: the last member
    /// cannot leave, so the history always has someone who can see it.
    Channel {
        name: String,
        members: BTreeSet<UserId>,
    },
    /// Internal users and external numbers together; membership is fixed at the start,
    /// like a group MMS. Every message goes by SMS from `our` to each external member.
    Group {
        our: PhoneNumber,
        users: BTreeSet<UserId>,
        externals: BTreeSet<PhoneNumber>,
    },
}

impl ConversationKind {
    /// The business number SMS of this conversation go out from.
    pub fn our_number(&self) -> Option<&PhoneNumber> {
        match self {
            ConversationKind::External { our, .. } | ConversationKind::Group { our, .. } => {
                Some(our)
            }
            ConversationKind::Direct { .. } | ConversationKind::Channel { .. } => None,
        }
    }

    /// The external numbers that receive this conversation's messages by SMS.
    pub fn external_numbers(&self) -> Vec<&PhoneNumber> {
        match self {
            ConversationKind::External { their, .. } => vec![their],
            ConversationKind::Group { externals, .. } => externals.iter().collect(),
            ConversationKind::Direct { .. } | ConversationKind::Channel { .. } => vec![],
        }
    }

    /// The internal members recorded in the conversation itself; `None` for External,
    /// whose internal side is decided by the directory or an inbox.
    pub fn internal_members(&self) -> Option<BTreeSet<UserId>> {
        match self {
            ConversationKind::External { .. } => None,
            ConversationKind::Direct { a, b } => Some([*a, *b].into()),
            ConversationKind::Channel { members, .. } => Some(members.clone()),
            ConversationKind::Group { users, .. } => Some(users.clone()),
        }
    }

    /// Is `user` a member by the conversation's own record? (Always false for External.)
    pub fn has_member(&self, user: UserId) -> bool {
        match self {
            ConversationKind::External { .. } => false,
            ConversationKind::Direct { a, b } => *a == user || *b == user,
            ConversationKind::Channel { members, .. } => members.contains(&user),
            ConversationKind::Group { users, .. } => users.contains(&user),
        }
    }

    /// Do messages of this conversation go out by SMS?
    pub fn sends_sms(&self) -> bool {
        self.our_number().is_some()
    }
}
