//! Switchboard's event log on a replicated NATS JetStream stream: the cluster mode.
//!
//! The embedded RocksDB log (`eventlog::RocksLog`) keeps everything on one machine. Here
//! the system of record is a JetStream stream replicated by RAFT over three (or more)
//! `nats-server`s, so losing a machine loses nothing acknowledged, and any number of
//! Switchboard nodes serve the same organizations. [`NatsLog`] implements the same
//! [`eventlog::EventStore`] trait, with the same semantics (the log's test suite runs
//! against both).
//!
//! # Layout
//! - [`options`]: [`NatsOptions`], from `--store nats://h1,h2,h3`.
//! - `checks`: the server must be recent enough and fsync every write.
//! - [`subject`]: one subject per Switchboard stream.
//! - [`record`]: the message body of one event.
//! - `publish`: one append as one message or one atomic batch, fenced by the subject's
//!   last sequence.
//! - [`store`]: [`NatsLog`]: appends in order per stream, idempotency, heads, the
//!   [`eventlog::EventStore`] methods (reads from the local replica; snapshots and
//!   checkpoints in key-value buckets).
//! - `follow`: keeps the node's replica up with the stream.
//! - [`lease`]: one node at a time for jobs that must not run twice at once.
//!
//! # Positions and chains
//! The stream's sequence is the `$all` position (sequence − 1: positions are 0-based and
//! contiguous, as the stream's sequences are: nothing is ever deleted). A writer does not
//! know its events' sequences before the server assigns them, so chains here link without
//! the position (`eventlog::chain::ChainFormat::Unpositioned`); `replay verify` checks them
//! on a node's replica like any log.

pub mod checks;
mod follow;
mod keys;
pub mod lease;
pub mod options;
mod publish;
pub mod record;
pub mod store;
pub mod subject;

pub use options::NatsOptions;
pub use store::{ConnectError, NatsLog};
