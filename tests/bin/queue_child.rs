//! Child process of `tests/queue_timer_crash.rs`: a server's actors and queue timer
//! scheduler over a log, running until killed.
//!
//! Usage: `queue-child <log-dir>`. Prints `READY` once the scheduler runs, then answers
//! each `settle` on stdin with `SETTLED` once the scheduler has handled the log
//! (`testkit::child`).

use std::io::Write;
use std::sync::Arc;

use actors::clock::SystemClock;
use actors::{ActorConfig, ActorRuntime, Workspace};
use eventlog::{EventStore, LogOptions, RocksLog};
use workers::queue_timers;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: queue-child <log-dir>");
    let store: Arc<dyn EventStore> =
        Arc::new(RocksLog::open(dir, LogOptions::default()).expect("open log"));
    let runtime = Arc::new(ActorRuntime::start(2).expect("actor runtime"));
    let ws = Workspace::new(store, runtime, ActorConfig::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    // Known before it runs, so a settle asked at once waits for it.
    ws.progress.publisher(queue_timers::PROGRESS);
    testkit::child::answer_settle_requests(ws.clone(), rt.handle().clone());
    rt.block_on(async move {
        let scheduler = tokio::spawn(queue_timers::run(ws, Arc::new(SystemClock)));
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "READY");
        let _ = out.flush();
        drop(out);
        let _ = scheduler.await;
    });
}
