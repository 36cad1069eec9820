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
use crate::visibility::Seat;

impl Conversation {
    /// This conversation's own part of who sees it (`None` before it starts): the rest
    /// comes from other aggregates, and [`Seat::audience`] is the rule.
    pub fn seat(&self) -> Option<Seat> {
        let header = self.header.as_ref()?;
        Some(Seat::new(
            header.org,
            &header.kind,
            self.inbox.as_ref().map(|a| a.inbox),
        ))
    }

    /// May `user` see this conversation: its history, members and status? Members of
    /// Direct, Channel and Group; for External, what the facts say, which
    /// [`Seat::facts`] derives from the same roles as [`Seat::audience`] (the rule).
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
                return if facts.inbox_member || facts.admin {
                    Ok(())
                } else {
                    Err(ConversationRejection::NotAnInboxMember)
                };
            }
            (ConversationKind::External { .. }, None) => {
                facts.holds_our_number || facts.queue_reader
            }
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
        let external = matches!(
            self.header.as_ref().map(|h| &h.kind),
            Some(ConversationKind::External { .. })
        );
        match &self.inbox {
            Some(assignment) if assignment.status != InboxStatus::Assigned(user) => {
                Err(ConversationRejection::NotAssignedToYou)
            }
            // A queue's reader who has not claimed it: read only.
            None if external && !facts.holds_our_number => {
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
