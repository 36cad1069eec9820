//! The session records of the log: per bearer token a stream `session-<id>` that starts
//! with [`SessionStarted`] (only a hash of the token's secret, never the secret) and may end
//! with [`SessionRevoked`] (logout, or a password change ending the user's other sessions);
//! and per user an index stream `sessions-<user>` with one [`SessionOpened`] per session,
//! so that all of a user's sessions can be found and ended at once. The gateway appends
//! and reads them (`gateway::auth::sessions`); the records are versioned events
//! ([`SessionEvent`]) with their schemas in `schemas/`.
//!
//! Before they were domain records the gateway stored both events of `session-<id>`
//! streams as its own enum, encoded whole (a variant position before the fields): those
//! are version 1 of [`SessionStarted`] and [`SessionRevoked`], read through [`legacy`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::schema::versioned_events;
use crate::text::{Text, Texts};
use crate::{OrgId, UserId};

/// Category of the streams of one session each.
pub const SESSION_CATEGORY: &str = "session";

/// Category of the users' indexes of their sessions.
pub const SESSION_INDEX_CATEGORY: &str = "sessions";

/// A session began: the first event of its `session-<id>` stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SessionStarted {
    pub org: OrgId,
    pub user: UserId,
    /// BLAKE3 of the token's secret: the log never holds a usable token.
    pub secret_hash: [u8; 32],
    pub expires_at_ms: u64,
}

/// The session ended before its expiry (logout, or its user's password changed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SessionRevoked {
    pub at_ms: u64,
}

/// An entry of a user's index `sessions-<user>`: one of their sessions, until when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SessionOpened {
    #[schemars(with = "String")]
    pub session: Uuid,
    pub expires_at_ms: u64,
}

/// Events of the `session-<id>` streams and of the `sessions-<user>` indexes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionEvent {
    SessionStarted(SessionStarted),
    SessionRevoked(SessionRevoked),
    SessionOpened(SessionOpened),
}

versioned_events! {
    SessionEvent {
        SessionStarted(SessionStarted) = 2 [
            1: legacy::SessionStartedV1 => legacy::session_started_v1_to_v2,
        ],
        SessionRevoked(SessionRevoked) = 2 [
            1: legacy::SessionRevokedV1 => legacy::session_revoked_v1_to_v2,
        ],
        SessionOpened(SessionOpened) = 1,
    }
}

/// No texts: a session names a user and a hash, never a message body.
impl Texts for SessionEvent {
    fn texts_mut(&mut self) -> Vec<&mut Text> {
        Vec::new()
    }
}

/// Version 1 of the `session-<id>` events, as the gateway stored them before they were
/// domain records: its enum `SessionEvent { Started {..}, Revoked {..} }` encoded whole,
/// so bincode wrote the variant's position (0 or 1) before its fields. Read only: nothing
/// writes version 1 any more.
///
/// Frozen: nothing here ever changes (the files in `schemas/` must keep matching).
pub mod legacy {
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    use super::{SessionRevoked, SessionStarted};
    use crate::{OrgId, UserId};

    /// The gateway's former enum, exactly as it was stored (variant positions included;
    /// a struct variant and a newtype variant over a struct of the same fields are the
    /// same bytes, and the same JSON).
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub enum SessionEventV1 {
        Started(StartedV1),
        Revoked(RevokedV1),
    }

    /// The fields of `SessionEventV1::Started`.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[schemars(rename = "Started")]
    pub struct StartedV1 {
        pub org: OrgId,
        pub user: UserId,
        pub secret_hash: [u8; 32],
        pub expires_at_ms: u64,
    }

    /// The fields of `SessionEventV1::Revoked`.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[schemars(rename = "Revoked")]
    pub struct RevokedV1 {
        pub at_ms: u64,
    }

    /// [`SessionStarted`] version 1: variant `Started` (position 0) of the gateway's former
    /// enum `SessionEvent`, stored whole. Reads only that variant.
    #[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
    #[serde(try_from = "SessionEventV1")]
    #[schemars(rename = "SessionStarted")]
    pub struct SessionStartedV1 {
        #[schemars(rename = "Started")]
        pub started: StartedV1,
    }

    impl TryFrom<SessionEventV1> for SessionStartedV1 {
        type Error = String;

        fn try_from(stored: SessionEventV1) -> Result<Self, String> {
            match stored {
                SessionEventV1::Started(started) => Ok(Self { started }),
                SessionEventV1::Revoked(_) => Err("a SessionStarted v1 holding a Revoked".into()),
            }
        }
    }

    /// [`SessionRevoked`] version 1: variant `Revoked` (position 1) of the gateway's former
    /// enum `SessionEvent`, stored whole. Reads only that variant.
    #[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
    #[serde(try_from = "SessionEventV1")]
    #[schemars(rename = "SessionRevoked")]
    pub struct SessionRevokedV1 {
        #[schemars(rename = "Revoked")]
        pub revoked: RevokedV1,
    }

    impl TryFrom<SessionEventV1> for SessionRevokedV1 {
        type Error = String;

        fn try_from(stored: SessionEventV1) -> Result<Self, String> {
            match stored {
                SessionEventV1::Revoked(revoked) => Ok(Self { revoked }),
                SessionEventV1::Started(_) => Err("a SessionRevoked v1 holding a Started".into()),
            }
        }
    }

    /// The same fields, without the enum around them.
    pub fn session_started_v1_to_v2(v1: SessionStartedV1) -> SessionStarted {
        let StartedV1 {
            org,
            user,
            secret_hash,
            expires_at_ms,
        } = v1.started;
        SessionStarted {
            org,
            user,
            secret_hash,
            expires_at_ms,
        }
    }

    /// The same field, without the enum around it.
    pub fn session_revoked_v1_to_v2(v1: SessionRevokedV1) -> SessionRevoked {
        SessionRevoked {
            at_ms: v1.revoked.at_ms,
        }
    }
}
