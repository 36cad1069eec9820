//! Business numbers are unique across the whole service: a number belongs to one
//! organization. The claim is a `number-<E.164>` stream whose first event names the owner,
//! written with `NoStream`, so two organizations can never both hold a number (and the
//! carrier edge can map an inbound text's number to its organization).

use std::sync::Arc;

use domain::{OrgId, PhoneNumber};
use eventlog::{codec, AppendError, Direction, EventData, EventStore, ExpectedVersion, StreamName};

use crate::error::ApiError;

/// Claims `number` for `org`. Claiming a number the organization already holds is fine.
///
/// # Errors
/// `number_taken` (409) when another organization holds it; internal errors.
pub async fn claim(
    store: &Arc<dyn EventStore>,
    number: &PhoneNumber,
    org: OrgId,
) -> Result<(), ApiError> {
    let stream = StreamName::from_parts("number", number).map_err(ApiError::internal)?;
    let payload = codec::encode(&org).map_err(ApiError::internal)?;
    let claim = EventData::new("NumberClaimed", 1, payload);
    match store
        .append(stream.clone(), ExpectedVersion::NoStream, vec![claim])
        .await
    {
        Ok(_) => Ok(()),
        Err(AppendError::WrongExpectedVersion { .. }) => {
            let first =
                eventlog::store::nonblocking::read_stream(store, &stream, 0, Direction::Forward, 1)
                    .await
                    .map_err(ApiError::internal)?;
            let owner: Option<OrgId> = first.first().and_then(|e| codec::decode(&e.payload).ok());
            if owner == Some(org) {
                Ok(())
            } else {
                Err(ApiError::conflict(
                    "number_taken",
                    "this number belongs to another organization",
                ))
            }
        }
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// Claims `number` for the caller's organization and routes it (admin only, by the
/// directory's rules) to `routing`.
///
/// # Errors
/// `number_taken`, the directory's refusals, internal errors.
pub async fn claim_and_route(
    state: &crate::app::AppState,
    caller: &crate::auth::Authenticated,
    number: PhoneNumber,
    routing: domain::directory::Routing,
) -> Result<(), ApiError> {
    claim(state.store(), &number, caller.org).await?;
    let add = caller.meta().issue(domain::DirectoryCommand::AddNumber {
        number,
        route: routing,
        destination_exists: true,
    });
    state
        .ws
        .directories
        .execute(&caller.org, add, actors::ExecuteOptions::default())
        .await?;
    Ok(())
}

/// The organization holding `number`, if one claimed it (the carrier edge's way from an
/// inbound text's number to its organization).
///
/// # Errors
/// Internal errors.
pub async fn owner(
    store: &Arc<dyn EventStore>,
    number: &PhoneNumber,
) -> Result<Option<OrgId>, ApiError> {
    let stream = StreamName::from_parts("number", number).map_err(ApiError::internal)?;
    let first = eventlog::store::nonblocking::read_stream(store, &stream, 0, Direction::Forward, 1)
        .await
        .map_err(ApiError::internal)?;
    Ok(first.first().and_then(|e| codec::decode(&e.payload).ok()))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewNumber {
    pub number: String,
    /// The user whose line it is: texts to it land in their External conversations, and
    /// they may send from it.
    pub user: domain::UserId,
    /// Register it for SMS at once (default true): only registered numbers send.
    #[serde(default = "registered_by_default")]
    pub sms_registered: bool,
}

fn registered_by_default() -> bool {
    true
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct AddedNumber {
    pub number: String,
    pub position: Option<u64>,
}

/// `POST /v1/numbers` (admin): a personal business number for `user`, claimed for the
/// organization, assigned to them and (by default) SMS-registered.
///
/// # Errors
/// `admin_only`, `unknown_user`, `number_taken`, `number_already_added`, ...
pub async fn add_number(
    axum::extract::State(state): axum::extract::State<crate::app::AppState>,
    caller: crate::auth::Authenticated,
    crate::routes::json::ApiJson(req): crate::routes::json::ApiJson<NewNumber>,
) -> Result<(axum::http::StatusCode, axum::Json<AddedNumber>), ApiError> {
    let number = crate::routes::phone_number(&req.number)?;
    let add = caller.meta().issue(domain::DirectoryCommand::AddNumber {
        number: number.clone(),
        route: domain::directory::Routing::User(req.user),
        destination_exists: true,
    });
    crate::routes::decide_first(&state.ws.directories, &caller.org, &add).await?;
    claim(state.store(), &number, caller.org).await?;
    let mut out = state
        .ws
        .directories
        .execute(&caller.org, add, actors::ExecuteOptions::default())
        .await?;
    if req.sms_registered {
        let register = caller
            .meta()
            .issue(domain::DirectoryCommand::SetSmsRegistration {
                number: number.clone(),
                registered: true,
            });
        out = state
            .ws
            .directories
            .execute(&caller.org, register, actors::ExecuteOptions::default())
            .await?;
    }
    Ok((
        axum::http::StatusCode::CREATED,
        axum::Json(AddedNumber {
            number: number.to_string(),
            position: out.position,
        }),
    ))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsRegistration {
    pub registered: bool,
}

/// `POST /v1/numbers/{number}/sms-registration` (admin): whether the number may send SMS.
///
/// # Errors
/// `admin_only`, `unknown_number`, ...
pub async fn set_sms_registration(
    axum::extract::State(state): axum::extract::State<crate::app::AppState>,
    caller: crate::auth::Authenticated,
    axum::extract::Path(number): axum::extract::Path<String>,
    crate::routes::json::ApiJson(req): crate::routes::json::ApiJson<SmsRegistration>,
) -> Result<axum::Json<crate::routes::Written>, ApiError> {
    let number = crate::routes::phone_number(&number)?;
    let cmd = caller
        .meta()
        .issue(domain::DirectoryCommand::SetSmsRegistration {
            number,
            registered: req.registered,
        });
    let out = state
        .ws
        .directories
        .execute(&caller.org, cmd, actors::ExecuteOptions::default())
        .await?;
    Ok(crate::routes::Written::of(&out))
}
