//! Actors over a real log in a temp dir, restartable.

use std::sync::Arc;
use std::time::Duration;

use actors::{ActorConfig, ActorRuntime, Registry};
use domain::Conversation;

use crate::TempLog;

/// A log, an actor runtime and the conversation registry on top.
pub struct ActorWorld {
    pub log: TempLog,
    pub runtime: Option<Arc<ActorRuntime>>,
    pub conversations: Option<Registry<Conversation>>,
    pub config: ActorConfig,
}

impl ActorWorld {
    pub fn new(config: ActorConfig) -> Self {
        let log = TempLog::new();
        let mut w = Self {
            log,
            runtime: None,
            conversations: None,
            config,
        };
        w.start();
        w
    }

    fn start(&mut self) {
        let runtime = Arc::new(ActorRuntime::start(2).expect("actor runtime"));
        self.conversations = Some(Registry::new(
            self.log.store(),
            runtime.clone(),
            self.config.clone(),
        ));
        self.runtime = Some(runtime);
    }

    pub fn conversations(&self) -> &Registry<Conversation> {
        self.conversations.as_ref().expect("running")
    }

    /// Stops every actor and the log, then starts both again from disk.
    pub fn restart(&mut self) {
        self.conversations = None;
        if let Some(rt) = self.runtime.take() {
            rt.shutdown();
        }
        self.log.reopen();
        self.start();
    }
}

/// Fast passivation for tests.
pub fn quick_passivation() -> ActorConfig {
    ActorConfig {
        idle_timeout: Duration::from_millis(50),
        ..ActorConfig::default()
    }
}
