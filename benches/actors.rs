//! Commands through actors, rehydration, and memory with many streams.
//!
//! Prints `BENCH` lines:
//! - `actors.commands.hot.per_s`: one channel, `--concurrency` senders posting;
//! - `actors.commands.spread.per_s`: posts to `--conversations` channels at random, and
//!   `actors.commands.spread.ratio_to_log` against the log's own durable single-event
//!   appends at the same concurrency, measured in the same run;
//! - `actors.rehydrate.{10k,100k}.{snapshot_ms,replay_ms}`: loading a conversation of that
//!   many events from a snapshot and from a full replay (median of `--rounds`);
//! - `actors.memory.rss_mb`: process RSS with `--streams` conversation streams in the log
//!   and `--active` actors alive.
//!
//! `cargo bench --bench actors -- --seconds 2 --concurrency 64 --conversations 10000 --streams 1000000 --active 10000`

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::{ActorConfig, ActorRuntime, Core, ExecuteOptions, Registry};
use benchkit::{bench_line, median, Args, ToF64};
use domain::conversation::ActorFacts;
use domain::{
    Aggregate, CommandMeta, Conversation, ConversationCommand, ConversationId, MessageId, OrgId,
    Role, UserId,
};
use eventlog::{EventData, EventStore, ExpectedVersion, LogOptions, RocksLog, StreamName};

/// See benches/log_read.rs: the allocator matters more than the code around it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Org {
    org: OrgId,
    users: Vec<UserId>,
}

impl Org {
    fn new() -> Self {
        Self {
            org: OrgId::random(),
            users: (0..3).map(|_| UserId::random()).collect(),
        }
    }

    fn start_channel(&self, id: ConversationId) -> domain::Issued<ConversationCommand> {
        let members: BTreeSet<UserId> = self.users.iter().copied().collect();
        CommandMeta::user(self.org, self.users[0], Role::Member, 1).issue(
            ConversationCommand::StartChannel {
                id,
                name: "bench".into(),
                members: members.clone(),
                known_users: members,
            },
        )
    }

    fn post(&self, i: u64) -> domain::Issued<ConversationCommand> {
        CommandMeta::user(self.org, self.users[(i % 3) as usize], Role::Member, 10 + i).issue(
            ConversationCommand::PostMessage {
                message_id: MessageId::random(),
                text: "a message of moderate length for the benchmark 👍".into(),
                attachments: Vec::new(),
                from: None,
                facts: ActorFacts::default(),
                opted_out: BTreeSet::new(),
            },
        )
    }
}

/// Runs `tasks` concurrent loops of `op` for `seconds`; returns operations per second.
async fn drive<F, Fut>(tasks: usize, seconds: f64, op: F) -> f64
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let done = Arc::new(AtomicU64::new(0));
    let seq = Arc::new(AtomicU64::new(0));
    let deadline = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (op, done, seq) = (op.clone(), done.clone(), seq.clone());
            tokio::spawn(async move {
                while start.elapsed() < deadline {
                    op(seq.fetch_add(1, Ordering::Relaxed)).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("bench task");
    }
    done.load(Ordering::Relaxed).to_f64() / start.elapsed().as_secs_f64()
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Writes a channel conversation of `n` events (built by the domain's own decide) in big
/// appends, the way a long-lived busy conversation would have accumulated them.
fn write_long_conversation(store: &Arc<dyn EventStore>, n: u64) -> StreamName {
    let org = Org::new();
    let id = ConversationId::random();
    let stream = StreamName::from_parts("conversation", id).expect("stream");
    let mut state = Conversation::default();
    let mut pending = Vec::new();
    let mut version: Option<u64> = None;
    let mut i = 0;
    let flush = |pending: &mut Vec<EventData>, version: &mut Option<u64>| {
        if pending.is_empty() {
            return;
        }
        let r = store
            .append_blocking(
                stream.clone(),
                ExpectedVersion::after(*version),
                std::mem::take(pending),
            )
            .expect("append");
        *version = Some(r.last_version);
    };
    let mut written = 0;
    while written < n {
        let cmd = if written == 0 {
            org.start_channel(id)
        } else {
            org.post(i)
        };
        i += 1;
        for e in state.handle(&cmd).expect("accepted") {
            pending.push(
                actors::event_codec::encode(&e, uuid::Uuid::new_v4(), Default::default())
                    .expect("encode"),
            );
            written += 1;
        }
        if pending.len() >= 2000 {
            flush(&mut pending, &mut version);
        }
    }
    flush(&mut pending, &mut version);
    stream
}

fn main() {
    let args = Args::parse();
    let seconds: f64 = args.get("seconds", 2.0);
    let concurrency: usize = args.get("concurrency", 64);
    let conversations: u64 = args.get("conversations", 10_000);
    let rounds: usize = args.get("rounds", 3);
    let streams: u64 = args.get("streams", 1_000_000);
    let active: u64 = args.get("active", 10_000);

    let dir = tempfile::tempdir().expect("temp dir");
    let log = RocksLog::open(dir.path().join("log"), LogOptions::default()).expect("open log");
    let store: Arc<dyn EventStore> = Arc::new(log.clone());
    let runtime = Arc::new(ActorRuntime::per_core().expect("actor runtime"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let config = ActorConfig::default();
    let registry: Registry<Conversation> =
        Registry::new(store.clone(), runtime.clone(), config.clone());
    let org = Arc::new(Org::new());

    rt.block_on(async {
        // Hot: one conversation, every sender on it.
        let hot = ConversationId::random();
        registry
            .execute(&hot, org.start_channel(hot), ExecuteOptions::default())
            .await
            .expect("start hot");
        let hot_rate = {
            let (registry, org) = (registry.clone(), org.clone());
            drive(concurrency, seconds, move |i| {
                let (registry, org) = (registry.clone(), org.clone());
                async move {
                    registry
                        .execute(&hot, org.post(i), ExecuteOptions::default())
                        .await
                        .expect("post");
                }
            })
            .await
        };
        bench_line("actors.commands.hot.per_s", hot_rate, "commands/s");

        // Spread: many conversations, random targets.
        let ids: Arc<Vec<ConversationId>> = Arc::new(
            (0..conversations)
                .map(|_| ConversationId::random())
                .collect(),
        );
        let t = Instant::now();
        {
            let (registry, org, ids) = (registry.clone(), org.clone(), ids.clone());
            let next = Arc::new(AtomicU64::new(0));
            let starters: Vec<_> = (0..concurrency)
                .map(|_| {
                    let (registry, org, ids, next) =
                        (registry.clone(), org.clone(), ids.clone(), next.clone());
                    tokio::spawn(async move {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(id) = usize::try_from(i).ok().and_then(|i| ids.get(i)) else {
                                break;
                            };
                            registry
                                .execute(id, org.start_channel(*id), ExecuteOptions::default())
                                .await
                                .expect("start");
                        }
                    })
                })
                .collect();
            for s in starters {
                s.await.expect("starter");
            }
        }
        println!(
            "# started {conversations} conversations in {:.1}s",
            t.elapsed().as_secs_f64()
        );
        let mut spread = Vec::new();
        let mut log_rates = Vec::new();
        for _ in 0..rounds {
            let (registry2, org2, ids2) = (registry.clone(), org.clone(), ids.clone());
            spread.push(
                drive(concurrency, seconds, move |i| {
                    let (registry, org, ids) = (registry2.clone(), org2.clone(), ids2.clone());
                    async move {
                        let pick = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % ids.len() as u64;
                        let id = ids[usize::try_from(pick).expect("below ids.len()")];
                        registry
                            .execute(&id, org.post(i), ExecuteOptions::default())
                            .await
                            .expect("post");
                    }
                })
                .await,
            );
            let store2 = store.clone();
            log_rates.push(
                drive(concurrency, seconds, move |i| {
                    let store = store2.clone();
                    async move {
                        let s = StreamName::new(format!("logbench-{}", i % 4096)).expect("stream");
                        let e = EventData::new("BenchEvent", 1, vec![0u8; 200]);
                        store
                            .append(s, ExpectedVersion::Any, vec![e])
                            .await
                            .expect("append");
                    }
                })
                .await,
            );
        }
        let (spread, log_rate) = (median(spread), median(log_rates));
        bench_line("actors.commands.spread.per_s", spread, "commands/s");
        bench_line("actors.log_append.per_s", log_rate, "events/s");
        bench_line(
            "actors.commands.spread.ratio_to_log",
            spread / log_rate,
            "ratio",
        );
        println!("# active actors after spread: {}", registry.active());
    });

    // Rehydration of long conversations.
    for (label, n) in [("10k", 10_000u64), ("100k", 100_000)] {
        let stream = write_long_conversation(&store, n);
        let mut replay = Vec::new();
        let mut snap = Vec::new();
        rt.block_on(async {
            for _ in 0..rounds {
                let no_snapshot_config = ActorConfig {
                    snapshot_every: 0,
                    ..config.clone()
                };
                let t = Instant::now();
                let mut core = Core::<Conversation>::replay_from_start(
                    store.clone(),
                    stream.clone(),
                    no_snapshot_config.clone(),
                )
                .await
                .expect("replay");
                replay.push(t.elapsed().as_secs_f64() * 1000.0);
                assert_eq!(core.version, Some(n - 1));
                core.snapshot_now().await.expect("snapshot");
                let t = Instant::now();
                let loaded =
                    Core::<Conversation>::load(store.clone(), stream.clone(), no_snapshot_config)
                        .await
                        .expect("from snapshot");
                snap.push(t.elapsed().as_secs_f64() * 1000.0);
                assert_eq!(loaded.version, core.version);
            }
        });
        let bytes = store
            .read_snapshot_blocking(&stream)
            .ok()
            .flatten()
            .map_or(0, |s| s.state.len());
        println!("# {label}: snapshot state {bytes} bytes");
        bench_line(
            &format!("actors.rehydrate.{label}.snapshot_ms"),
            median(snap),
            "ms",
        );
        bench_line(
            &format!("actors.rehydrate.{label}.replay_ms"),
            median(replay),
            "ms",
        );
    }

    // Memory: many streams in the log, many actors alive.
    rt.block_on(async {
        let t = Instant::now();
        let next = Arc::new(AtomicU64::new(0));
        let org = Arc::new(Org::new());
        let writers: Vec<_> = (0..256)
            .map(|_| {
                let (store, next, org) = (store.clone(), next.clone(), org.clone());
                tokio::spawn(async move {
                    let mut ids = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= streams {
                            break;
                        }
                        let id = ConversationId::random();
                        let events = Conversation::default()
                            .decide(&org.start_channel(id))
                            .expect("start");
                        let data = events
                            .iter()
                            .map(|e| {
                                actors::event_codec::encode(
                                    e,
                                    uuid::Uuid::new_v4(),
                                    Default::default(),
                                )
                                .expect("encode")
                            })
                            .collect();
                        let s = StreamName::from_parts("conversation", id).expect("stream");
                        store
                            .append(s, ExpectedVersion::NoStream, data)
                            .await
                            .expect("append");
                        if (ids.len() as u64) < active / 256 + 1 {
                            ids.push(id);
                        }
                    }
                    ids
                })
            })
            .collect();
        let mut to_activate = Vec::new();
        for w in writers {
            to_activate.extend(w.await.expect("writer"));
        }
        println!(
            "# wrote {streams} conversation streams in {:.1}s",
            t.elapsed().as_secs_f64()
        );
        let fresh: Registry<Conversation> =
            Registry::new(store.clone(), runtime.clone(), config.clone());
        let t = Instant::now();
        for id in to_activate
            .iter()
            .take(usize::try_from(active).unwrap_or(usize::MAX))
        {
            fresh
                .query(id, |c: &Conversation, _| c.last_seq())
                .await
                .expect("activate");
        }
        println!(
            "# activated {} actors in {:.1}s (plus {} from the command benchmarks)",
            fresh.active(),
            t.elapsed().as_secs_f64(),
            registry.active()
        );
        bench_line("actors.memory.rss_mb", rss_mb(), "MiB");
    });
    runtime.shutdown();
    log.shutdown();
}
