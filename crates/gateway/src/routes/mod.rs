//! The handlers, one file per resource.

pub mod attachments;
pub mod bootstrap;
pub mod channels;
pub mod contacts;
pub mod conversations;
pub mod facts;
pub mod health;
pub mod idempotency;
pub mod inboxes;
pub mod interactions;
pub mod json;
pub mod me;
pub mod numbers;
pub mod queues;
pub mod retention;
pub mod search;
pub mod sessions;
pub mod settings;
pub mod simulator;
pub mod stream;
pub mod twilio;
pub mod users;
pub mod web;
pub mod webhooks;
pub mod wire;

/// The answer to a command: where its events landed in the log (`None` when it changed
/// nothing), to pass as `after=` to a read-model query (read your writes).
#[derive(Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Written {
    pub position: Option<u64>,
}

impl Written {
    pub fn of<E>(r: &actors::CommandOutcome<E>) -> axum::Json<Self> {
        axum::Json(Self {
            position: r.position,
        })
    }
}

/// A phone number from a request body, or `invalid_phone_number` (422).
pub(crate) fn phone_number(s: &str) -> Result<domain::PhoneNumber, crate::error::ApiError> {
    domain::PhoneNumber::parse(s).map_err(|_| {
        crate::error::ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_phone_number",
            "a phone number in E.164 form is required",
        )
    })
}

/// A phone number in a request's path, or `invalid_path` (400), as any malformed path
/// segment.
pub(crate) fn path_phone_number(s: &str) -> Result<domain::PhoneNumber, crate::error::ApiError> {
    domain::PhoneNumber::parse(s).map_err(|_| {
        crate::error::ApiError::bad_request(
            "invalid_path",
            "the number in the path must be in E.164 form (+15557770001)",
        )
    })
}

/// Decides `command` against the aggregate's current state without writing, so a request
/// that the domain refuses is answered before anything else of it is written.
pub(crate) async fn decide_first<A>(
    registry: &actors::Registry<A>,
    id: &(impl std::fmt::Display + ?Sized),
    command: &A::Command,
) -> Result<(), crate::error::ApiError>
where
    A: actors::ActorAggregate,
    A::Rejection: domain::Rejection,
{
    let command = command.clone();
    registry
        .query(&id.to_string(), move |a: &A, _| {
            domain::Aggregate::decide(a, &command).map(|_| ())
        })
        .await?
        .map_err(|r| crate::error::ApiError::rejected(&r))
}
