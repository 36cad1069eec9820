//! The recorded answers of keyed requests: per scoped `Idempotency-Key` a stream
//! `idempotency-<key>` whose one event, [`ResponseRecorded`], is the first successful answer
//! to a POST whose handler does not derive its writes from the key; a retry is answered
//! with it and writes nothing. The gateway appends and reads them
//! (`gateway::routes::idempotency`); the records are versioned events
//! ([`IdempotencyEvent`]) with their schemas in `schemas/`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema::versioned_events;
use crate::text::{Text, Texts};

/// Category of the recorded answers.
pub const IDEMPOTENCY_CATEGORY: &str = "idempotency";

/// The first successful answer to a keyed request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResponseRecorded {
    /// What the request was (BLAKE3 of its content type and body, a multipart boundary
    /// left out): a retry that differs is refused, never answered with this.
    pub request: [u8; 32],
    /// The HTTP status (2xx).
    pub status: u16,
    pub content_type: Option<String>,
    pub location: Option<String>,
    /// The answer's body, as sent.
    pub body: Vec<u8>,
    pub at_ms: u64,
}

/// Events of the `idempotency-<key>` streams.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdempotencyEvent {
    ResponseRecorded(ResponseRecorded),
}

versioned_events! {
    IdempotencyEvent {
        ResponseRecorded(ResponseRecorded) = 1,
    }
}

/// No [`Text`]s: the answer is kept as the bytes the handler sent.
impl Texts for IdempotencyEvent {
    fn texts_mut(&mut self) -> Vec<&mut Text> {
        Vec::new()
    }
}
