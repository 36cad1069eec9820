//! Carriers, inbound routing and SMS queues: the Twilio adapter against a fake Twilio, the
//! outbox across crashes, routing of inbound texts, queue timers across crashes.
//!
//! One test binary for these files (each a module, as it was a binary before): every
//! binary links RocksDB, so fewer binaries build much faster.

#[path = "carrier_crash.rs"]
mod carrier_crash;
#[path = "carriers.rs"]
mod carriers;
#[path = "inbound_routing.rs"]
mod inbound_routing;
#[path = "queue_timer_crash.rs"]
mod queue_timer_crash;
#[path = "sms_queues.rs"]
mod sms_queues;
