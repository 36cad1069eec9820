//! Tuning of the actors.

use std::time::Duration;

/// How actors snapshot, passivate and bound their queues.
#[derive(Debug, Clone)]
pub struct ActorConfig {
    /// Write a snapshot after this many events since the last one (0: never).
    pub snapshot_every: u64,
    /// Stop an actor that has handled nothing for this long; the next message rehydrates it.
    pub idle_timeout: Duration,
    /// Messages queued for one actor before new ones are refused with `Busy`.
    pub mailbox_capacity: usize,
}

impl Default for ActorConfig {
    fn default() -> Self {
        Self {
            snapshot_every: 1000,
            idle_timeout: Duration::from_secs(300),
            mailbox_capacity: 1024,
        }
    }
}
