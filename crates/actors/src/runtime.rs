//! The actix runtime, on threads of its own.
//!
//! actix is run the way its maintainers keep it stable: a `System` on a dedicated thread and
//! one `Arbiter` (a thread with a single-threaded tokio runtime) per core. The rest of the
//! server (tokio, axum) only holds `Addr`s and arbiter handles, which are `Send`, so no
//! executor thread of the gateway ever runs an actor, and no actor blocks on RocksDB (reads
//! go through `spawn_blocking`, appends through the log's writer thread).

use std::sync::Mutex;
use std::thread::JoinHandle;

use actix::{Arbiter, ArbiterHandle, System};

/// A running actix system with its arbiters.
pub struct ActorRuntime {
    arbiters: Vec<ArbiterHandle>,
    /// The arbiters themselves, to join their threads at shutdown (so every actor, and
    /// every store handle it holds, is dropped when `shutdown` returns).
    threads: Mutex<Vec<Arbiter>>,
    system: System,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for ActorRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorRuntime")
            .field("arbiters", &self.arbiters.len())
            .finish()
    }
}

impl ActorRuntime {
    /// Starts the system thread and `arbiters` arbiter threads (at least one).
    ///
    /// # Errors
    /// When a thread cannot be spawned.
    pub fn start(arbiters: usize) -> std::io::Result<Self> {
        let n = arbiters.max(1);
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("actix-system".into())
            .spawn(move || {
                let runner = System::new();
                runner.block_on(async move {
                    let arbiters: Vec<Arbiter> = (0..n).map(|_| Arbiter::new()).collect();
                    let _ = tx.send((System::current(), arbiters));
                });
                if let Err(e) = runner.run() {
                    tracing::error!(error = %e, "actix system stopped with an error");
                }
            })?;
        let (system, threads) = rx
            .recv()
            .map_err(|_| std::io::Error::other("the actix system thread died while starting"))?;
        Ok(Self {
            arbiters: threads.iter().map(Arbiter::handle).collect(),
            threads: Mutex::new(threads),
            system,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Starts with one arbiter per available core.
    ///
    /// # Errors
    /// As [`ActorRuntime::start`].
    pub fn per_core() -> std::io::Result<Self> {
        Self::start(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    pub fn arbiters(&self) -> &[ArbiterHandle] {
        &self.arbiters
    }

    /// Stops every arbiter and the system, and waits for the system thread. Actors are
    /// stopped; in-flight appends are already queued in the log, whose own shutdown waits
    /// for them. Idempotent.
    pub fn shutdown(&self) {
        for a in &self.arbiters {
            a.stop();
        }
        let threads = self
            .threads
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for t in threads {
            let _ = t.join();
        }
        self.system.stop();
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

impl Drop for ActorRuntime {
    fn drop(&mut self) {
        self.shutdown();
    }
}
