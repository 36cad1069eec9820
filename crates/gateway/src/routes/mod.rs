//! The handlers, one file per resource.

pub mod bootstrap;
pub mod conversations;
pub mod health;
pub mod json;
pub mod me;
pub mod sessions;
pub mod stream;
pub mod users;
