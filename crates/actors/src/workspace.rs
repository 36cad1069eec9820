//! The registries of every aggregate, started together over one log and one runtime.

use std::sync::Arc;

use domain::{Conversation, Directory, Inbox, Queue};
use eventlog::EventStore;

use crate::config::ActorConfig;
use crate::registry::Registry;
use crate::runtime::ActorRuntime;

/// One registry per aggregate type: what the gateway and the process managers talk to.
#[derive(Clone)]
pub struct Workspace {
    pub store: Arc<dyn EventStore>,
    pub runtime: Arc<ActorRuntime>,
    pub directories: Registry<Directory>,
    pub conversations: Registry<Conversation>,
    pub inboxes: Registry<Inbox>,
    pub queues: Registry<Queue>,
}

impl Workspace {
    pub fn new(
        store: Arc<dyn EventStore>,
        runtime: Arc<ActorRuntime>,
        config: ActorConfig,
    ) -> Self {
        Self {
            directories: Registry::new(store.clone(), runtime.clone(), config.clone()),
            conversations: Registry::new(store.clone(), runtime.clone(), config.clone()),
            inboxes: Registry::new(store.clone(), runtime.clone(), config.clone()),
            queues: Registry::new(store.clone(), runtime.clone(), config),
            store,
            runtime,
        }
    }
}
