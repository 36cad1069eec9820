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
    /// A graceful shutdown's request to the followers: save what you handled, and end.
    pub stopping: Stopping,
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
            stopping: Stopping::default(),
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

/// A graceful shutdown's request to a workspace's followers: each one that watches it
/// (see [`Stopping::watch`]) saves what it has handled and ends, so that a restart does
/// not handle again what was handled before the shutdown. Followers that do not watch it
/// are aborted as before.
#[derive(Clone, Debug)]
pub struct Stopping(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Stopping {
    fn default() -> Self {
        Self(Arc::new(tokio::sync::watch::Sender::new(false)))
    }
}

impl Stopping {
    /// A follower's view of the request; it counts as running until this is dropped.
    pub fn watch(&self) -> StopWatch {
        StopWatch(self.0.subscribe())
    }

    /// Asks every follower to stop.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }

    /// Returns once every follower's [`StopWatch`] is dropped (at once when there is
    /// none).
    pub async fn stopped(&self) {
        self.0.closed().await;
    }
}

/// One follower's view of a [`Stopping`].
#[derive(Debug)]
pub struct StopWatch(tokio::sync::watch::Receiver<bool>);

impl StopWatch {
    /// Whether a stop has been asked for.
    #[must_use]
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Returns once a stop is asked for (at once if it has been). Cancel-safe.
    pub async fn requested(&mut self) {
        if self.0.wait_for(|stop| *stop).await.is_err() {
            // The workspace is gone without asking: nothing will.
            std::future::pending::<()>().await;
        }
    }
}
