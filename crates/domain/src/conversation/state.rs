//! A conversation's state, its query helpers, and its [`Aggregate`] implementation.
//!
//! The state keeps what decisions need (participants, a bounded window of recent message
//! ids and their SMS deliveries, read markers, calls, inbox status), not the message texts
//! nor the whole history: those are in the events, for projections and auditors.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::command_meta::{Actor, Issued};
use crate::conversation::calls::CallRecord;
use crate::conversation::command::ConversationCommand;
use crate::conversation::delivery::{CarrierRefs, DeliveryStatus};
use crate::conversation::event::{
    ConversationEvent, InboxAttached, InboxDetached, SystemMessageRecorded,
};
use crate::conversation::inbox_assignment::{InboxAssignment, InboxStatus};
use crate::conversation::kind::ConversationKind;
use crate::conversation::rejection::ConversationRejection;
use crate::conversation::window::{MessageRecord, MessageWindow};
use crate::ids::{CallId, ConversationId, MessageId, OrgId, UserId};
use crate::phone_number::PhoneNumber;

/// One conversation of any kind. Stream `conversation-<conversation id>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub(super) header: Option<Header>,
    /// Only External conversations on an inbox number have one.
    pub(super) inbox: Option<InboxAssignment>,
    /// External numbers that texted a stop keyword to this conversation's number.
    pub(super) opted_out: BTreeSet<PhoneNumber>,
    /// Sequence number of the newest message; 0 before the first.
    pub(super) last_seq: u64,
    /// The recent messages and those still awaiting an SMS delivery, not the whole
    /// history: the state stays small however long the conversation (see `window`).
    pub(super) messages: MessageWindow,
    /// Highest message each internal participant has read. Never decreases.
    pub(super) read_up_to: BTreeMap<UserId, u64>,
    pub(super) calls: BTreeMap<CallId, CallRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub id: ConversationId,
    pub org: OrgId,
    /// The kind with its current participants (channel members and name change).
    pub kind: ConversationKind,
    pub started_at_ms: u64,
}

/// Who wrote a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Author {
    User(UserId),
    /// A number: the external sender of an inbound text, or our own number for an
    /// automatic reply (`AutoReplyPosted`).
    External(PhoneNumber),
}

impl Conversation {
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    pub fn id(&self) -> Option<ConversationId> {
        self.header.as_ref().map(|h| h.id)
    }

    pub fn kind(&self) -> Option<&ConversationKind> {
        self.header.as_ref().map(|h| &h.kind)
    }

    pub fn inbox(&self) -> Option<&InboxAssignment> {
        self.inbox.as_ref()
    }

    /// Who holds the inbox conversation, if anyone.
    pub fn assignee(&self) -> Option<UserId> {
        self.inbox.as_ref().and_then(|a| a.status.assignee())
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Message `id` while it is in the window: one of the newest
    /// [`RECENT_MESSAGES`](crate::limits::RECENT_MESSAGES), or an older one still awaiting
    /// an SMS delivery. Older messages are the read models' to show.
    pub fn message(&self, id: &MessageId) -> Option<&MessageRecord> {
        self.messages.get(id)
    }

    /// The customer's newest text still in the window (an inbound message: written by a
    /// number that is not our own), e.g. for an automatic reply to answer.
    pub fn last_inbound(&self) -> Option<MessageId> {
        let ours = self.kind().and_then(ConversationKind::our_number);
        self.messages.newest_where(|m| match &m.author {
            Author::External(n) => Some(n) != ours,
            Author::User(_) => false,
        })
    }

    /// How far the SMS of `message` to `to` got, while the message is in the window.
    pub fn delivery(&self, message: &MessageId, to: &PhoneNumber) -> Option<&DeliveryStatus> {
        self.messages.get(message)?.deliveries.get(to)
    }

    /// Highest seq of a message that left the window; 0 while none did. Messages at or
    /// below it may be unknown to [`Conversation::message`] and the queries built on it.
    pub fn pruned_through_seq(&self) -> u64 {
        self.messages.pruned_through_seq()
    }

    /// The highest message `user` has read; 0 if none.
    pub fn read_up_to(&self, user: UserId) -> u64 {
        self.read_up_to.get(&user).copied().unwrap_or(0)
    }

    pub fn read_markers(&self) -> &BTreeMap<UserId, u64> {
        &self.read_up_to
    }

    /// Who has read message `id` (its read receipts), its author excluded. Empty for a
    /// message no longer in the window: the read models hold receipts of older messages.
    pub fn read_by(&self, id: &MessageId) -> Vec<UserId> {
        let Some(message) = self.messages.get(id) else {
            return vec![];
        };
        self.read_up_to
            .iter()
            .filter(|&(&user, &up_to)| up_to >= message.seq && message.author != Author::User(user))
            .map(|(&user, _)| user)
            .collect()
    }

    /// Did `number` opt out of texts from this conversation's number?
    pub fn is_opted_out(&self, number: &PhoneNumber) -> bool {
        self.opted_out.contains(number)
    }

    pub fn call(&self, id: &CallId) -> Option<&CallRecord> {
        self.calls.get(id)
    }
}

impl Aggregate for Conversation {
    const CATEGORY: &'static str = "conversation";
    type Command = Issued<ConversationCommand>;
    type Event = ConversationEvent;
    type Rejection = ConversationRejection;

    fn decide(
        &self,
        issued: &Self::Command,
    ) -> Result<Vec<ConversationEvent>, ConversationRejection> {
        use ConversationCommand as C;
        let Issued { meta, command } = issued;
        match command {
            C::StartExternal {
                id,
                our,
                their,
                inbox,
                facts,
            } => self.start_external(meta, *id, our, their, *inbox, facts),
            C::StartDirect {
                id,
                with,
                known_users,
            } => self.start_direct(meta, *id, *with, known_users),
            C::StartChannel {
                id,
                name,
                members,
                known_users,
            } => self.start_channel(meta, *id, name, members, known_users),
            C::StartGroup {
                id,
                users,
                externals,
                from,
                known_users,
            } => self.start_group(meta, *id, users, externals, from, known_users),
            C::PostMessage {
                message_id,
                text,
                attachments,
                from,
                facts,
                opted_out,
            } => self.post_message(
                meta,
                *message_id,
                text,
                attachments,
                from.as_ref(),
                facts,
                opted_out,
            ),
            C::RecordInbound {
                message_id,
                from,
                to,
                text,
                media,
                routed_to_inbox,
            } => self.record_inbound(meta, *message_id, from, to, text, media, *routed_to_inbox),
            C::RecordAutoReply {
                message_id,
                reply_to,
                text,
            } => self.record_auto_reply(meta, *message_id, *reply_to, text),
            C::RecordDelivery {
                message_id,
                to,
                status,
                carrier_message_id,
                error_code,
            } => self.record_delivery(
                meta,
                *message_id,
                to,
                status,
                CarrierRefs {
                    message_id: carrier_message_id.as_deref(),
                    error_code: error_code.as_deref(),
                },
            ),
            C::MarkRead { up_to, facts } => self.mark_read(meta, *up_to, facts),
            C::StartCall { call, media, facts } => self.start_call(meta, *call, *media, facts),
            C::EndCall { call, facts } => self.end_call(meta, *call, facts),
            C::JoinChannel => self.join_channel(meta),
            C::AddChannelMembers { users, known_users } => {
                self.add_channel_members(meta, users, known_users)
            }
            C::LeaveChannel => self.leave_channel(meta),
            C::RenameChannel { name } => self.rename_channel(meta, name),
            C::AssignToMe { facts } => self.assign_to_me(meta, facts),
            C::Transfer {
                to,
                to_is_inbox_member,
                facts,
            } => self.transfer(meta, *to, *to_is_inbox_member, facts),
            C::ReturnToInbox { facts } => self.return_to_inbox(meta, facts),
            C::MarkDone { facts } => self.mark_done(meta, facts),
            C::AttachToInbox { inbox } => {
                let header = self.started(meta)?;
                if meta.actor != Actor::System {
                    return Err(ConversationRejection::SystemOnly);
                }
                if !matches!(header.kind, ConversationKind::External { .. }) {
                    return Err(ConversationRejection::NotExternal);
                }
                let mut events = Vec::new();
                match self.inbox.as_ref().map(|a| a.inbox) {
                    Some(current) if current == *inbox => return Ok(events),
                    Some(current) => events.push(ConversationEvent::InboxDetached(InboxDetached {
                        inbox: current,
                        at_ms: meta.at_ms,
                    })),
                    None => {}
                }
                events.push(ConversationEvent::InboxAttached(InboxAttached {
                    inbox: *inbox,
                    at_ms: meta.at_ms,
                }));
                Ok(events)
            }
            C::RecordSystemMessage { note } => {
                self.started(meta)?;
                if meta.actor != Actor::System {
                    return Err(ConversationRejection::SystemOnly);
                }
                Ok(vec![ConversationEvent::SystemMessageRecorded(
                    SystemMessageRecorded {
                        note: note.clone(),
                        at_ms: meta.at_ms,
                    },
                )])
            }
        }
    }

    fn apply(&mut self, event: &ConversationEvent) {
        use ConversationEvent as E;
        match event {
            E::ConversationStarted(e) => {
                self.header = Some(Header {
                    id: e.id,
                    org: e.org,
                    kind: e.kind.clone(),
                    started_at_ms: e.at_ms,
                });
            }
            E::MessagePosted(e) => {
                self.record_message(e.message_id, e.seq, Author::User(e.author), e.at_ms);
            }
            E::InboundReceived(e) => {
                let author = Author::External(e.from.clone());
                self.record_message(e.message_id, e.seq, author, e.at_ms);
            }
            E::AutoReplyPosted(e) => {
                // Written by our number itself: in the window under that number, so a
                // repeated reply is recognised and its delivery recorded like any text.
                let author = Author::External(e.from.clone());
                self.record_message(e.message_id, e.seq, author, e.at_ms);
            }
            E::SmsRequested(e) => self.messages.request_sms(&e.message_id, &e.to),
            E::SmsWithheld(_) => {}
            E::DeliveryUpdated(e) => {
                self.messages
                    .update_delivery(&e.message_id, &e.to, &e.status, e.at_ms);
            }
            E::MessagesRead(e) => {
                let marker = self.read_up_to.entry(e.user).or_default();
                *marker = (*marker).max(e.up_to);
            }
            E::CallStarted(e) => {
                self.calls.insert(
                    e.call,
                    CallRecord {
                        media: e.media,
                        started_by: e.by,
                        started_at_ms: e.at_ms,
                        ended_at_ms: None,
                    },
                );
            }
            E::CallEnded(e) => {
                if let Some(call) = self.calls.get_mut(&e.call) {
                    call.ended_at_ms = Some(e.at_ms);
                }
            }
            E::ChannelMemberJoined(e) => {
                if let Some(members) = self.channel_members_mut() {
                    members.insert(e.user);
                }
            }
            E::ChannelMembersAdded(e) => {
                if let Some(members) = self.channel_members_mut() {
                    members.extend(e.users.iter().copied());
                }
            }
            E::ChannelMemberLeft(e) => {
                if let Some(members) = self.channel_members_mut() {
                    members.remove(&e.user);
                }
            }
            E::ChannelRenamed(e) => {
                if let Some(Header {
                    kind: ConversationKind::Channel { name, .. },
                    ..
                }) = &mut self.header
                {
                    name.clone_from(&e.name);
                }
            }
            E::InboxAttached(e) => {
                self.inbox = Some(InboxAssignment {
                    inbox: e.inbox,
                    status: InboxStatus::Unassigned,
                });
            }
            E::InboxDetached(_) => self.inbox = None,
            E::ConversationAssigned(e) => self.set_inbox_status(InboxStatus::Assigned(e.to)),
            E::ConversationTransferred(e) => self.set_inbox_status(InboxStatus::Assigned(e.to)),
            E::ReturnedToInbox(_) | E::ReopenedByInboundText(_) => {
                self.set_inbox_status(InboxStatus::Unassigned);
            }
            E::MarkedDone(_) => self.set_inbox_status(InboxStatus::Done),
            E::OptedOut(e) => {
                self.opted_out.insert(e.number.clone());
            }
            // The timeline shows it; no rule depends on it.
            E::SystemMessageRecorded(_) => {}
            E::OptedIn(e) => {
                self.opted_out.remove(&e.number);
            }
        }
    }
}

impl Conversation {
    fn record_message(&mut self, id: MessageId, seq: u64, author: Author, at_ms: u64) {
        self.last_seq = self.last_seq.max(seq);
        self.messages.record(
            id,
            MessageRecord {
                seq,
                author,
                at_ms,
                deliveries: BTreeMap::new(),
            },
        );
    }

    fn channel_members_mut(&mut self) -> Option<&mut BTreeSet<UserId>> {
        match &mut self.header {
            Some(Header {
                kind: ConversationKind::Channel { members, .. },
                ..
            }) => Some(members),
            _ => None,
        }
    }

    fn set_inbox_status(&mut self, status: InboxStatus) {
        if let Some(assignment) = &mut self.inbox {
            assignment.status = status;
        }
    }
}
