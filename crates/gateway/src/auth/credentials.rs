//! Logins and passwords: emails normalised, passwords judged and hashed with argon2id
//! here; the records (`credential-<email>`, the domain's `CredentialEvent`s) are
//! `records::credentials`'.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use domain::credential::Login;
use domain::{OrgId, UserId};
use eventlog::EventStore;
use rand_core::OsRng;
use records::credentials::Registration;

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
    let password_hash = hash(password.to_owned()).await?;
    match records::credentials::register(store, email, org, user, password_hash).await? {
        Registration::Registered => Ok(()),
        Registration::Taken => Err(ApiError::conflict(
            "email_taken",
            "this email is already registered",
        )),
        Registration::InvalidEmail => Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_email",
            "an email address is required",
        )),
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
    let found = records::credentials::current(store, &email).await?;
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
    let password_hash = hash(new_password.to_owned()).await?;
    if records::credentials::change(store, &email, version, &login, password_hash).await? {
        Ok(())
    } else {
        Err(ApiError::conflict(
            "password_changed_concurrently",
            "the password was changed meanwhile; try again",
        ))
    }
}
