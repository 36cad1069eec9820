//! Who issues a command, for which organization, and when.
//!
//! The domain never reads a clock or an identity itself: the caller injects both, so
//! `decide` stays a pure function and tests choose the time.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::{OrgId, UserId};

/// A user's role in their organization.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Role {
    Admin,
    Member,
}

/// Who acts.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Actor {
    /// An authenticated user; `role` is what the directory says at the time.
    User { id: UserId, role: Role },
    /// The platform itself: provisioning, carrier callbacks and inbound texts, process
    /// managers. It may do whatever an admin may, but never acts *as* a user (it cannot
    /// post, read or take a conversation). The gateway must never issue it for a client.
    System,
}

impl Actor {
    /// The acting user, if a user acts.
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Actor::User { id, .. } => Some(*id),
            Actor::System => None,
        }
    }

    /// May this actor use admin powers? Admins, and the System.
    pub fn has_admin_powers(&self) -> bool {
        matches!(
            self,
            Actor::System
                | Actor::User {
                    role: Role::Admin,
                    ..
                }
        )
    }
}

/// The context every command carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandMeta {
    /// The organization the actor acts in; a command for another tenant's aggregate is
    /// refused, so nothing crosses tenants even if a caller mixes ids up.
    pub org: OrgId,
    pub actor: Actor,
    /// Milliseconds since the Unix epoch, from the caller's clock.
    pub at_ms: u64,
}

impl CommandMeta {
    pub fn user(org: OrgId, id: UserId, role: Role, at_ms: u64) -> Self {
        Self {
            org,
            actor: Actor::User { id, role },
            at_ms,
        }
    }

    pub fn system(org: OrgId, at_ms: u64) -> Self {
        Self {
            org,
            actor: Actor::System,
            at_ms,
        }
    }

    /// Wraps `command` so it can be decided.
    pub fn issue<C>(self, command: C) -> Issued<C> {
        Issued {
            meta: self,
            command,
        }
    }
}

/// A command together with its [`CommandMeta`]; what `decide` takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issued<C> {
    pub meta: CommandMeta,
    pub command: C,
}
