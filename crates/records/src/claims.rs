//! Claims: a business number belongs to one organization across the whole service
//! (`number-<E.164>`, whose first event names the owner, written with `NoStream`), and the
//! server's first organization is whichever claims `bootstrap-first` first. The records are
//! the domain's [`ClaimEvent`]s.

use std::sync::Arc;

use actors::event_codec;
use domain::claim::{
    ClaimEvent, FirstOrganizationClaimed, NumberClaimed, FIRST_ORGANIZATION_STREAM, NUMBER_CATEGORY,
};
use domain::{OrgId, PhoneNumber};
use eventlog::{AppendError, EventData, EventStore, ExpectedVersion, RecordedEvent, StreamName};

use crate::RecordError;

fn record(event: &ClaimEvent) -> Result<EventData, RecordError> {
    event_codec::encode(event, uuid::Uuid::new_v4(), eventlog::Metadata::default())
        .map_err(RecordError::internal)
}

fn number_stream(number: &PhoneNumber) -> Result<StreamName, RecordError> {
    StreamName::from_parts(NUMBER_CATEGORY, number).map_err(RecordError::internal)
}

/// Claims `number` for `org`: `true` when `org` holds it now (claimed now or before),
/// `false` when another organization does (nothing written).
///
/// # Errors
/// The log's.
pub async fn claim_number(
    store: &Arc<dyn EventStore>,
    number: &PhoneNumber,
    org: OrgId,
) -> Result<bool, RecordError> {
    let stream = number_stream(number)?;
    let claim = record(&ClaimEvent::NumberClaimed(NumberClaimed { org }))?;
    match store
        .append(stream, ExpectedVersion::NoStream, vec![claim])
        .await
    {
        Ok(_) => Ok(true),
        Err(AppendError::WrongExpectedVersion { .. }) => {
            Ok(number_owner(store, number).await? == Some(org))
        }
        Err(e) => Err(e.into()),
    }
}

/// The organization holding `number`, if one claimed it (the way from an inbound text's
/// number to its organization).
///
/// # Errors
/// The log's.
pub async fn number_owner(
    store: &Arc<dyn EventStore>,
    number: &PhoneNumber,
) -> Result<Option<OrgId>, RecordError> {
    let first = crate::first_record(store, &number_stream(number)?).await?;
    Ok(first.as_ref().and_then(claimed_by))
}

/// The organization a number's first record names (a record that does not read as a
/// claim names none).
fn claimed_by(first: &RecordedEvent) -> Option<OrgId> {
    match event_codec::decode::<ClaimEvent>(first) {
        Ok(ClaimEvent::NumberClaimed(NumberClaimed { org })) => Some(org),
        _ => None,
    }
}

/// Claims the place of the server's first organization for `org`: `false` once another
/// took it (nothing written).
///
/// # Errors
/// The log's.
pub async fn claim_first_organization(
    store: &Arc<dyn EventStore>,
    org: OrgId,
) -> Result<bool, RecordError> {
    let stream = StreamName::new(FIRST_ORGANIZATION_STREAM).map_err(RecordError::internal)?;
    let event = record(&ClaimEvent::FirstOrganizationClaimed(
        FirstOrganizationClaimed { org },
    ))?;
    match store
        .append(stream, ExpectedVersion::NoStream, vec![event])
        .await
    {
        Ok(_) => Ok(true),
        Err(AppendError::WrongExpectedVersion { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The claims were written as the bare organization id before they were domain
    /// events; a struct of that one field is the same bytes, under the same type and
    /// version.
    #[test]
    fn the_claims_are_the_bytes_written_before() {
        let org = OrgId::random();
        let data = record(&ClaimEvent::NumberClaimed(NumberClaimed { org })).unwrap();
        assert_eq!(
            (data.event_type.as_str(), data.schema_version),
            ("NumberClaimed", 1)
        );
        assert_eq!(data.payload, eventlog::codec::encode(&org).unwrap());
        let stream = StreamName::from_parts(NUMBER_CATEGORY, "+16135550100").unwrap();
        let stored = RecordedEvent::unchained(stream, 0, data);
        assert_eq!(claimed_by(&stored), Some(org));
        let first = record(&ClaimEvent::FirstOrganizationClaimed(
            FirstOrganizationClaimed { org },
        ))
        .unwrap();
        assert_eq!(
            (first.event_type.as_str(), first.schema_version),
            ("FirstOrganizationClaimed", 1)
        );
        assert_eq!(first.payload, eventlog::codec::encode(&org).unwrap());
    }
}
