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
use crate::ids::{InboxId, UserId};
use crate::phone_number::PhoneNumber;

/// Who may see a conversation, as [`Conversation::can_view`] decides it, named so that a
/// caller can resolve the set once (a fan-out of live events) instead of asking per user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Viewers {
    /// Not started: nobody.
    Nobody,
    /// The members the conversation records (Direct, Channel, Group).
    Members(std::collections::BTreeSet<UserId>),
    /// The team of the inbox holding this External conversation.
    InboxTeam(InboxId),
    /// Whoever the directory assigns this business number (an External conversation
    /// outside inboxes).
    NumberHolders(PhoneNumber),
}

impl Conversation {
    /// Who may see this conversation: `can_view(u, facts)` holds exactly for the users
    /// this names, with the facts their inbox team and number assignments give.
    pub fn viewers(&self) -> Viewers {
        let Some(header) = &self.header else {
            return Viewers::Nobody;
        };
        match (&header.kind, &self.inbox) {
            (ConversationKind::External { .. }, Some(assignment)) => {
                Viewers::InboxTeam(assignment.inbox)
            }
            (ConversationKind::External { our, .. }, None) => Viewers::NumberHolders(our.clone()),
            (kind, _) => Viewers::Members(kind.internal_members().unwrap_or_default()),
        }
    }

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
