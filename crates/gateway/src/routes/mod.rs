//! The handlers, one file per resource.

pub mod bootstrap;
pub mod channels;
pub mod conversations;
pub mod facts;
pub mod health;
pub mod inboxes;
pub mod json;
pub mod me;
pub mod numbers;
pub mod queues;
pub mod sessions;
pub mod stream;
pub mod users;

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
