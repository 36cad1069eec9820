//! What the `replay` CLI does, as functions the benchmarks and tests call too.
//!
//! - [`conversation`]: a conversation's full history for an auditor, as text or JSON
//!   lines, optionally as of a moment.
//! - [`rebuild`]: a read model rebuilt from the log into a new generation beside the
//!   live one, then switched to atomically.

pub mod conversation;
pub mod rebuild;
