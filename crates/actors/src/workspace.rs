//! The registries of every aggregate, started together over one log and one runtime.

use std::sync::Arc;

use domain::{Aggregate, Conversation, Directory, Inbox, Queue};
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
    /// Seals texts with the log's keyring and opens those read back (see
    /// [`crate::sealing`]).
    pub sealer: crate::sealing::Sealer,
    /// How far each follower of the log has got (the `workers` publish here; tests and
    /// shutdown wait on it).
    pub progress: eventlog::Progress,
}

impl Workspace {
    pub fn new(
        store: Arc<dyn EventStore>,
        runtime: Arc<ActorRuntime>,
        config: ActorConfig,
    ) -> Self {
        Self {
            sealer: crate::sealing::Sealer::of(&*store),
            directories: Registry::new(store.clone(), runtime.clone(), config.clone()),
            conversations: Registry::new(store.clone(), runtime.clone(), config.clone()),
            inboxes: Registry::new(store.clone(), runtime.clone(), config.clone()),
            queues: Registry::new(store.clone(), runtime.clone(), config),
            store,
            runtime,
            progress: eventlog::Progress::default(),
        }
    }

    /// Keeps the actors of this node up with what other nodes of a cluster write to their
    /// streams: every event of the log's live feed that an actor's state has not seen
    /// makes it catch up (see `Registry::notice`), so queries here see writes made there
    /// within the replication delay. Runs until the log closes. Needless on one machine,
    /// where every write to an aggregate goes through its actor.
    pub async fn follow_peer_writes(self) {
        use tokio::sync::broadcast::error::RecvError;
        let Some(mut live) = self.store.live() else {
            return;
        };
        loop {
            match live.recv().await {
                Ok(batch) => {
                    for e in batch.iter() {
                        match e.stream.category() {
                            c if c == Directory::CATEGORY => {
                                self.directories.notice(&e.stream, e.version);
                            }
                            c if c == Conversation::CATEGORY => {
                                self.conversations.notice(&e.stream, e.version);
                            }
                            c if c == Inbox::CATEGORY => self.inboxes.notice(&e.stream, e.version),
                            c if c == Queue::CATEGORY => self.queues.notice(&e.stream, e.version),
                            _ => {}
                        }
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    self.directories.notice_all();
                    self.conversations.notice_all();
                    self.inboxes.notice_all();
                    self.queues.notice_all();
                }
                Err(RecvError::Closed) => return,
            }
        }
    }
}
