//! A conversation of any kind (stream `conversation-<conversation id>`): External,
//! Direct, Channel or Group; its messages, inbound texts, outbound SMS requests and their
//! delivery, read markers, call activity, channel membership, and, for an External
//! conversation on an inbox number, who works it.
//!
//! - `state`: [`Conversation`], its query helpers and the
//!   [`Aggregate`](crate::Aggregate) implementation.
//! - `access`: who may view and who may write ([`Conversation::can_view`]).
//! - `kind`: [`ConversationKind`] and its participants.
//! - `facts`: [`SenderNumber`] and [`ActorFacts`], what other aggregates know and the
//!   caller passes in.
//! - `start`: starting each kind.
//! - `content`: message text and [`AttachmentRef`] limits (SMS, MMS, files).
//! - `posting`: posting a message and requesting its SMS.
//! - `inbound`: inbound SMS/MMS, inbox routing, reopening, opt-out keywords.
//! - `opt_out`: [`OptOutKeyword`].
//! - `delivery`: [`DeliveryStatus`], which only moves forward.
//! - `window`: the bounded window of messages the state keeps, and what happens to older
//!   ones (duplicate ids, late delivery callbacks, queries).
//! - `read_receipts`: read markers, which only move forward.
//! - `calls`: call and video activity.
//! - `channel`: join, add, leave, rename.
//! - `inbox_assignment`: Assign to Me, Transfer, Return to Inbox, Mark as Done.
//! - `command`, `event`, `rejection`: the aggregate's vocabulary; [`legacy`]: past
//!   versions of event payloads and their upcasters.

mod access;
mod calls;
mod channel;
mod command;
mod content;
mod delivery;
mod event;
mod facts;
mod inbound;
mod inbox_assignment;
mod kind;
pub mod legacy;
mod opt_out;
mod posting;
mod read_receipts;
mod rejection;
mod start;
mod state;
mod window;

#[cfg(test)]
mod tests;

pub use calls::{CallMedia, CallRecord};
pub use command::{ConversationCommand, IssuedConversationCommand};
pub use content::AttachmentRef;
pub use delivery::DeliveryStatus;
pub use event::{
    AutoReplyPosted, CallEnded, CallStarted, ChannelMemberJoined, ChannelMemberLeft,
    ChannelMembersAdded, ChannelRenamed, ConversationAssigned, ConversationEvent,
    ConversationStarted, ConversationTransferred, DeliveryUpdated, InboundReceived, InboxAttached,
    InboxDetached, MarkedDone, MessagePosted, MessagesRead, OptedIn, OptedOut,
    ReopenedByInboundText, ReturnedToInbox, SmsRequested, SmsWithheld, SystemMessageRecorded,
    SystemNote, CONVERSATION_EVENT_TYPES,
};
pub use facts::{ActorFacts, SenderNumber};
pub use inbox_assignment::{InboxAssignment, InboxStatus};
pub use kind::ConversationKind;
pub use opt_out::OptOutKeyword;
pub use rejection::ConversationRejection;
pub use state::{Author, Conversation, Header};
pub use window::MessageRecord;
