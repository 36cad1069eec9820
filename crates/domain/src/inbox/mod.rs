//! A shared team inbox (stream `inbox-<inbox id>`): its business number, its name and its
//! team. The status of each customer conversation in it (Unassigned, Assigned, Done) lives
//! in that conversation, see [`crate::conversation::InboxStatus`].
//!
//! - `state`: [`Inbox`], its query helpers and its [`Aggregate`](crate::Aggregate)
//!   implementation with every decision (they are few and all admin powers).
//! - `command`, `event`, `rejection`: the aggregate's vocabulary.

mod command;
mod event;
mod rejection;
mod state;

#[cfg(test)]
mod tests;

pub use command::{InboxCommand, IssuedInboxCommand};
pub use event::{
    InboxCreated, InboxEvent, InboxMemberAdded, InboxMemberRemoved, InboxRenamed, INBOX_EVENT_TYPES,
};
pub use rejection::InboxRejection;
pub use state::{Inbox, InboxHeader};
