//! A text arriving from a carrier (Twilio's webhook, or the simulator's "text as a
//! customer") becomes one `SmsArrived` in `inbound-<org>` of the organization owning the
//! number it was sent to; the inbound router takes it from there (conversation, inbox or
//! queue, opt-out keywords).
//!
//! The event id derives from the carrier's message id, so a webhook delivered twice is
//! recognised (before any media is fetched again) and written once.

use std::sync::Arc;

use actors::event_codec;
use domain::conversation::AttachmentRef;
use domain::inbound::{InboundEvent, SmsArrived, INBOUND_CATEGORY};
use domain::{OrgId, PhoneNumber};
use eventlog::{AppendError, EventStore, ExpectedVersion, StreamName};
use uuid::Uuid;

use crate::RecordError;

/// Namespace of arrival event ids. Fixed forever.
const ARRIVAL_NAMESPACE: Uuid = Uuid::from_u128(0x7a61_2c0e_53d4_4f8b_b1a9_0c7d_6e5f_4a01);

/// The id of the `SmsArrived` of carrier message `carrier_message_id`.
pub fn arrival_event_id(carrier_message_id: &str) -> Uuid {
    Uuid::new_v5(&ARRIVAL_NAMESPACE, carrier_message_id.as_bytes())
}

/// Whether the text with this carrier id was recorded already.
///
/// # Errors
/// The log's.
pub async fn already_arrived(
    store: &Arc<dyn EventStore>,
    carrier_message_id: &str,
) -> Result<bool, RecordError> {
    let id = arrival_event_id(carrier_message_id);
    let store = store.clone();
    Ok(
        tokio::task::spawn_blocking(move || store.find_event_blocking(id))
            .await
            .map_err(RecordError::internal)??
            .is_some(),
    )
}

/// A text to record.
#[derive(Debug, Clone)]
pub struct Arrived {
    pub org: OrgId,
    pub to: PhoneNumber,
    pub from: PhoneNumber,
    pub text: String,
    pub media: Vec<AttachmentRef>,
    pub carrier_message_id: String,
    pub at_ms: u64,
}

/// What [`record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Written at this global position.
    Recorded(u64),
    /// The same carrier message was recorded before; nothing written.
    Duplicate,
}

/// Appends the text's `SmsArrived`.
///
/// # Errors
/// The log's (it refused or failed), or sealing failed.
pub async fn record(store: &Arc<dyn EventStore>, text: Arrived) -> Result<Arrival, RecordError> {
    let id = arrival_event_id(&text.carrier_message_id);
    let stream =
        StreamName::from_parts(INBOUND_CATEGORY, text.org).map_err(RecordError::internal)?;
    // The text is the sender's data: sealed under their key of the day (made, durably,
    // on a blocking thread the first time).
    let key = domain::TextKey::new(text.org, vec![text.from.clone()], text.at_ms);
    let mut event = InboundEvent::SmsArrived(SmsArrived {
        org: text.org,
        to: text.to,
        from: text.from,
        text: domain::Text::new(text.text, key),
        media: text.media,
        carrier_message_id: text.carrier_message_id,
        at_ms: text.at_ms,
    });
    let sealer = actors::sealing::Sealer::of(&**store);
    // A key store that cannot answer now is the log's storage unavailable (503), not a bug.
    sealer
        .seal_event(&mut event)
        .await
        .map_err(|e| RecordError::Append(AppendError::Storage(e.into())))?;
    let data = event_codec::encode(&event, id, eventlog::Metadata::default())
        .map_err(RecordError::internal)?;
    match store.append(stream, ExpectedVersion::Any, vec![data]).await {
        Ok(r) if r.deduplicated => Ok(Arrival::Duplicate),
        Ok(r) => Ok(Arrival::Recorded(r.last_position)),
        // The same message raced in with another arrival time.
        Err(AppendError::EventIdReused { .. }) => Ok(Arrival::Duplicate),
        Err(e) => Err(e.into()),
    }
}
