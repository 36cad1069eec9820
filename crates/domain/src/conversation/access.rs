//! Who may see and who may write in a conversation, and who is acting.
//!
//! Direct, Channel and Group conversations record their members. An External
//! conversation's internal side lives elsewhere: the users holding its line (directory) or,
//! on an inbox number, the inbox's team; the caller passes those facts in
//! [`ActorFacts`]. In an inbox conversation everyone on the team sees it, but only the
//! assignee writes.

use crate::command_meta::CommandMeta;
use crate::conversation::facts::ActorFacts;
use crate::conversation::inbox_assignment::InboxStatus;
use crate::conversation::kind::ConversationKind;
use crate::conversation::rejection::ConversationRejection;
use crate::conversation::state::{Conversation, Header};
use crate::ids::UserId;

impl Conversation {
    /// May `user` see this conversation: its history, members and status? Members of
    /// Direct, Channel and Group; for External, whoever holds the line or, on an inbox
    /// number, the inbox team.
    pub fn can_view(&self, user: UserId, facts: &ActorFacts) -> bool {
        self.check_viewer(user, facts).is_ok()
    }

    /// May `user` write (post, call)? Viewers, except that in an inbox only the assignee.
    pub fn can_write(&self, user: UserId, facts: &ActorFacts) -> bool {
        self.check_writer(user, facts).is_ok()
    }

    pub(super) fn check_viewer(
        &self,
        user: UserId,
        facts: &ActorFacts,
    ) -> Result<(), ConversationRejection> {
        let header = self
            .header
            .as_ref()
            .ok_or(ConversationRejection::NotStarted)?;
        let allowed = match (&header.kind, &self.inbox) {
            (ConversationKind::External { .. }, Some(_)) => {
                return if facts.inbox_member {
                    Ok(())
                } else {
                    Err(ConversationRejection::NotAnInboxMember)
                };
            }
            (ConversationKind::External { .. }, None) => facts.holds_our_number,
            (kind, _) => kind.has_member(user),
        };
        if allowed {
            Ok(())
        } else {
            Err(ConversationRejection::NotAParticipant)
        }
    }

    pub(super) fn check_writer(
        &self,
        user: UserId,
        facts: &ActorFacts,
    ) -> Result<(), ConversationRejection> {
        self.check_viewer(user, facts)?;
        match &self.inbox {
            Some(assignment) if assignment.status != InboxStatus::Assigned(user) => {
                Err(ConversationRejection::NotAssignedToYou)
            }
            _ => Ok(()),
        }
    }

    /// The header of a started conversation of the acting organization.
    pub(super) fn started(&self, meta: &CommandMeta) -> Result<&Header, ConversationRejection> {
        let header = self
            .header
            .as_ref()
            .ok_or(ConversationRejection::NotStarted)?;
        if header.org != meta.org {
            return Err(ConversationRejection::WrongOrganization);
        }
        Ok(header)
    }

    /// The acting user; the System never acts as one.
    pub(super) fn acting_user(meta: &CommandMeta) -> Result<UserId, ConversationRejection> {
        meta.actor.user_id().ok_or(ConversationRejection::UsersOnly)
    }
}
