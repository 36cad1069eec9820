//! The handlers, one file per resource.

pub mod bootstrap;
pub mod conversations;
pub mod facts;
pub mod health;
pub mod inboxes;
pub mod json;
pub mod me;
pub mod queues;
pub mod sessions;
pub mod stream;
pub mod users;
