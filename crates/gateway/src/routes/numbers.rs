//! Business numbers: the organization's list (`GET /v1/numbers`, any member: the From
//! picker's source), adding a personal number, SMS registration, who may send from a
//! number (`/assignees`) and where its texts go (`/route`) — every write admin only, by
//! the directory's rules.
//!
//! Business numbers are unique across the whole service: a number belongs to one
//! organization. The claim is a `number-<E.164>` stream whose first event names the owner,
//! written with `NoStream`, so two organizations can never both hold a number (and the
//! carrier edge can map an inbound text's number to its organization): the domain's
//! `NumberClaimed`, written and read by `records::claims`.

use std::sync::Arc;

use domain::{OrgId, PhoneNumber};
use eventlog::EventStore;

use crate::error::ApiError;
use crate::routes::json::ApiPath;

/// Claims `number` for `org`. Claiming a number the organization already holds is fine.
///
/// # Errors
/// `number_taken` (409) when another organization holds it; internal errors.
pub async fn claim(
    store: &Arc<dyn EventStore>,
    number: &PhoneNumber,
    org: OrgId,
) -> Result<(), ApiError> {
    if records::claims::claim_number(store, number, org).await? {
        Ok(())
    } else {
        Err(ApiError::conflict(
            "number_taken",
            "this number belongs to another organization",
        ))
    }
}

/// Claims `number` for the caller's organization, routes it (admin only, by the
/// directory's rules) to `routing` and, when `sms_registered`, registers it for SMS — the
/// same default as `POST /v1/numbers`, so an inbox's or queue's first reply can go out.
///
/// # Errors
/// `number_taken`, the directory's refusals, internal errors.
pub async fn claim_and_route(
    state: &crate::app::AppState,
    caller: &crate::auth::Authenticated,
    number: PhoneNumber,
    routing: domain::directory::Routing,
    sms_registered: bool,
) -> Result<(), ApiError> {
    claim(state.store(), &number, caller.org).await?;
    let add = caller.meta().issue(domain::DirectoryCommand::AddNumber {
        number: number.clone(),
        route: routing,
        destination_exists: true,
    });
    state
        .ws
        .directories
        .execute(&caller.org, add, actors::ExecuteOptions::default())
        .await?;
    if sms_registered {
        let register = caller
            .meta()
            .issue(domain::DirectoryCommand::SetSmsRegistration {
                number,
                registered: true,
            });
        state
            .ws
            .directories
            .execute(&caller.org, register, actors::ExecuteOptions::default())
            .await?;
    }
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
    Ok(records::claims::number_owner(store, number).await?)
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
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

pub(crate) fn registered_by_default() -> bool {
    true
}

#[derive(Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
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

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
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
    ApiPath(number): ApiPath<String>,
    crate::routes::json::ApiJson(req): crate::routes::json::ApiJson<SmsRegistration>,
) -> Result<axum::Json<crate::routes::Written>, ApiError> {
    let number = crate::routes::path_phone_number(&number)?;
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

/// Where a number's texts go, as the API shows and takes it:
/// `{"type": "user", "user": id}`, `{"type": "inbox", "inbox": id}` or
/// `{"type": "queue", "queue": id}`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RouteOut {
    User { user: domain::UserId },
    Inbox { inbox: domain::InboxId },
    Queue { queue: domain::QueueId },
}

impl From<domain::directory::Routing> for RouteOut {
    fn from(r: domain::directory::Routing) -> Self {
        use domain::directory::Routing;
        match r {
            Routing::User(user) => Self::User { user },
            Routing::Inbox(inbox) => Self::Inbox { inbox },
            Routing::Queue(queue) => Self::Queue { queue },
        }
    }
}

impl From<RouteOut> for domain::directory::Routing {
    fn from(r: RouteOut) -> Self {
        match r {
            RouteOut::User { user } => Self::User(user),
            RouteOut::Inbox { inbox } => Self::Inbox(inbox),
            RouteOut::Queue { queue } => Self::Queue(queue),
        }
    }
}

/// One business number of the organization.
#[derive(Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct NumberOut {
    pub number: String,
    /// Only registered numbers send SMS.
    pub sms_registered: bool,
    pub route: RouteOut,
    /// The users who may send from it (a personal line's user; nobody for an inbox or
    /// queue number, whose replies go through the inbox or queue).
    pub assigned_to: Vec<domain::UserId>,
    /// The caller may send from it (assigned to them); with `sms_registered`, it is a
    /// choice of their From picker.
    pub mine: bool,
}

#[derive(Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct NumberList {
    pub items: Vec<NumberOut>,
}

/// `GET /v1/numbers`: the caller's organization's business numbers, in number order.
///
/// # Errors
/// Internal errors.
pub async fn list(
    axum::extract::State(state): axum::extract::State<crate::app::AppState>,
    caller: crate::auth::Authenticated,
) -> Result<axum::Json<NumberList>, ApiError> {
    let user = caller.user;
    let items = state
        .ws
        .directories
        .query(&caller.org, move |d: &domain::Directory, _| {
            d.numbers()
                .map(|n| NumberOut {
                    number: n.number.to_string(),
                    sms_registered: n.sms_registered,
                    route: n.route.into(),
                    assigned_to: n.assigned_to.iter().copied().collect(),
                    mine: n.is_assigned_to(user),
                })
                .collect::<Vec<_>>()
        })
        .await?;
    Ok(axum::Json(NumberList { items }))
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Assignee {
    pub user: domain::UserId,
}

async fn directory_command(
    state: &crate::app::AppState,
    caller: &crate::auth::Authenticated,
    command: domain::DirectoryCommand,
) -> Result<axum::Json<crate::routes::Written>, ApiError> {
    let out = state
        .ws
        .directories
        .execute(
            &caller.org,
            caller.meta().issue(command),
            actors::ExecuteOptions::default(),
        )
        .await?;
    Ok(crate::routes::Written::of(&out))
}

/// `POST /v1/numbers/{number}/assignees` (admin): `user` may send from the number (a
/// personal or shared line; not an inbox or queue number).
///
/// # Errors
/// `admin_only`, `unknown_number`, `unknown_user`, `not_a_personal_number`, ...
pub async fn assign(
    axum::extract::State(state): axum::extract::State<crate::app::AppState>,
    caller: crate::auth::Authenticated,
    ApiPath(number): ApiPath<String>,
    crate::routes::json::ApiJson(req): crate::routes::json::ApiJson<Assignee>,
) -> Result<axum::Json<crate::routes::Written>, ApiError> {
    let number = crate::routes::path_phone_number(&number)?;
    let command = domain::DirectoryCommand::AssignNumber {
        number,
        user: req.user,
    };
    directory_command(&state, &caller, command).await
}

/// `DELETE /v1/numbers/{number}/assignees/{user}` (admin): `user` may no longer send
/// from it (the user a number is routed to keeps it).
///
/// # Errors
/// `admin_only`, `unknown_number`, `routed_user_must_keep_number`, ...
pub async fn unassign(
    axum::extract::State(state): axum::extract::State<crate::app::AppState>,
    caller: crate::auth::Authenticated,
    ApiPath((number, user)): ApiPath<(String, domain::UserId)>,
) -> Result<axum::Json<crate::routes::Written>, ApiError> {
    let number = crate::routes::path_phone_number(&number)?;
    let command = domain::DirectoryCommand::UnassignNumber { number, user };
    directory_command(&state, &caller, command).await
}

/// `POST /v1/numbers/{number}/route` (admin): where texts to the number go from now on —
/// a user (their personal line, assigned to them), or the inbox or queue created on this
/// number (an inbox or queue serves only its own number).
///
/// # Errors
/// `admin_only`, `unknown_number`, `unknown_user`, `unknown_destination`, ...
pub async fn route(
    axum::extract::State(state): axum::extract::State<crate::app::AppState>,
    caller: crate::auth::Authenticated,
    ApiPath(number): ApiPath<String>,
    crate::routes::json::ApiJson(to): crate::routes::json::ApiJson<RouteOut>,
) -> Result<axum::Json<crate::routes::Written>, ApiError> {
    let number = crate::routes::path_phone_number(&number)?;
    let org = caller.org;
    let serves = |h_org: OrgId, h_number: &PhoneNumber| h_org == org && h_number == &number;
    let destination_exists = match to {
        RouteOut::User { .. } => true,
        RouteOut::Inbox { inbox } => {
            let header = state
                .ws
                .inboxes
                .query(&inbox, |i: &domain::Inbox, _| {
                    i.header().map(|h| (h.org, h.number.clone()))
                })
                .await?;
            header.is_some_and(|(o, n)| serves(o, &n))
        }
        RouteOut::Queue { queue } => {
            let header = state
                .ws
                .queues
                .query(&queue, |q: &domain::Queue, _| {
                    q.header().map(|h| (h.org, h.number.clone()))
                })
                .await?;
            header.is_some_and(|(o, n)| serves(o, &n))
        }
    };
    let command = domain::DirectoryCommand::RouteNumber {
        number,
        to: to.into(),
        destination_exists,
    };
    directory_command(&state, &caller, command).await
}
