//! Subscriptions: catch-up then live on `$all`, categories and streams, across the seam,
//! for slow subscribers, on resume, and at shutdown.

use std::time::Duration;

use eventlog::{
    Direction, EventStore, ExpectedVersion, LogOptions, RecordedEvent, StartFrom, SubscribeError,
    Subscription, SubscriptionTarget,
};
use testkit::{event, stream, Backend, TempLog};

/// `name` on RocksDB and on JetStream: tests `name::rocks` and `name::jetstream`.
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn rocks() {
                super::$name(testkit::Backend::Rocks).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn jetstream() {
                super::$name(testkit::Backend::Nats).await;
            }
        }
    };
}

async fn take(sub: &mut Subscription, n: usize) -> Vec<RecordedEvent> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let e = tokio::time::timeout(Duration::from_secs(20), sub.next())
            .await
            .expect("subscription delivered in time")
            .expect("subscription ok");
        out.push(eventlog::SharedRecord::unwrap_or_clone(e));
    }
    out
}

/// A log whose live buffer holds `live_buffer` batches, and a subscription to all of it
/// from the beginning (the log lives as long as the returned `TempLog`).
fn all_from_start(
    backend: Backend,
    live_buffer: usize,
) -> (TempLog, std::sync::Arc<dyn EventStore>, Subscription) {
    let t = TempLog::on_with(
        backend,
        LogOptions {
            live_buffer,
            ..LogOptions::default()
        },
    );
    let store = t.store();
    let sub =
        Subscription::new(store.clone(), SubscriptionTarget::All, StartFrom::Beginning).unwrap();
    (t, store, sub)
}

fn positions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.position).collect()
}

async fn seam_between_catch_up_and_live_has_no_gap_or_duplicate(backend: Backend) {
    let t = TempLog::on(backend);
    let store = t.store();
    for i in 0..50 {
        store
            .append(stream("seam-1"), ExpectedVersion::Any, vec![event(i)])
            .await
            .unwrap();
    }
    // Writers keep appending while the subscriber catches up in small pages.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..100u64 {
                    let s = stream(&format!("seam-{w}"));
                    store
                        .append(s, ExpectedVersion::Any, vec![event(1000 * w + i)])
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let mut sub = Subscription::new(store.clone(), SubscriptionTarget::All, StartFrom::Beginning)
        .unwrap()
        .with_page_size(7);
    let got = take(&mut sub, 450).await;
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(positions(&got), (0..450).collect::<Vec<_>>());
    assert_eq!(got, store.read_all_blocking(0, 1000).unwrap());
    assert_eq!(sub.checkpoint(), Some(449));
}

on_both!(seam_between_catch_up_and_live_has_no_gap_or_duplicate);

async fn slow_subscriber_falls_back_to_storage_and_loses_nothing(backend: Backend) {
    let (_t, store, mut sub) = all_from_start(backend, 2);
    // Caught up on an empty log, then idle while many batches pass the tiny live buffer.
    let first = store
        .append(stream("slow-1"), ExpectedVersion::Any, vec![event(0)])
        .await
        .unwrap();
    assert_eq!(take(&mut sub, 1).await[0].position, first.first_position);
    for i in 1..300 {
        store
            .append(stream("slow-1"), ExpectedVersion::Any, vec![event(i)])
            .await
            .unwrap();
    }
    let got = take(&mut sub, 299).await;
    assert_eq!(positions(&got), (1..300).collect::<Vec<_>>());
    // And it is live again afterwards.
    store
        .append(stream("slow-2"), ExpectedVersion::Any, vec![event(999)])
        .await
        .unwrap();
    assert_eq!(take(&mut sub, 1).await[0].position, 300);
}

on_both!(slow_subscriber_falls_back_to_storage_and_loses_nothing);

/// Live readers share each event the writer publishes: two subscriptions hand out the
/// same allocation, not a copy each (events read from storage are each reader's own).
async fn live_readers_share_one_copy_of_each_event(backend: Backend) {
    let (_t, store, mut first) = all_from_start(backend, 16);
    let mut second =
        Subscription::new(store.clone(), SubscriptionTarget::All, StartFrom::Beginning).unwrap();
    store
        .append(stream("shared-1"), ExpectedVersion::Any, vec![event(0)])
        .await
        .unwrap();
    // Read from storage by both; each is then caught up and reads live.
    for sub in [&mut first, &mut second] {
        assert_eq!(take(sub, 1).await[0].position, 0);
    }
    store
        .append(stream("shared-1"), ExpectedVersion::Any, vec![event(1)])
        .await
        .unwrap();
    let next = async |sub: &mut Subscription| {
        tokio::time::timeout(Duration::from_secs(20), sub.next())
            .await
            .expect("delivered in time")
            .expect("subscription ok")
    };
    let (a, b) = (next(&mut first).await, next(&mut second).await);
    assert_eq!((a.position, b.position), (1, 1));
    assert!(
        std::sync::Arc::ptr_eq(&a, &b),
        "each live reader got a copy"
    );
}

on_both!(live_readers_share_one_copy_of_each_event);

/// `absorb_ready` takes in every batch committed since the subscription last looked,
/// without waiting (a read model's reader hands them on as one chunk); one that has fallen
/// behind the live buffer takes in nothing and reads storage instead, losing nothing.
async fn absorb_ready_takes_what_was_committed_meanwhile(backend: Backend) {
    let (_t, store, mut sub) = all_from_start(backend, 4);
    store
        .append(stream("ready-1"), ExpectedVersion::Any, vec![event(0)])
        .await
        .unwrap();
    assert_eq!(take(&mut sub, 1).await[0].position, 0);
    assert!(!sub.absorb_ready(), "nothing committed since");
    for i in 1..4 {
        store
            .append(stream("ready-1"), ExpectedVersion::Any, vec![event(i)])
            .await
            .unwrap();
    }
    // A cluster's live batches arrive a moment after the append's answer: bounded wait.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while sub.buffered() < 3 {
        assert!(std::time::Instant::now() < deadline, "batches never came");
        if !sub.absorb_ready() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert_eq!(sub.buffered(), 3);
    assert_eq!(positions(&take(&mut sub, 3).await), vec![1, 2, 3]);
    assert_eq!(sub.buffered(), 0);
    // Ten commits past a live buffer of four: whatever `absorb_ready` takes in, `next`
    // delivers each event once, in order.
    for i in 4..14 {
        store
            .append(stream("ready-2"), ExpectedVersion::Any, vec![event(i)])
            .await
            .unwrap();
    }
    sub.absorb_ready();
    assert_eq!(
        positions(&take(&mut sub, 10).await),
        (4..14).collect::<Vec<_>>()
    );
}

on_both!(absorb_ready_takes_what_was_committed_meanwhile);

async fn category_and_stream_subscriptions_filter_and_resume(backend: Backend) {
    let t = TempLog::on(backend);
    let store = t.store();
    for i in 0..30u64 {
        let name = match i % 3 {
            0 => "inbox-1",
            1 => "inbox-12",
            _ => "queue-1",
        };
        store
            .append(stream(name), ExpectedVersion::Any, vec![event(i)])
            .await
            .unwrap();
    }
    let mut cat = Subscription::new(
        store.clone(),
        SubscriptionTarget::Category("inbox".into()),
        StartFrom::Beginning,
    )
    .unwrap()
    .with_page_size(4);
    let first = take(&mut cat, 10).await;
    assert_eq!(
        cat.checkpoint(),
        Some(first[9].position),
        "read-ahead is not delivered"
    );
    assert!(first.iter().all(|e| e.stream.category() == "inbox"));
    let checkpoint = cat.checkpoint().unwrap();
    drop(cat);
    // Resume after the checkpoint while new events arrive: exactly the rest, in order.
    let mut resumed = Subscription::new(
        store.clone(),
        SubscriptionTarget::Category("inbox".into()),
        StartFrom::After(checkpoint),
    )
    .unwrap();
    store
        .append(stream("inbox-3"), ExpectedVersion::Any, vec![event(100)])
        .await
        .unwrap();
    store
        .append(stream("queue-1"), ExpectedVersion::Any, vec![event(101)])
        .await
        .unwrap();
    let rest = take(&mut resumed, 11).await;
    let all_inbox: Vec<_> = store
        .read_all_blocking(0, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.stream.category() == "inbox")
        .collect();
    assert_eq!([first, rest].concat(), all_inbox);

    // A stream subscription sees inbox-1 only (not inbox-12), by version.
    let mut one = Subscription::new(
        store.clone(),
        SubscriptionTarget::Stream(stream("inbox-1")),
        StartFrom::After(4),
    )
    .unwrap()
    .with_page_size(2);
    let got = take(&mut one, 5).await;
    assert_eq!(
        got.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![5, 6, 7, 8, 9]
    );
    assert!(got.iter().all(|e| e.stream.as_str() == "inbox-1"));
    store
        .append(
            stream("inbox-1"),
            ExpectedVersion::Exact(9),
            vec![event(200)],
        )
        .await
        .unwrap();
    assert_eq!(take(&mut one, 1).await[0].version, 10);
}

on_both!(category_and_stream_subscriptions_filter_and_resume);

async fn start_from_end_sees_only_new_events(backend: Backend) {
    let t = TempLog::on(backend);
    let store = t.store();
    for i in 0..5 {
        store
            .append(stream("end-1"), ExpectedVersion::Any, vec![event(i)])
            .await
            .unwrap();
    }
    // `End` is after what this node's log has seen: on JetStream, once its replica holds
    // what was acknowledged.
    t.settle();
    let mut all =
        Subscription::new(store.clone(), SubscriptionTarget::All, StartFrom::End).unwrap();
    let mut one = Subscription::new(
        store.clone(),
        SubscriptionTarget::Stream(stream("end-1")),
        StartFrom::End,
    )
    .unwrap();
    store
        .append(stream("end-1"), ExpectedVersion::Exact(4), vec![event(5)])
        .await
        .unwrap();
    assert_eq!(take(&mut all, 1).await[0].position, 5);
    assert_eq!(take(&mut one, 1).await[0].version, 5);
}

on_both!(start_from_end_sees_only_new_events);

async fn shutdown_drains_appends_and_closes_subscriptions(backend: Backend) {
    let t = TempLog::on(backend);
    let store = t.store();
    let pending: Vec<_> = (0..200)
        .map(|i| store.append(stream("drain-1"), ExpectedVersion::Any, vec![event(i)]))
        .collect();
    let mut sub =
        Subscription::new(store.clone(), SubscriptionTarget::All, StartFrom::End).unwrap();
    let t = std::sync::Arc::new(t);
    let stopping = t.clone();
    tokio::task::spawn_blocking(move || stopping.shutdown())
        .await
        .unwrap();
    // Every append queued before shutdown was made durable and acknowledged.
    for p in pending {
        p.await.expect("queued append acknowledged");
    }
    let after = store
        .append(stream("drain-1"), ExpectedVersion::Any, vec![event(999)])
        .await;
    assert!(after.is_err(), "appends after shutdown are refused");
    // The subscriber first gets the drained events, then learns the log closed.
    let _ = take(&mut sub, 0).await;
    let mut seen = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap()
        {
            Ok(_) => seen += 1,
            Err(SubscribeError::Closed) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(seen <= 200);
    let stored = store
        .read_stream_blocking(&stream("drain-1"), 0, Direction::Forward, 1000)
        .unwrap();
    assert_eq!(stored.len(), 200);
}

on_both!(shutdown_drains_appends_and_closes_subscriptions);

/// A read-only log has no live feed: a subscription still replays everything stored, then
/// reports the log closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_subscription_catches_up_then_closes() {
    let t = TempLog::new();
    for i in 0..10 {
        t.log()
            .append(stream("ro-1"), ExpectedVersion::Any, vec![event(i)])
            .await
            .unwrap();
    }
    let ro: std::sync::Arc<dyn eventlog::EventStore> =
        std::sync::Arc::new(eventlog::RocksLog::open_read_only(t.path()).unwrap());
    let mut sub = Subscription::new(ro, SubscriptionTarget::All, StartFrom::Beginning)
        .unwrap()
        .with_page_size(3);
    let got = take(&mut sub, 10).await;
    assert_eq!(positions(&got), (0..10).collect::<Vec<_>>());
    assert!(matches!(sub.next().await, Err(SubscribeError::Closed)));
}

/// A follower's published progress (`Subscription::with_progress`, `eventlog::Progress`):
/// never past an event still being handled, and up to the log's head once it is idle,
/// also when the newest events belong to other categories.
async fn progress_is_published_through_the_head_and_never_ahead_of_handling(backend: Backend) {
    let t = TempLog::on(backend);
    let store = t.store();
    let mut last = 0;
    for (i, s) in ["prog-1", "other-1", "prog-1", "other-1"]
        .iter()
        .enumerate()
    {
        last = store
            .append(stream(s), ExpectedVersion::Any, vec![event(i as u64)])
            .await
            .unwrap()
            .last_position;
    }
    let progress = eventlog::Progress::default();
    let mut sub = Subscription::new(
        store.clone(),
        SubscriptionTarget::Category("prog".into()),
        StartFrom::Beginning,
    )
    .unwrap()
    .with_progress(progress.publisher("follower"));
    // The follower: tells which event it holds, and finishes it when released.
    let (holding_tx, mut holding) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let (release, released) = tokio::sync::watch::channel(None::<u64>);
    let follower = tokio::spawn(async move {
        while let Ok(e) = sub.next().await {
            holding_tx.send(e.position).unwrap();
            let mut released = released.clone();
            released
                .wait_for(|r| r.is_some_and(|r| r >= e.position))
                .await
                .unwrap();
        }
    });
    // (To the position of the last append: on JetStream the local replica's head may
    // still be behind an acknowledged append, so `settled` is not the measure here.)
    let wait = |what: &'static str, head: u64| {
        let progress = progress.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(30), progress.reached("follower", head))
                .await
                .unwrap_or_else(|_| panic!("{what}: the follower never reached {head}"));
        }
    };
    let published = || progress.positions()[0].1;

    // Catch-up: each event is held until released; nothing past it is published meanwhile.
    for _ in 0..2 {
        let held = holding.recv().await.unwrap();
        assert!(
            published().is_none_or(|p| p < held),
            "{:?} while holding {held}",
            published()
        );
        release.send_replace(Some(held));
    }
    wait("after catching up (the head is another category's)", last).await;
    assert_eq!(published(), Some(last));

    // Live: one of ours, then another category's.
    let ours = store
        .append(stream("prog-2"), ExpectedVersion::Any, vec![event(10)])
        .await
        .unwrap();
    let last = store
        .append(stream("other-2"), ExpectedVersion::Any, vec![event(11)])
        .await
        .unwrap()
        .last_position;
    let held = holding.recv().await.unwrap();
    assert_eq!(held, ours.first_position);
    assert!(
        published().is_some_and(|p| p < held),
        "{:?} while holding {held}",
        published()
    );
    release.send_replace(Some(held));
    wait("live", last).await;
    assert_eq!(published(), Some(last));
    follower.abort();
}

on_both!(progress_is_published_through_the_head_and_never_ahead_of_handling);
