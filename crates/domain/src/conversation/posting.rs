//! A participant posts a message; where the conversation has external members, the same
//! decision asks for one SMS per external recipient, so a message and its outbound texts
//! are written atomically and a crash can never leave one without the other.

use std::collections::BTreeSet;

use crate::command_meta::CommandMeta;
use crate::conversation::content::{checked_content, AttachmentRef, Medium};
use crate::conversation::event::{ConversationEvent, MessagePosted, SmsRequested, SmsWithheld};
use crate::conversation::facts::{ActorFacts, SenderNumber};
use crate::conversation::kind::ConversationKind;
use crate::conversation::rejection::ConversationRejection;
use crate::conversation::state::{Author, Conversation};
use crate::ids::MessageId;
use crate::phone_number::PhoneNumber;
use crate::text::{Text, TextKey};

impl Conversation {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn post_message(
        &self,
        meta: &CommandMeta,
        message_id: MessageId,
        text: &str,
        attachments: &[AttachmentRef],
        from: Option<&SenderNumber>,
        facts: &ActorFacts,
        opted_out: &BTreeSet<PhoneNumber>,
    ) -> Result<Vec<ConversationEvent>, ConversationRejection> {
        let header = self.started(meta)?;
        let user = Self::acting_user(meta)?;
        self.check_writer(user, facts)?;
        if let Some(existing) = self.messages.get(&message_id) {
            // The same author reusing the id is a retry of a post that was written. Only
            // ids in the window are known here; `window` says how older retries are caught.
            return if existing.author == Author::User(user) {
                Ok(vec![])
            } else {
                Err(ConversationRejection::DuplicateMessageId { message_id })
            };
        }
        let sms_from = match header.kind.our_number() {
            Some(our) => Some(self.checked_sender(our, from)?),
            None => None,
        };
        let medium = if sms_from.is_some() {
            Medium::OutboundSms
        } else {
            Medium::Internal
        };
        let attachments = checked_content(text, attachments, medium)?;
        if let ConversationKind::External { their, .. } = &header.kind {
            if self.opted_out.contains(their) || opted_out.contains(their) {
                return Err(ConversationRejection::RecipientOptedOut {
                    number: their.clone(),
                });
            }
        }

        let at_ms = meta.at_ms;
        let mut events = vec![ConversationEvent::MessagePosted(MessagePosted {
            message_id,
            seq: self.last_seq + 1,
            author: user,
            text: Text::new(
                text,
                TextKey::for_conversation(header.org, &header.kind, at_ms),
            ),
            attachments,
            at_ms,
        })];
        if let Some(from) = sms_from {
            for to in header.kind.external_numbers() {
                let to = to.clone();
                events.push(if self.opted_out.contains(&to) || opted_out.contains(&to) {
                    ConversationEvent::SmsWithheld(SmsWithheld {
                        message_id,
                        to,
                        at_ms,
                    })
                } else {
                    ConversationEvent::SmsRequested(SmsRequested {
                        message_id,
                        to,
                        from: from.clone(),
                        at_ms,
                    })
                });
            }
        }
        Ok(events)
    }

    /// The From number of an SMS must be the conversation's own number (its identity on
    /// the customer's phone), registered for SMS, and the sender's to use: assigned to
    /// them, or, in an inbox conversation, reached through the assignment already checked.
    fn checked_sender(
        &self,
        our: &PhoneNumber,
        from: Option<&SenderNumber>,
    ) -> Result<PhoneNumber, ConversationRejection> {
        let from = from.ok_or(ConversationRejection::FromNumberRequired)?;
        if &from.number != our {
            return Err(ConversationRejection::WrongFromNumber {
                expected: our.clone(),
            });
        }
        if !from.sms_registered {
            return Err(ConversationRejection::FromNumberNotSmsRegistered);
        }
        if self.inbox.is_none() && !from.assigned_to_sender {
            return Err(ConversationRejection::FromNumberNotAssignedToYou);
        }
        Ok(from.number.clone())
    }
}
