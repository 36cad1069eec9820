//! An SMS queue: a queue-enabled business number whose inbound customer texts are
//! distributed to a team of agents.
//!
//! Agents log in and out; a customer text puts its conversation in the waiting list
//! (oldest first); the first logged-in agent to claim it wins and gets every follow-up;
//! the claimer (or an admin) can release it back, transfer it to another logged-in agent,
//! or close it. A customer who texts after a close starts a new interaction.
//!
//! Timers are part of the state: every waiting interaction may carry a wait deadline and
//! every claimed one an idle deadline, set by the events that start them. A scheduler
//! outside the domain fires them with [`QueueCommand::FireTimer`] naming the deadline;
//! the aggregate acts only if that deadline is still the current one, so a timer fired
//! twice (a restart) or after the interaction moved on does nothing.
//!
//! # Layout
//! - `policy`: what happens on a wait or idle timeout.
//! - `command`, `event`, `rejection`: the aggregate's vocabulary.
//! - `state`: the [`Queue`] and its `decide`/`apply`.

mod command;
mod event;
mod policy;
mod rejection;
mod state;
#[cfg(test)]
mod tests;

pub use command::{IssuedQueueCommand, QueueCommand};
pub use event::{
    AgentLoggedIn, AgentLoggedOut, InteractionClaimed, InteractionClosed, InteractionQueued,
    InteractionReleased, InteractionTransferred, QueueActivityRecorded, QueueCreated, QueueEvent,
    QueueMemberAdded, QueueMemberRemoved, QueuePolicyChanged, QueueTimedOut, QUEUE_EVENT_TYPES,
};
pub use policy::{CloseReason, IdleTimeoutAction, QueuePolicy, TimeoutKind, WaitTimeoutAction};
pub use rejection::QueueRejection;
pub use state::{Claimed, Queue, QueueHeader, Waiting};
