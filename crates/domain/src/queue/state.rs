//! The queue aggregate: its state, `decide` and `apply`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::command_meta::{Actor, CommandMeta, Issued};
use crate::ids::{ConversationId, OrgId, QueueId, UserId};
use crate::limits::{MAX_INBOX_MEMBERS, MAX_INBOX_NAME_CHARS};
use crate::phone_number::PhoneNumber;
use crate::queue::command::QueueCommand;
use crate::queue::event::*;
use crate::queue::policy::{
    CloseReason, IdleTimeoutAction, QueuePolicy, TimeoutKind, WaitTimeoutAction,
};
use crate::queue::rejection::QueueRejection;
use crate::validation::{required_name, InvalidInput};

/// An SMS queue. Only current interactions (waiting or claimed) are kept: a closed one
/// leaves the state, so the state stays the size of the live work.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queue {
    header: Option<QueueHeader>,
    members: BTreeSet<UserId>,
    logged_in: BTreeSet<UserId>,
    waiting: BTreeMap<ConversationId, Waiting>,
    claimed: BTreeMap<ConversationId, Claimed>,
    next_interaction: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueHeader {
    pub id: QueueId,
    pub org: OrgId,
    pub name: String,
    pub number: PhoneNumber,
    pub policy: QueuePolicy,
}

/// An interaction waiting to be claimed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub interaction: u64,
    pub since_ms: u64,
    pub deadline_ms: Option<u64>,
}

/// An interaction an agent holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claimed {
    pub interaction: u64,
    pub agent: UserId,
    pub claimed_at_ms: u64,
    pub last_activity_ms: u64,
    pub deadline_ms: Option<u64>,
}

type Decision = Result<Vec<QueueEvent>, QueueRejection>;

fn deadline(at_ms: u64, timeout: Option<u64>) -> Option<u64> {
    timeout.map(|t| at_ms.saturating_add(t))
}

impl Queue {
    pub fn header(&self) -> Option<&QueueHeader> {
        self.header.as_ref()
    }

    pub fn is_member(&self, user: UserId) -> bool {
        self.members.contains(&user)
    }

    /// The agents of the queue (logged in or not).
    pub fn members(&self) -> &BTreeSet<UserId> {
        &self.members
    }

    pub fn is_logged_in(&self, user: UserId) -> bool {
        self.logged_in.contains(&user)
    }

    pub fn logged_in(&self) -> impl Iterator<Item = UserId> + '_ {
        self.logged_in.iter().copied()
    }

    pub fn claimer_of(&self, conversation: ConversationId) -> Option<UserId> {
        self.claimed.get(&conversation).map(|c| c.agent)
    }

    pub fn waiting(&self, conversation: ConversationId) -> Option<&Waiting> {
        self.waiting.get(&conversation)
    }

    /// The waiting list, oldest first (ties broken by interaction number).
    pub fn waiting_oldest_first(&self) -> Vec<(ConversationId, &Waiting)> {
        let mut list: Vec<_> = self.waiting.iter().map(|(c, w)| (*c, w)).collect();
        list.sort_by_key(|(_, w)| (w.since_ms, w.interaction));
        list
    }

    /// What `agent` is offered: the waiting list if they are logged in (limited by the
    /// policy's `max_pending_visible`), nothing otherwise.
    pub fn pending_for(&self, agent: UserId) -> Vec<(ConversationId, &Waiting)> {
        if !self.is_logged_in(agent) || !self.is_member(agent) {
            return Vec::new();
        }
        let mut list = self.waiting_oldest_first();
        if let Some(max) = self
            .header
            .as_ref()
            .and_then(|h| h.policy.max_pending_visible)
        {
            list.truncate(max as usize);
        }
        list
    }

    /// What `agent` holds.
    pub fn active_for(&self, agent: UserId) -> Vec<(ConversationId, &Claimed)> {
        self.claimed
            .iter()
            .filter(|(_, c)| c.agent == agent)
            .map(|(id, c)| (*id, c))
            .collect()
    }

    /// Every timer that may still fire: (conversation, deadline).
    pub fn pending_timers(&self) -> Vec<(ConversationId, u64)> {
        let waits = self
            .waiting
            .iter()
            .filter_map(|(c, w)| w.deadline_ms.map(|d| (*c, d)));
        let idles = self
            .claimed
            .iter()
            .filter_map(|(c, w)| w.deadline_ms.map(|d| (*c, d)));
        waits.chain(idles).collect()
    }

    fn started(&self, meta: &CommandMeta) -> Result<&QueueHeader, QueueRejection> {
        let h = self
            .header
            .as_ref()
            .ok_or(QueueRejection::QueueNotCreated)?;
        if h.org != meta.org {
            return Err(QueueRejection::WrongOrganization);
        }
        Ok(h)
    }

    fn admin(meta: &CommandMeta) -> Result<(), QueueRejection> {
        if meta.actor.has_admin_powers() {
            Ok(())
        } else {
            Err(QueueRejection::AdminOnly)
        }
    }

    fn member(&self, meta: &CommandMeta) -> Result<UserId, QueueRejection> {
        match meta.actor {
            Actor::User { id, .. } if self.members.contains(&id) => Ok(id),
            _ => Err(QueueRejection::NotAQueueMember),
        }
    }

    /// The claimed interaction, if `meta`'s actor may act on it (its claimer or an admin).
    fn held(
        &self,
        meta: &CommandMeta,
        conversation: ConversationId,
    ) -> Result<&Claimed, QueueRejection> {
        let claimed = self.claimed.get(&conversation);
        let claimer = claimed.is_some_and(|c| meta.actor.user_id() == Some(c.agent));
        let admin = meta.actor.has_admin_powers();
        // Someone who is neither on the queue nor an admin learns nothing of its work.
        if !claimer && !admin {
            self.member(meta)?;
        }
        let c = claimed.ok_or(QueueRejection::NotClaimed { conversation })?;
        if claimer || admin {
            Ok(c)
        } else {
            Err(QueueRejection::NotYourInteraction)
        }
    }

    fn decide_command(&self, meta: &CommandMeta, command: &QueueCommand) -> Decision {
        let at_ms = meta.at_ms;
        if let QueueCommand::CreateQueue {
            id,
            name,
            number,
            policy,
        } = command
        {
            Self::admin(meta)?;
            if self.header.is_some() {
                return Err(QueueRejection::QueueAlreadyCreated);
            }
            let name = required_name("name", name, MAX_INBOX_NAME_CHARS)
                .map_err(QueueRejection::Invalid)?;
            return Ok(vec![QueueEvent::QueueCreated(QueueCreated {
                id: *id,
                org: meta.org,
                name,
                number: number.clone(),
                policy: policy.clone(),
                at_ms,
            })]);
        }
        let header = self.started(meta)?;
        let policy = &header.policy;
        match command {
            QueueCommand::CreateQueue { .. } => Err(QueueRejection::QueueAlreadyCreated),
            QueueCommand::AddMember { user } => {
                Self::admin(meta)?;
                if self.members.contains(user) {
                    return Ok(vec![]);
                }
                if self.members.len() >= MAX_INBOX_MEMBERS {
                    return Err(QueueRejection::Invalid(InvalidInput::TooMany {
                        field: "members",
                        count: self.members.len() + 1,
                        max: MAX_INBOX_MEMBERS,
                    }));
                }
                Ok(vec![QueueEvent::QueueMemberAdded(QueueMemberAdded {
                    user: *user,
                    at_ms,
                })])
            }
            QueueCommand::RemoveMember { user } => {
                Self::admin(meta)?;
                if !self.members.contains(user) {
                    return Ok(vec![]);
                }
                Ok(vec![QueueEvent::QueueMemberRemoved(QueueMemberRemoved {
                    user: *user,
                    at_ms,
                })])
            }
            QueueCommand::SetPolicy { policy } => {
                Self::admin(meta)?;
                Ok(vec![QueueEvent::QueuePolicyChanged(QueuePolicyChanged {
                    policy: policy.clone(),
                    at_ms,
                })])
            }
            QueueCommand::LogIn => {
                let agent = self.member(meta)?;
                if self.logged_in.contains(&agent) {
                    return Ok(vec![]);
                }
                Ok(vec![QueueEvent::AgentLoggedIn(AgentLoggedIn {
                    agent,
                    at_ms,
                })])
            }
            QueueCommand::LogOut => {
                let Some(agent) = meta.actor.user_id() else {
                    return Err(QueueRejection::NotAQueueMember);
                };
                if !self.logged_in.contains(&agent) {
                    return Ok(vec![]);
                }
                Ok(vec![QueueEvent::AgentLoggedOut(AgentLoggedOut {
                    agent,
                    at_ms,
                })])
            }
            QueueCommand::Enqueue { conversation } => {
                if meta.actor != Actor::System {
                    return Err(QueueRejection::SystemOnly);
                }
                let conversation = *conversation;
                if self.waiting.contains_key(&conversation) {
                    return Ok(vec![]);
                }
                if let Some(c) = self.claimed.get(&conversation) {
                    // A follow-up from a claimed customer goes straight to the claimer; it
                    // counts as activity on the interaction.
                    return Ok(vec![QueueEvent::QueueActivityRecorded(
                        QueueActivityRecorded {
                            conversation,
                            interaction: c.interaction,
                            at_ms,
                            idle_deadline_ms: deadline(at_ms, policy.idle_timeout_ms),
                        },
                    )]);
                }
                Ok(vec![QueueEvent::InteractionQueued(InteractionQueued {
                    conversation,
                    interaction: self.next_interaction,
                    at_ms,
                    wait_deadline_ms: deadline(at_ms, policy.wait_timeout_ms),
                })])
            }
            QueueCommand::Claim { conversation } => {
                let agent = self.member(meta)?;
                if !self.logged_in.contains(&agent) {
                    return Err(QueueRejection::NotLoggedIn);
                }
                let conversation = *conversation;
                let Some(w) = self.waiting.get(&conversation) else {
                    return match self.claimed.get(&conversation) {
                        Some(c) if c.agent == agent => Ok(vec![]),
                        Some(c) => Err(QueueRejection::AlreadyClaimed { by: c.agent }),
                        None => Err(QueueRejection::NotWaiting { conversation }),
                    };
                };
                Ok(vec![QueueEvent::InteractionClaimed(InteractionClaimed {
                    conversation,
                    interaction: w.interaction,
                    agent,
                    at_ms,
                    idle_deadline_ms: deadline(at_ms, policy.idle_timeout_ms),
                })])
            }
            QueueCommand::Release { conversation } => {
                let c = self.held(meta, *conversation)?;
                Ok(vec![QueueEvent::InteractionReleased(InteractionReleased {
                    conversation: *conversation,
                    interaction: c.interaction,
                    by: meta.actor.user_id(),
                    at_ms,
                    wait_deadline_ms: deadline(at_ms, policy.wait_timeout_ms),
                })])
            }
            QueueCommand::Transfer { conversation, to } => {
                let c = self.held(meta, *conversation)?;
                if !self.members.contains(to) || !self.logged_in.contains(to) {
                    return Err(QueueRejection::TargetNotLoggedIn { user: *to });
                }
                if c.agent == *to {
                    return Ok(vec![]);
                }
                Ok(vec![QueueEvent::InteractionTransferred(
                    InteractionTransferred {
                        conversation: *conversation,
                        interaction: c.interaction,
                        from: c.agent,
                        to: *to,
                        by: meta.actor.user_id(),
                        at_ms,
                        idle_deadline_ms: deadline(at_ms, policy.idle_timeout_ms),
                    },
                )])
            }
            QueueCommand::Close { conversation } => {
                let interaction = match self.waiting.get(conversation) {
                    // Nobody holds a waiting interaction: only an admin may finalize it.
                    Some(w) => {
                        if !meta.actor.has_admin_powers() {
                            // (Off the queue: told no more than for anything else.)
                            self.member(meta)?;
                        }
                        Self::admin(meta)?;
                        w.interaction
                    }
                    None => self.held(meta, *conversation)?.interaction,
                };
                Ok(vec![QueueEvent::InteractionClosed(InteractionClosed {
                    conversation: *conversation,
                    interaction,
                    by: meta.actor.user_id(),
                    reason: CloseReason::ByAgent,
                    auto_reply: None,
                    at_ms,
                })])
            }
            QueueCommand::RecordActivity { conversation } => {
                let c = self.held(meta, *conversation)?;
                Ok(vec![QueueEvent::QueueActivityRecorded(
                    QueueActivityRecorded {
                        conversation: *conversation,
                        interaction: c.interaction,
                        at_ms,
                        idle_deadline_ms: deadline(at_ms, policy.idle_timeout_ms),
                    },
                )])
            }
            QueueCommand::FireTimer {
                conversation,
                deadline_ms,
            } => {
                if meta.actor != Actor::System {
                    return Err(QueueRejection::SystemOnly);
                }
                self.fire(*conversation, *deadline_ms, at_ms, policy)
            }
        }
    }

    fn fire(
        &self,
        conversation: ConversationId,
        due: u64,
        at_ms: u64,
        policy: &QueuePolicy,
    ) -> Decision {
        let timed_out = |interaction, kind, wait_action, idle_action| {
            QueueEvent::QueueTimedOut(QueueTimedOut {
                conversation,
                interaction,
                kind,
                deadline_ms: due,
                at_ms,
                wait_action,
                idle_action,
            })
        };
        let closed = |interaction, reason, auto_reply| {
            QueueEvent::InteractionClosed(InteractionClosed {
                conversation,
                interaction,
                by: None,
                reason,
                auto_reply,
                at_ms,
            })
        };
        if let Some(w) = self
            .waiting
            .get(&conversation)
            .filter(|w| w.deadline_ms == Some(due))
        {
            if at_ms < due {
                return Err(QueueRejection::TimerNotDue);
            }
            let action = policy.on_wait_timeout.clone();
            let then = match &action {
                WaitTimeoutAction::Close => closed(w.interaction, CloseReason::WaitTimeout, None),
                WaitTimeoutAction::CloseWithReply { text } => {
                    closed(w.interaction, CloseReason::WaitTimeout, Some(text.clone()))
                }
                WaitTimeoutAction::OverflowToQueue(_) | WaitTimeoutAction::OverflowToInbox(_) => {
                    closed(w.interaction, CloseReason::Overflowed, None)
                }
            };
            return Ok(vec![
                timed_out(w.interaction, TimeoutKind::Wait, Some(action), None),
                then,
            ]);
        }
        if let Some(c) = self
            .claimed
            .get(&conversation)
            .filter(|c| c.deadline_ms == Some(due))
        {
            if at_ms < due {
                return Err(QueueRejection::TimerNotDue);
            }
            let action = policy.on_idle_timeout;
            let then = match action {
                IdleTimeoutAction::Close => closed(c.interaction, CloseReason::IdleTimeout, None),
                IdleTimeoutAction::ReturnToQueue => {
                    QueueEvent::InteractionReleased(InteractionReleased {
                        conversation,
                        interaction: c.interaction,
                        by: None,
                        at_ms,
                        wait_deadline_ms: deadline(at_ms, policy.wait_timeout_ms),
                    })
                }
            };
            return Ok(vec![
                timed_out(c.interaction, TimeoutKind::Idle, None, Some(action)),
                then,
            ]);
        }
        // Stale: the interaction moved on (or the timer already fired). Nothing to do.
        Ok(vec![])
    }
}

impl Aggregate for Queue {
    const CATEGORY: &'static str = "queue";
    type Command = Issued<QueueCommand>;
    type Event = QueueEvent;
    type Rejection = QueueRejection;

    fn decide(&self, command: &Self::Command) -> Result<Vec<QueueEvent>, QueueRejection> {
        self.decide_command(&command.meta, &command.command)
    }

    fn apply(&mut self, event: &QueueEvent) {
        match event {
            QueueEvent::QueueCreated(e) => {
                self.header = Some(QueueHeader {
                    id: e.id,
                    org: e.org,
                    name: e.name.clone(),
                    number: e.number.clone(),
                    policy: e.policy.clone(),
                });
            }
            QueueEvent::QueueMemberAdded(e) => {
                self.members.insert(e.user);
            }
            QueueEvent::QueueMemberRemoved(e) => {
                self.members.remove(&e.user);
                self.logged_in.remove(&e.user);
            }
            QueueEvent::QueuePolicyChanged(e) => {
                if let Some(h) = &mut self.header {
                    h.policy = e.policy.clone();
                }
            }
            QueueEvent::AgentLoggedIn(e) => {
                self.logged_in.insert(e.agent);
            }
            QueueEvent::AgentLoggedOut(e) => {
                self.logged_in.remove(&e.agent);
            }
            QueueEvent::InteractionQueued(e) => {
                self.next_interaction = self.next_interaction.max(e.interaction.saturating_add(1));
                self.waiting.insert(
                    e.conversation,
                    Waiting {
                        interaction: e.interaction,
                        since_ms: e.at_ms,
                        deadline_ms: e.wait_deadline_ms,
                    },
                );
            }
            QueueEvent::InteractionClaimed(e) => {
                self.waiting.remove(&e.conversation);
                self.claimed.insert(
                    e.conversation,
                    Claimed {
                        interaction: e.interaction,
                        agent: e.agent,
                        claimed_at_ms: e.at_ms,
                        last_activity_ms: e.at_ms,
                        deadline_ms: e.idle_deadline_ms,
                    },
                );
            }
            QueueEvent::InteractionReleased(e) => {
                self.claimed.remove(&e.conversation);
                self.waiting.insert(
                    e.conversation,
                    Waiting {
                        interaction: e.interaction,
                        since_ms: e.at_ms,
                        deadline_ms: e.wait_deadline_ms,
                    },
                );
            }
            QueueEvent::InteractionTransferred(e) => {
                if let Some(c) = self.claimed.get_mut(&e.conversation) {
                    c.agent = e.to;
                    c.last_activity_ms = e.at_ms;
                    c.deadline_ms = e.idle_deadline_ms;
                }
            }
            QueueEvent::InteractionClosed(e) => {
                self.waiting.remove(&e.conversation);
                self.claimed.remove(&e.conversation);
            }
            QueueEvent::QueueActivityRecorded(e) => {
                if let Some(c) = self.claimed.get_mut(&e.conversation) {
                    c.last_activity_ms = e.at_ms;
                    c.deadline_ms = e.idle_deadline_ms;
                }
            }
            QueueEvent::QueueTimedOut(_) => {
                // The decision's following event (closed / released) carries the change.
            }
        }
    }
}
