//! The login records of the log: per login (an email, unique across the service) a stream
//! `credential-<email>` that starts with [`CredentialsRegistered`] and holds one
//! [`PasswordChanged`] per change of its password; the newest record holds. Only argon2id
//! hashes are stored, never a password. The gateway appends and reads them
//! (`gateway::auth::credentials`); the records are versioned events ([`CredentialEvent`])
//! with their schemas in `schemas/`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema::versioned_events;
use crate::text::{Text, Texts};
use crate::{OrgId, UserId};

/// Category of the login streams.
pub const CREDENTIAL_CATEGORY: &str = "credential";

/// A login was made for `user` of `org`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CredentialsRegistered {
    pub org: OrgId,
    pub user: UserId,
    /// PHC string of an argon2id hash.
    pub password_hash: String,
}

/// The login's owner changed its password: the login's fields again, with the new hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PasswordChanged {
    pub org: OrgId,
    pub user: UserId,
    /// PHC string of an argon2id hash of the new password.
    pub password_hash: String,
}

/// Events of the `credential-<email>` streams.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CredentialEvent {
    CredentialsRegistered(CredentialsRegistered),
    PasswordChanged(PasswordChanged),
}

versioned_events! {
    CredentialEvent {
        CredentialsRegistered(CredentialsRegistered) = 1,
        PasswordChanged(PasswordChanged) = 1,
    }
}

/// No texts: a login names a user and a hash.
impl Texts for CredentialEvent {
    fn texts_mut(&mut self) -> Vec<&mut Text> {
        Vec::new()
    }
}

/// What a login's newest record says: whose login it is, and the hash its password must
/// match. Every record carries all three, so the newest one alone is enough.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    pub org: OrgId,
    pub user: UserId,
    pub password_hash: String,
}

impl From<CredentialEvent> for Login {
    fn from(event: CredentialEvent) -> Self {
        match event {
            CredentialEvent::CredentialsRegistered(CredentialsRegistered {
                org,
                user,
                password_hash,
            })
            | CredentialEvent::PasswordChanged(PasswordChanged {
                org,
                user,
                password_hash,
            }) => Login {
                org,
                user,
                password_hash,
            },
        }
    }
}
