//! A text arriving from a carrier: recorded by `records::inbound` (one `SmsArrived` in
//! `inbound-<org>`, its event id derived from the carrier's message id, so a webhook
//! delivered twice is written once); the inbound router takes it from there.

pub use records::inbound::{already_arrived, arrival_event_id, record, Arrival, Arrived};
