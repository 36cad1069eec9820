//! Model-based property tests of the log: random append / retry / read / reopen sequences
//! against a plain in-memory model, plus concurrent expected-version races and concurrent
//! idempotent retries.

use std::collections::HashMap;
use std::sync::{Arc, Barrier};

use eventlog::{
    AppendError, AppendResult, Direction, EventData, ExpectedVersion, Head, StartFrom,
    Subscription, SubscriptionTarget,
};
use proptest::prelude::*;
use testkit::{event, stream, Backend, TempLog};

const STREAMS: [&str; 4] = ["alpha-1", "alpha-2", "beta-1", "beta-10"];

#[derive(Debug, Clone)]
enum Expect {
    Any,
    NoStream,
    StreamExists,
    Current,
    /// The current version and the id of the stream's last event.
    CurrentEvent,
    Wrong(u64),
    /// The current version with another event's id.
    WrongEvent,
}

#[derive(Debug, Clone)]
enum Op {
    Append {
        stream: usize,
        expect: Expect,
        n: u64,
    },
    Retry {
        back: usize,
    },
    PartialRetry {
        back: usize,
    },
    Reopen,
    ReadStream {
        stream: usize,
        from: u64,
        backward: bool,
        limit: usize,
    },
    ReadAll {
        from: u64,
        limit: usize,
    },
    ReadCategory {
        beta: bool,
        from: u64,
        limit: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let expect = prop_oneof![
        Just(Expect::Any),
        Just(Expect::NoStream),
        Just(Expect::StreamExists),
        Just(Expect::Current),
        Just(Expect::CurrentEvent),
        (0u64..6).prop_map(Expect::Wrong),
        Just(Expect::WrongEvent),
    ];
    prop_oneof![
        6 => (0..STREAMS.len(), expect, 1u64..4).prop_map(|(stream, expect, n)| Op::Append { stream, expect, n }),
        2 => (0usize..8).prop_map(|back| Op::Retry { back }),
        1 => (0usize..8).prop_map(|back| Op::PartialRetry { back }),
        1 => Just(Op::Reopen),
        2 => (0..STREAMS.len(), 0u64..8, any::<bool>(), 1usize..6)
            .prop_map(|(stream, from, backward, limit)| Op::ReadStream { stream, from, backward, limit }),
        1 => (0u64..20, 1usize..30).prop_map(|(from, limit)| Op::ReadAll { from, limit }),
        1 => (any::<bool>(), 0u64..20, 1usize..30).prop_map(|(beta, from, limit)| Op::ReadCategory { beta, from, limit }),
    ]
}

/// (stream index, version, position, event) as the model expects them stored.
struct Model {
    events: Vec<(usize, u64, EventData)>,
    appended: Vec<(usize, Vec<EventData>, AppendResult)>,
}

impl Model {
    fn version(&self, s: usize) -> Option<u64> {
        self.head(s).map(|h| h.version)
    }

    fn head(&self, s: usize) -> Option<Head> {
        self.events.iter().rev().find(|e| e.0 == s).map(|e| Head {
            version: e.1,
            event_id: e.2.event_id,
        })
    }
}

fn check_event(got: &eventlog::RecordedEvent, model: &Model, position: u64) {
    let (s, v, data) = &model.events[usize::try_from(position).unwrap()];
    assert_eq!(got.position, position);
    assert_eq!(got.stream.as_str(), STREAMS[*s]);
    assert_eq!(got.version, *v);
    assert_eq!(got.event_id, data.event_id);
    assert_eq!(got.payload, data.payload);
}

fn run(backend: Backend, ops: Vec<Op>, seed: u64) {
    let mut t = TempLog::on(backend);
    let mut m = Model {
        events: Vec::new(),
        appended: Vec::new(),
    };
    let mut seed = seed;
    let mut fresh = |n: u64| -> Vec<EventData> {
        (0..n)
            .map(|_| {
                seed += 1;
                event(seed)
            })
            .collect()
    };
    for op in ops {
        match op {
            Op::Append {
                stream: s,
                expect,
                n,
            } => {
                let actual = m.version(s);
                let head = m.head(s);
                let expected = match expect {
                    Expect::Any => ExpectedVersion::Any,
                    Expect::NoStream => ExpectedVersion::NoStream,
                    Expect::StreamExists => ExpectedVersion::StreamExists,
                    Expect::Current => ExpectedVersion::after(actual),
                    Expect::CurrentEvent => {
                        ExpectedVersion::after_event(actual, head.map(|h| h.event_id))
                    }
                    Expect::Wrong(d) => ExpectedVersion::Exact(actual.map_or(d, |a| a + 1 + d)),
                    Expect::WrongEvent => ExpectedVersion::After {
                        version: actual.unwrap_or(0),
                        event_id: uuid::Uuid::new_v4(),
                    },
                };
                let events = fresh(n);
                let got = t
                    .events()
                    .append_blocking(stream(STREAMS[s]), expected, events.clone());
                t.settle();
                if expected.is_satisfied_by(head) {
                    let r = got.expect("append that satisfies its expectation succeeds");
                    let first_version = actual.map_or(0, |a| a + 1);
                    assert_eq!(r.first_version, first_version);
                    assert_eq!(r.last_version, first_version + n - 1);
                    assert_eq!(r.first_position, m.events.len() as u64);
                    assert!(!r.deduplicated);
                    for (i, e) in events.iter().enumerate() {
                        m.events.push((s, first_version + i as u64, e.clone()));
                    }
                    m.appended.push((s, events, r));
                } else {
                    match got {
                        Err(AppendError::WrongExpectedVersion { actual: a, .. }) => {
                            assert_eq!(a, actual);
                        }
                        other => panic!("expected WrongExpectedVersion, got {other:?}"),
                    }
                }
            }
            Op::Retry { back } => {
                let Some((s, events, original)) = m.appended.iter().rev().nth(back).cloned() else {
                    continue;
                };
                let before = t.events().next_position();
                // The expectation no longer holds; a retry succeeds anyway.
                let r = t
                    .events()
                    .append_blocking(stream(STREAMS[s]), ExpectedVersion::NoStream, events)
                    .expect("retry is recognised");
                t.settle();
                assert!(r.deduplicated);
                assert_eq!(
                    (r.first_position, r.last_version),
                    (original.first_position, original.last_version)
                );
                assert_eq!(t.events().next_position(), before, "a retry writes nothing");
            }
            Op::PartialRetry { back } => {
                let Some((s, mut events, _)) = m.appended.iter().rev().nth(back).cloned() else {
                    continue;
                };
                events.extend(fresh(1));
                let before = t.events().next_position();
                let got =
                    t.events()
                        .append_blocking(stream(STREAMS[s]), ExpectedVersion::Any, events);
                t.settle();
                assert!(
                    matches!(got, Err(AppendError::PartialDuplicate { .. })),
                    "{got:?}"
                );
                assert_eq!(t.events().next_position(), before);
            }
            Op::Reopen => t.reopen(),
            Op::ReadStream {
                stream: s,
                from,
                backward,
                limit,
            } => {
                let dir = if backward {
                    Direction::Backward
                } else {
                    Direction::Forward
                };
                let got = t
                    .events()
                    .read_stream_blocking(&stream(STREAMS[s]), from, dir, limit)
                    .unwrap();
                let mut want: Vec<u64> = m
                    .events
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.0 == s && if backward { e.1 <= from } else { e.1 >= from })
                    .map(|(p, _)| p as u64)
                    .collect();
                if backward {
                    want.reverse();
                }
                want.truncate(limit);
                assert_eq!(got.len(), want.len());
                for (g, p) in got.iter().zip(want) {
                    check_event(g, &m, p);
                }
            }
            Op::ReadAll { from, limit } => {
                let got = t.events().read_all_blocking(from, limit).unwrap();
                let want = (m.events.len() as u64)
                    .saturating_sub(from)
                    .min(limit as u64);
                assert_eq!(got.len() as u64, want);
                for (i, g) in got.iter().enumerate() {
                    check_event(g, &m, from + i as u64);
                }
            }
            Op::ReadCategory { beta, from, limit } => {
                let cat = if beta { "beta" } else { "alpha" };
                let got = t.events().read_category_blocking(cat, from, limit).unwrap();
                let want: Vec<u64> = m
                    .events
                    .iter()
                    .enumerate()
                    .filter(|(p, e)| *p as u64 >= from && STREAMS[e.0].starts_with(cat))
                    .map(|(p, _)| p as u64)
                    .take(limit)
                    .collect();
                assert_eq!(got.len(), want.len());
                for (g, p) in got.iter().zip(want) {
                    check_event(g, &m, p);
                }
            }
        }
    }
    // A subscription from any checkpoint replays exactly the model's suffix.
    let total = m.events.len() as u64;
    let start = seed % (total + 1);
    let from = if start == 0 {
        StartFrom::Beginning
    } else {
        StartFrom::After(start - 1)
    };
    let mut sub = Subscription::new(t.store(), SubscriptionTarget::All, from)
        .unwrap()
        .with_page_size(3);
    for p in start..total {
        check_event(&sub.next_blocking().unwrap(), &m, p);
    }
    let report = t.events().verify_all_blocking().unwrap();
    assert!(report.is_ok(), "{:?}", report.first_break);
    assert_eq!(report.events_checked, total);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn log_behaves_like_the_model(ops in proptest::collection::vec(op(), 1..40), seed in any::<u32>()) {
        run(Backend::Rocks, ops, u64::from(seed) << 20);
    }
}

proptest! {
    // Each case is a stream of its own on the test nats-server, with appends that wait for
    // the server's fsync: fewer cases than on RocksDB, the same model.
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn the_jetstream_log_behaves_like_the_model(ops in proptest::collection::vec(op(), 1..40), seed in any::<u32>()) {
        run(Backend::Nats, ops, u64::from(seed) << 20);
    }
}

#[test]
fn concurrent_expected_version_races_have_one_winner_per_version() {
    races_have_one_winner_per_version(Backend::Rocks);
}

#[test]
fn concurrent_expected_version_races_have_one_winner_per_version_on_jetstream() {
    races_have_one_winner_per_version(Backend::Nats);
}

#[test]
fn concurrent_identical_retries_store_once() {
    identical_retries_store_once(Backend::Rocks);
}

#[test]
fn concurrent_identical_retries_store_once_on_jetstream() {
    identical_retries_store_once(Backend::Nats);
}

fn races_have_one_winner_per_version(backend: Backend) {
    let t = TempLog::on(backend);
    let store = t.store();
    let threads = 8;
    let attempts = 30;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let s = stream("race-1");
                let mut won = Vec::new();
                for k in 0..attempts {
                    let v = store.stream_version_blocking(&s).unwrap();
                    let e = event((i * 1000 + k) as u64);
                    match store.append_blocking(
                        s.clone(),
                        ExpectedVersion::after(v),
                        vec![e.clone()],
                    ) {
                        Ok(r) => won.push((r.first_version, e.event_id)),
                        Err(AppendError::WrongExpectedVersion { actual, .. }) => {
                            assert!(
                                actual.is_some() && actual != v,
                                "conflict reports the newer version"
                            );
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                won
            })
        })
        .collect();
    let mut wins: Vec<(u64, uuid::Uuid)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    wins.sort();
    t.settle();
    let stored = t
        .events()
        .read_stream_blocking(&stream("race-1"), 0, Direction::Forward, 10_000)
        .unwrap();
    assert_eq!(stored.len(), wins.len(), "every win stored, nothing else");
    for ((v, id), e) in wins.iter().zip(&stored) {
        assert_eq!((*v, *id), (e.version, e.event_id));
    }
    assert!(!wins.is_empty());
}

fn identical_retries_store_once(backend: Backend) {
    let t = TempLog::on(backend);
    let store = t.store();
    let events: Vec<EventData> = (0..3).map(event).collect();
    let barrier = Arc::new(Barrier::new(16));
    let results: Vec<AppendResult> = (0..16)
        .map(|_| {
            let (store, barrier, events) = (store.clone(), barrier.clone(), events.clone());
            std::thread::spawn(move || {
                barrier.wait();
                store
                    .append_blocking(stream("retry-1"), ExpectedVersion::NoStream, events)
                    .unwrap()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(results.iter().filter(|r| !r.deduplicated).count(), 1);
    t.settle();
    let positions: HashMap<_, _> = results
        .iter()
        .map(|r| ((r.first_position, r.last_position), ()))
        .collect();
    assert_eq!(
        positions.len(),
        1,
        "every retry reports the original positions"
    );
    assert_eq!(t.events().next_position(), 3);

    // After a restart the ids are still known, however long ago they were written.
    drop(store);
    let mut t = t;
    t.reopen();
    let again = t
        .events()
        .append_blocking(stream("retry-1"), ExpectedVersion::Any, events.clone())
        .unwrap();
    assert!(again.deduplicated);
    // Same id, different content: refused, not silently accepted.
    let mut changed = events;
    changed[2].payload.push(1);
    let got = t
        .events()
        .append_blocking(stream("retry-1"), ExpectedVersion::Any, changed);
    assert!(
        matches!(got, Err(AppendError::EventIdReused { .. })),
        "{got:?}"
    );
    assert_eq!(t.events().next_position(), 3);
}
