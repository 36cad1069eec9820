//! The handlers, one file per resource.

pub mod bootstrap;
pub mod health;
pub mod json;
pub mod me;
pub mod sessions;
