//! The log's contract at its edges: refused appends write nothing, recovery continues
//! versions, positions and chains, snapshots, read-only opening, and tamper evidence.

use eventlog::{
    AppendError, Direction, EventData, EventStore, ExpectedVersion, Metadata, RocksLog, Snapshot,
    SnapshotError,
};
use testkit::{event, stream, Backend, TempLog};

/// `name` on RocksDB and on JetStream: tests `name::rocks` and `name::jetstream`.
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn rocks() {
                super::$name(testkit::Backend::Rocks);
            }

            #[test]
            fn jetstream() {
                super::$name(testkit::Backend::Nats);
            }
        }
    };
}

fn refused_appends_write_nothing_and_say_why(backend: Backend) {
    let t = TempLog::on(backend);
    let log = t.events();
    let s = stream("edge-1");
    log.append_blocking(s.clone(), ExpectedVersion::NoStream, vec![event(1)])
        .unwrap();
    type Case = (Vec<EventData>, ExpectedVersion, fn(&AppendError) -> bool);
    let cases: Vec<Case> = vec![
        (vec![], ExpectedVersion::Any, |e| {
            matches!(e, AppendError::NoEvents)
        }),
        (vec![event(2)], ExpectedVersion::NoStream, |e| {
            matches!(
                e,
                AppendError::WrongExpectedVersion {
                    actual: Some(0),
                    ..
                }
            )
        }),
        (vec![event(2)], ExpectedVersion::Exact(5), |e| {
            matches!(
                e,
                AppendError::WrongExpectedVersion {
                    actual: Some(0),
                    ..
                }
            )
        }),
        (
            vec![EventData::new("has space", 1, vec![])],
            ExpectedVersion::Any,
            |e| matches!(e, AppendError::InvalidEventType(_)),
        ),
        (
            vec![EventData::new("", 1, vec![])],
            ExpectedVersion::Any,
            |e| matches!(e, AppendError::InvalidEventType(_)),
        ),
        (
            vec![EventData::new("Big", 1, vec![0; 2 * 1024 * 1024])],
            ExpectedVersion::Any,
            |e| matches!(e, AppendError::EventTooLarge { .. }),
        ),
        (
            {
                let e = event(3);
                vec![e.clone(), e]
            },
            ExpectedVersion::Any,
            |e| matches!(e, AppendError::DuplicateIdInAppend { .. }),
        ),
    ];
    for (events, expected, is_expected_error) in cases {
        let err = log
            .append_blocking(s.clone(), expected, events)
            .unwrap_err();
        assert!(is_expected_error(&err), "unexpected error {err:?}");
    }
    t.settle();
    assert_eq!(log.next_position(), 1);
    assert_eq!(log.stream_version_blocking(&s).unwrap(), Some(0));
    let missing = log.append_blocking(
        stream("edge-2"),
        ExpectedVersion::StreamExists,
        vec![event(9)],
    );
    assert!(matches!(
        missing,
        Err(AppendError::WrongExpectedVersion { actual: None, .. })
    ));
    assert!(log.read_category_blocking("bad category", 0, 10).is_err());
}

on_both!(refused_appends_write_nothing_and_say_why);

fn recovery_continues_versions_positions_and_chains(backend: Backend) {
    let mut t = TempLog::on(backend);
    let a = stream("conversation-a");
    let meta = Metadata {
        causation_id: Some(uuid::Uuid::from_u128(1)),
        correlation_id: Some(uuid::Uuid::from_u128(2)),
        acting_user: Some("user-1".into()),
    };
    t.events()
        .append_blocking(
            a.clone(),
            ExpectedVersion::NoStream,
            vec![event(1).with_metadata(meta.clone()), event(2)],
        )
        .unwrap();
    t.events()
        .append_blocking(
            stream("conversation-b"),
            ExpectedVersion::NoStream,
            vec![event(3)],
        )
        .unwrap();
    t.settle();
    let before = t.events().read_all_blocking(0, 10).unwrap();
    t.reopen();
    assert_eq!(t.events().next_position(), 3);
    assert_eq!(
        t.events().read_all_blocking(0, 10).unwrap(),
        before,
        "byte-identical after reopen"
    );
    assert_eq!(before[0].metadata, meta);
    let r = t
        .events()
        .append_blocking(a.clone(), ExpectedVersion::Exact(1), vec![event(4)])
        .unwrap();
    assert_eq!((r.first_version, r.first_position), (2, 3));
    let stored = t
        .events()
        .read_stream_blocking(&a, 0, Direction::Forward, 10)
        .unwrap();
    assert_eq!(
        stored[2].prev_hash, stored[1].hash,
        "chain continues across restart"
    );
    assert!(stored[2].timestamp_us >= stored[1].timestamp_us);
    let back = t
        .events()
        .read_stream_blocking(&a, u64::MAX, Direction::Backward, 2)
        .unwrap();
    assert_eq!(
        back.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![2, 1]
    );
    assert!(t.events().verify_stream_blocking(&a).unwrap().is_ok());
    assert!(t.events().verify_all_blocking().unwrap().is_ok());
}

on_both!(recovery_continues_versions_positions_and_chains);

fn snapshots_keep_the_latest_and_refuse_the_impossible(backend: Backend) {
    let mut t = TempLog::on(backend);
    let s = stream("inbox-9");
    let snap = |version, state: &[u8]| Snapshot {
        version,
        schema_version: 1,
        state: state.to_vec(),
        taken_at_us: 0,
    };
    let beyond = t.events().write_snapshot_blocking(&s, snap(0, b"x"));
    assert!(matches!(
        beyond,
        Err(SnapshotError::BeyondStream { actual: None, .. })
    ));
    t.events()
        .append_blocking(s.clone(), ExpectedVersion::Any, (0..5).map(event).collect())
        .unwrap();
    t.events()
        .write_snapshot_blocking(&s, snap(3, b"three"))
        .unwrap();
    t.events()
        .write_snapshot_blocking(&s, snap(1, b"one"))
        .unwrap();
    assert!(matches!(
        t.events().write_snapshot_blocking(&s, snap(5, b"five")),
        Err(SnapshotError::BeyondStream {
            actual: Some(4),
            ..
        })
    ));
    t.reopen();
    assert_eq!(
        t.events().read_snapshot_blocking(&s).unwrap(),
        Some(snap(3, b"three"))
    );
    assert_eq!(
        t.events()
            .read_snapshot_blocking(&stream("inbox-10"))
            .unwrap(),
        None
    );
    // Snapshots live apart from events: $all is unchanged.
    t.settle();
    assert_eq!(t.events().next_position(), 5);
}

on_both!(snapshots_keep_the_latest_and_refuse_the_impossible);

#[test]
fn read_only_open_reads_and_refuses_writes() {
    let t = TempLog::new();
    t.log()
        .append_blocking(stream("ro-1"), ExpectedVersion::Any, vec![event(1)])
        .unwrap();
    // While the writer still has the log open.
    let ro = RocksLog::open_read_only(t.path()).unwrap();
    assert_eq!(ro.read_all_blocking(0, 10).unwrap().len(), 1);
    let err = ro
        .append_blocking(stream("ro-1"), ExpectedVersion::Any, vec![event(2)])
        .unwrap_err();
    assert!(matches!(
        err,
        AppendError::Storage(eventlog::StorageError::ReadOnly)
    ));
    assert!(ro.verify_all_blocking().unwrap().is_ok());
}

/// Flips one byte of one stored event with raw RocksDB and expects verification to name it.
#[test]
fn verify_names_the_first_broken_link() {
    let mut t = TempLog::new();
    for i in 0..10 {
        let s = stream(if i % 2 == 0 { "audit-1" } else { "audit-2" });
        t.log()
            .append_blocking(s, ExpectedVersion::Any, vec![event(i)])
            .unwrap();
    }
    assert!(t.log().verify_all_blocking().unwrap().is_ok());
    let path = t.path();
    t.log.take().unwrap().shutdown();
    {
        let cfs = [
            "events",
            "stream_index",
            "category_index",
            "event_ids",
            "snapshots",
            "meta",
        ];
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), &path, cfs).unwrap();
        let cf = db.cf_handle("events").unwrap();
        let key = 6u64.to_be_bytes();
        let mut value = db.get_cf(cf, key).unwrap().unwrap();
        // The payload is stored last: flip its last byte.
        let i = value.len() - 1;
        value[i] ^= 0x40;
        db.put_cf(cf, key, value).unwrap();
    }
    t.reopen();
    let report = t.log().verify_all_blocking().unwrap();
    let b = report.first_break.expect("tampering detected");
    assert_eq!(b.position, Some(6));
    assert_eq!(b.stream.as_deref(), Some("audit-1"));
    assert_eq!(b.version, Some(3));
    assert!(b.reason.contains("hash"), "{b}");
    assert_eq!(report.events_checked, 6, "walked up to the broken link");
    let one = t.log().verify_stream_blocking(&stream("audit-1")).unwrap();
    assert_eq!(one.first_break.unwrap().version, Some(3));
    assert!(t
        .log()
        .verify_stream_blocking(&stream("audit-2"))
        .unwrap()
        .is_ok());
}

fn checkpoints_survive_reopen_and_are_refused_read_only(backend: Backend) {
    let mut t = TempLog::on(backend);
    assert_eq!(t.events().read_checkpoint_blocking("router").unwrap(), None);
    t.events().write_checkpoint_blocking("router", 41).unwrap();
    t.events().write_checkpoint_blocking("router", 42).unwrap();
    t.events().write_checkpoint_blocking("other", 7).unwrap();
    t.reopen();
    assert_eq!(
        t.events().read_checkpoint_blocking("router").unwrap(),
        Some(42)
    );
    assert_eq!(
        t.events().read_checkpoint_blocking("other").unwrap(),
        Some(7)
    );
    if backend == Backend::Rocks {
        let ro = RocksLog::open_read_only(t.path()).unwrap();
        assert!(ro.write_checkpoint_blocking("router", 1).is_err());
    }
}

on_both!(checkpoints_survive_reopen_and_are_refused_read_only);

/// Regression: verification under concurrent appends used to see indexes newer than the
/// events it had walked and report breaks that were not there.
fn verify_is_consistent_while_appends_land(backend: Backend) {
    let t = TempLog::on(backend);
    let store = t.store();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let s = stream(if i % 2 == 0 { "live-1" } else { "live-2" });
                store
                    .append_blocking(s, ExpectedVersion::Any, vec![event(i)])
                    .unwrap();
                i += 1;
            }
        })
    };
    for _ in 0..30 {
        let all = store.verify_all_blocking().unwrap();
        assert!(all.is_ok(), "{:?}", all.first_break);
        let one = store.verify_stream_blocking(&stream("live-1")).unwrap();
        assert!(one.is_ok(), "{:?}", one.first_break);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
}

on_both!(verify_is_consistent_while_appends_land);

/// Regression: a re-sent subset of an append, or events spanning two appends, is not a
/// retry of any one append.
fn only_a_whole_earlier_append_counts_as_a_retry(backend: Backend) {
    let t = TempLog::on(backend);
    let s = stream("exact-1");
    let (e1, e2, e3) = (event(1), event(2), event(3));
    t.events()
        .append_blocking(
            s.clone(),
            ExpectedVersion::NoStream,
            vec![e1.clone(), e2.clone()],
        )
        .unwrap();
    t.events()
        .append_blocking(s.clone(), ExpectedVersion::Exact(1), vec![e3.clone()])
        .unwrap();
    for events in [
        vec![e2.clone(), e3.clone()],
        vec![e1.clone()],
        vec![e2.clone()],
    ] {
        let got = t
            .events()
            .append_blocking(s.clone(), ExpectedVersion::Any, events);
        assert!(
            matches!(got, Err(AppendError::PartialDuplicate { .. })),
            "{got:?}"
        );
    }
    let again = t
        .events()
        .append_blocking(s.clone(), ExpectedVersion::Any, vec![e1, e2])
        .unwrap();
    assert!(again.deduplicated && again.first_version == 0 && again.last_version == 1);
    t.settle();
    assert_eq!(t.events().next_position(), 3);
}

on_both!(only_a_whole_earlier_append_counts_as_a_retry);

/// Regression: two snapshot writers racing must never leave the older one stored.
fn an_older_snapshot_never_replaces_a_newer_one(backend: Backend) {
    let t = TempLog::on(backend);
    let s = stream("snaprace-1");
    t.events()
        .append_blocking(
            s.clone(),
            ExpectedVersion::Any,
            (0..100).map(event).collect(),
        )
        .unwrap();
    let store = t.store();
    for round in 0..200u64 {
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let handles: Vec<_> = [99u64, round % 50]
            .into_iter()
            .map(|version| {
                let (store, barrier, s) = (store.clone(), barrier.clone(), s.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let snap = Snapshot {
                        version,
                        schema_version: 1,
                        state: version.to_le_bytes().to_vec(),
                        taken_at_us: 0,
                    };
                    store.write_snapshot_blocking(&s, snap).unwrap();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(
            store.read_snapshot_blocking(&s).unwrap().unwrap().version,
            99
        );
    }
}

on_both!(an_older_snapshot_never_replaces_a_newer_one);

#[test]
fn options_that_could_not_be_read_back_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let too_big = eventlog::LogOptions {
        max_event_bytes: 100 * 1024 * 1024,
        ..eventlog::LogOptions::default()
    };
    let err = RocksLog::open(dir.path().join("log"), too_big).unwrap_err();
    assert!(
        matches!(err, eventlog::OpenError::InvalidOptions(_)),
        "{err}"
    );
}

/// Appends beyond the queued-bytes budget are shed at once, and nothing of them is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_beyond_the_byte_budget_are_refused_as_overloaded() {
    let t = TempLog::with_options(eventlog::LogOptions {
        max_queued_bytes: 64 * 1024,
        max_append_bytes: 64 * 1024,
        ..eventlog::LogOptions::default()
    });
    let store = t.store();
    let pending: Vec<_> = (0u32..400)
        .map(|i| {
            let e = EventData::new("Big", 1, vec![u8::try_from(i % 256).unwrap(); 4000]);
            store.append(stream("budget-1"), ExpectedVersion::Any, vec![e])
        })
        .collect();
    let (mut ok, mut shed) = (0u64, 0u64);
    for p in pending {
        match p.await {
            Ok(_) => ok += 1,
            Err(AppendError::Overloaded) => shed += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(shed > 0, "a burst beyond the budget is shed");
    assert_eq!(ok + shed, 400);
    assert_eq!(
        store.next_position(),
        ok,
        "exactly the accepted appends were written"
    );
}

/// Two nodes of one cluster (on the shared JetStream server), each with its replica in the
/// returned directory.
fn two_nodes() -> (tempfile::TempDir, natslog::NatsLog, natslog::NatsLog) {
    let dir = tempfile::tempdir().unwrap();
    let options = testkit::nats::log_options();
    let log_options = eventlog::LogOptions::default();
    let a = testkit::connect_nats(&options, &dir.path().join("a"), &log_options);
    let b = testkit::connect_nats(&options, &dir.path().join("b"), &log_options);
    (dir, a, b)
}

/// Two nodes of one cluster share the keyring in the cluster's bucket: a text one seals the
/// other opens, and a customer erased on one reads as erased on the other (once its
/// watcher has dropped the key it cached), while a key made on one after the other looked
/// for it in vain is found.
#[test]
fn nodes_of_a_cluster_share_their_keyring() {
    use actors::sealing::Sealer;
    use domain::{OrgId, PhoneNumber, Text, TextKey};
    let (_dir, a, b) = two_nodes();
    let (on_a, on_b) = (Sealer::of(&a), Sealer::of(&b));
    let org = OrgId::random();
    let ann = PhoneNumber::parse("+15556660901").unwrap();
    let sealed = |words: &str, at_ms: u64| {
        let mut t = Text::new(words, TextKey::new(org, vec![ann.clone()], at_ms));
        on_a.seal_blocking(&mut t).unwrap();
        assert!(matches!(t, Text::Sealed { .. }));
        t
    };
    let opened = |sealer: &Sealer, t: &Text| {
        let mut t = t.clone();
        sealer.open_blocking(&mut t);
        t
    };
    let first = sealed("sealed on a", 0);
    assert_eq!(
        opened(&on_b, &first),
        "sealed on a",
        "b opens what a sealed"
    );

    // b looks for tomorrow's key before anyone made it; a makes it; b still opens the text.
    let tomorrow = TextKey::new(org, vec![ann.clone()], 86_400_000);
    let mut probe = Text::Sealed {
        key: tomorrow,
        check: vec![0; 8],
        nonce: vec![0; 24],
        ciphertext: vec![0; 16],
    };
    on_b.open_blocking(&mut probe);
    assert!(probe.is_erased(), "no such key yet");
    let second = sealed("made after b looked", 86_400_000);
    assert_eq!(opened(&on_b, &second), "made after b looked");

    // Erased on a: gone for b too, without a restart.
    assert_eq!(
        on_a.erase_customer_blocking(org, &ann, actors::sealing::wall_ms() + 1)
            .unwrap(),
        2
    );
    // The erasure destroyed two keys: b's watch sees each purge on its own, one after the
    // other, so b may open one text and not the other for a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !(opened(&on_b, &first).is_erased() && opened(&on_b, &second).is_erased()) {
        assert!(
            std::time::Instant::now() < deadline,
            "b never saw the erasure"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(opened(&on_a, &first).is_erased());
    assert!(opened(&on_a, &second).is_erased());
    a.shutdown();
    b.shutdown();
}

/// Two nodes making one key at the same moment agree on it: of many texts sealed at once
/// under a key nobody has made yet, on both nodes, every one opens on either node.
#[test]
fn nodes_making_one_key_at_once_agree_on_it() {
    use actors::sealing::Sealer;
    use domain::{OrgId, PhoneNumber, Text, TextKey};
    let (_dir, a, b) = two_nodes();
    let (on_a, on_b) = (Sealer::of(&a), Sealer::of(&b));
    let key = TextKey::new(
        OrgId::random(),
        vec![PhoneNumber::parse("+15556660902").unwrap()],
        0,
    );
    let start = std::sync::Barrier::new(8);
    let texts: Vec<Text> = std::thread::scope(|s| {
        let sealers = (0..8).map(|i| {
            let (sealer, key, start) = (if i % 2 == 0 { &on_a } else { &on_b }, &key, &start);
            s.spawn(move || {
                let mut t = Text::new(format!("text {i}"), key.clone());
                start.wait();
                sealer.seal_blocking(&mut t).expect("sealed");
                t
            })
        });
        sealers
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect()
    });
    for (i, t) in texts.iter().enumerate() {
        assert!(matches!(t, Text::Sealed { .. }), "text {i} is sealed");
        for (node, sealer) in [("a", &on_a), ("b", &on_b)] {
            let mut opened = t.clone();
            sealer.open_blocking(&mut opened);
            assert_eq!(
                opened,
                format!("text {i}").as_str(),
                "text {i} opens on {node}"
            );
        }
    }
    a.shutdown();
    b.shutdown();
}
