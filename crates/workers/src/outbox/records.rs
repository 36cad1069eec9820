//! What the outbox writes to the log.
//!
//! - `outbox-<id>`: one stream per outbound text (one recipient of one message, or one
//!   HELP reply). [`SmsPrepared`] says what to send; then, per attempt, an
//!   [`SmsSendStarted`] written **before** the carrier is called (the dedupe record: an
//!   attempt that started and has no outcome is one whose result a crash lost), and its
//!   outcome: [`SmsAccepted`] (at most once per text) or [`SmsSendFailed`] (a retry time,
//!   or final).
//! - `carriermsg-<carrier message id>`: one stream per carrier message id.
//!   [`CarrierMessageLinked`] names the outbound text it is (so a status report finds its
//!   conversation after a restart: no in-memory map), [`CarrierStatusReported`] records
//!   each status report as it came (webhook or simulator), before it is applied.
//!
//! These are the carrier edge's records, like the gateway's credential and number-claim
//! streams: not domain events, so not in `schemas/`. Each payload is its own struct,
//! encoded with the log's codec under its type name at schema version 1; a change is a new
//! type name or version, never an edit in place.
//!
//! Event ids are deterministic wherever two writers (or a retry after a crash) may write
//! the same fact, so the log recognises the repeat: the prepared text and its first attempt
//! derive from the `SmsRequested` (or `SmsArrived`) event, a link from the carrier message
//! id, a status report from (carrier message id, status, error code, hint), and the
//! acceptance of a text is written at most once whoever writes it.

use domain::conversation::AttachmentRef;
use domain::{ConversationId, MessageId, OrgId, PhoneNumber, Text};
use eventlog::{codec, EventData, RecordedEvent, StreamName};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Category of the per-text outbox streams.
pub const OUTBOX_CATEGORY: &str = "outbox";
/// Category of the per-carrier-message streams.
pub const CARRIER_MESSAGE_CATEGORY: &str = "carriermsg";

/// Namespace of outbox ids and their event ids. Fixed forever (ids derive from it).
const OUTBOX_NAMESPACE: Uuid = Uuid::from_u128(0x0b7c_51f2_8a4e_4d1b_9c3e_5f60_7a8b_9c01);
/// Namespace of carrier-message event ids. Fixed forever.
const CARRIER_MESSAGE_NAMESPACE: Uuid = Uuid::from_u128(0x0b7c_51f2_8a4e_4d1b_9c3e_5f60_7a8b_9c02);

/// Why a text is sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SmsOrigin {
    /// One recipient's SMS of a conversation message; `requested_event` is the id of its
    /// `SmsRequested` event (delivery records derive their idempotency keys from it).
    Message {
        conversation: ConversationId,
        message_id: MessageId,
        requested_event: Uuid,
    },
    /// The reply to a HELP keyword; `arrived_event` is the id of the `SmsArrived` event.
    /// Written by earlier versions only (HELP is now answered in the conversation, as an
    /// `AutoReplyPosted` sent as a `Message`); still read, resumed and sent.
    HelpReply { arrived_event: Uuid },
}

/// What to send, written once, first, in the text's outbox stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsPrepared {
    pub org: OrgId,
    pub origin: SmsOrigin,
    pub from: PhoneNumber,
    pub to: PhoneNumber,
    /// Stored sealed under the message's key (version 2; version 1 held it in the clear).
    pub body: Text,
    /// MMS media (already resized when the message was posted).
    pub media: Vec<AttachmentRef>,
    /// The request's time (so a repeated preparation writes identical content).
    pub at_ms: u64,
}

/// [`SmsPrepared`] version 1, as earlier logs hold it: the body in the clear.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct SmsPreparedV1 {
    org: OrgId,
    origin: SmsOrigin,
    from: PhoneNumber,
    to: PhoneNumber,
    body: String,
    media: Vec<AttachmentRef>,
    at_ms: u64,
}

impl From<SmsPreparedV1> for SmsPrepared {
    fn from(v1: SmsPreparedV1) -> Self {
        SmsPrepared {
            org: v1.org,
            origin: v1.origin,
            from: v1.from,
            to: v1.to,
            body: Text::unsealed(v1.body),
            media: v1.media,
            at_ms: v1.at_ms,
        }
    }
}

/// Attempt `attempt` (from 1) is about to call the carrier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsSendStarted {
    pub attempt: u32,
    pub at_ms: u64,
}

/// The carrier accepted the text under `carrier_message_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsAccepted {
    pub attempt: u32,
    pub carrier: String,
    pub carrier_message_id: String,
    /// The carrier's status on acceptance (Twilio's names: `queued`, `accepted`, ...).
    pub status: String,
    /// How we learnt it: `response` (the send call answered) or `status_callback` (a
    /// status report naming this text arrived while the answer was lost to a crash).
    pub confirmed_by: String,
    pub at_ms: u64,
}

/// Attempt `attempt` failed; another follows at `retry_at_ms`, or none (final).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsSendFailed {
    pub attempt: u32,
    /// The carrier's error code (or the adapter's: `timeout`, `http_503`, ...).
    pub code: String,
    pub message: String,
    pub retry_at_ms: Option<u64>,
    pub at_ms: u64,
}

/// The events of an `outbox-<id>` stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutboxRecord {
    Prepared(SmsPrepared),
    SendStarted(SmsSendStarted),
    Accepted(SmsAccepted),
    SendFailed(SmsSendFailed),
}

/// Carrier message `carrier_message_id` (the stream's id) is this outbound text.
/// Deterministic content: whoever links it writes the same event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarrierMessageLinked {
    pub outbox: Uuid,
    pub org: OrgId,
    pub origin: SmsOrigin,
    pub to: PhoneNumber,
}

/// A status report for the stream's carrier message, as it arrived. Its time is the
/// event's commit time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarrierStatusReported {
    /// The status by Twilio's name (`sent`, `delivered`, `undelivered`, ...).
    pub status: String,
    pub error_code: Option<String>,
    /// The outbox id the status callback URL carried (`?sms=`), if any: it lets a report
    /// confirm a text whose acceptance was lost to a crash.
    pub outbox_hint: Option<Uuid>,
}

/// The events of a `carriermsg-<sid>` stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CarrierMessageRecord {
    Linked(CarrierMessageLinked),
    StatusReported(CarrierStatusReported),
}

fn data<T: Serialize>(event_type: &str, payload: &T, id: Uuid) -> Result<EventData, String> {
    versioned(event_type, 1, payload, id)
}

fn versioned<T: Serialize>(
    event_type: &str,
    version: u16,
    payload: &T,
    id: Uuid,
) -> Result<EventData, String> {
    let payload = codec::encode(payload).map_err(|e| e.to_string())?;
    Ok(EventData::new(event_type, version, payload).with_id(id))
}

fn prepared(record: &RecordedEvent) -> Result<SmsPrepared, String> {
    let decoded = match record.schema_version {
        1 => codec::decode::<SmsPreparedV1>(&record.payload).map(SmsPrepared::from),
        2 => codec::decode::<SmsPrepared>(&record.payload),
        v => return Err(format!("SmsPrepared has unknown schema version {v}")),
    };
    decoded.map_err(|e| format!("SmsPrepared: {e}"))
}

fn payload<T: DeserializeOwned>(record: &RecordedEvent) -> Result<T, String> {
    if record.schema_version != 1 {
        return Err(format!(
            "{} has unknown schema version {}",
            record.event_type, record.schema_version
        ));
    }
    codec::decode(&record.payload).map_err(|e| format!("{}: {e}", record.event_type))
}

impl OutboxRecord {
    pub fn event_type(&self) -> &'static str {
        match self {
            OutboxRecord::Prepared(_) => "SmsPrepared",
            OutboxRecord::SendStarted(_) => "SmsSendStarted",
            OutboxRecord::Accepted(_) => "SmsAccepted",
            OutboxRecord::SendFailed(_) => "SmsSendFailed",
        }
    }

    /// The envelope of this record with event id `id`.
    ///
    /// # Errors
    /// When the codec refuses it (it does not for these types).
    pub fn encode(&self, id: Uuid) -> Result<EventData, String> {
        let t = self.event_type();
        match self {
            OutboxRecord::Prepared(p) => versioned(t, 2, p, id),
            OutboxRecord::SendStarted(p) => data(t, p, id),
            OutboxRecord::Accepted(p) => data(t, p, id),
            OutboxRecord::SendFailed(p) => data(t, p, id),
        }
    }

    /// # Errors
    /// An unknown type or version, or an undecodable payload.
    pub fn decode(record: &RecordedEvent) -> Result<Self, String> {
        Ok(match record.event_type.as_str() {
            "SmsPrepared" => OutboxRecord::Prepared(prepared(record)?),
            "SmsSendStarted" => OutboxRecord::SendStarted(payload(record)?),
            "SmsAccepted" => OutboxRecord::Accepted(payload(record)?),
            "SmsSendFailed" => OutboxRecord::SendFailed(payload(record)?),
            other => return Err(format!("not an outbox record: {other}")),
        })
    }
}

impl CarrierMessageRecord {
    pub fn event_type(&self) -> &'static str {
        match self {
            CarrierMessageRecord::Linked(_) => "CarrierMessageLinked",
            CarrierMessageRecord::StatusReported(_) => "CarrierStatusReported",
        }
    }

    /// # Errors
    /// When the codec refuses it (it does not for these types).
    pub fn encode(&self, id: Uuid) -> Result<EventData, String> {
        let t = self.event_type();
        match self {
            CarrierMessageRecord::Linked(p) => data(t, p, id),
            CarrierMessageRecord::StatusReported(p) => data(t, p, id),
        }
    }

    /// # Errors
    /// An unknown type or version, or an undecodable payload.
    pub fn decode(record: &RecordedEvent) -> Result<Self, String> {
        Ok(match record.event_type.as_str() {
            "CarrierMessageLinked" => CarrierMessageRecord::Linked(payload(record)?),
            "CarrierStatusReported" => CarrierMessageRecord::StatusReported(payload(record)?),
            other => return Err(format!("not a carrier message record: {other}")),
        })
    }
}

/// The outbox id of `message_id`'s SMS to `to`: one per (message, recipient).
pub fn message_outbox_id(message_id: MessageId, to: &PhoneNumber) -> Uuid {
    let mut name = Vec::with_capacity(48);
    name.extend_from_slice(b"message\0");
    name.extend_from_slice(message_id.as_uuid().as_bytes());
    name.extend_from_slice(to.as_str().as_bytes());
    Uuid::new_v5(&OUTBOX_NAMESPACE, &name)
}

/// The outbox id of the HELP reply to the text stored as event `arrived_event` (earlier
/// versions; see [`SmsOrigin::HelpReply`]).
pub fn help_outbox_id(arrived_event: Uuid) -> Uuid {
    let mut name = Vec::with_capacity(24);
    name.extend_from_slice(b"help\0");
    name.extend_from_slice(arrived_event.as_bytes());
    Uuid::new_v5(&OUTBOX_NAMESPACE, &name)
}

/// The id of the event `what` (`prepared`, `attempt-2`, `accepted`, ...) of outbox `id`.
pub fn outbox_event_id(id: Uuid, what: &str) -> Uuid {
    Uuid::new_v5(&id, what.as_bytes())
}

/// `outbox-<id>`.
pub fn outbox_stream(id: Uuid) -> StreamName {
    StreamName::from_parts(OUTBOX_CATEGORY, id).expect("a uuid is a valid stream id")
}

/// `carriermsg-<sid>`, or `None` when the carrier's id cannot name a stream.
pub fn carrier_message_stream(carrier_message_id: &str) -> Option<StreamName> {
    let ok = !carrier_message_id.is_empty()
        && carrier_message_id.len() <= 128
        && carrier_message_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then(|| StreamName::from_parts(CARRIER_MESSAGE_CATEGORY, carrier_message_id).ok())
        .flatten()
}

/// The id of the link of carrier message `sid`.
pub fn link_event_id(sid: &str) -> Uuid {
    let mut name = Vec::with_capacity(48);
    name.extend_from_slice(b"link\0");
    name.extend_from_slice(sid.as_bytes());
    Uuid::new_v5(&CARRIER_MESSAGE_NAMESPACE, &name)
}

/// The id of a status report: the same report arriving twice is the same event.
pub fn report_event_id(sid: &str, report: &CarrierStatusReported) -> Uuid {
    let mut name = Vec::with_capacity(96);
    name.extend_from_slice(b"status\0");
    for part in [
        sid,
        report.status.as_str(),
        report.error_code.as_deref().unwrap_or(""),
    ] {
        name.extend_from_slice(part.as_bytes());
        name.push(0);
    }
    if let Some(hint) = report.outbox_hint {
        name.extend_from_slice(hint.as_bytes());
    }
    Uuid::new_v5(&CARRIER_MESSAGE_NAMESPACE, &name)
}

/// The key the carrier sees for every attempt of one text (the simulator dedupes on it).
pub fn idempotency_key(origin: &SmsOrigin, to: &PhoneNumber) -> String {
    match origin {
        SmsOrigin::Message { message_id, .. } => format!("{message_id}:{to}"),
        SmsOrigin::HelpReply { arrived_event } => format!("help:{arrived_event}"),
    }
}

/// Where an outbox stream stands, folded from its events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboxState {
    pub prepared: Option<SmsPrepared>,
    /// The highest attempt started.
    pub last_attempt: u32,
    /// The last attempt started has no outcome yet.
    pub attempt_open: bool,
    pub accepted: Option<SmsAccepted>,
    /// The last failure (a retry time, or final).
    pub failed: Option<SmsSendFailed>,
}

/// What is left to do for an outbox stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pending {
    /// Accepted, or failed for good (or never prepared).
    Nothing,
    /// Attempt `attempt` started and its outcome is unknown (lost to a crash).
    Unconfirmed { attempt: u32 },
    /// Attempt `attempt` is due at `at_ms`.
    RetryAt { attempt: u32, at_ms: u64 },
}

impl OutboxState {
    pub fn apply(&mut self, record: &OutboxRecord) {
        match record {
            OutboxRecord::Prepared(p) => self.prepared = Some(p.clone()),
            OutboxRecord::SendStarted(s) => {
                self.last_attempt = self.last_attempt.max(s.attempt);
                self.attempt_open = true;
            }
            OutboxRecord::Accepted(a) => {
                self.accepted = Some(a.clone());
                self.attempt_open = false;
            }
            OutboxRecord::SendFailed(f) => {
                self.failed = Some(f.clone());
                if f.attempt >= self.last_attempt {
                    self.attempt_open = false;
                }
            }
        }
    }

    pub fn pending(&self) -> Pending {
        if self.prepared.is_none() || self.accepted.is_some() {
            return Pending::Nothing;
        }
        if self.attempt_open {
            return Pending::Unconfirmed {
                attempt: self.last_attempt.max(1),
            };
        }
        match &self.failed {
            Some(SmsSendFailed {
                attempt,
                retry_at_ms: Some(at_ms),
                ..
            }) => Pending::RetryAt {
                attempt: attempt + 1,
                at_ms: *at_ms,
            },
            Some(_) => Pending::Nothing,
            // Prepared without an attempt: the first one never started.
            None => Pending::RetryAt {
                attempt: 1,
                at_ms: 0,
            },
        }
    }

    /// Folds records (in stream order), skipping any that do not decode.
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a RecordedEvent>) -> Self {
        let mut state = Self::default();
        for r in records {
            match OutboxRecord::decode(r) {
                Ok(record) => state.apply(&record),
                Err(e) => tracing::warn!(stream = %r.stream, error = %e, "outbox record skipped"),
            }
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared() -> SmsPrepared {
        SmsPrepared {
            org: OrgId::random(),
            origin: SmsOrigin::HelpReply {
                arrived_event: Uuid::new_v4(),
            },
            from: PhoneNumber::parse("+15550001000").unwrap(),
            to: PhoneNumber::parse("+15550002000").unwrap(),
            body: Text::unsealed("hi"),
            media: vec![],
            at_ms: 5,
        }
    }

    #[test]
    fn records_round_trip_through_the_codec() {
        let id = Uuid::new_v4();
        for record in [
            OutboxRecord::Prepared(prepared()),
            OutboxRecord::SendStarted(SmsSendStarted {
                attempt: 2,
                at_ms: 9,
            }),
            OutboxRecord::SendFailed(SmsSendFailed {
                attempt: 2,
                code: "http_503".into(),
                message: "down".into(),
                retry_at_ms: Some(12),
                at_ms: 10,
            }),
        ] {
            let data = record.encode(id).unwrap();
            let stored = RecordedEvent {
                stream: outbox_stream(id),
                version: 0,
                position: 0,
                timestamp_us: 0,
                prev_hash: [0; 32],
                hash: [0; 32],
                event_id: data.event_id,
                event_type: data.event_type,
                schema_version: data.schema_version,
                metadata: data.metadata,
                payload: data.payload,
            };
            assert_eq!(OutboxRecord::decode(&stored).unwrap(), record);
        }
    }

    #[test]
    fn pending_follows_the_attempts() {
        let mut s = OutboxState::default();
        assert_eq!(s.pending(), Pending::Nothing, "nothing prepared");
        s.apply(&OutboxRecord::Prepared(prepared()));
        s.apply(&OutboxRecord::SendStarted(SmsSendStarted {
            attempt: 1,
            at_ms: 1,
        }));
        assert_eq!(s.pending(), Pending::Unconfirmed { attempt: 1 });
        s.apply(&OutboxRecord::SendFailed(SmsSendFailed {
            attempt: 1,
            code: "timeout".into(),
            message: String::new(),
            retry_at_ms: Some(50),
            at_ms: 2,
        }));
        assert_eq!(
            s.pending(),
            Pending::RetryAt {
                attempt: 2,
                at_ms: 50
            }
        );
        s.apply(&OutboxRecord::SendStarted(SmsSendStarted {
            attempt: 2,
            at_ms: 50,
        }));
        assert_eq!(s.pending(), Pending::Unconfirmed { attempt: 2 });
        s.apply(&OutboxRecord::Accepted(SmsAccepted {
            attempt: 2,
            carrier: "twilio".into(),
            carrier_message_id: "SM1".into(),
            status: "queued".into(),
            confirmed_by: "response".into(),
            at_ms: 51,
        }));
        assert_eq!(s.pending(), Pending::Nothing);
    }

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let m = MessageId::random();
        let a = PhoneNumber::parse("+15550001000").unwrap();
        let b = PhoneNumber::parse("+15550002000").unwrap();
        assert_eq!(message_outbox_id(m, &a), message_outbox_id(m, &a));
        assert_ne!(message_outbox_id(m, &a), message_outbox_id(m, &b));
        let r = |status: &str| CarrierStatusReported {
            status: status.into(),
            error_code: None,
            outbox_hint: None,
        };
        assert_eq!(
            report_event_id("SM1", &r("sent")),
            report_event_id("SM1", &r("sent"))
        );
        assert_ne!(
            report_event_id("SM1", &r("sent")),
            report_event_id("SM1", &r("delivered"))
        );
        assert!(carrier_message_stream("SMabc123").is_some());
        assert!(carrier_message_stream("SM/../x").is_none());
        assert!(carrier_message_stream("").is_none());
    }
}
