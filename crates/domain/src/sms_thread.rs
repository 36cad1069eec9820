//! The SMS thread notes of the log: which conversation our number last texted a customer
//! from, per (organization, our number, their number), in a stream `smsthread-<id>` that
//! gets one [`SmsThreadMoved`] each time it changes. No note means their External
//! conversation. The `workers` append and read them (`workers::sms_threads`: the outbox
//! notes, the inbound router reads the latest); the records are versioned events
//! ([`SmsThreadEvent`]) with their schemas in `schemas/`. Before they were domain records
//! the workers stored the same struct bare: the same bytes, version 1.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema::versioned_events;
use crate::text::{Text, Texts};
use crate::ConversationId;

/// Category of the SMS thread streams.
pub const SMS_THREAD_CATEGORY: &str = "smsthread";

/// Our number now texts the customer from `conversation`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SmsThreadMoved {
    /// The conversation our number now texts them from.
    pub conversation: ConversationId,
    pub at_ms: u64,
}

/// Events of the `smsthread-<id>` streams.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SmsThreadEvent {
    SmsThreadMoved(SmsThreadMoved),
}

versioned_events! {
    SmsThreadEvent {
        SmsThreadMoved(SmsThreadMoved) = 1,
    }
}

/// No texts: a note names a conversation, never a message body.
impl Texts for SmsThreadEvent {
    fn texts_mut(&mut self) -> Vec<&mut Text> {
        Vec::new()
    }
}
