//! What happened in a queue. Each interaction lifecycle event is also what the
//! conversation timeline shows as a system message (queued, claimed by, transferred to,
//! released, closed, timed out).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::{ConversationId, OrgId, QueueId, UserId};
use crate::phone_number::PhoneNumber;
use crate::queue::policy::{
    CloseReason, IdleTimeoutAction, QueuePolicy, TimeoutKind, WaitTimeoutAction,
};
use crate::schema::versioned_events;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct QueueCreated {
    pub id: QueueId,
    pub org: OrgId,
    pub name: String,
    pub number: PhoneNumber,
    pub policy: QueuePolicy,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct QueueMemberAdded {
    pub user: UserId,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct QueueMemberRemoved {
    pub user: UserId,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct QueuePolicyChanged {
    pub policy: QueuePolicy,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AgentLoggedIn {
    pub agent: UserId,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AgentLoggedOut {
    pub agent: UserId,
    pub at_ms: u64,
}

/// A conversation starts (or restarts) waiting. Carries the wait deadline, if any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InteractionQueued {
    pub conversation: ConversationId,
    /// Numbered per queue, so each customer contact is one interaction.
    pub interaction: u64,
    pub at_ms: u64,
    pub wait_deadline_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InteractionClaimed {
    pub conversation: ConversationId,
    pub interaction: u64,
    pub agent: UserId,
    pub at_ms: u64,
    pub idle_deadline_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InteractionReleased {
    pub conversation: ConversationId,
    pub interaction: u64,
    pub by: Option<UserId>,
    pub at_ms: u64,
    pub wait_deadline_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InteractionTransferred {
    pub conversation: ConversationId,
    pub interaction: u64,
    pub from: UserId,
    pub to: UserId,
    pub by: Option<UserId>,
    pub at_ms: u64,
    pub idle_deadline_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InteractionClosed {
    pub conversation: ConversationId,
    pub interaction: u64,
    pub by: Option<UserId>,
    pub reason: CloseReason,
    /// For a close by wait timeout with an auto-reply: the text to send the customer.
    pub auto_reply: Option<String>,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct QueueActivityRecorded {
    pub conversation: ConversationId,
    pub interaction: u64,
    pub at_ms: u64,
    pub idle_deadline_ms: Option<u64>,
}

/// A timer fell due while still current. The events that follow in the same decision say
/// what the policy did (closed, released back, overflowed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct QueueTimedOut {
    pub conversation: ConversationId,
    pub interaction: u64,
    pub kind: TimeoutKind,
    pub deadline_ms: u64,
    pub at_ms: u64,
    /// The policy applied (recorded so an auditor sees why without the policy history).
    pub wait_action: Option<WaitTimeoutAction>,
    pub idle_action: Option<IdleTimeoutAction>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueEvent {
    QueueCreated(QueueCreated),
    QueueMemberAdded(QueueMemberAdded),
    QueueMemberRemoved(QueueMemberRemoved),
    QueuePolicyChanged(QueuePolicyChanged),
    AgentLoggedIn(AgentLoggedIn),
    AgentLoggedOut(AgentLoggedOut),
    InteractionQueued(InteractionQueued),
    InteractionClaimed(InteractionClaimed),
    InteractionReleased(InteractionReleased),
    InteractionTransferred(InteractionTransferred),
    InteractionClosed(InteractionClosed),
    QueueActivityRecorded(QueueActivityRecorded),
    QueueTimedOut(QueueTimedOut),
}

/// Every queue event type name, in variant order.
pub const QUEUE_EVENT_TYPES: [&str; 13] = [
    "QueueCreated",
    "QueueMemberAdded",
    "QueueMemberRemoved",
    "QueuePolicyChanged",
    "AgentLoggedIn",
    "AgentLoggedOut",
    "InteractionQueued",
    "InteractionClaimed",
    "InteractionReleased",
    "InteractionTransferred",
    "InteractionClosed",
    "QueueActivityRecorded",
    "QueueTimedOut",
];

versioned_events! {
    QueueEvent {
        QueueCreated(QueueCreated) = 1,
        QueueMemberAdded(QueueMemberAdded) = 1,
        QueueMemberRemoved(QueueMemberRemoved) = 1,
        QueuePolicyChanged(QueuePolicyChanged) = 1,
        AgentLoggedIn(AgentLoggedIn) = 1,
        AgentLoggedOut(AgentLoggedOut) = 1,
        InteractionQueued(InteractionQueued) = 1,
        InteractionClaimed(InteractionClaimed) = 1,
        InteractionReleased(InteractionReleased) = 1,
        InteractionTransferred(InteractionTransferred) = 1,
        InteractionClosed(InteractionClosed) = 1,
        QueueActivityRecorded(QueueActivityRecorded) = 1,
        QueueTimedOut(QueueTimedOut) = 1,
    }
}

/// No texts: names and settings are not message bodies.
impl crate::text::Texts for QueueEvent {}
