//! What callers ask of a queue.

use serde::{Deserialize, Serialize};

use crate::command_meta::Issued;
use crate::ids::{ConversationId, QueueId, UserId};
use crate::phone_number::PhoneNumber;
use crate::queue::policy::QueuePolicy;

pub type IssuedQueueCommand = Issued<QueueCommand>;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueCommand {
    /// Admin: make `number` a queue-enabled number with this policy.
    CreateQueue {
        id: QueueId,
        name: String,
        number: PhoneNumber,
        policy: QueuePolicy,
    },
    /// Admin.
    AddMember {
        user: UserId,
    },
    /// Admin. A removed agent is logged out; what they hold stays theirs until released,
    /// transferred, closed or timed out.
    RemoveMember {
        user: UserId,
    },
    /// Admin.
    SetPolicy {
        policy: QueuePolicy,
    },
    /// A member starts taking work.
    LogIn,
    LogOut,
    /// System (the inbound router): a customer texted the queue's number. A new
    /// interaction waits; a text on a claimed one is activity for its agent.
    Enqueue {
        conversation: ConversationId,
    },
    /// A logged-in member takes a waiting interaction. First wins.
    Claim {
        conversation: ConversationId,
    },
    /// The claimer (or an admin) puts it back in the waiting list.
    Release {
        conversation: ConversationId,
    },
    /// The claimer (or an admin) hands it to another logged-in member.
    Transfer {
        conversation: ConversationId,
        to: UserId,
    },
    /// The claimer (or an admin) finalizes it.
    Close {
        conversation: ConversationId,
    },
    /// The claimer replied: the idle timer restarts.
    RecordActivity {
        conversation: ConversationId,
    },
    /// System (the timer scheduler): the timer with this deadline fell due. Acts only if
    /// it is still the interaction's current deadline and `meta.at_ms` has reached it.
    FireTimer {
        conversation: ConversationId,
        deadline_ms: u64,
    },
}
