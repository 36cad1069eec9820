//! Process managers: cross-actor flows driven by the log.
//!
//! Each one follows a category with a catch-up-then-live subscription from its stored
//! checkpoint, turns every event into commands for actors, and moves its checkpoint only
//! after those commands succeeded. Commands carry idempotency keys derived from the event
//! id, so an event seen again after a crash (the checkpoint is behind) has no second
//! effect: the flow completes exactly once in effect.
//!
//! [`outbox`] sends texts through a carrier: every step (prepared, attempt started,
//! accepted or failed, status reports) is written before it is acted on, so a crash loses
//! nothing and a carrier call is repeated only as its module docs say.

pub mod attachment_refs;
pub mod driver;
pub mod inbound_router;
pub mod media_erasure;
pub mod outbox;
pub mod queue_timeline;
pub mod queue_timers;
pub mod retention;
pub mod sms_threads;
pub mod webhooks;
