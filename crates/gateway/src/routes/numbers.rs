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
