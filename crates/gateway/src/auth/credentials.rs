//! Logins and password hashes, stored as events.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use domain::{OrgId, UserId};
use eventlog::{codec, AppendError, Direction, EventData, EventStore, ExpectedVersion, StreamName};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 256;
pub const MAX_EMAIL_CHARS: usize = 254;

/// A login's record: `CredentialsRegistered` when it is made, `PasswordChanged` (the same
/// fields, the new hash) each time its owner changes the password. The newest one holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialsRegistered {
    pub org: OrgId,
    pub user: UserId,
    /// PHC string of an argon2id hash.
    pub password_hash: String,
}

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
    StreamName::from_parts("credential", email).map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_email",
            "an email address is required",
        )
    })
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
    let record = CredentialsRegistered {
        org,
        user,
        password_hash: hash(password.to_owned()).await?,
    };
    let payload = codec::encode(&record).map_err(ApiError::internal)?;
    let event = EventData::new("CredentialsRegistered", 1, payload);
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

/// As [`verify`], with the record the password opened and its stream version.
async fn verify_record(
    store: &Arc<dyn EventStore>,
    email: &str,
    password: &str,
) -> Result<(CredentialsRegistered, u64), ApiError> {
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

/// The login's newest record and its stream version, if `email` (normalised) has one.
async fn current(
    store: &Arc<dyn EventStore>,
    email: &str,
) -> Result<Option<(CredentialsRegistered, u64)>, ApiError> {
    let stream = stream_of(email)?;
    let events =
        eventlog::store::nonblocking::read_stream(store, &stream, u64::MAX, Direction::Backward, 1)
            .await
            .map_err(ApiError::from)?;
    match events.first() {
        Some(e) => Ok(Some((
            codec::decode(&e.payload).map_err(ApiError::internal)?,
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
    let (mut record, version) = match verify_record(store, &email, current_password).await {
        Ok(found) if found.0.user == user => found,
        Ok(_) => return Err(wrong()),
        Err(e) if e.code == "invalid_credentials" => return Err(wrong()),
        Err(e) => return Err(e),
    };
    record.password_hash = hash(new_password.to_owned()).await?;
    let payload = codec::encode(&record).map_err(ApiError::internal)?;
    let event = EventData::new("PasswordChanged", 1, payload);
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
