//! Switchboard's domain: the rules of organizations, conversations and shared inboxes, as
//! plain data and pure functions. No storage, no actors, no HTTP, no clock: everything a
//! decision depends on arrives in its command.
//!
//! Each aggregate implements [`Aggregate`]: `decide(&state, &command)` returns the events
//! a command causes or a typed [`Rejection`] with a stable code; `apply(&mut state,
//! &event)` folds one event in. The actor layer appends what `decide` returns to the
//! stream `"<CATEGORY>-<id>"` and rebuilds states by replaying those streams.
//!
//! ```
//! use domain::conversation::{ActorFacts, ConversationCommand, InboxStatus};
//! use domain::{Aggregate, CommandMeta, Conversation, ConversationId, ConversationRejection};
//! use domain::{InboxId, MessageId, OrgId, PhoneNumber, Rejection, Role, UserId};
//!
//! let (org, inbox) = (OrgId::random(), InboxId::random());
//! let our = PhoneNumber::parse("+1 613 555 0100")?;
//! let their = PhoneNumber::parse("+1 (613) 555-0142")?;
//! let mut conversation = Conversation::default();
//!
//! // A customer texts the inbox's number: the System opens the conversation, records the text.
//! let system = CommandMeta::system(org, 1_000);
//! conversation.handle(&system.issue(ConversationCommand::StartExternal {
//!     id: ConversationId::external(org, &our, &their),
//!     our: our.clone(),
//!     their: their.clone(),
//!     inbox: Some(inbox),
//!     facts: ActorFacts::default(),
//! }))?;
//! conversation.handle(&system.issue(ConversationCommand::RecordInbound {
//!     message_id: MessageId::random(),
//!     from: their,
//!     to: our,
//!     text: "Hi! Is my order ready?".into(),
//!     media: vec![],
//!     routed_to_inbox: Some(inbox),
//! }))?;
//!
//! // Two team members press Assign to Me; the conversation decides them one after the other.
//! let team = ActorFacts { holds_our_number: false, inbox_member: true, ..ActorFacts::default() };
//! let (ann, ben) = (UserId::random(), UserId::random());
//! let assign = ConversationCommand::AssignToMe { facts: team };
//! let first = CommandMeta::user(org, ann, Role::Member, 2_000).issue(assign.clone());
//! let second = CommandMeta::user(org, ben, Role::Member, 2_001).issue(assign);
//! conversation.handle(&first)?;
//! let refused = conversation.handle(&second).unwrap_err();
//! assert_eq!(refused, ConversationRejection::AlreadyAssigned { to: ann });
//! assert_eq!(refused.code(), "already_assigned");
//! assert_eq!(conversation.inbox().map(|a| a.status), Some(InboxStatus::Assigned(ann)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout
//! - [`aggregate`]: the [`Aggregate`], [`DomainEvent`] and [`Rejection`] traits.
//! - [`ids`]: UUID newtypes, and the deterministic ids that make "one conversation per
//!   pair" need no lookup.
//! - [`phone_number`]: validated, normalised E.164 [`PhoneNumber`]s.
//! - [`command_meta`]: who acts ([`Actor`], [`Role`]), for which organization and when
//!   ([`CommandMeta`]); [`Issued`] pairs it with a command.
//! - [`limits`]: every size limit (text lengths, attachments, members, names).
//! - [`validation`]: the shared checks of names and counts against those limits.
//! - [`directory`]: one organization's users, roles, business numbers (SMS registration,
//!   routing, assignment), per-user settings and phonebook.
//! - [`conversation`]: External, Direct, Channel and Group conversations: messages,
//!   inbound SMS/MMS, outbound SMS requests and delivery, read markers, calls, channel
//!   membership, and the inbox status of inbox conversations.
//! - [`erasure`]: retention settings and erasures of customers' data (`erasure-<org>`).
//! - [`inbox`]: a shared inbox's number, name and team.
//! - [`inbound`]: texts as the carrier hands them over, before routing (`inbound-<org>`).
//! - [`schema`]: versioned event payloads ([`VersionedEvent`]): what the log stores of an
//!   event, and how older versions are upcast to the current one on read.
//! - [`text`]: message texts ([`Text`]) and whose data they are ([`TextKey`]): what the
//!   actor layer seals in the log, the unit of retention and erasure.
//! - [`visibility`]: who may see a conversation, an inbox or a queue: the one rule, given
//!   what other aggregates say ([`visibility::Roles`]).
//! - [`queue`]: SMS queues: agents log in, claim waiting interactions, release, transfer,
//!   close; wait and idle deadlines as state, fired by a scheduler outside the domain.
//!
//! # Records that are not an aggregate's
//! Facts no aggregate decides are versioned events too (the same [`VersionedEvent`]
//! encoding, schemas in `schemas/`, upcast on read); these modules define them, and the
//! `records` crate (or, for webhooks, the outbox and SMS threads, the `workers`) writes
//! and reads them:
//! - [`attachment`]: attachment records (`attachment-<id>`: stored, unavailable,
//!   referenced, erased).
//! - [`session`]: bearer-token sessions (`session-<id>`) and each user's index of them
//!   (`sessions-<user>`).
//! - [`credential`]: logins and their password hashes (`credential-<email>`).
//! - [`claim`]: business numbers (`number-<E.164>`) and the server's first organization.
//! - [`idempotency`]: the recorded answers of keyed requests (`idempotency-<key>`).
//! - [`webhook`]: outbound webhook registrations (`webhooks-<org>`), deliveries
//!   (`webhookdelivery-<id>`) and the endpoints' delivery logs (`webhooklog-<webhook>`).
//! - [`outbox`]: outbound texts (`outbox-<id>`: prepared, send started, accepted, failed)
//!   and carrier messages (`carriermsg-<sid>`: linked to their text, status reported).
//! - [`sms_thread`]: which conversation our number last texted a customer from
//!   (`smsthread-<id>`).

pub mod aggregate;
pub mod attachment;
pub mod claim;
pub mod command_meta;
pub mod conversation;
pub mod credential;
pub mod directory;
pub mod erasure;
pub mod idempotency;
pub mod ids;
pub mod inbound;
pub mod inbox;
pub mod limits;
pub mod outbox;
pub mod phone_number;
pub mod queue;
pub mod schema;
pub mod session;
pub mod sms_thread;
#[cfg(test)]
mod testkit;
pub mod text;
pub mod validation;
pub mod visibility;
pub mod webhook;

pub use aggregate::{stream_name, Aggregate, DomainEvent, Rejection, RejectionKind};
pub use command_meta::{Actor, CommandMeta, Issued, Role};
pub use conversation::{
    Conversation, ConversationCommand, ConversationEvent, ConversationRejection,
};
pub use directory::{Directory, DirectoryCommand, DirectoryEvent, DirectoryRejection};
pub use ids::{
    AttachmentId, CallId, ContactId, ConversationId, IdParseError, InboxId, MessageId, OrgId,
    QueueId, UserId,
};
pub use inbox::{Inbox, InboxCommand, InboxEvent, InboxRejection};
pub use phone_number::{PhoneNumber, PhoneNumberError};
pub use queue::{Queue, QueueCommand, QueueEvent, QueueRejection};
pub use schema::{SchemaError, VersionedEvent};
pub use text::{Text, TextKey, Texts};
pub use validation::InvalidInput;
