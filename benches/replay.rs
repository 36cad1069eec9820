//! `cargo bench --bench replay`: what auditors and engineers wait for.
//!
//! Writes a log of `--events` (default 1,000,000) conversation events — direct
//! conversations between 1,000 users, mostly messages with some read receipts — plus one
//! conversation of `--long` (default 100,000) messages, then measures in the same run:
//! - `replay.read_all.events_per_s`: the baseline, a raw scan of `$all` (no decoding);
//! - `replay.rebuild.events_per_s`: `replay rebuild interactions` over all of it (decode,
//!   project, write the read model with checkpoints), and its ratio to the baseline;
//! - `replay.conversation100k.s` (and `_jsonl.s`): printing the long conversation.

use std::sync::Arc;
use std::time::Instant;

use benchkit::{bench_line, Args};
use domain::conversation::{ConversationKind, ConversationStarted, MessagePosted, MessagesRead};
use domain::directory::{DirectoryEvent, UserAdded};
use domain::{Actor, ConversationEvent, ConversationId, MessageId, OrgId, Role, UserId};
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
    let mut out = Vec::with_capacity(messages as usize + messages as usize / 4 + 1);
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
            text: format!("message {seq}: can you confirm the delivery window for order 4471?"),
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
    let log_path = dir.path().join("log");
    let org = OrgId::random();
    let users: Vec<UserId> = (0..1000).map(|_| UserId::random()).collect();
    let long_id = ConversationId::random();
    let started = Instant::now();
    {
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
                        let a = users[(i as usize * 7) % users.len()];
                        let b = users[(i as usize * 13 + 1) % users.len()];
                        let b = if a == b {
                            users[(i as usize + 500) % users.len()]
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
    }
    let ro = RocksLog::open_read_only(&log_path).expect("read-only");
    let events = ro.next_position();
    eprintln!(
        "wrote {events} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Baseline: a raw scan of $all.
    let t = Instant::now();
    let mut from = 0;
    let mut n = 0u64;
    loop {
        let page = ro.read_all_blocking(from, 4096).expect("read");
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        n += page.len() as u64;
    }
    let read_rate = n as f64 / t.elapsed().as_secs_f64();
    bench_line("replay.read_all.events_per_s", read_rate, "events/s");

    let readmodels = dir.path().join("readmodels");
    let store: Arc<dyn EventStore> = Arc::new(ro.clone());
    let report =
        replay::rebuild::rebuild(store.clone(), &readmodels, "interactions", true, |_, _| {})
            .expect("rebuild");
    assert_eq!(report.events, events);
    bench_line(
        "replay.rebuild.events_per_s",
        report.events_per_s(),
        "events/s",
    );
    bench_line(
        "replay.rebuild.ratio_to_read_all",
        report.events_per_s() / read_rate,
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
