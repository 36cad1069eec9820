//! Logins: `credential-<email>` holds a login's records, the domain's
//! [`CredentialEvent`]s (`CredentialsRegistered` when the login is made, `PasswordChanged`
//! at each change of its password; the newest one holds). Only password hashes are stored;
//! hashing and checking passwords is the caller's.

use std::sync::Arc;

use actors::event_codec;
use domain::credential::{
    CredentialEvent, CredentialsRegistered, Login, PasswordChanged, CREDENTIAL_CATEGORY,
};
use domain::{OrgId, UserId};
use eventlog::{AppendError, Direction, EventData, EventStore, ExpectedVersion, StreamName};
use uuid::Uuid;

use crate::RecordError;

/// What [`register`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    Registered,
    /// The email has a login already; nothing written.
    Taken,
    /// The email cannot name a stream; nothing written.
    InvalidEmail,
}

fn stream_of(email: &str) -> Option<StreamName> {
    StreamName::from_parts(CREDENTIAL_CATEGORY, email).ok()
}

/// The log record of `event` (a fresh event id: the expected version orders the writes).
fn record(event: &CredentialEvent) -> Result<EventData, RecordError> {
    event_codec::encode(event, Uuid::new_v4(), eventlog::Metadata::default())
        .map_err(RecordError::internal)
}

/// Registers `email` (normalised) for `user` with `password_hash`, unless it has a login.
///
/// # Errors
/// The log's.
pub async fn register(
    store: &Arc<dyn EventStore>,
    email: &str,
    org: OrgId,
    user: UserId,
    password_hash: String,
) -> Result<Registration, RecordError> {
    let Some(stream) = stream_of(email) else {
        return Ok(Registration::InvalidEmail);
    };
    let event = record(&CredentialEvent::CredentialsRegistered(
        CredentialsRegistered {
            org,
            user,
            password_hash,
        },
    ))?;
    match store
        .append(stream, ExpectedVersion::NoStream, vec![event])
        .await
    {
        Ok(_) => Ok(Registration::Registered),
        Err(AppendError::WrongExpectedVersion { .. }) => Ok(Registration::Taken),
        Err(e) => Err(e.into()),
    }
}

/// What the login's newest record says and its stream version, if `email` (normalised)
/// has one.
///
/// # Errors
/// The log's, or a record that does not decode.
pub async fn current(
    store: &Arc<dyn EventStore>,
    email: &str,
) -> Result<Option<(Login, u64)>, RecordError> {
    let Some(stream) = stream_of(email) else {
        return Ok(None);
    };
    let events =
        eventlog::store::nonblocking::read_stream(store, &stream, u64::MAX, Direction::Backward, 1)
            .await?;
    match events.first() {
        Some(e) => Ok(Some((
            event_codec::decode::<CredentialEvent>(e)
                .map_err(RecordError::internal)?
                .into(),
            e.version,
        ))),
        None => Ok(None),
    }
}

/// Records `login`'s new `password_hash`, if the login's stream is still at `version` (the
/// one whose hash the caller checked): `false` when it changed meanwhile (nothing written).
///
/// # Errors
/// The log's.
pub async fn change(
    store: &Arc<dyn EventStore>,
    email: &str,
    version: u64,
    login: &Login,
    password_hash: String,
) -> Result<bool, RecordError> {
    let stream =
        stream_of(email).ok_or_else(|| RecordError::Internal(format!("no login {email:?}")))?;
    let event = record(&CredentialEvent::PasswordChanged(PasswordChanged {
        org: login.org,
        user: login.user,
        password_hash,
    }))?;
    match store
        .append(stream, ExpectedVersion::Exact(version), vec![event])
        .await
    {
        Ok(_) => Ok(true),
        Err(AppendError::WrongExpectedVersion { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use eventlog::{codec, LogOptions, RocksLog};
    use serde::Serialize;

    use super::*;

    /// The record as it was written before it was a domain event: one struct, encoded
    /// bare under both event types, version 1.
    #[derive(Serialize)]
    struct OldCredentialsRegistered {
        org: OrgId,
        user: UserId,
        password_hash: String,
    }

    #[test]
    fn the_records_are_the_bytes_written_before() {
        let (org, user) = (OrgId::random(), UserId::random());
        let password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned();
        let old = codec::encode(&OldCredentialsRegistered {
            org,
            user,
            password_hash: password_hash.clone(),
        })
        .unwrap();
        let registered = record(&CredentialEvent::CredentialsRegistered(
            CredentialsRegistered {
                org,
                user,
                password_hash: password_hash.clone(),
            },
        ))
        .unwrap();
        let changed = record(&CredentialEvent::PasswordChanged(PasswordChanged {
            org,
            user,
            password_hash,
        }))
        .unwrap();
        for (data, event_type) in [
            (registered, "CredentialsRegistered"),
            (changed, "PasswordChanged"),
        ] {
            assert_eq!(
                (data.event_type.as_str(), data.schema_version),
                (event_type, 1)
            );
            assert_eq!(data.payload, old, "{event_type}");
        }
    }

    #[tokio::test]
    async fn a_login_registered_the_old_way_reads_and_changes_once_per_version() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn EventStore> =
            Arc::new(RocksLog::open(dir.path().join("log"), LogOptions::default()).unwrap());
        let (org, user) = (OrgId::random(), UserId::random());
        let email = "ada@acme.example";
        let old = OldCredentialsRegistered {
            org,
            user,
            password_hash: "old-hash".to_owned(),
        };
        store
            .append(
                stream_of(email).unwrap(),
                ExpectedVersion::NoStream,
                vec![EventData::new(
                    "CredentialsRegistered",
                    1,
                    codec::encode(&old).unwrap(),
                )],
            )
            .await
            .unwrap();
        assert_eq!(
            register(&store, email, org, user, "x".into())
                .await
                .unwrap(),
            Registration::Taken
        );
        let (login, version) = current(&store, email).await.unwrap().unwrap();
        assert_eq!(
            (login.org, login.user, login.password_hash.as_str(), version),
            (org, user, "old-hash", 0)
        );
        assert!(change(&store, email, version, &login, "new-hash".into())
            .await
            .unwrap());
        // A second change checked against the same version lost the race: nothing written.
        assert!(!change(&store, email, version, &login, "other".into())
            .await
            .unwrap());
        let (login, version) = current(&store, email).await.unwrap().unwrap();
        assert_eq!((login.password_hash.as_str(), version), ("new-hash", 1));
    }
}
