//! The inbox's state, query helpers and decisions.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::command_meta::{CommandMeta, Issued};
use crate::ids::{InboxId, OrgId, UserId};
use crate::inbox::command::InboxCommand;
use crate::inbox::event::{
    InboxCreated, InboxEvent, InboxMemberAdded, InboxMemberRemoved, InboxRenamed,
};
use crate::inbox::rejection::InboxRejection;
use crate::limits::{MAX_INBOX_MEMBERS, MAX_INBOX_NAME_CHARS};
use crate::phone_number::PhoneNumber;
use crate::validation::required_name;

/// One shared inbox. Stream `inbox-<inbox id>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inbox {
    header: Option<InboxHeader>,
    members: BTreeSet<UserId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxHeader {
    pub id: InboxId,
    pub org: OrgId,
    pub name: String,
    /// Fixed for the inbox's life: the inbox *is* the shared workspace of this number.
    pub number: PhoneNumber,
    pub created_at_ms: u64,
}

type Decision = Result<Vec<InboxEvent>, InboxRejection>;

impl Inbox {
    pub fn header(&self) -> Option<&InboxHeader> {
        self.header.as_ref()
    }

    pub fn id(&self) -> Option<InboxId> {
        self.header.as_ref().map(|h| h.id)
    }

    pub fn name(&self) -> Option<&str> {
        self.header.as_ref().map(|h| h.name.as_str())
    }

    pub fn number(&self) -> Option<&PhoneNumber> {
        self.header.as_ref().map(|h| &h.number)
    }

    /// Team members see every conversation of the inbox and may take them.
    pub fn is_member(&self, user: UserId) -> bool {
        self.members.contains(&user)
    }

    pub fn members(&self) -> &BTreeSet<UserId> {
        &self.members
    }

    /// A created inbox of the acting organization, acted on by an admin.
    fn administered(&self, meta: &CommandMeta) -> Result<&InboxHeader, InboxRejection> {
        let header = self
            .header
            .as_ref()
            .ok_or(InboxRejection::InboxNotCreated)?;
        if header.org != meta.org {
            return Err(InboxRejection::WrongOrganization);
        }
        if !meta.actor.has_admin_powers() {
            return Err(InboxRejection::AdminOnly);
        }
        Ok(header)
    }

    fn create(
        &self,
        meta: &CommandMeta,
        id: InboxId,
        name: &str,
        number: &PhoneNumber,
        number_is_ours: bool,
    ) -> Decision {
        if self.header.is_some() {
            return Err(InboxRejection::InboxAlreadyCreated);
        }
        if !meta.actor.has_admin_powers() {
            return Err(InboxRejection::AdminOnly);
        }
        if !number_is_ours {
            return Err(InboxRejection::NotOurNumber {
                number: number.clone(),
            });
        }
        Ok(vec![InboxEvent::InboxCreated(InboxCreated {
            id,
            org: meta.org,
            name: required_name("name", name, MAX_INBOX_NAME_CHARS)?,
            number: number.clone(),
            by: meta.actor,
            at_ms: meta.at_ms,
        })])
    }

    fn add_member(&self, meta: &CommandMeta, user: UserId, user_exists: bool) -> Decision {
        self.administered(meta)?;
        if self.members.contains(&user) {
            return Ok(vec![]);
        }
        if !user_exists {
            return Err(InboxRejection::UnknownUser { user });
        }
        if self.members.len() >= MAX_INBOX_MEMBERS {
            return Err(InboxRejection::TooManyMembers {
                max: MAX_INBOX_MEMBERS,
            });
        }
        Ok(vec![InboxEvent::InboxMemberAdded(InboxMemberAdded {
            user,
            by: meta.actor,
            at_ms: meta.at_ms,
        })])
    }

    /// A removed member keeps any conversation assigned to them until someone returns or
    /// transfers it, but can no longer reply in it: replying needs team membership too.
    fn remove_member(&self, meta: &CommandMeta, user: UserId) -> Decision {
        self.administered(meta)?;
        if !self.members.contains(&user) {
            return Ok(vec![]);
        }
        Ok(vec![InboxEvent::InboxMemberRemoved(InboxMemberRemoved {
            user,
            by: meta.actor,
            at_ms: meta.at_ms,
        })])
    }

    fn rename(&self, meta: &CommandMeta, name: &str) -> Decision {
        let header = self.administered(meta)?;
        let name = required_name("name", name, MAX_INBOX_NAME_CHARS)?;
        if name == header.name {
            return Ok(vec![]);
        }
        Ok(vec![InboxEvent::InboxRenamed(InboxRenamed {
            name,
            by: meta.actor,
            at_ms: meta.at_ms,
        })])
    }
}

impl Aggregate for Inbox {
    const CATEGORY: &'static str = "inbox";
    type Command = Issued<InboxCommand>;
    type Event = InboxEvent;
    type Rejection = InboxRejection;

    fn decide(&self, issued: &Self::Command) -> Decision {
        let Issued { meta, command } = issued;
        match command {
            InboxCommand::CreateInbox {
                id,
                name,
                number,
                number_is_ours,
            } => self.create(meta, *id, name, number, *number_is_ours),
            InboxCommand::AddMember { user, user_exists } => {
                self.add_member(meta, *user, *user_exists)
            }
            InboxCommand::RemoveMember { user } => self.remove_member(meta, *user),
            InboxCommand::RenameInbox { name } => self.rename(meta, name),
        }
    }

    fn apply(&mut self, event: &InboxEvent) {
        match event {
            InboxEvent::InboxCreated(e) => {
                self.header = Some(InboxHeader {
                    id: e.id,
                    org: e.org,
                    name: e.name.clone(),
                    number: e.number.clone(),
                    created_at_ms: e.at_ms,
                });
            }
            InboxEvent::InboxMemberAdded(e) => {
                self.members.insert(e.user);
            }
            InboxEvent::InboxMemberRemoved(e) => {
                self.members.remove(&e.user);
            }
            InboxEvent::InboxRenamed(e) => {
                if let Some(header) = &mut self.header {
                    header.name.clone_from(&e.name);
                }
            }
        }
    }
}
