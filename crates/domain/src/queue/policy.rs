//! What a queue does when an interaction waits or idles too long.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::{InboxId, QueueId};

/// A queue's timeout policy. `None` timeouts never fire.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct QueuePolicy {
    /// Unclaimed longer than this → `on_wait_timeout`.
    pub wait_timeout_ms: Option<u64>,
    pub on_wait_timeout: WaitTimeoutAction,
    /// Claimed with no activity longer than this → `on_idle_timeout`.
    pub idle_timeout_ms: Option<u64>,
    pub on_idle_timeout: IdleTimeoutAction,
    /// How many waiting interactions an agent is shown (oldest first); `None`: all.
    pub max_pending_visible: Option<u32>,
}

/// What happens to an interaction nobody claimed in time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum WaitTimeoutAction {
    /// Close it, optionally texting the customer an auto-reply.
    #[default]
    Close,
    CloseWithReply {
        text: String,
    },
    /// Hand it to another queue.
    OverflowToQueue(QueueId),
    /// Hand it to a shared inbox (it becomes an Unassigned inbox conversation).
    OverflowToInbox(InboxId),
}

/// What happens to a claimed interaction without activity in time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum IdleTimeoutAction {
    /// Back to the waiting list for another agent.
    #[default]
    ReturnToQueue,
    Close,
}

/// Which timer fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TimeoutKind {
    Wait,
    Idle,
}

/// Why an interaction closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CloseReason {
    /// An agent (or an admin) closed it.
    ByAgent,
    WaitTimeout,
    IdleTimeout,
    /// Handed on to another queue or an inbox.
    Overflowed,
}
