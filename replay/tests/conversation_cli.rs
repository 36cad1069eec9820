//! `replay conversation` and `replay rebuild` (every read model: interactions, search,
//! queues, all) as an auditor and an engineer run them: the binary against a real data
//! directory.

use std::process::Command;

use domain::conversation::{ConversationKind, ConversationStarted, MessagePosted, MessagesRead};
use domain::directory::{DirectoryEvent, Extension, UserAdded};
use domain::{Actor, ConversationEvent, ConversationId, MessageId, OrgId, Role, UserId};
use eventlog::{EventData, EventStore, ExpectedVersion, LogOptions, RocksLog, StreamName};

fn replay(data_dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_replay"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("run replay");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn enc<E: domain::VersionedEvent>(e: &E) -> EventData {
    actors::event_codec::encode(e, uuid::Uuid::new_v4(), Default::default()).unwrap()
}

fn posted(seq: u64, author: UserId, text: &str) -> EventData {
    enc(&ConversationEvent::MessagePosted(MessagePosted {
        message_id: MessageId::random(),
        seq,
        author,
        text: domain::Text::unsealed(text),
        attachments: Vec::new(),
        at_ms: seq,
    }))
}

#[test]
fn conversation_prints_history_names_and_state_as_of_a_moment() {
    let dir = tempfile::tempdir().unwrap();
    let log = RocksLog::open(dir.path().join("log"), LogOptions::default()).unwrap();
    let org = OrgId::random();
    let (ann, ben) = (UserId::random(), UserId::random());
    let (a, b) = if ann < ben { (ann, ben) } else { (ben, ann) };
    let users = [(ann, "Ann Auditor", "101"), (ben, "Ben Builder", "102")]
        .iter()
        .map(|(u, name, ext)| {
            enc(&DirectoryEvent::UserAdded(UserAdded {
                user: *u,
                name: (*name).into(),
                extension: Extension::parse(ext).unwrap(),
                role: Role::Member,
                by: Actor::System,
                at_ms: 1,
            }))
        })
        .collect();
    log.append_blocking(
        StreamName::from_parts("directory", org).unwrap(),
        ExpectedVersion::Any,
        users,
    )
    .unwrap();
    let id = ConversationId::random();
    let stream = StreamName::from_parts("conversation", id).unwrap();
    let start = enc(&ConversationEvent::ConversationStarted(
        ConversationStarted {
            id,
            org,
            kind: ConversationKind::Direct { a, b },
            by: Actor::User {
                id: ann,
                role: Role::Member,
            },
            at_ms: 1,
        },
    ));
    log.append_blocking(
        stream.clone(),
        ExpectedVersion::Any,
        vec![start, posted(1, ann, "Hi Ben"), posted(2, ben, "Hi Ann")],
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let cut = humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let read = enc(&ConversationEvent::MessagesRead(MessagesRead {
        user: ann,
        up_to: 3,
        at_ms: 4,
    }));
    log.append_blocking(
        stream,
        ExpectedVersion::Any,
        vec![posted(3, ben, "Later"), read],
    )
    .unwrap();

    // Read-only while the writer holds the log open.
    let (code, out, err) = replay(dir.path(), &["conversation", &id.to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("started by Ann Auditor: direct between"),
        "{out}"
    );
    assert!(
        out.contains("message 1 by Ann Auditor: \"Hi Ben\""),
        "{out}"
    );
    assert!(out.contains("message 3 by Ben Builder: \"Later\""), "{out}");
    assert!(out.contains("Ann Auditor read up to message 3"), "{out}");
    assert!(out.contains("messages: 3"), "{out}");

    let (code, out, err) = replay(
        dir.path(),
        &["conversation", &id.to_string(), "--as-of", &cut],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Hi Ann") && !out.contains("Later"), "{out}");
    assert!(
        out.contains(&format!("-- state at {}", &cut[..19])),
        "{out}"
    );
    assert!(
        out.contains("messages: 2") && !out.contains("read up to"),
        "{out}"
    );

    let (code, out, _) = replay(
        dir.path(),
        &["conversation", &id.to_string(), "--format", "jsonl"],
    );
    assert_eq!(code, 0);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[1]["event"]["MessagePosted"]["text"], "Hi Ben");
    assert!(lines
        .windows(2)
        .all(|w| w[0]["version"].as_u64() < w[1]["version"].as_u64()));

    // Clear errors: an unknown conversation, a bad time.
    let (code, _, err) = replay(
        dir.path(),
        &["conversation", &ConversationId::random().to_string()],
    );
    assert_ne!(code, 0);
    assert!(err.contains("no conversation"), "{err}");
    let (code, _, err) = replay(
        dir.path(),
        &["conversation", &id.to_string(), "--as-of", "yesterday"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("RFC 3339"), "{err}");

    // Rebuild: a new generation, made live, with a summary line.
    let (code, out, err) = replay(dir.path(), &["rebuild", "interactions"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("rebuilt interactions into gen-000001 from 7 events"),
        "{out}"
    );
    assert!(out.contains("now live"), "{out}");
    let current =
        std::fs::read_to_string(dir.path().join("readmodels/interactions/CURRENT")).unwrap();
    assert_eq!(current.trim(), "gen-000001");
    let (code, out, _) = replay(dir.path(), &["rebuild", "interactions", "--no-switch"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("gen-000002") && out.contains("not switched"),
        "{out}"
    );
    let current =
        std::fs::read_to_string(dir.path().join("readmodels/interactions/CURRENT")).unwrap();
    assert_eq!(current.trim(), "gen-000001");
    let (code, _, err) = replay(dir.path(), &["rebuild", "nope"]);
    assert_ne!(code, 0);
    assert!(err.contains("unknown read model"), "{err}");

    // Every read model rebuilds the same way: search, and the result answers a search.
    let (code, out, err) = replay(dir.path(), &["rebuild", "search"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("rebuilt search into gen-000001 from 7 events") && out.contains("now live"),
        "{out}"
    );
    assert!(err.contains("events/s"), "progress with a rate: {err}");
    let search_home = dir.path().join("readmodels/search");
    let live = std::fs::read_to_string(search_home.join("CURRENT")).unwrap();
    assert_eq!(live.trim(), "gen-000001");
    {
        let index = projections::search::SearchIndex::open(&search_home.join(live.trim())).unwrap();
        assert_eq!(index.checkpoint().unwrap(), Some(6), "the whole log");
        let page = index.search(org, "later", &[id], None, 10).unwrap();
        assert_eq!(page.hits.len(), 1, "{page:?}");
        assert_eq!(page.hits[0].seq, 3);
        assert_eq!(page.hits[0].author, projections::search::Author::User(ben));
        let page = index.search(org, "hi", &[id], None, 10).unwrap();
        assert_eq!(
            page.hits.iter().map(|h| h.seq).collect::<Vec<_>>(),
            vec![2, 1],
            "newest first"
        );
        assert!(index
            .search(OrgId::random(), "later", &[id], None, 10)
            .unwrap()
            .hits
            .is_empty());
    }
    // The queue views too; and `all` rebuilds every model in one pass over the log.
    let (code, out, err) = replay(dir.path(), &["rebuild", "queues"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("rebuilt queues into gen-000001 from 7 events"),
        "{out}"
    );
    let (code, out, err) = replay(dir.path(), &["rebuild", "all", "--no-switch"]);
    assert_eq!(code, 0, "{err}");
    for (model, generation) in [
        ("interactions", "gen-000003"),
        ("search", "gen-000002"),
        ("queues", "gen-000002"),
    ] {
        assert!(
            out.contains(&format!("rebuilt {model} into {generation} from 7 events")),
            "{out}"
        );
    }
    assert!(out.contains("rebuilt 3 read models from 7 events"), "{out}");
    let live = std::fs::read_to_string(search_home.join("CURRENT")).unwrap();
    assert_eq!(live.trim(), "gen-000001", "--no-switch leaves the live one");
    log.shutdown();
}
