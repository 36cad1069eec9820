//! Past versions of conversation event payloads, as old logs hold them, each with the
//! function that upcasts it to the next version.
//!
//! Frozen: a struct here never changes again (its file in `schemas/` must keep matching,
//! a test checks). Should a type nested in one of them change (a [`DeliveryStatus`], a
//! [`PhoneNumber`]), the struct keeps a frozen copy of the old nested type instead.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conversation::delivery::DeliveryStatus;
use crate::conversation::event::DeliveryUpdated;
use crate::ids::MessageId;
use crate::phone_number::PhoneNumber;

/// [`DeliveryUpdated`] version 1: before the carrier's message id and error code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "DeliveryUpdated")]
pub struct DeliveryUpdatedV1 {
    pub message_id: MessageId,
    pub to: PhoneNumber,
    pub status: DeliveryStatus,
    pub at_ms: u64,
}

/// Version 1 knew neither the carrier's id nor its error code.
pub fn delivery_updated_v1_to_v2(v1: DeliveryUpdatedV1) -> DeliveryUpdated {
    let DeliveryUpdatedV1 {
        message_id,
        to,
        status,
        at_ms,
    } = v1;
    DeliveryUpdated {
        message_id,
        to,
        status,
        carrier_message_id: None,
        error_code: None,
        at_ms,
    }
}
