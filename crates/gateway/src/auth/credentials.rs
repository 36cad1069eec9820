//! Logins and password hashes, stored as events: the domain's [`CredentialEvent`]s
//! (`CredentialsRegistered` when a login is made, `PasswordChanged` at each change of its
//! password; the newest one holds). This module appends and reads them.

use std::sync::Arc;

use actors::event_codec;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use domain::credential::{
    CredentialEvent, CredentialsRegistered, Login, PasswordChanged, CREDENTIAL_CATEGORY,
};
use domain::{OrgId, UserId};
use eventlog::{AppendError, Direction, EventData, EventStore, ExpectedVersion, StreamName};
use rand_core::OsRng;
use uuid::Uuid;

use crate::error::ApiError;

pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 256;
pub const MAX_EMAIL_CHARS: usize = 254;

/// The normalised login: trimmed, lower-case, plausibly an email.
///
/// # Errors
/// `invalid_email` when it is not.
pub fn normalise_email(email: &str) -> Result<String, ApiError> {
    let e = email.trim().to_lowercase();
    let plausible = e.len() <= MAX_EMAIL_CHARS
        && e.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'))
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if plausible {
        Ok(e)
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_email",
            "an email address is required",
        ))
    }
}

/// Checks the password's length (in characters).
///
/// # Errors
/// `weak_password` or `password_too_long`.
pub fn check_password(password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "weak_password",
            format!("a password needs at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "password_too_long",
            format!("a password has at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

fn stream_of(email: &str) -> Result<StreamName, ApiError> {
    StreamName::from_parts(CREDENTIAL_CATEGORY, email).map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_email",
            "an email address is required",
        )
    })
}

/// The log record of `event` (a fresh event id: the expected version orders the writes).
fn record(event: &CredentialEvent) -> Result<EventData, ApiError> {
    event_codec::encode(event, Uuid::new_v4(), eventlog::Metadata::default())
        .map_err(ApiError::internal)
}

/// Hashes `password` with argon2id (off the executor: it is deliberately slow).
async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)
}

/// Registers `email` for `user`. The email must not be registered yet.
///
/// # Errors
/// `email_taken` (409), validation errors, or an internal error.
pub async fn register(
    store: &Arc<dyn EventStore>,
    email: &str,
    password: &str,
    org: OrgId,
    user: UserId,
) -> Result<(), ApiError> {
    check_password(password)?;
    let stream = stream_of(email)?;
    let event = record(&CredentialEvent::CredentialsRegistered(
        CredentialsRegistered {
            org,
            user,
            password_hash: hash(password.to_owned()).await?,
        },
    ))?;
    match store
        .append(stream, ExpectedVersion::NoStream, vec![event])
        .await
    {
        Ok(_) => Ok(()),
        Err(AppendError::WrongExpectedVersion { .. }) => Err(ApiError::conflict(
            "email_taken",
            "this email is already registered",
        )),
        Err(e) => Err(ApiError::from(e)),
    }
}

/// The (organization, user) whose login this is, if the password is right. A wrong
/// password and an unknown email are answered the same way, in about the same time.
///
/// # Errors
/// `invalid_credentials` (401), or an internal error.
pub async fn verify(
    store: &Arc<dyn EventStore>,
    email: &str,
    password: &str,
) -> Result<(OrgId, UserId), ApiError> {
    verify_record(store, email, password)
        .await
        .map(|(r, _)| (r.org, r.user))
}

/// As [`verify`], with the login the password opened and its stream version.
async fn verify_record(
    store: &Arc<dyn EventStore>,
    email: &str,
    password: &str,
) -> Result<(Login, u64), ApiError> {
    let invalid = || {
        ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong email or password",
        )
    };
    let Ok(email) = normalise_email(email) else {
        return Err(invalid());
    };
    let found = current(store, &email).await?;
    // Unknown emails are checked against a fixed hash, so timing does not tell them apart.
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c3dpdGNoYm9hcmRzYWx0$1v6mhbgLc+FxvOh3n3Y9mI3ll3b7mW0i3ZQvW9F1jz8";
    let stored = found
        .as_ref()
        .map_or(DUMMY.to_owned(), |(r, _)| r.password_hash.clone());
    let password = password.to_owned();
    let ok = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .map_err(ApiError::internal)?;
    match found {
        Some(found) if ok => Ok(found),
        _ => Err(invalid()),
    }
}

/// What the login's newest record says and its stream version, if `email` (normalised)
/// has one.
async fn current(
    store: &Arc<dyn EventStore>,
    email: &str,
) -> Result<Option<(Login, u64)>, ApiError> {
    let stream = stream_of(email)?;
    let events =
        eventlog::store::nonblocking::read_stream(store, &stream, u64::MAX, Direction::Backward, 1)
            .await
            .map_err(ApiError::from)?;
    match events.first() {
        Some(e) => Ok(Some((
            event_codec::decode::<CredentialEvent>(e)
                .map_err(ApiError::internal)?
                .into(),
            e.version,
        ))),
        None => Ok(None),
    }
}

/// Changes the password of `email`'s login, which must be `user`'s and open with
/// `current_password`.
///
/// # Errors
/// `wrong_password` (403) when the email is not `user`'s login or the current password is
/// wrong (the two are not told apart); `weak_password` / `password_too_long` (422);
/// `password_changed_concurrently` (409) when another change won the race.
pub async fn change_password(
    store: &Arc<dyn EventStore>,
    user: UserId,
    email: &str,
    current_password: &str,
    new_password: &str,
) -> Result<(), ApiError> {
    check_password(new_password)?;
    let wrong = || {
        ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "wrong_password",
            "that is not your email and current password",
        )
    };
    let Ok(email) = normalise_email(email) else {
        return Err(wrong());
    };
    // The version the current password was checked against: a change made meanwhile makes
    // this one conflict, never overwrites it.
    let (login, version) = match verify_record(store, &email, current_password).await {
        Ok(found) if found.0.user == user => found,
        Ok(_) => return Err(wrong()),
        Err(e) if e.code == "invalid_credentials" => return Err(wrong()),
        Err(e) => return Err(e),
    };
    let event = record(&CredentialEvent::PasswordChanged(PasswordChanged {
        org: login.org,
        user: login.user,
        password_hash: hash(new_password.to_owned()).await?,
    }))?;
    match store
        .append(
            stream_of(&email)?,
            ExpectedVersion::Exact(version),
            vec![event],
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(AppendError::WrongExpectedVersion { .. }) => Err(ApiError::conflict(
            "password_changed_concurrently",
            "the password was changed meanwhile; try again",
        )),
        Err(e) => Err(ApiError::from(e)),
    }
}

#[cfg(test)]
mod tests {
    use eventlog::{codec, LogOptions, RocksLog};
    use serde::Serialize;

    use super::*;

    /// The record as this module wrote it before it was a domain event: one struct,
    /// encoded bare under both event types, version 1.
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
    async fn a_login_registered_the_old_way_verifies_and_changes_its_password() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn EventStore> =
            Arc::new(RocksLog::open(dir.path().join("log"), LogOptions::default()).unwrap());
        let (org, user) = (OrgId::random(), UserId::random());
        let email = "ada@acme.example";
        let old = OldCredentialsRegistered {
            org,
            user,
            password_hash: hash("correct horse battery".to_owned()).await.unwrap(),
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
            verify(&store, email, "correct horse battery")
                .await
                .unwrap(),
            (org, user)
        );
        change_password(
            &store,
            user,
            email,
            "correct horse battery",
            "a new, longer passphrase",
        )
        .await
        .unwrap();
        assert!(verify(&store, email, "correct horse battery")
            .await
            .is_err());
        assert_eq!(
            verify(&store, email, "a new, longer passphrase")
                .await
                .unwrap(),
            (org, user)
        );
    }
}
