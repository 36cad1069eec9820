//! Read models served from memory, rebuilt from the log on start.
//!
//! Until the read-model issue brings persistent, checkpointed projections, these follow
//! `$all` from the beginning on every start (so they are always a pure function of the log)
//! and answer queries with read-your-writes: a query may name the position of the caller's
//! own write and waits (bounded) until the view has applied it.

pub mod queue_views;
