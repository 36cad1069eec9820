//! Switchboard's workers: every follower of the log, started from one place ([`start`]).
//!
//! Each one follows a category with a catch-up-then-live subscription from its stored
//! checkpoint ([`driver`]), turns every event into commands for actors or records of its
//! own, and moves its checkpoint only after those succeeded. Effects carry ids or
//! idempotency keys derived from the event, so an event seen again after a crash (the
//! checkpoint is behind) or a leader handover has no second effect: the flow completes
//! exactly once in effect. Each publishes how far it has handled the log in the
//! workspace's `progress`, under its checkpoint's name.
//!
//! - [`inbound_router`]: an arrived text into its conversation (or a new one, an inbox, a
//!   queue); [`sms_threads`] says which conversation a customer's text continues.
//! - [`queue_timers`] (durable wait and idle timeouts) and [`queue_timeline`] (the queue's
//!   system messages in its conversations).
//! - [`outbox`]: texts out through a carrier: every step (prepared, attempt started,
//!   accepted or failed, status reports) is written before it is acted on, so a crash
//!   loses nothing and a carrier call is repeated only as its module docs say.
//! - [`webhooks`]: notifications to organizations' endpoints, with durable deliveries.
//! - [`retention`]: erasures and retention, by destroying keys; [`media_erasure`]: the
//!   blobs only erased texts needed.
//! - [`attachment_refs`]: which conversations reference which attachments.
//! - [`visibility`]: the state the visibility rule needs, kept by following the log (the
//!   stream hub's routing) or looked up for one conversation (the HTTP checks).

pub mod attachment_refs;
pub mod driver;
pub mod inbound_router;
pub mod media_erasure;
pub mod outbox;
pub mod queue_timeline;
pub mod queue_timers;
pub mod retention;
pub mod sms_threads;
pub mod start;
pub mod visibility;
pub mod webhooks;
