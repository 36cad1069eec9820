//! Who works an inbox conversation: Unassigned → Assigned(user) → Done.
//!
//! The status lives in the conversation, not in the inbox, so that every change is decided
//! by the one actor that owns the conversation (two people pressing Assign to Me at once:
//! the second sees the first's assignment and is refused, naming the holder) and so that
//! an auditor replaying the conversation sees who held it when.
//!
//! Every action needs the actor on the inbox's team, or an admin (admins may take over
//! any inbox conversation, on the team or not). Assign to Me is for anyone on the team
//! when nobody holds the conversation; the other actions belong to the holder, or to an
//! admin. An action whose result already holds writes nothing (pressing Assign to Me
//! twice is fine).

use serde::{Deserialize, Serialize};

use crate::command_meta::CommandMeta;
use crate::conversation::event::{
    ConversationAssigned, ConversationEvent, ConversationTransferred, MarkedDone, ReturnedToInbox,
};
use crate::conversation::facts::ActorFacts;
use crate::conversation::rejection::ConversationRejection;
use crate::conversation::state::Conversation;
use crate::ids::{InboxId, UserId};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxAssignment {
    pub inbox: InboxId,
    pub status: InboxStatus,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InboxStatus {
    Unassigned,
    /// Exactly one holder; only they may reply.
    Assigned(UserId),
    Done,
}

impl InboxStatus {
    pub fn assignee(&self) -> Option<UserId> {
        match self {
            InboxStatus::Assigned(user) => Some(*user),
            InboxStatus::Unassigned | InboxStatus::Done => None,
        }
    }

    /// Open = Unassigned or Assigned.
    pub fn is_open(&self) -> bool {
        !matches!(self, InboxStatus::Done)
    }
}

type Decision = Result<Vec<ConversationEvent>, ConversationRejection>;

impl Conversation {
    /// The current status, once the conversation is an inbox conversation of the acting
    /// organization and the actor (if a user) is on the inbox's team. The System acts for
    /// the platform and needs no team membership.
    fn inbox_status(
        &self,
        meta: &CommandMeta,
        facts: &ActorFacts,
    ) -> Result<InboxStatus, ConversationRejection> {
        self.started(meta)?;
        let assignment = self
            .inbox
            .as_ref()
            .ok_or(ConversationRejection::NotAnInboxConversation)?;
        if meta.actor.user_id().is_some() && !facts.inbox_member && !meta.actor.has_admin_powers() {
            return Err(ConversationRejection::NotAnInboxMember);
        }
        Ok(assignment.status)
    }

    /// The assignee or an admin.
    fn check_holder_or_admin(
        meta: &CommandMeta,
        status: InboxStatus,
    ) -> Result<(), ConversationRejection> {
        if meta.actor.has_admin_powers()
            || meta
                .actor
                .user_id()
                .is_some_and(|u| status.assignee() == Some(u))
        {
            Ok(())
        } else {
            Err(ConversationRejection::NotAssignedToYou)
        }
    }

    pub(super) fn assign_to_me(&self, meta: &CommandMeta, facts: &ActorFacts) -> Decision {
        let status = self.inbox_status(meta, facts)?;
        let user = Self::acting_user(meta)?;
        let taken_from = match status {
            InboxStatus::Assigned(holder) if holder == user => return Ok(vec![]),
            InboxStatus::Assigned(holder) if !meta.actor.has_admin_powers() => {
                return Err(ConversationRejection::AlreadyAssigned { to: holder });
            }
            InboxStatus::Assigned(holder) => Some(holder),
            // Taking a Done conversation reopens it: someone follows up with the customer.
            InboxStatus::Unassigned | InboxStatus::Done => None,
        };
        Ok(vec![ConversationEvent::ConversationAssigned(
            ConversationAssigned {
                to: user,
                taken_from,
                at_ms: meta.at_ms,
            },
        )])
    }

    pub(super) fn transfer(
        &self,
        meta: &CommandMeta,
        to: UserId,
        to_is_inbox_member: bool,
        facts: &ActorFacts,
    ) -> Decision {
        let status = self.inbox_status(meta, facts)?;
        if status == InboxStatus::Assigned(to) {
            return Ok(vec![]);
        }
        Self::check_holder_or_admin(meta, status)?;
        if !to_is_inbox_member {
            return Err(ConversationRejection::TargetNotAnInboxMember { user: to });
        }
        Ok(vec![ConversationEvent::ConversationTransferred(
            ConversationTransferred {
                from: status.assignee(),
                to,
                by: meta.actor,
                at_ms: meta.at_ms,
            },
        )])
    }

    pub(super) fn return_to_inbox(&self, meta: &CommandMeta, facts: &ActorFacts) -> Decision {
        let status = self.inbox_status(meta, facts)?;
        if status == InboxStatus::Unassigned {
            return Ok(vec![]);
        }
        Self::check_holder_or_admin(meta, status)?;
        Ok(vec![ConversationEvent::ReturnedToInbox(ReturnedToInbox {
            from: status.assignee(),
            by: meta.actor,
            at_ms: meta.at_ms,
        })])
    }

    pub(super) fn mark_done(&self, meta: &CommandMeta, facts: &ActorFacts) -> Decision {
        let status = self.inbox_status(meta, facts)?;
        if status == InboxStatus::Done {
            return Ok(vec![]);
        }
        Self::check_holder_or_admin(meta, status)?;
        Ok(vec![ConversationEvent::MarkedDone(MarkedDone {
            was_assigned_to: status.assignee(),
            by: meta.actor,
            at_ms: meta.at_ms,
        })])
    }
}
