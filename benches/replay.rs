//! `cargo bench --bench replay`: what auditors and engineers wait for.
//!
//! Writes a log of `--events` (default 1,000,000) conversation events — direct
//! conversations between 1,000 users, mostly messages with some read receipts — plus one
//! conversation of `--long` (default 100,000) messages, then measures in the same run:
//! - `replay.read_all.events_per_s`: the baseline, a raw scan of `$all` (no decoding);
//! - `replay.rebuild.<model>.events_per_s`: `replay rebuild <model>` over all of it, for
//!   each read model alone (interactions, search, queues: decode, project, write the
//!   model with its checkpoints);
//! - `replay.rebuild.events_per_s`: `replay rebuild all`, every read model rebuilt at once
//!   (one thread each), log events per second of wall-clock time until all are complete,
//!   and its ratio to the baseline; `replay.rebuild.sequential.events_per_s`: the same
//!   work one model after the other (events / the sum of the per-model times);
//! - `replay.conversation100k.s` (and `_jsonl.s`): printing the long conversation.
//!
//! `--models search,queues` limits the per-model runs (the all-at-once run always
//! rebuilds every model). `--data-dir DIR` keeps the log in `DIR/log` and reuses it when
//! it is there (with the same `--events` and `--long`), so the rebuild can be profiled
//! alone: `replay --data-dir DIR rebuild all --no-switch`.

use std::sync::Arc;
use std::time::Instant;

use benchkit::{bench_line, Args, ToF64};
use domain::conversation::{ConversationKind, ConversationStarted, MessagePosted, MessagesRead};
use domain::directory::{DirectoryEvent, UserAdded};
use domain::{Actor, ConversationEvent, ConversationId, MessageId, OrgId, Role, Text, UserId};
use eventlog::{EventData, EventStore, ExpectedVersion, LogOptions, RocksLog, StreamName};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn enc<E: domain::VersionedEvent>(e: &E) -> EventData {
    actors::event_codec::encode(e, uuid::Uuid::new_v4(), Default::default()).expect("encodes")
}

fn conversation(
    org: OrgId,
    id: ConversationId,
    a: UserId,
    b: UserId,
    messages: u64,
    at: u64,
) -> Vec<EventData> {
    let (a, b) = if a < b { (a, b) } else { (b, a) };
    let messages_len = usize::try_from(messages).expect("a conversation fits in memory");
    let mut out = Vec::with_capacity(messages_len + messages_len / 4 + 1);
    out.push(enc(&ConversationEvent::ConversationStarted(
        ConversationStarted {
            id,
            org,
            kind: ConversationKind::Direct { a, b },
            by: Actor::User {
                id: a,
                role: Role::Member,
            },
            at_ms: at,
        },
    )));
    for seq in 1..=messages {
        let author = if seq % 2 == 0 { a } else { b };
        out.push(enc(&ConversationEvent::MessagePosted(MessagePosted {
            message_id: MessageId::random(),
            seq,
            author,
            text: Text::unsealed(format!(
                "message {seq}: can you confirm the delivery window for order 4471?"
            )),
            attachments: Vec::new(),
            at_ms: at + seq,
        })));
        if seq % 4 == 0 {
            out.push(enc(&ConversationEvent::MessagesRead(MessagesRead {
                user: if author == a { b } else { a },
                up_to: seq,
                at_ms: at + seq,
            })));
        }
    }
    out
}

/// CPU time (user + system) this process has used so far, in seconds (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which ends with ')'): utime and stime are the 12th
    // and 13th, in clock ticks (100 a second on Linux).
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn append_all(log: &RocksLog, stream: StreamName, events: Vec<EventData>) {
    let mut it = events.into_iter().peekable();
    while it.peek().is_some() {
        let chunk: Vec<EventData> = it.by_ref().take(500).collect();
        log.append_blocking(stream.clone(), ExpectedVersion::Any, chunk)
            .expect("appended");
    }
}

fn main() {
    let args = Args::parse();
    let total: u64 = args.get("events", 1_000_000);
    let long: u64 = args.get("long", 100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let kept: String = args.get("data-dir", String::new());
    let root = if kept.is_empty() {
        dir.path().to_path_buf()
    } else {
        std::path::PathBuf::from(kept)
    };
    let log_path = root.join("log");
    // The long conversation's id, beside a kept log.
    let long_file = root.join("long-conversation");
    let org = OrgId::random();
    let users: Vec<UserId> = (0..1000).map(|_| UserId::random()).collect();
    let reused = std::fs::read_to_string(&long_file)
        .ok()
        .and_then(|s| s.trim().parse::<ConversationId>().ok())
        .filter(|_| log_path.exists());
    let long_id = reused.unwrap_or_else(ConversationId::random);
    let started = Instant::now();
    if reused.is_none() {
        let log = RocksLog::open(&log_path, LogOptions::default()).expect("open");
        let directory: Vec<EventData> = users
            .iter()
            .enumerate()
            .map(|(i, u)| {
                enc(&DirectoryEvent::UserAdded(UserAdded {
                    user: *u,
                    name: format!("User {i}"),
                    extension: domain::directory::Extension::parse(&format!("{}", 1000 + i))
                        .expect("ext"),
                    role: Role::Member,
                    by: Actor::System,
                    at_ms: 1,
                }))
            })
            .collect();
        append_all(
            &log,
            StreamName::from_parts("directory", org).unwrap(),
            directory,
        );
        append_all(
            &log,
            StreamName::from_parts("conversation", long_id).unwrap(),
            conversation(org, long_id, users[0], users[1], long * 4 / 5, 10),
        );
        // ~125 events per conversation (100 messages + 25 receipts).
        let conversations = (total / 125).max(1);
        let per_thread = conversations.div_ceil(4);
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let (log, users) = (&log, &users);
                s.spawn(move || {
                    for i in (t * per_thread)..((t + 1) * per_thread).min(conversations) {
                        let id = ConversationId::random();
                        let k = usize::try_from(i).expect("a conversation index");
                        let a = users[(k * 7) % users.len()];
                        let b = users[(k * 13 + 1) % users.len()];
                        let b = if a == b {
                            users[(k + 500) % users.len()]
                        } else {
                            b
                        };
                        append_all(
                            log,
                            StreamName::from_parts("conversation", id).unwrap(),
                            conversation(org, id, a, b, 100, i),
                        );
                    }
                });
            }
        });
        log.shutdown();
        std::fs::write(&long_file, long_id.to_string()).expect("long conversation id written");
    }
    let ro = RocksLog::open_read_only(&log_path).expect("read-only");
    let events = ro.next_position();
    eprintln!(
        "{} {events} events in {:.1} s",
        if reused.is_some() { "reused" } else { "wrote" },
        started.elapsed().as_secs_f64()
    );

    // Baseline: a raw scan of $all.
    let (t, cpu) = (Instant::now(), cpu_seconds());
    let mut from = 0;
    let mut n = 0u64;
    loop {
        let page = ro.read_all_blocking(from, 4096).expect("read");
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        n += page.len() as u64;
    }
    let read_rate = n.to_f64() / t.elapsed().as_secs_f64();
    eprintln!(
        "read $all in {:.2} s, {:.2} s of CPU",
        t.elapsed().as_secs_f64(),
        cpu_seconds() - cpu
    );
    bench_line("replay.read_all.events_per_s", read_rate, "events/s");

    // Always fresh (a kept directory holds only the log).
    let readmodels = dir.path().join("readmodels");
    let store: Arc<dyn EventStore> = Arc::new(ro.clone());
    // Each model alone, one after the other.
    let mut sequential = 0.0;
    let only: String = args.get("models", replay::rebuild::MODELS.join(","));
    for model in replay::rebuild::MODELS
        .iter()
        .filter(|m| only.split(',').any(|o| o == **m))
    {
        let cpu = cpu_seconds();
        let report = replay::rebuild::rebuild(store.clone(), &readmodels, model, true, |_, _| {})
            .expect("rebuild");
        assert_eq!(report.events, events);
        eprintln!(
            "rebuilt {model} in {:.2} s (closing {:.2} s), {:.2} s of CPU (checkpoint {:?})",
            report.elapsed.as_secs_f64(),
            report.closing.as_secs_f64(),
            cpu_seconds() - cpu,
            report.checkpoint
        );
        sequential += report.elapsed.as_secs_f64();
        bench_line(
            &format!("replay.rebuild.{model}.events_per_s"),
            report.events_per_s(),
            "events/s",
        );
    }
    // Every model at once, as `replay rebuild all` does: the time until all are live.
    let cpu = cpu_seconds();
    let all = replay::rebuild::rebuild_all(store.clone(), &readmodels, true, |_, _, _| {})
        .expect("rebuild all");
    assert_eq!(all.events(), events);
    eprintln!(
        "rebuilt all in {:.2} s, {:.2} s of CPU",
        all.elapsed.as_secs_f64(),
        cpu_seconds() - cpu
    );
    for r in &all.models {
        eprintln!(
            "  in rebuild all: {} {:.2} s (closing {:.2} s, {:.0} events/s)",
            r.model,
            r.elapsed.as_secs_f64(),
            r.closing.as_secs_f64(),
            r.events_per_s()
        );
    }
    bench_line(
        "replay.rebuild.events_per_s",
        all.events_per_s(),
        "events/s",
    );
    bench_line(
        "replay.rebuild.sequential.events_per_s",
        events.to_f64() / sequential,
        "events/s",
    );
    bench_line(
        "replay.rebuild.ratio_to_read_all",
        all.events_per_s() / read_rate,
        "x",
    );

    for (name, format) in [
        (
            "replay.conversation100k.s",
            replay::conversation::Format::Text,
        ),
        (
            "replay.conversation100k_jsonl.s",
            replay::conversation::Format::Jsonl,
        ),
    ] {
        let t = Instant::now();
        let printed = replay::conversation::print(
            store.as_ref(),
            long_id,
            format,
            None,
            &mut std::io::sink(),
        )
        .expect("print");
        let secs = t.elapsed().as_secs_f64();
        assert!(printed as u64 >= long);
        eprintln!("{name}: {printed} events");
        bench_line(name, secs, "s");
    }
}
