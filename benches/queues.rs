//! SMS queues: claims/s with competing agents, and the durable timer scheduler under
//! many pending timers.
//!
//! Prints `BENCH` lines:
//! - `queues.claims.w64.per_s`: successful claims per second on one queue, `--agents`
//!   logged-in agents all racing for the oldest waiting interaction (each claim is one
//!   durable append; the losers get `AlreadyClaimed`), and `queues.claim_attempts.w64.per_s`;
//! - `queues.timers.pending`, `queues.timers.rss_mb`: `--timers` interactions waiting with a
//!   wait deadline (spread over `--queues` queues) once the scheduler has loaded them;
//! - `queues.timers.fire_lag.p50_ms` / `p99_ms`: how late each timer fired (the
//!   `QueueTimedOut` event's time minus its deadline), with the system clock, while
//!   interactions keep arriving at `--arrivals-per-s` (so deadlines come due at that rate).
//!
//! `cargo bench --bench queues -- --agents 64 --seconds 3 --timers 100000 --queues 100`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::clock::{Clock, SystemClock};
use actors::{ActorConfig, ActorRuntime, CommandError, ExecuteOptions, Workspace};
use benchkit::{bench_line, Args, Latencies, ToF64};
use domain::queue::{
    IdleTimeoutAction, QueueCommand, QueueEvent, QueuePolicy, QueueRejection, WaitTimeoutAction,
};
use domain::{CommandMeta, ConversationId, OrgId, PhoneNumber, QueueId, Role, UserId};
use eventlog::{EventStore, LogOptions, RocksLog};
use workers::queue_timers;

/// See benches/log_read.rs: the allocator matters more than the code around it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn create_queue(
    ws: &Workspace,
    org: OrgId,
    queue: QueueId,
    agents: &[UserId],
    wait_ms: Option<u64>,
    i: u64,
) {
    let sys = CommandMeta::system(org, 1);
    let mut cmds = vec![QueueCommand::CreateQueue {
        id: queue,
        name: format!("q{i}"),
        number: PhoneNumber::parse(&format!("+1555{:07}", 1_000_000 + i)).expect("number"),
        policy: QueuePolicy {
            wait_timeout_ms: wait_ms,
            on_wait_timeout: WaitTimeoutAction::Close,
            idle_timeout_ms: None,
            on_idle_timeout: IdleTimeoutAction::ReturnToQueue,
            max_pending_visible: None,
        },
    }];
    cmds.extend(agents.iter().map(|a| QueueCommand::AddMember { user: *a }));
    for c in cmds {
        ws.queues
            .execute(&queue, sys.issue(c), ExecuteOptions::default())
            .await
            .expect("setup");
    }
    for a in agents {
        let login = CommandMeta::user(org, *a, Role::Member, 2).issue(QueueCommand::LogIn);
        ws.queues
            .execute(&queue, login, ExecuteOptions::default())
            .await
            .expect("login");
    }
}

fn main() {
    let args = Args::parse();
    let agents_n: usize = args.get("agents", 64);
    let seconds: f64 = args.get("seconds", 3.0);
    let timers_n: usize = args.get("timers", 100_000);
    let queues_n: usize = args.get("queues", 100);
    let wait_ms: u64 = args.get("wait-ms", 4_000);
    // Interactions arrive at this rate, so deadlines spread as real traffic's would.
    let arrivals_per_s: f64 = args.get("arrivals-per-s", 20_000.0);

    let dir = tempfile::tempdir().expect("temp dir");
    let log = RocksLog::open(dir.path().join("log"), LogOptions::default()).expect("log");
    let store: Arc<dyn EventStore> = Arc::new(log.clone());
    let runtime = Arc::new(ActorRuntime::per_core().expect("runtime"));
    let ws = Workspace::new(store.clone(), runtime.clone(), ActorConfig::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let org = OrgId::random();

    rt.block_on(async {
        // Claims: one queue, many agents racing for the oldest interaction.
        let queue = QueueId::random();
        let agents: Vec<UserId> = (0..agents_n).map(|_| UserId::random()).collect();
        create_queue(&ws, org, queue, &agents, None, 0).await;
        let expected_claims = 20_000usize;
        let conversations: Arc<Vec<ConversationId>> = Arc::new(
            (0..expected_claims)
                .map(|_| ConversationId::random())
                .collect(),
        );
        let t = Instant::now();
        for c in conversations.iter() {
            let cmd = CommandMeta::system(org, 3).issue(QueueCommand::Enqueue { conversation: *c });
            ws.queues
                .execute(&queue, cmd, ExecuteOptions::default())
                .await
                .expect("enqueue");
        }
        println!(
            "# enqueued {expected_claims} in {:.1}s",
            t.elapsed().as_secs_f64()
        );
        let next = Arc::new(AtomicUsize::new(0));
        let claims = Arc::new(AtomicUsize::new(0));
        let attempts = Arc::new(AtomicUsize::new(0));
        let deadline = Duration::from_secs_f64(seconds);
        let start = Instant::now();
        let tasks: Vec<_> = agents
            .iter()
            .map(|agent| {
                let (ws, conversations, next, claims, attempts, agent) = (
                    ws.clone(),
                    conversations.clone(),
                    next.clone(),
                    claims.clone(),
                    attempts.clone(),
                    *agent,
                );
                tokio::spawn(async move {
                    while start.elapsed() < deadline {
                        let k = next.load(Ordering::Acquire);
                        let Some(c) = conversations.get(k) else { break };
                        let cmd = CommandMeta::user(org, agent, Role::Member, 4)
                            .issue(QueueCommand::Claim { conversation: *c });
                        attempts.fetch_add(1, Ordering::Relaxed);
                        match ws
                            .queues
                            .execute(&queue, cmd, ExecuteOptions::default())
                            .await
                        {
                            Ok(_) => {
                                claims.fetch_add(1, Ordering::Relaxed);
                                let _ = next.compare_exchange(
                                    k,
                                    k + 1,
                                    Ordering::AcqRel,
                                    Ordering::Acquire,
                                );
                            }
                            Err(CommandError::Rejected(QueueRejection::AlreadyClaimed {
                                ..
                            })) => {
                                let _ = next.compare_exchange(
                                    k,
                                    k + 1,
                                    Ordering::AcqRel,
                                    Ordering::Acquire,
                                );
                            }
                            Err(CommandError::Actor(actors::ActorError::Busy)) => {}
                            Err(e) => panic!("claim: {e}"),
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("agent");
        }
        let secs = start.elapsed().as_secs_f64();
        bench_line(
            &format!("queues.claims.w{agents_n}.per_s"),
            claims.load(Ordering::Relaxed).to_f64() / secs,
            "claims/s",
        );
        bench_line(
            &format!("queues.claim_attempts.w{agents_n}.per_s"),
            attempts.load(Ordering::Relaxed).to_f64() / secs,
            "attempts/s",
        );

        // Timers: many interactions waiting with deadlines, spread over queues.
        let queues: Vec<QueueId> = (0..queues_n).map(|_| QueueId::random()).collect();
        for (i, q) in queues.iter().enumerate() {
            create_queue(&ws, org, *q, &[], Some(wait_ms), 1 + i as u64).await;
        }
        let rss_before = rss_mb();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let scheduler = tokio::spawn(queue_timers::run(ws.clone(), clock.clone()));
        let t = Instant::now();
        let counter = Arc::new(AtomicUsize::new(0));
        let enqueuers: Vec<_> = (0..256)
            .map(|_| {
                let (ws, queues, counter, clock) =
                    (ws.clone(), queues.clone(), counter.clone(), clock.clone());
                tokio::spawn(async move {
                    let start = Instant::now();
                    loop {
                        let i = counter.fetch_add(1, Ordering::Relaxed);
                        if i >= timers_n {
                            break;
                        }
                        let due = Duration::from_secs_f64(i.to_f64() / arrivals_per_s);
                        if let Some(wait) = due.checked_sub(start.elapsed()) {
                            tokio::time::sleep(wait).await;
                        }
                        let q = queues[i % queues.len()];
                        let cmd =
                            CommandMeta::system(org, clock.now_ms()).issue(QueueCommand::Enqueue {
                                conversation: ConversationId::random(),
                            });
                        ws.queues
                            .execute(&q, cmd, ExecuteOptions::default())
                            .await
                            .expect("enqueue");
                    }
                })
            })
            .collect();
        for e in enqueuers {
            e.await.expect("enqueuer");
        }
        let enqueue_s = t.elapsed().as_secs_f64();
        println!(
            "# enqueued {timers_n} waiting interactions over {queues_n} queues in {enqueue_s:.1}s"
        );
        bench_line("queues.timers.pending", timers_n.to_f64(), "timers");
        bench_line("queues.timers.rss_mb", rss_mb(), "MiB");
        println!("# RSS before the timers: {rss_before:.0} MiB");
        // Wait until every timer has fired (or give up after a generous bound).
        let give_up =
            Instant::now() + Duration::from_secs_f64(wait_ms.to_f64() / 1000.0 + enqueue_s + 60.0);
        let mut lags = Latencies::default();
        let mut fired = 0usize;
        let mut from = 0;
        while fired < timers_n && Instant::now() < give_up {
            let page = store
                .read_category_blocking("queue", from, 4096)
                .expect("read");
            if page.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            from = page.last().map_or(from, |e| e.position + 1);
            for e in &page {
                if e.event_type != "QueueTimedOut" {
                    continue;
                }
                if let Ok(QueueEvent::QueueTimedOut(t)) =
                    actors::event_codec::decode::<QueueEvent>(e)
                {
                    lags.record(Duration::from_millis(t.at_ms.saturating_sub(t.deadline_ms)));
                    fired += 1;
                }
            }
        }
        scheduler.abort();
        println!("# fired {fired} of {timers_n} timers");
        bench_line("queues.timers.fired", fired.to_f64(), "timers");
        bench_line(
            "queues.timers.fire_lag.p50_ms",
            lags.percentile_ms(0.50),
            "ms",
        );
        bench_line(
            "queues.timers.fire_lag.p99_ms",
            lags.percentile_ms(0.99),
            "ms",
        );
    });
    runtime.shutdown();
    log.shutdown();
}
