//! How the API spells the domain's enums: snake_case everywhere on the wire (`"member"`,
//! `"return_to_queue"`, `{"type": "overflow_to_inbox", "inbox": …}`), like every other
//! enum of the API (routes, statuses, filters).
//!
//! The domain's own types keep their names: they are the events' stored schemas
//! (`schemas/`), which only a new version may change. These mirror them for the API, with
//! conversions both ways; requests still accept the older capitalised role names.

use domain::conversation::SystemNote;
use domain::queue::{CloseReason, IdleTimeoutAction, QueuePolicy, TimeoutKind, WaitTimeoutAction};
use domain::{InboxId, QueueId, Role, UserId};
use serde::{Deserialize, Serialize};

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    #[serde(alias = "Admin")]
    Admin,
    #[serde(alias = "Member")]
    Member,
}

impl From<Role> for RoleName {
    fn from(r: Role) -> Self {
        match r {
            Role::Admin => RoleName::Admin,
            Role::Member => RoleName::Member,
        }
    }
}

impl From<RoleName> for Role {
    fn from(r: RoleName) -> Self {
        match r {
            RoleName::Admin => Role::Admin,
            RoleName::Member => Role::Member,
        }
    }
}

/// A queue's timeout policy. A `null` (or missing) timeout never fires.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Unclaimed longer than this (milliseconds) → `on_wait_timeout`.
    #[serde(default)]
    pub wait_timeout_ms: Option<u64>,
    #[serde(default)]
    pub on_wait_timeout: WaitAction,
    /// Claimed with no activity longer than this (milliseconds) → `on_idle_timeout`.
    #[serde(default)]
    pub idle_timeout_ms: Option<u64>,
    #[serde(default)]
    pub on_idle_timeout: IdleAction,
    /// How many waiting interactions an agent is shown (oldest first); `null`: all.
    #[serde(default)]
    pub max_pending_visible: Option<u32>,
}

/// What happens to an interaction nobody claimed in time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum WaitAction {
    /// Close it.
    #[default]
    Close,
    /// Close it and text the customer `text` (recorded in the conversation, delivered like
    /// any text).
    CloseWithReply { text: String },
    /// Hand it to another queue.
    OverflowToQueue { queue: QueueId },
    /// Hand it to a shared inbox (it becomes an Unassigned inbox conversation).
    OverflowToInbox { inbox: InboxId },
}

/// What happens to a claimed interaction without activity in time.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum IdleAction {
    /// Back to the waiting list for another agent.
    #[default]
    ReturnToQueue,
    Close,
}

impl From<Policy> for QueuePolicy {
    fn from(p: Policy) -> Self {
        QueuePolicy {
            wait_timeout_ms: p.wait_timeout_ms,
            on_wait_timeout: match p.on_wait_timeout {
                WaitAction::Close => WaitTimeoutAction::Close,
                WaitAction::CloseWithReply { text } => WaitTimeoutAction::CloseWithReply { text },
                WaitAction::OverflowToQueue { queue } => WaitTimeoutAction::OverflowToQueue(queue),
                WaitAction::OverflowToInbox { inbox } => WaitTimeoutAction::OverflowToInbox(inbox),
            },
            idle_timeout_ms: p.idle_timeout_ms,
            on_idle_timeout: match p.on_idle_timeout {
                IdleAction::ReturnToQueue => IdleTimeoutAction::ReturnToQueue,
                IdleAction::Close => IdleTimeoutAction::Close,
            },
            max_pending_visible: p.max_pending_visible,
        }
    }
}

/// What a system message (a queue lifecycle step) says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Note {
    Queued {
        queue: QueueId,
    },
    ClaimedBy {
        queue: QueueId,
        agent: UserId,
    },
    TransferredTo {
        queue: QueueId,
        from: UserId,
        to: UserId,
    },
    /// Released to the queue, by an agent, or by the idle-timeout policy (`by` null).
    Released {
        queue: QueueId,
        by: Option<UserId>,
    },
    /// Closed, by an agent or by a timeout (`by` null).
    Closed {
        queue: QueueId,
        by: Option<UserId>,
        reason: Closed,
    },
    TimedOut {
        queue: QueueId,
        kind: Timeout,
    },
    /// An inbox conversation was assigned to `to` (Assign to Me), from `taken_from` if
    /// someone held it.
    InboxAssigned {
        to: UserId,
        taken_from: Option<UserId>,
    },
    /// Transferred from `from` to `to` by `by` (null: the platform).
    InboxTransferred {
        from: Option<UserId>,
        to: UserId,
        by: Option<UserId>,
    },
    /// Returned to the inbox's Unassigned view by `by`, from `from`.
    InboxReturned {
        from: Option<UserId>,
        by: Option<UserId>,
    },
    /// Marked done by `by`; `was_assigned_to` held it.
    InboxDone {
        was_assigned_to: Option<UserId>,
        by: Option<UserId>,
    },
    /// A customer's new text reopened a done conversation.
    InboxReopened,
    /// A channel member joined by themselves (an invite link, an open channel).
    MemberJoined {
        user: UserId,
    },
    /// `by` added `users` to a channel.
    MembersAdded {
        users: Vec<UserId>,
        by: UserId,
    },
    MemberLeft {
        user: UserId,
    },
    ChannelRenamed {
        name: String,
        by: UserId,
    },
}

impl Note {
    /// The steps of an inbox conversation and a channel's membership, as history items:
    /// `None` for every other event.
    pub fn of_step(event: &domain::ConversationEvent) -> Option<(Note, u64)> {
        use domain::ConversationEvent as E;
        let user = |a: &domain::Actor| match a {
            domain::Actor::User { id, .. } => Some(*id),
            domain::Actor::System => None,
        };
        Some(match event {
            E::ConversationAssigned(e) => (
                Note::InboxAssigned {
                    to: e.to,
                    taken_from: e.taken_from,
                },
                e.at_ms,
            ),
            E::ConversationTransferred(e) => (
                Note::InboxTransferred {
                    from: e.from,
                    to: e.to,
                    by: user(&e.by),
                },
                e.at_ms,
            ),
            E::ReturnedToInbox(e) => (
                Note::InboxReturned {
                    from: e.from,
                    by: user(&e.by),
                },
                e.at_ms,
            ),
            E::MarkedDone(e) => (
                Note::InboxDone {
                    was_assigned_to: e.was_assigned_to,
                    by: user(&e.by),
                },
                e.at_ms,
            ),
            E::ReopenedByInboundText(e) => (Note::InboxReopened, e.at_ms),
            E::ChannelMemberJoined(e) => (Note::MemberJoined { user: e.user }, e.at_ms),
            E::ChannelMembersAdded(e) => (
                Note::MembersAdded {
                    users: e.users.iter().copied().collect(),
                    by: e.by,
                },
                e.at_ms,
            ),
            E::ChannelMemberLeft(e) => (Note::MemberLeft { user: e.user }, e.at_ms),
            E::ChannelRenamed(e) => (
                Note::ChannelRenamed {
                    name: e.name.clone(),
                    by: e.by,
                },
                e.at_ms,
            ),
            _ => return None,
        })
    }

    /// Words for a step (clients name the people themselves).
    pub fn step_text(&self) -> String {
        match self {
            Note::InboxAssigned { .. } => "Assigned".into(),
            Note::InboxTransferred { .. } => "Transferred".into(),
            Note::InboxReturned { .. } => "Returned to the inbox".into(),
            Note::InboxDone { .. } => "Marked done".into(),
            Note::InboxReopened => "Reopened by a new text".into(),
            Note::MemberJoined { .. } => "Joined".into(),
            Note::MembersAdded { .. } => "Added to the channel".into(),
            Note::MemberLeft { .. } => "Left".into(),
            Note::ChannelRenamed { name, .. } => format!("Renamed to {name}"),
            _ => String::new(),
        }
    }
}

/// Why an interaction closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Closed {
    /// An agent (or an admin) closed it.
    ByAgent,
    WaitTimeout,
    IdleTimeout,
    /// Handed on to another queue or an inbox.
    Overflowed,
}

/// Which timer fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Timeout {
    /// Unclaimed too long.
    Wait,
    /// Claimed without activity too long.
    Idle,
}

impl From<TimeoutKind> for Timeout {
    fn from(k: TimeoutKind) -> Self {
        match k {
            TimeoutKind::Wait => Timeout::Wait,
            TimeoutKind::Idle => Timeout::Idle,
        }
    }
}

impl From<&CloseReason> for Closed {
    fn from(r: &CloseReason) -> Self {
        match r {
            CloseReason::ByAgent => Closed::ByAgent,
            CloseReason::WaitTimeout => Closed::WaitTimeout,
            CloseReason::IdleTimeout => Closed::IdleTimeout,
            CloseReason::Overflowed => Closed::Overflowed,
        }
    }
}

impl From<&SystemNote> for Note {
    fn from(n: &SystemNote) -> Self {
        match n {
            SystemNote::Queued { queue } => Note::Queued { queue: *queue },
            SystemNote::ClaimedBy { queue, agent } => Note::ClaimedBy {
                queue: *queue,
                agent: *agent,
            },
            SystemNote::TransferredTo { queue, from, to } => Note::TransferredTo {
                queue: *queue,
                from: *from,
                to: *to,
            },
            SystemNote::Released { queue, by } => Note::Released {
                queue: *queue,
                by: *by,
            },
            SystemNote::Closed { queue, by, reason } => Note::Closed {
                queue: *queue,
                by: *by,
                reason: reason.into(),
            },
            SystemNote::TimedOut { queue, kind } => Note::TimedOut {
                queue: *queue,
                kind: (*kind).into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_are_snake_case_on_the_wire() {
        assert_eq!(serde_json::to_value(RoleName::Member).unwrap(), "member");
        let old: RoleName = serde_json::from_str("\"Admin\"").unwrap();
        assert_eq!(old, RoleName::Admin, "the capitalised names are still read");
        let inbox = InboxId::random();
        let policy: Policy = serde_json::from_value(serde_json::json!({
            "wait_timeout_ms": 1000,
            "on_wait_timeout": {"type": "overflow_to_inbox", "inbox": inbox},
            "on_idle_timeout": "close",
        }))
        .unwrap();
        let domain: QueuePolicy = policy.into();
        assert_eq!(
            domain.on_wait_timeout,
            WaitTimeoutAction::OverflowToInbox(inbox)
        );
        assert_eq!(domain.on_idle_timeout, IdleTimeoutAction::Close);
        let note = Note::from(&SystemNote::Closed {
            queue: QueueId::random(),
            by: None,
            reason: CloseReason::WaitTimeout,
        });
        let v = serde_json::to_value(&note).unwrap();
        assert_eq!(v["type"], "closed");
        assert_eq!(v["reason"], "wait_timeout");
    }
}
