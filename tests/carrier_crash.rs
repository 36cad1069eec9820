//! The sender crashes between the carrier call and recording its result: a server process
//! (`carrier-child`, Twilio adapter against a fake Twilio) is killed with SIGKILL while the
//! fake holds the answer to a message it has taken.
//!
//! Twilio has no idempotency key, so what happens after the restart depends on whether the
//! carrier reports on the text:
//! - it does (its status callback URL names the text): the report confirms the text, it
//!   is recorded once, and the carrier saw it once;
//! - it does not within the grace period: the text is sent again — the documented
//!   at-least-once limit (see `workers::outbox`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use actors::event_codec;
use domain::conversation::{DeliveryStatus, DeliveryUpdated};
use domain::outbox::OutboxEvent;
use domain::{ConversationEvent, ConversationId, MessageId, PhoneNumber};
use eventlog::{Direction, EventStore, LogOptions, RocksLog, StreamName};
use testkit::child::Kid;
use testkit::fake_twilio::{FakeTwilio, ACCOUNT_SID, AUTH_TOKEN};
use testkit::texting;
use workers::outbox::{message_outbox_id, outbox_stream, RECOVERY_CHECKPOINT};

const OUR: &str = "+15550100100";
const CUSTOMER: &str = "+15557770001";
const WAIT: Duration = Duration::from_secs(20);

fn start_child(dir: &Path, fake: &FakeTwilio, grace_ms: u64) -> (Kid, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_carrier-child"));
    command
        .arg(dir)
        .arg(&fake.base)
        .arg(ACCOUNT_SID)
        .arg(AUTH_TOKEN)
        .arg(grace_ms.to_string());
    let (child, line) = Kid::spawn(command);
    let base = line
        .strip_prefix("READY ")
        .unwrap_or_else(|| panic!("unexpected child output {line:?}"))
        .to_owned();
    (child, base)
}

/// Waits (off the executor: the fake carrier answers on it) until the child's followers
/// have handled its whole log.
fn settle(child: &mut Kid) {
    tokio::task::block_in_place(|| child.settle());
}

fn read(dir: &Path, stream: &StreamName) -> Vec<eventlog::RecordedEvent> {
    let log = RocksLog::open_read_only(dir.join("log")).unwrap();
    log.read_stream_blocking(stream, 0, Direction::Forward, 10_000)
        .unwrap()
}

fn outbox(dir: &Path, message: MessageId) -> Vec<OutboxEvent> {
    let id = message_outbox_id(message, &PhoneNumber::parse(CUSTOMER).unwrap());
    read(dir, &outbox_stream(id))
        .iter()
        .map(|r| event_codec::decode::<OutboxEvent>(r).unwrap())
        .collect()
}

fn deliveries(dir: &Path, id: ConversationId, message: MessageId) -> Vec<DeliveryUpdated> {
    read(dir, &StreamName::from_parts("conversation", id).unwrap())
        .iter()
        .filter_map(|r| match event_codec::decode::<ConversationEvent>(r) {
            Ok(ConversationEvent::DeliveryUpdated(d)) if d.message_id == message => Some(d),
            _ => None,
        })
        .collect()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts a child, posts one text, and kills the child once the fake has taken it (and
/// is holding its answer). Returns the conversation and message.
async fn crash_mid_send(
    dir: &Path,
    fake: &FakeTwilio,
    grace_ms: u64,
) -> (ConversationId, MessageId) {
    fake.set_hang(true);
    let (child, base) = start_child(dir, fake, grace_ms);
    let c = testkit::http();
    let org = texting::org_with_number(&c, &base, "ada@crash.example", OUR).await;
    let id = texting::start_external(&c, &base, &org, OUR, CUSTOMER).await;
    let message = texting::post_text(&c, &base, &org, id, "sent exactly once?").await;
    fake.wait_for_sent(1, WAIT).await;
    child.kill();
    fake.set_hang(false);
    // The log knows the attempt started, and nothing of its outcome.
    let records = outbox(dir, message);
    assert!(
        matches!(records.as_slice(), [OutboxEvent::SmsPrepared(_), OutboxEvent::SmsSendStarted(s)] if s.attempt == 1),
        "{records:?}"
    );
    assert!(deliveries(dir, id, message).is_empty());
    // The recovery low-water mark has not passed the open text.
    assert!(recovery_mark(dir) <= prepared_at(dir, message));
    (id, message)
}

/// Where the next start reads the outbox from.
fn recovery_mark(dir: &Path) -> u64 {
    let log = RocksLog::open_read_only(dir.join("log")).unwrap();
    log.read_checkpoint_blocking(RECOVERY_CHECKPOINT)
        .unwrap()
        .unwrap_or(0)
}

/// The position of the text's `SmsPrepared`.
fn prepared_at(dir: &Path, message: MessageId) -> u64 {
    let id = message_outbox_id(message, &PhoneNumber::parse(CUSTOMER).unwrap());
    read(dir, &outbox_stream(id))[0].position
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_mid_send_the_carriers_report_confirms_the_text_once() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTwilio::start().await;
    let (id, message) = crash_mid_send(dir.path(), &fake, 60_000).await;
    let sent = fake.sent()[0].clone();

    // Restarted; the carrier reports on the text it has, at the server's new address.
    let (mut child, base) = start_child(dir.path(), &fake, 60_000);
    for (status, expected) in [
        ("sent", DeliveryStatus::Sent),
        ("delivered", DeliveryStatus::Delivered),
    ] {
        let answered = fake.callback(&sent, status, None, Some(&base)).await;
        assert_eq!(answered, reqwest::StatusCode::NO_CONTENT);
        eventually(status, || {
            deliveries(dir.path(), id, message)
                .iter()
                .any(|d| d.status == expected)
        })
        .await;
    }
    settle(&mut child);
    child.kill();

    assert_eq!(fake.sent().len(), 1, "the carrier saw it once");
    let recorded: Vec<_> = deliveries(dir.path(), id, message)
        .into_iter()
        .map(|d| (d.status, d.carrier_message_id))
        .collect();
    assert_eq!(
        recorded,
        [
            (DeliveryStatus::Sent, Some(sent.sid.clone())),
            (DeliveryStatus::Delivered, Some(sent.sid.clone()))
        ],
        "recorded once, with the carrier's id"
    );
    let accepted: Vec<_> = outbox(dir.path(), message)
        .into_iter()
        .filter_map(|r| match r {
            OutboxEvent::SmsAccepted(a) => Some((a.carrier_message_id, a.confirmed_by)),
            _ => None,
        })
        .collect();
    assert_eq!(accepted, [(sent.sid.clone(), "status_callback".to_owned())]);

    // More restarts send nothing more, and read the outbox only from past this text: it
    // is finished, so the low-water mark moved beyond it.
    // Settled means its outbox recovery is done (the request follower publishes only
    // after it) and would have resent anything unfinished.
    let (mut child, _) = start_child(dir.path(), &fake, 60_000);
    settle(&mut child);
    child.kill();
    assert_eq!(fake.sent().len(), 1);
    let last = read(
        dir.path(),
        &outbox_stream(message_outbox_id(
            message,
            &PhoneNumber::parse(CUSTOMER).unwrap(),
        )),
    )
    .last()
    .unwrap()
    .position;
    assert!(
        recovery_mark(dir.path()) > last,
        "mark {} is past the finished text ({last})",
        recovery_mark(dir.path())
    );
    let log = RocksLog::open(dir.path().join("log"), LogOptions::default()).unwrap();
    assert!(log.verify_all_blocking().unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_report_within_the_grace_period_the_text_is_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTwilio::start().await;
    let (id, message) = crash_mid_send(dir.path(), &fake, 300).await;

    let (child, _) = start_child(dir.path(), &fake, 300);
    eventually("queued after a second send", || {
        deliveries(dir.path(), id, message)
            .iter()
            .any(|d| d.status == DeliveryStatus::Queued)
    })
    .await;
    child.kill();
    let sent = fake.sent();
    assert_eq!(sent.len(), 2, "at least once: the lost attempt is repeated");
    let records = outbox(dir.path(), message);
    let attempts: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            OutboxEvent::SmsSendStarted(s) => Some(s.attempt),
            _ => None,
        })
        .collect();
    assert_eq!(attempts, [1, 2]);
    assert!(records.iter().any(
        |r| matches!(r, OutboxEvent::SmsAccepted(a) if a.attempt == 2 && a.carrier_message_id == sent[1].sid)
    ));
}
