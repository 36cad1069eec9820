//! Recorded answers of keyed requests: `idempotency-<scoped key>` holds the first
//! successful answer to a request made with an `Idempotency-Key` (the domain's
//! [`ResponseRecorded`]), written with `NoStream` so a key is answered once.

use std::sync::Arc;

use domain::idempotency::{IdempotencyEvent, ResponseRecorded, IDEMPOTENCY_CATEGORY};
use eventlog::{EventStore, ExpectedVersion};

use crate::RecordError;

fn record_of(answer: ResponseRecorded) -> Result<eventlog::EventData, RecordError> {
    actors::event_codec::encode(
        &IdempotencyEvent::ResponseRecorded(answer),
        uuid::Uuid::new_v4(),
        eventlog::Metadata::default(),
    )
    .map_err(RecordError::internal)
}

/// A stored recorded answer.
fn read_recorded(record: &eventlog::RecordedEvent) -> Result<ResponseRecorded, RecordError> {
    match actors::event_codec::decode::<IdempotencyEvent>(record).map_err(RecordError::internal)? {
        IdempotencyEvent::ResponseRecorded(answer) => Ok(answer),
    }
}

fn recorded_stream(key: uuid::Uuid) -> Result<eventlog::StreamName, RecordError> {
    eventlog::StreamName::from_parts(IDEMPOTENCY_CATEGORY, key.simple())
        .map_err(RecordError::internal)
}

/// The answer recorded for `key`, if any.
///
/// # Errors
/// The log's, or a record that does not decode.
pub async fn recorded(
    store: &Arc<dyn EventStore>,
    key: uuid::Uuid,
) -> Result<Option<ResponseRecorded>, RecordError> {
    let first = crate::first_record(store, &recorded_stream(key)?).await?;
    first.as_ref().map(read_recorded).transpose()
}

/// Records `answer` for `key`, unless one is recorded already (then nothing is written).
///
/// # Errors
/// The log's (a record there already included).
pub async fn record(
    store: &Arc<dyn EventStore>,
    key: uuid::Uuid,
    answer: ResponseRecorded,
) -> Result<(), RecordError> {
    store
        .append(
            recorded_stream(key)?,
            ExpectedVersion::NoStream,
            vec![record_of(answer)?],
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer as the gateway recorded it before it was a domain event (verbatim),
    /// encoded bare under version 1.
    #[derive(serde::Serialize)]
    struct OldRecordedResponse {
        request: [u8; 32],
        status: u16,
        content_type: Option<String>,
        location: Option<String>,
        body: Vec<u8>,
        at_ms: u64,
    }

    #[test]
    fn a_recorded_answer_is_the_bytes_written_before() {
        let old = OldRecordedResponse {
            request: [9; 32],
            status: 201,
            content_type: Some("application/json".into()),
            location: Some("/v1/inboxes/1".into()),
            body: br#"{"id":1}"#.to_vec(),
            at_ms: 1_700_000_000_000,
        };
        let answer = ResponseRecorded {
            request: old.request,
            status: old.status,
            content_type: old.content_type.clone(),
            location: old.location.clone(),
            body: old.body.clone(),
            at_ms: old.at_ms,
        };
        let data = record_of(answer.clone()).unwrap();
        assert_eq!(
            (data.event_type.as_str(), data.schema_version),
            ("ResponseRecorded", 1)
        );
        let old_bytes = eventlog::codec::encode(&old).unwrap();
        assert_eq!(data.payload, old_bytes);
        let stream = recorded_stream(uuid::Uuid::nil()).unwrap();
        let stored = eventlog::RecordedEvent::unchained(stream, 0, data);
        assert_eq!(read_recorded(&stored).unwrap(), answer);
    }
}
