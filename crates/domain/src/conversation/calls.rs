//! Call and video activity entries. Media never pass through Switchboard; the
//! conversation only records that a participant started a call and that it ended.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::command_meta::CommandMeta;
use crate::conversation::event::{CallEnded, CallStarted, ConversationEvent};
use crate::conversation::facts::ActorFacts;
use crate::conversation::rejection::ConversationRejection;
use crate::conversation::state::Conversation;
use crate::ids::{CallId, UserId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CallMedia {
    Audio,
    Video,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub media: CallMedia,
    pub started_by: UserId,
    pub started_at_ms: u64,
    pub ended_at_ms: Option<u64>,
}

impl Conversation {
    /// Starting a call speaks for the conversation, so it needs the right to write (in an
    /// inbox, to be the assignee).
    pub(super) fn start_call(
        &self,
        meta: &CommandMeta,
        call: CallId,
        media: CallMedia,
        facts: &ActorFacts,
    ) -> Result<Vec<ConversationEvent>, ConversationRejection> {
        self.started(meta)?;
        let user = Self::acting_user(meta)?;
        self.check_writer(user, facts)?;
        if let Some(existing) = self.calls.get(&call) {
            return if existing.started_by == user && existing.media == media {
                Ok(vec![])
            } else {
                Err(ConversationRejection::DuplicateCallId { call })
            };
        }
        Ok(vec![ConversationEvent::CallStarted(CallStarted {
            call,
            media,
            by: user,
            at_ms: meta.at_ms,
        })])
    }

    /// Any participant who can see the call may end it (the other side hangs up; the
    /// conversation may have been transferred during the call).
    pub(super) fn end_call(
        &self,
        meta: &CommandMeta,
        call: CallId,
        facts: &ActorFacts,
    ) -> Result<Vec<ConversationEvent>, ConversationRejection> {
        self.started(meta)?;
        let user = Self::acting_user(meta)?;
        self.check_viewer(user, facts)?;
        let existing = self
            .calls
            .get(&call)
            .ok_or(ConversationRejection::NoSuchCall { call })?;
        if existing.ended_at_ms.is_some() {
            return Ok(vec![]);
        }
        Ok(vec![ConversationEvent::CallEnded(CallEnded {
            call,
            by: user,
            at_ms: meta.at_ms,
        })])
    }
}
