//! The organization and its users: creation, roles, per-user settings.

use serde::{Deserialize, Serialize};

use crate::command_meta::{Actor, CommandMeta, Role};
use crate::directory::event::{
    DirectoryEvent, OrganizationCreated, RoleChanged, TextMessagesToDeskPhoneSet, UserAdded,
    UserRenamed,
};
use crate::directory::extension::Extension;
use crate::directory::rejection::DirectoryRejection;
use crate::directory::state::{Acting, Directory};
use crate::ids::UserId;
use crate::limits::{MAX_ORGANIZATION_NAME_CHARS, MAX_USER_NAME_CHARS};
use crate::validation::required_name;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub extension: Extension,
    pub role: Role,
    pub settings: UserSettings,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSettings {
    /// Also push inbound SMS to the user's desk phone. The apps receive every inbound SMS
    /// whatever this says.
    pub text_messages_to_desk_phone: bool,
}

impl Directory {
    pub fn user(&self, id: &UserId) -> Option<&User> {
        self.users.get(id)
    }

    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    pub fn user_by_extension(&self, extension: &Extension) -> Option<&User> {
        self.users.values().find(|u| &u.extension == extension)
    }

    pub fn admin_count(&self) -> usize {
        self.users
            .values()
            .filter(|u| u.role == Role::Admin)
            .count()
    }

    /// The role to put in a [`CommandMeta`] for `user`, if they are in this organization.
    pub fn role_of(&self, user: &UserId) -> Option<Role> {
        self.users.get(user).map(|u| u.role)
    }

    pub(super) fn create_organization(
        &self,
        meta: &CommandMeta,
        name: &str,
        first_admin: UserId,
        first_admin_name: &str,
        first_admin_extension: &Extension,
    ) -> Result<Vec<DirectoryEvent>, DirectoryRejection> {
        if self.organization.is_some() {
            return Err(DirectoryRejection::OrganizationAlreadyCreated);
        }
        if meta.actor != Actor::System {
            return Err(DirectoryRejection::SystemOnly);
        }
        let name = required_name("name", name, MAX_ORGANIZATION_NAME_CHARS)?;
        let first_admin_name =
            required_name("first_admin_name", first_admin_name, MAX_USER_NAME_CHARS)?;
        Ok(vec![
            DirectoryEvent::OrganizationCreated(OrganizationCreated {
                org: meta.org,
                name,
                at_ms: meta.at_ms,
            }),
            DirectoryEvent::UserAdded(UserAdded {
                user: first_admin,
                name: first_admin_name,
                extension: first_admin_extension.clone(),
                role: Role::Admin,
                by: Actor::System,
                at_ms: meta.at_ms,
            }),
        ])
    }

    pub(super) fn add_user(
        &self,
        acting: &Acting,
        user: UserId,
        name: &str,
        extension: &Extension,
        role: Role,
    ) -> Result<Vec<DirectoryEvent>, DirectoryRejection> {
        acting.require_admin()?;
        if self.users.contains_key(&user) {
            return Err(DirectoryRejection::UserAlreadyExists { user });
        }
        if let Some(holder) = self.user_by_extension(extension) {
            return Err(DirectoryRejection::ExtensionTaken {
                extension: extension.clone(),
                by: holder.id,
            });
        }
        let name = required_name("name", name, MAX_USER_NAME_CHARS)?;
        Ok(vec![DirectoryEvent::UserAdded(UserAdded {
            user,
            name,
            extension: extension.clone(),
            role,
            by: acting.by,
            at_ms: acting.at_ms,
        })])
    }

    pub(super) fn change_role(
        &self,
        acting: &Acting,
        user: UserId,
        role: Role,
    ) -> Result<Vec<DirectoryEvent>, DirectoryRejection> {
        acting.require_admin()?;
        let current = self
            .users
            .get(&user)
            .ok_or(DirectoryRejection::UnknownUser { user })?
            .role;
        if current == role {
            return Ok(vec![]);
        }
        if current == Role::Admin && self.admin_count() == 1 {
            return Err(DirectoryRejection::LastAdmin);
        }
        Ok(vec![DirectoryEvent::RoleChanged(RoleChanged {
            user,
            role,
            by: acting.by,
            at_ms: acting.at_ms,
        })])
    }

    /// A new name for `user`: by themself or an admin; the same rules as when added.
    pub(super) fn rename_user(
        &self,
        acting: &Acting,
        user: UserId,
        name: &str,
    ) -> Result<Vec<DirectoryEvent>, DirectoryRejection> {
        if acting.by.user_id() != Some(user) {
            acting.require_admin()?;
        }
        let current = &self
            .users
            .get(&user)
            .ok_or(DirectoryRejection::UnknownUser { user })?
            .name;
        let name = required_name("name", name, MAX_USER_NAME_CHARS)?;
        if *current == name {
            return Ok(vec![]);
        }
        Ok(vec![DirectoryEvent::UserRenamed(UserRenamed {
            user,
            name,
            by: acting.by,
            at_ms: acting.at_ms,
        })])
    }

    pub(super) fn set_text_messages_to_desk_phone(
        &self,
        acting: &Acting,
        user: UserId,
        enabled: bool,
    ) -> Result<Vec<DirectoryEvent>, DirectoryRejection> {
        if acting.by.user_id() != Some(user) {
            acting.require_admin()?;
        }
        let current = self
            .users
            .get(&user)
            .ok_or(DirectoryRejection::UnknownUser { user })?
            .settings
            .text_messages_to_desk_phone;
        if current == enabled {
            return Ok(vec![]);
        }
        Ok(vec![DirectoryEvent::TextMessagesToDeskPhoneSet(
            TextMessagesToDeskPhoneSet {
                user,
                enabled,
                by: acting.by,
                at_ms: acting.at_ms,
            },
        )])
    }
}
