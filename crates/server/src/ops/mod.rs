//! Day-two operations: online backup and restore, signed checkpoints of the log, and the
//! control socket the `backup` command talks to.

pub mod backup;
pub mod control;
pub mod signing;
