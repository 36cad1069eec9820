//! Read markers: "user U has read up to message N". Senders' read receipts and unread
//! counts are projections of them. Only internal participants have markers; external
//! numbers never send receipts, so nothing here is ever about them.

use crate::command_meta::CommandMeta;
use crate::conversation::event::{ConversationEvent, MessagesRead};
use crate::conversation::facts::ActorFacts;
use crate::conversation::rejection::ConversationRejection;
use crate::conversation::state::Conversation;

impl Conversation {
    /// A marker never moves back: a stale "read up to 3" from a second device after
    /// "read up to 7" is accepted and writes nothing.
    pub(super) fn mark_read(
        &self,
        meta: &CommandMeta,
        up_to: u64,
        facts: &ActorFacts,
    ) -> Result<Vec<ConversationEvent>, ConversationRejection> {
        self.started(meta)?;
        let user = Self::acting_user(meta)?;
        self.check_viewer(user, facts)?;
        if up_to > self.last_seq {
            return Err(ConversationRejection::ReadBeyondLastMessage {
                last: self.last_seq,
            });
        }
        if up_to <= self.read_up_to(user) {
            return Ok(vec![]);
        }
        Ok(vec![ConversationEvent::MessagesRead(MessagesRead {
            user,
            up_to,
            at_ms: meta.at_ms,
        })])
    }
}
