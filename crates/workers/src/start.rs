//! The one place the followers are started.
//!
//! Two sets, by where they run:
//! - [`every_node`]: the attachment reference index and media erasure. Every node runs
//!   them: the attachment routes wait on the index's progress, and media erasure deletes
//!   this node's own blobs. Their writes are idempotent.
//! - [`leader`]: the jobs one node of a cluster runs at a time (a single server is always
//!   the leader): inbound routing, the queue timeline, outbound webhooks, and, as
//!   [`Leader`] says, the queue timers, retention and the outbox with its carrier status
//!   feed. Each is keyed by the events that cause its effects, so a handover repeats
//!   work, never effects.
//!
//! Both return [`Running`], which stops its tasks when dropped. Every follower publishes
//! its position in the workspace's `progress` under its checkpoint's name, and is known
//! there from the moment it is started (before its task first runs), so that
//! [`eventlog::Progress::settled`] called at once waits for it.

use std::sync::Arc;
use std::time::Duration;

use actors::clock::Clock;
use actors::Workspace;
use carrier::blobs::BlobStore;
use carrier::{Carrier, StatusReport};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

use crate::outbox::{Outbox, OutboxConfig};
use crate::webhooks::WebhookConfig;

/// Tasks started together; aborted when this is dropped.
#[derive(Debug, Default)]
pub struct Running(Vec<JoinHandle<()>>);

impl Running {
    /// Stops every task (also done on drop).
    pub fn abort(&self) {
        for task in &self.0 {
            task.abort();
        }
    }

    /// Adds `other`'s tasks to these.
    pub fn join(&mut self, mut other: Running) {
        self.0.append(&mut other.0);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.abort();
    }
}

/// Starts the followers every node runs (see the module docs). Call within tokio.
pub fn every_node(ws: &Workspace, blobs: BlobStore) -> Running {
    known(
        ws,
        &[
            crate::attachment_refs::CHECKPOINT,
            crate::media_erasure::CHECKPOINT,
        ],
    );
    Running(vec![
        tokio::spawn(crate::attachment_refs::run(ws.clone())),
        tokio::spawn(crate::media_erasure::run(ws.clone(), blobs)),
    ])
}

/// The outbox's carrier and settings.
pub struct OutboxSetup {
    pub carrier: Arc<dyn Carrier>,
    pub config: OutboxConfig,
    /// The embedded simulator's status reports, written to the log as they come.
    pub status_reports: Option<UnboundedReceiver<StatusReport>>,
}

/// What the leader's followers need; `None` leaves a job off (tests drive the queue timers
/// with a manual clock, for one).
pub struct Leader {
    pub webhooks: WebhookConfig,
    /// The queue timers, on this clock.
    pub queue_timers: Option<Arc<dyn Clock>>,
    /// Retention, sweeping this often.
    pub retention: Option<Duration>,
    pub outbox: Option<OutboxSetup>,
    /// The outbox's clock (backoff, the grace period of unconfirmed sends).
    pub clock: Arc<dyn Clock>,
}

/// Starts the leader's followers (see the module docs). Call within tokio.
pub fn leader(ws: &Workspace, setup: Leader) -> Running {
    known(
        ws,
        &[
            crate::inbound_router::CHECKPOINT,
            crate::queue_timeline::CHECKPOINT,
        ],
    );
    known(ws, &crate::webhooks::FOLLOWERS);
    let mut tasks = vec![
        tokio::spawn(crate::inbound_router::run(ws.clone())),
        tokio::spawn(crate::queue_timeline::run(ws.clone())),
        tokio::spawn(crate::webhooks::run(ws.clone(), setup.webhooks)),
    ];
    if let Some(clock) = setup.queue_timers {
        known(ws, &[crate::queue_timers::PROGRESS]);
        tasks.push(tokio::spawn(crate::queue_timers::run(ws.clone(), clock)));
    }
    if let Some(every) = setup.retention {
        tasks.push(tokio::spawn(crate::retention::run(ws.clone(), every)));
    }
    if let Some(outbox) = setup.outbox {
        // Subscribed before anything is sent, so no report is missed.
        if let Some(reports) = outbox.status_reports {
            tasks.push(tokio::spawn(crate::outbox::status::feed(
                ws.store.clone(),
                reports,
            )));
        }
        let started = Outbox::start(ws.clone(), outbox.carrier, outbox.config, setup.clock);
        tasks.extend(started.tasks);
    }
    Running(tasks)
}

/// Makes followers about to start known to the workspace's progress (see the module docs).
pub(crate) fn known(ws: &Workspace, names: &[&str]) {
    for name in names {
        ws.progress.publisher(name);
    }
}
