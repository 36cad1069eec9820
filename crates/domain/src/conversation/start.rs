//! Starting each kind of conversation.
//!
//! External and Direct conversations have deterministic ids, so starting one that exists
//! is how a user "continues" it: accepted, nothing written. Channels and groups have fresh
//! ids, so a second start of the same id is a mistake.

use std::collections::BTreeSet;

use crate::command_meta::CommandMeta;
use crate::conversation::event::{
    ConversationAssigned, ConversationEvent, ConversationStarted, InboxAttached,
};
use crate::conversation::facts::{ActorFacts, SenderNumber};
use crate::conversation::kind::ConversationKind;
use crate::conversation::rejection::ConversationRejection;
use crate::conversation::state::Conversation;
use crate::ids::{ConversationId, InboxId, UserId};
use crate::limits::{MAX_CHANNEL_NAME_CHARS, MAX_CONVERSATION_MEMBERS, MAX_GROUP_EXTERNALS};
use crate::phone_number::PhoneNumber;
use crate::validation::{max_count, required_name};

type Decision = Result<Vec<ConversationEvent>, ConversationRejection>;

impl Conversation {
    pub(super) fn start_external(
        &self,
        meta: &CommandMeta,
        id: ConversationId,
        our: &PhoneNumber,
        their: &PhoneNumber,
        inbox: Option<InboxId>,
        facts: &ActorFacts,
    ) -> Decision {
        if our == their {
            return Err(ConversationRejection::ExternalIsOurNumber {
                number: their.clone(),
            });
        }
        check_id(id, ConversationId::external(meta.org, our, their))?;
        let starter = meta.actor.user_id();
        if starter.is_some() {
            // A user composes from `our`: they must hold the line, or be on the team of the
            // inbox it is routed to.
            match inbox {
                Some(_) if !facts.inbox_member => {
                    return Err(ConversationRejection::NotAnInboxMember);
                }
                None if !facts.holds_our_number => {
                    return Err(ConversationRejection::FromNumberNotAssignedToYou);
                }
                _ => {}
            }
        }
        if self.header.is_some() {
            return self.continued(meta, id);
        }
        let kind = ConversationKind::External {
            our: our.clone(),
            their: their.clone(),
        };
        let mut events = vec![started(meta, id, kind)];
        if let Some(inbox) = inbox {
            events.push(ConversationEvent::InboxAttached(InboxAttached {
                inbox,
                at_ms: meta.at_ms,
            }));
            if let Some(user) = starter {
                events.push(ConversationEvent::ConversationAssigned(
                    ConversationAssigned {
                        to: user,
                        taken_from: None,
                        at_ms: meta.at_ms,
                    },
                ));
            }
        }
        Ok(events)
    }

    pub(super) fn start_direct(
        &self,
        meta: &CommandMeta,
        id: ConversationId,
        with: UserId,
        known_users: &BTreeSet<UserId>,
    ) -> Decision {
        let user = Self::acting_user(meta)?;
        if with == user {
            return Err(ConversationRejection::CannotMessageYourself);
        }
        check_known([with].iter(), known_users)?;
        check_id(id, ConversationId::direct(meta.org, user, with))?;
        if self.header.is_some() {
            return self.continued(meta, id);
        }
        let (a, b) = if user < with {
            (user, with)
        } else {
            (with, user)
        };
        Ok(vec![started(meta, id, ConversationKind::Direct { a, b })])
    }

    pub(super) fn start_channel(
        &self,
        meta: &CommandMeta,
        id: ConversationId,
        name: &str,
        members: &BTreeSet<UserId>,
        known_users: &BTreeSet<UserId>,
    ) -> Decision {
        let user = Self::acting_user(meta)?;
        if self.header.is_some() {
            return Err(ConversationRejection::AlreadyStarted);
        }
        let name = required_name("name", name, MAX_CHANNEL_NAME_CHARS)?;
        let others = members.iter().filter(|&&m| m != user);
        check_known(others, known_users)?;
        let mut members = members.clone();
        members.insert(user);
        check_member_count(members.len())?;
        Ok(vec![started(
            meta,
            id,
            ConversationKind::Channel { name, members },
        )])
    }

    pub(super) fn start_group(
        &self,
        meta: &CommandMeta,
        id: ConversationId,
        users: &BTreeSet<UserId>,
        externals: &BTreeSet<PhoneNumber>,
        from: &SenderNumber,
        known_users: &BTreeSet<UserId>,
    ) -> Decision {
        let user = Self::acting_user(meta)?;
        if self.header.is_some() {
            return Err(ConversationRejection::AlreadyStarted);
        }
        if externals.is_empty() {
            return Err(ConversationRejection::GroupNeedsExternal);
        }
        max_count("externals", externals.len(), MAX_GROUP_EXTERNALS)?;
        if externals.contains(&from.number) {
            return Err(ConversationRejection::ExternalIsOurNumber {
                number: from.number.clone(),
            });
        }
        check_known(users.iter().filter(|&&u| u != user), known_users)?;
        let mut users = users.clone();
        users.insert(user);
        check_member_count(users.len())?;
        if users.len() + externals.len() < 3 {
            return Err(ConversationRejection::GroupTooSmall);
        }
        if !from.sms_registered {
            return Err(ConversationRejection::FromNumberNotSmsRegistered);
        }
        if !from.assigned_to_sender {
            return Err(ConversationRejection::FromNumberNotAssignedToYou);
        }
        Ok(vec![started(
            meta,
            id,
            ConversationKind::Group {
                our: from.number.clone(),
                users,
                externals: externals.clone(),
            },
        )])
    }
}

impl Conversation {
    /// Starting a deterministic-id conversation that exists continues it, provided it
    /// really is that conversation (a caller that routed the command to the wrong stream
    /// must not be told it succeeded).
    fn continued(&self, meta: &CommandMeta, id: ConversationId) -> Decision {
        if self.started(meta)?.id == id {
            Ok(vec![])
        } else {
            Err(ConversationRejection::AlreadyStarted)
        }
    }
}

fn started(meta: &CommandMeta, id: ConversationId, kind: ConversationKind) -> ConversationEvent {
    ConversationEvent::ConversationStarted(ConversationStarted {
        id,
        org: meta.org,
        kind,
        by: meta.actor,
        at_ms: meta.at_ms,
    })
}

fn check_id(id: ConversationId, expected: ConversationId) -> Result<(), ConversationRejection> {
    if id == expected {
        Ok(())
    } else {
        Err(ConversationRejection::IdDoesNotMatch { expected })
    }
}

pub(super) fn check_known<'a>(
    mut named: impl Iterator<Item = &'a UserId>,
    known_users: &BTreeSet<UserId>,
) -> Result<(), ConversationRejection> {
    match named.find(|u| !known_users.contains(u)) {
        Some(&user) => Err(ConversationRejection::UnknownUser { user }),
        None => Ok(()),
    }
}

pub(super) fn check_member_count(count: usize) -> Result<(), ConversationRejection> {
    if count > MAX_CONVERSATION_MEMBERS {
        Err(ConversationRejection::TooManyMembers {
            max: MAX_CONVERSATION_MEMBERS,
        })
    } else {
        Ok(())
    }
}
