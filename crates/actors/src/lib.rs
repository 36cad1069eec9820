//! Switchboard's actors: one actix actor per stream, each owning one aggregate.
//!
//! A command for a conversation, an inbox or an organization's directory goes to the one
//! actor of that stream, so commands on one stream are decided one at a time against the
//! latest state and races resolve in the actor. The actor appends what the domain decided
//! (expected version = the version it knows) and only then folds the events into its state.
//!
//! # Layout
//! - [`runtime`]: the actix `System` on its own thread with one arbiter per core; hands out
//!   arbiter handles to the registries, so tokio/axum code never runs actix itself.
//! - [`config`]: snapshot interval, idle (passivation) timeout, mailbox bound.
//! - [`clock`]: injected time (system clock, or a manual one for tests).
//! - [`event_codec`]: domain events ↔ log envelopes (type name, schema version, bincode).
//! - [`core`]: the non-actix part of an actor: load from snapshot + replay, execute a
//!   command with one reload-and-retry on a version conflict, snapshot every N events.
//! - [`aggregate_actor`]: the actix actor around a core, its messages and passivation.
//! - [`registry`]: starts actors on demand, spreads them over the arbiters, bounds each
//!   one's queue, forgets passivated ones and retries a message that met a stopped actor.
//! - [`workspace`]: the registries of every aggregate over one log and runtime.
//!
//! The followers of the log that drive these actors (inbound routing, queue timers, the
//! outbox, ...) live in the `workers` crate.
//! - [`error`]: what a command or query can fail with.

pub mod aggregate_actor;
pub mod clock;
pub mod config;
pub mod core;
pub mod error;
pub mod event_codec;
pub mod registry;
pub mod runtime;
pub mod sealing;
pub mod workspace;

pub use aggregate_actor::{ActorAggregate, AggregateActor, Answer, Execute, Query};
pub use config::ActorConfig;
pub use core::{CommandOutcome, Core, ExecuteOptions, SnapshotJob, Submitted};
pub use error::{ActorError, CommandError};
pub use registry::Registry;
pub use runtime::ActorRuntime;
pub use workspace::Workspace;
