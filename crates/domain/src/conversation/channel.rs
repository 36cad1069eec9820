//! Channel membership and name. Channels are open: any user of the organization may join
//! one; members may bring others in and rename it. The last member may not leave, so a
//! channel's history always has a member who can see it.

use std::collections::BTreeSet;

use crate::command_meta::CommandMeta;
use crate::conversation::event::{
    ChannelMemberJoined, ChannelMemberLeft, ChannelMembersAdded, ChannelRenamed, ConversationEvent,
};
use crate::conversation::kind::ConversationKind;
use crate::conversation::rejection::ConversationRejection;
use crate::conversation::start::{check_known, check_member_count};
use crate::conversation::state::Conversation;
use crate::ids::UserId;
use crate::limits::MAX_CHANNEL_NAME_CHARS;
use crate::validation::required_name;

type Decision = Result<Vec<ConversationEvent>, ConversationRejection>;

impl Conversation {
    fn channel(
        &self,
        meta: &CommandMeta,
    ) -> Result<(&String, &BTreeSet<UserId>), ConversationRejection> {
        match &self.started(meta)?.kind {
            ConversationKind::Channel { name, members } => Ok((name, members)),
            _ => Err(ConversationRejection::NotAChannel),
        }
    }

    pub(super) fn join_channel(&self, meta: &CommandMeta) -> Decision {
        let (_, members) = self.channel(meta)?;
        let user = Self::acting_user(meta)?;
        if members.contains(&user) {
            return Ok(vec![]);
        }
        check_member_count(members.len() + 1)?;
        Ok(vec![ConversationEvent::ChannelMemberJoined(
            ChannelMemberJoined {
                user,
                at_ms: meta.at_ms,
            },
        )])
    }

    pub(super) fn add_channel_members(
        &self,
        meta: &CommandMeta,
        users: &BTreeSet<UserId>,
        known_users: &BTreeSet<UserId>,
    ) -> Decision {
        let (_, members) = self.channel(meta)?;
        let user = Self::acting_user(meta)?;
        if !members.contains(&user) {
            return Err(ConversationRejection::NotAParticipant);
        }
        let new: BTreeSet<UserId> = users.difference(members).copied().collect();
        if new.is_empty() {
            return Ok(vec![]);
        }
        check_known(new.iter(), known_users)?;
        check_member_count(members.len() + new.len())?;
        Ok(vec![ConversationEvent::ChannelMembersAdded(
            ChannelMembersAdded {
                users: new,
                by: user,
                at_ms: meta.at_ms,
            },
        )])
    }

    pub(super) fn leave_channel(&self, meta: &CommandMeta) -> Decision {
        let (_, members) = self.channel(meta)?;
        let user = Self::acting_user(meta)?;
        if !members.contains(&user) {
            return Ok(vec![]);
        }
        if members.len() == 1 {
            return Err(ConversationRejection::LastMemberCannotLeave);
        }
        Ok(vec![ConversationEvent::ChannelMemberLeft(
            ChannelMemberLeft {
                user,
                at_ms: meta.at_ms,
            },
        )])
    }

    pub(super) fn rename_channel(&self, meta: &CommandMeta, name: &str) -> Decision {
        let (current, members) = self.channel(meta)?;
        let user = Self::acting_user(meta)?;
        if !members.contains(&user) {
            return Err(ConversationRejection::NotAParticipant);
        }
        let name = required_name("name", name, MAX_CHANNEL_NAME_CHARS)?;
        if &name == current {
            return Ok(vec![]);
        }
        Ok(vec![ConversationEvent::ChannelRenamed(ChannelRenamed {
            name,
            by: user,
            at_ms: meta.at_ms,
        })])
    }
}
