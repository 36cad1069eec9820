//! A queue timer survives a crash: the server process is killed with SIGKILL while a wait
//! timer is pending, stays down past the deadline, and on restart the timer fires exactly
//! once — and not again after further kills and restarts.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actors::event_codec;
use domain::queue::{IdleTimeoutAction, QueueCommand, QueueEvent, QueuePolicy, WaitTimeoutAction};
use domain::{Aggregate, CommandMeta, ConversationId, OrgId, PhoneNumber, Queue, QueueId};
use eventlog::{Direction, EventStore, ExpectedVersion, LogOptions, RocksLog, StreamName};
use testkit::child::Kid;

const WAIT_MS: u64 = 1_500;

fn now_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(since.as_millis()).unwrap()
}

fn start_child(log_dir: &std::path::Path) -> Kid {
    let mut command = Command::new(env!("CARGO_BIN_EXE_queue-child"));
    command.arg(log_dir);
    let (child, line) = Kid::spawn(command);
    assert_eq!(line, "READY");
    child
}

/// Timeouts recorded for `conversation`, read while the child may hold the log.
fn timeouts(log_dir: &std::path::Path, queue: QueueId, conversation: ConversationId) -> usize {
    let log = RocksLog::open_read_only(log_dir).unwrap();
    let stream = StreamName::from_parts(<Queue as Aggregate>::CATEGORY, queue).unwrap();
    log.read_stream_blocking(&stream, 0, Direction::Forward, 10_000)
        .unwrap()
        .iter()
        .filter(|r| {
            matches!(event_codec::decode::<QueueEvent>(r),
                Ok(QueueEvent::QueueTimedOut(t)) if t.conversation == conversation)
        })
        .count()
}

#[test]
fn a_timer_pending_at_a_crash_fires_exactly_once_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("log");
    let (org, queue, conversation) = (OrgId::random(), QueueId::random(), ConversationId::random());
    let enqueued_at = now_ms();
    {
        // Set up with the log directly: a queue with a wait timeout and one waiting text.
        let log = RocksLog::open(&log_dir, LogOptions::default()).unwrap();
        let mut state = Queue::default();
        let mut version = None;
        let policy = QueuePolicy {
            wait_timeout_ms: Some(WAIT_MS),
            on_wait_timeout: WaitTimeoutAction::Close,
            idle_timeout_ms: None,
            on_idle_timeout: IdleTimeoutAction::ReturnToQueue,
            max_pending_visible: None,
        };
        for c in [
            QueueCommand::CreateQueue {
                id: queue,
                name: "Support".into(),
                number: PhoneNumber::parse("+15550009000").unwrap(),
                policy,
            },
            QueueCommand::Enqueue { conversation },
        ] {
            let events = state
                .handle(&CommandMeta::system(org, enqueued_at).issue(c))
                .unwrap();
            let data = events
                .iter()
                .map(|e| event_codec::encode(e, uuid::Uuid::new_v4(), Default::default()).unwrap())
                .collect();
            let stream = StreamName::from_parts(<Queue as Aggregate>::CATEGORY, queue).unwrap();
            let r = log
                .append_blocking(stream, ExpectedVersion::after(version), data)
                .unwrap();
            version = Some(r.last_version);
        }
        log.shutdown();
    }
    // The server runs with the timer pending, then dies before the deadline.
    let mut child = start_child(&log_dir);
    // The scheduler has read the queue, so its timer is pending in the child.
    child.settle();
    child.kill();
    assert_eq!(
        timeouts(&log_dir, queue, conversation),
        0,
        "not due yet when killed"
    );
    // Down past the deadline.
    let due = enqueued_at + WAIT_MS;
    while now_ms() < due + 300 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let child = start_child(&log_dir);
    let started = Instant::now();
    while timeouts(&log_dir, queue, conversation) == 0
        && started.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        timeouts(&log_dir, queue, conversation),
        1,
        "fired on restart"
    );
    child.kill();
    // Further crashes and restarts never fire it again: each restart has read the whole
    // log (so it would have fired a pending timer at once) before it is killed.
    for _ in 0..2 {
        let mut child = start_child(&log_dir);
        child.settle();
        child.kill();
    }
    assert_eq!(timeouts(&log_dir, queue, conversation), 1, "exactly once");
    let log = RocksLog::open(&log_dir, LogOptions::default()).unwrap();
    assert!(log.verify_all_blocking().unwrap().is_ok());
}
