//! An SMS/MMS from an external number arrives (reported by the carrier adapter, so only
//! the System records it): in its External conversation, or in a mixed group it is a
//! member of (the inbound router picks which).
//!
//! The one decision also keeps the conversation where the directory routes our number
//! (an inbox, or none), reopens a Done inbox conversation, and honours opt-out keywords,
//! so that an auditor replaying the stream sees each consequence right after its cause.

use crate::command_meta::{Actor, CommandMeta};
use crate::conversation::content::{checked_content, AttachmentRef, Medium};
use crate::conversation::event::{
    AutoReplyPosted, ConversationEvent, InboundReceived, InboxAttached, InboxDetached, OptedIn,
    OptedOut, ReopenedByInboundText, SmsRequested,
};
use crate::conversation::inbox_assignment::InboxStatus;
use crate::conversation::kind::ConversationKind;
use crate::conversation::opt_out::OptOutKeyword;
use crate::conversation::rejection::ConversationRejection;
use crate::conversation::state::{Author, Conversation};
use crate::ids::{InboxId, MessageId};
use crate::phone_number::PhoneNumber;
use crate::text::{Text, TextKey};

impl Conversation {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record_inbound(
        &self,
        meta: &CommandMeta,
        message_id: MessageId,
        from: &PhoneNumber,
        to: &PhoneNumber,
        text: &str,
        media: &[AttachmentRef],
        routed_to_inbox: Option<InboxId>,
    ) -> Result<Vec<ConversationEvent>, ConversationRejection> {
        let header = self.started(meta)?;
        if meta.actor != Actor::System {
            return Err(ConversationRejection::SystemOnly);
        }
        // An External conversation hears from its one number; a mixed group from any of
        // its external members (the inbound router decides which a text continues).
        let (our, theirs) = match &header.kind {
            ConversationKind::External { our, their } => (our, from == their),
            ConversationKind::Group { our, externals, .. } => (our, externals.contains(from)),
            ConversationKind::Direct { .. } | ConversationKind::Channel { .. } => {
                return Err(ConversationRejection::NotExternal)
            }
        };
        if !theirs || to != our {
            return Err(ConversationRejection::InboundAddressMismatch);
        }
        // Inboxes hold External conversations only.
        let routed_to_inbox = match header.kind {
            ConversationKind::External { .. } => routed_to_inbox,
            _ => None,
        };
        if let Some(existing) = self.messages.get(&message_id) {
            // Carriers retry webhooks; the caller derives the id from the carrier's. Only
            // ids in the window are known here; `window` says how older retries are caught.
            return if existing.author == Author::External(from.clone()) {
                Ok(vec![])
            } else {
                Err(ConversationRejection::DuplicateMessageId { message_id })
            };
        }
        let media = checked_content(text, media, Medium::InboundSms)?;

        let at_ms = meta.at_ms;
        let mut events = Vec::new();
        let current_inbox = self.inbox.as_ref().map(|a| a.inbox);
        if current_inbox != routed_to_inbox {
            if let Some(inbox) = current_inbox {
                events.push(ConversationEvent::InboxDetached(InboxDetached {
                    inbox,
                    at_ms,
                }));
            }
            if let Some(inbox) = routed_to_inbox {
                events.push(ConversationEvent::InboxAttached(InboxAttached {
                    inbox,
                    at_ms,
                }));
            }
        }
        events.push(ConversationEvent::InboundReceived(InboundReceived {
            message_id,
            seq: self.last_seq + 1,
            from: from.clone(),
            text: Text::new(
                text,
                TextKey::for_conversation(header.org, &header.kind, at_ms),
            ),
            media,
            at_ms,
        }));
        let done_here = self
            .inbox
            .as_ref()
            .is_some_and(|a| Some(a.inbox) == routed_to_inbox && a.status == InboxStatus::Done);
        if done_here {
            events.push(ConversationEvent::ReopenedByInboundText(
                ReopenedByInboundText { message_id, at_ms },
            ));
        }
        let opted_out = self.opted_out.contains(from);
        match OptOutKeyword::parse(text) {
            Some(OptOutKeyword::Stop) if !opted_out => {
                events.push(ConversationEvent::OptedOut(OptedOut {
                    number: from.clone(),
                    at_ms,
                }));
            }
            Some(OptOutKeyword::Start) if opted_out => {
                events.push(ConversationEvent::OptedIn(OptedIn {
                    number: from.clone(),
                    at_ms,
                }));
            }
            _ => {}
        }
        Ok(events)
    }
}

impl Conversation {
    /// Our number answers `reply_to` with `text`: the message, and its SMS to the customer
    /// (requested whatever their opt-out: the answer to HELP must reach them).
    pub(super) fn record_auto_reply(
        &self,
        meta: &CommandMeta,
        message_id: MessageId,
        reply_to: MessageId,
        text: &str,
    ) -> Result<Vec<ConversationEvent>, ConversationRejection> {
        let header = self.started(meta)?;
        if meta.actor != Actor::System {
            return Err(ConversationRejection::SystemOnly);
        }
        // The answer goes to whoever asked: the External conversation's number, or the
        // group member who wrote `reply_to`.
        let (our, their) = match &header.kind {
            ConversationKind::External { our, their } => (our, their),
            ConversationKind::Group { our, externals, .. } => {
                let asker = self.messages.get(&reply_to).and_then(|m| match &m.author {
                    Author::External(n) if externals.contains(n) => Some(n),
                    _ => None,
                });
                match asker {
                    Some(n) => (our, n),
                    None => return Err(ConversationRejection::NotExternal),
                }
            }
            ConversationKind::Direct { .. } | ConversationKind::Channel { .. } => {
                return Err(ConversationRejection::NotExternal)
            }
        };
        if let Some(existing) = self.messages.get(&message_id) {
            // The caller derives the id from the message answered: a repeat writes nothing.
            return if existing.author == Author::External(our.clone()) {
                Ok(vec![])
            } else {
                Err(ConversationRejection::DuplicateMessageId { message_id })
            };
        }
        checked_content(text, &[], Medium::OutboundSms)?;
        let at_ms = meta.at_ms;
        Ok(vec![
            ConversationEvent::AutoReplyPosted(AutoReplyPosted {
                message_id,
                seq: self.last_seq + 1,
                from: our.clone(),
                reply_to,
                text: Text::new(
                    text,
                    TextKey::for_conversation(header.org, &header.kind, at_ms),
                ),
                at_ms,
            }),
            ConversationEvent::SmsRequested(SmsRequested {
                message_id,
                to: their.clone(),
                from: our.clone(),
                at_ms,
            }),
        ])
    }
}
