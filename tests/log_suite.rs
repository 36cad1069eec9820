//! The event log, actors and read models without HTTP: the log's model and properties,
//! subscriptions, crash recovery (SIGKILLed children), upcasting, read models, conversation
//! actors.
//!
//! One test binary for these files (each a module, as it was a binary before): every
//! binary links RocksDB, so fewer binaries build much faster.

#[path = "conversation_actors.rs"]
mod conversation_actors;
#[path = "crash_recovery.rs"]
mod crash_recovery;
#[path = "log_basics.rs"]
mod log_basics;
#[path = "log_model.rs"]
mod log_model;
#[path = "log_subscriptions.rs"]
mod log_subscriptions;
#[path = "read_models.rs"]
mod read_models;
#[path = "schema_upcast.rs"]
mod schema_upcast;
