//! Which conversation a customer's text continues, when our number texts them from more
//! than one: their External conversation, or a mixed group they are a member of.
//!
//! Texts carry no thread: a customer who answers a group's text answers our number, just
//! as when they answer a one-to-one text. So the reply continues the conversation our
//! number **last texted them from**, as a person would read their phone. The outbox notes
//! that conversation per (organization, our number, their number) in the stream
//! `smsthread-<id>` each time it changes (one `SmsThreadMoved` event), before the text
//! goes to the carrier; the inbound router reads the latest one. No event means their
//! External conversation, so texting one-to-one only never writes here.

use std::sync::Arc;

use domain::{ConversationId, OrgId, PhoneNumber};
use eventlog::{codec, Direction, EventData, EventStore, ExpectedVersion, StreamName};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The stream's category.
pub const CATEGORY: &str = "smsthread";

const THREAD_NAMESPACE: Uuid = Uuid::from_u128(0x5d3c_9a51_7e0b_4f0e_a7c2_61b8_d4e9_0c13);

/// The one event of this stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsThreadMoved {
    /// The conversation our number now texts them from.
    pub conversation: ConversationId,
    pub at_ms: u64,
}

/// The stream of (our number, their number) in `org`.
///
/// # Panics
/// Never: the name is a UUID.
pub fn stream(org: OrgId, our: &PhoneNumber, their: &PhoneNumber) -> StreamName {
    let mut name = Vec::with_capacity(64);
    name.extend_from_slice(org.as_uuid().as_bytes());
    name.extend_from_slice(our.as_str().as_bytes());
    name.push(0);
    name.extend_from_slice(their.as_str().as_bytes());
    let id = Uuid::new_v5(&THREAD_NAMESPACE, &name);
    StreamName::from_parts(CATEGORY, id.simple()).expect("a UUID is a valid stream id")
}

/// The conversation our number last texted `their` from, if it was not their External
/// conversation (`None`: their External conversation).
///
/// # Errors
/// Storage errors and an undecodable record, as text.
pub async fn current(
    store: &Arc<dyn EventStore>,
    org: OrgId,
    our: &PhoneNumber,
    their: &PhoneNumber,
) -> Result<Option<ConversationId>, String> {
    let stream = stream(org, our, their);
    let last =
        eventlog::store::nonblocking::read_stream(store, &stream, u64::MAX, Direction::Backward, 1)
            .await
            .map_err(|e| e.to_string())?;
    let Some(last) = last.first() else {
        return Ok(None);
    };
    let moved: SmsThreadMoved = codec::decode(&last.payload).map_err(|e| e.to_string())?;
    Ok(
        (moved.conversation != ConversationId::external(org, our, their))
            .then_some(moved.conversation),
    )
}

/// Notes that our number texts `their` from `conversation` now, unless that is already
/// the latest; `cause` (the request's event id) makes a repeat write nothing.
///
/// # Errors
/// Storage errors, as text.
pub async fn note(
    store: &Arc<dyn EventStore>,
    org: OrgId,
    our: &PhoneNumber,
    their: &PhoneNumber,
    conversation: ConversationId,
    cause: Uuid,
    at_ms: u64,
) -> Result<(), String> {
    let now = current(store, org, our, their).await?;
    let external = ConversationId::external(org, our, their);
    if now.unwrap_or(external) == conversation {
        return Ok(());
    }
    let payload = codec::encode(&SmsThreadMoved {
        conversation,
        at_ms,
    })
    .map_err(|e| e.to_string())?;
    let event =
        EventData::new("SmsThreadMoved", 1, payload).with_id(Uuid::new_v5(&cause, b"sms-thread"));
    match store
        .append(stream(org, our, their), ExpectedVersion::Any, vec![event])
        .await
    {
        Ok(_)
        | Err(eventlog::AppendError::EventIdReused { .. })
        | Err(eventlog::AppendError::PartialDuplicate { .. }) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}
