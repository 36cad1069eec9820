//! The embedded simulator: idempotency, outcomes and their status sequences, Hold/release,
//! per-number overrides, outages.

use std::sync::Arc;
use std::time::{Duration, Instant};

use carrier::simulator::{Outcome, ReleaseError, Simulator, SimulatorConfig};
use carrier::{
    Carrier, CarrierStatus, InboundMedia, OutboundMedia, OutboundSms, SendError, StatusReport,
};
use tokio::sync::mpsc::UnboundedReceiver;

const BIZ: &str = "+15551230000";
const ALICE: &str = "+15557654321";
const BOB: &str = "+15559876543";

fn sms(key: &str, to: &str) -> OutboundSms {
    OutboundSms {
        idempotency_key: key.into(),
        from: BIZ.into(),
        to: to.into(),
        body: "Your order shipped".into(),
        media: vec![],
        status_callback: None,
    }
}

async fn next(rx: &mut UnboundedReceiver<StatusReport>) -> StatusReport {
    tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .expect("a status report within 2 s")
        .expect("channel open")
}

/// Asserts nothing more arrives within `ms`.
async fn quiet(rx: &mut UnboundedReceiver<StatusReport>, ms: u64) {
    if let Ok(report) = tokio::time::timeout(Duration::from_millis(ms), rx.recv()).await {
        panic!("unexpected report {report:?}");
    }
}

/// The statuses reported for one message until an end state.
async fn sequence(rx: &mut UnboundedReceiver<StatusReport>, sid: &str) -> Vec<CarrierStatus> {
    let mut out = Vec::new();
    loop {
        let r = next(rx).await;
        assert_eq!(r.carrier_message_id, sid);
        assert_eq!(r.error_code.as_deref(), r.status.error_code());
        let end = r.status.is_terminal();
        out.push(r.status);
        if end {
            return out;
        }
    }
}

#[tokio::test]
async fn records_and_delivers_by_default() {
    let sim = Simulator::new();
    let mut rx = sim.subscribe_status();
    let carrier: Arc<dyn Carrier> = Arc::new(sim.clone());
    assert_eq!(carrier.name(), "simulator");
    let mut message = sms("m1:alice", ALICE);
    message.media = vec![OutboundMedia {
        url: "http://sb.local/blobs/abc".into(),
        content_type: "image/jpeg".into(),
    }];
    let accepted = carrier.send(message.clone()).await.unwrap();
    assert!(accepted.carrier_message_id.starts_with("SM"));
    assert_eq!(accepted.carrier_message_id.len(), 34);
    assert_eq!(accepted.status, CarrierStatus::Queued);
    assert_eq!(
        sequence(&mut rx, &accepted.carrier_message_id).await,
        vec![CarrierStatus::Sent, CarrierStatus::Delivered]
    );
    let recorded = sim.outbound();
    assert_eq!(recorded.len(), 1);
    let m = &recorded[0];
    assert_eq!(m.carrier_message_id, accepted.carrier_message_id);
    assert_eq!(
        (m.idempotency_key.as_str(), m.from.as_str(), m.to.as_str()),
        ("m1:alice", BIZ, ALICE)
    );
    assert_eq!(m.body, "Your order shipped");
    assert_eq!(m.media, message.media);
    assert_eq!(m.outcome, Outcome::Deliver);
    assert_eq!(m.status, CarrierStatus::Delivered, "record follows reports");
    assert_eq!(
        sim.message(&accepted.carrier_message_id).unwrap().status,
        CarrierStatus::Delivered
    );
}

#[tokio::test]
async fn same_idempotency_key_same_sid_nothing_new() {
    let sim = Simulator::new();
    let mut rx = sim.subscribe_status();
    let first = sim.send(sms("m1:alice", ALICE)).await.unwrap();
    assert_eq!(sequence(&mut rx, &first.carrier_message_id).await.len(), 2);
    let again = sim.send(sms("m1:alice", ALICE)).await.unwrap();
    assert_eq!(again.carrier_message_id, first.carrier_message_id);
    assert_eq!(again.status, CarrierStatus::Delivered, "current status");
    assert_eq!(sim.outbound().len(), 1);
    quiet(&mut rx, 100).await;
    // A different key (another recipient of the same message) is a new message.
    let other = sim.send(sms("m1:bob", BOB)).await.unwrap();
    assert_ne!(other.carrier_message_id, first.carrier_message_id);
    assert_eq!(sim.outbound().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sends_with_one_key_record_once() {
    let sim = Simulator::new();
    let mut handles = Vec::new();
    for _ in 0..16 {
        let sim = sim.clone();
        handles.push(tokio::spawn(async move {
            sim.send(sms("same", ALICE))
                .await
                .unwrap()
                .carrier_message_id
        }));
    }
    let mut sids = Vec::new();
    for h in handles {
        sids.push(h.await.unwrap());
    }
    sids.dedup();
    assert_eq!(sids.len(), 1);
    assert_eq!(sim.outbound().len(), 1);
}

#[tokio::test]
async fn fail_and_undeliver_report_error_codes() {
    let sim = Simulator::new();
    let mut rx = sim.subscribe_status();
    sim.set_default_outcome(Outcome::Fail {
        error_code: "30008".into(),
    });
    let a = sim.send(sms("a", ALICE)).await.unwrap();
    assert_eq!(
        sequence(&mut rx, &a.carrier_message_id).await,
        vec![
            CarrierStatus::Sent,
            CarrierStatus::Failed {
                error_code: Some("30008".into())
            }
        ]
    );
    sim.set_default_outcome(Outcome::Undeliver {
        error_code: "30003".into(),
    });
    let b = sim.send(sms("b", ALICE)).await.unwrap();
    assert_eq!(
        sequence(&mut rx, &b.carrier_message_id).await,
        vec![
            CarrierStatus::Sent,
            CarrierStatus::Undelivered {
                error_code: Some("30003".into())
            }
        ]
    );
    assert_eq!(
        sim.message(&b.carrier_message_id)
            .unwrap()
            .status
            .error_code(),
        Some("30003")
    );
}

#[tokio::test]
async fn delay_postpones_the_final_report() {
    let sim = Simulator::new();
    let mut rx = sim.subscribe_status();
    sim.set_default_outcome(Outcome::delay(150, Outcome::Deliver));
    let started = Instant::now();
    let a = sim.send(sms("a", ALICE)).await.unwrap();
    let sent = next(&mut rx).await;
    assert_eq!(sent.status, CarrierStatus::Sent);
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "sent right away"
    );
    let delivered = next(&mut rx).await;
    assert_eq!(delivered.carrier_message_id, a.carrier_message_id);
    assert_eq!(delivered.status, CarrierStatus::Delivered);
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn reports_stay_in_order_per_message_across_interleaving() {
    let sim = Simulator::new();
    let mut rx = sim.subscribe_status();
    sim.set_outcome_for(ALICE, Outcome::delay(120, Outcome::Deliver));
    sim.set_outcome_for(
        BOB,
        Outcome::delay(
            20,
            Outcome::Fail {
                error_code: "30005".into(),
            },
        ),
    );
    let a = sim.send(sms("a", ALICE)).await.unwrap();
    let b = sim.send(sms("b", BOB)).await.unwrap();
    let mut reports = Vec::new();
    for _ in 0..4 {
        reports.push(next(&mut rx).await);
    }
    let of = |sid: &str| -> Vec<&'static str> {
        reports
            .iter()
            .filter(|r| r.carrier_message_id == sid)
            .map(|r| r.status.as_str())
            .collect()
    };
    assert_eq!(of(&a.carrier_message_id), ["sent", "delivered"]);
    assert_eq!(of(&b.carrier_message_id), ["sent", "failed"]);
    // Bob's shorter delay finishes first.
    assert_eq!(reports[3].carrier_message_id, a.carrier_message_id);
}

#[tokio::test]
async fn hold_until_release() {
    let sim = Simulator::new();
    let mut rx = sim.subscribe_status();
    sim.set_default_outcome(Outcome::Hold);
    let a = sim.send(sms("a", ALICE)).await.unwrap();
    let sid = a.carrier_message_id.clone();
    assert_eq!(next(&mut rx).await.status, CarrierStatus::Sent);
    quiet(&mut rx, 100).await;
    assert_eq!(sim.held(), vec![sid.clone()]);
    assert_eq!(sim.message(&sid).unwrap().status, CarrierStatus::Sent);

    // Release into another hold via a delay, then into a failure.
    sim.release(&sid, Outcome::delay(30, Outcome::Hold))
        .unwrap();
    quiet(&mut rx, 80).await;
    sim.release(
        &sid,
        Outcome::Fail {
            error_code: "30007".into(),
        },
    )
    .unwrap();
    let r = next(&mut rx).await;
    assert_eq!(
        r.status,
        CarrierStatus::Failed {
            error_code: Some("30007".into())
        }
    );
    assert_eq!(r.error_code.as_deref(), Some("30007"));
    assert!(sim.held().is_empty());
    assert_eq!(
        sim.release(&sid, Outcome::Deliver),
        Err(ReleaseError::NotHeld(sid.clone()))
    );
    let err = sim.release("SMnope", Outcome::Deliver).unwrap_err();
    assert_eq!(err.code(), "not_held");
}

#[tokio::test]
async fn per_number_override_and_clear() {
    let sim = Simulator::new();
    let mut rx = sim.subscribe_status();
    sim.set_outcome_for(
        BOB,
        Outcome::Undeliver {
            error_code: "30006".into(),
        },
    );
    assert_eq!(sim.outcome_for(ALICE), Outcome::Deliver);
    let a = sim.send(sms("a", ALICE)).await.unwrap();
    assert_eq!(
        sequence(&mut rx, &a.carrier_message_id).await.last(),
        Some(&CarrierStatus::Delivered)
    );
    let b = sim.send(sms("b", BOB)).await.unwrap();
    assert_eq!(
        sequence(&mut rx, &b.carrier_message_id).await.last(),
        Some(&CarrierStatus::Undelivered {
            error_code: Some("30006".into())
        })
    );
    sim.clear_outcome_for(BOB);
    let b2 = sim.send(sms("b2", BOB)).await.unwrap();
    assert_eq!(
        sequence(&mut rx, &b2.carrier_message_id).await.last(),
        Some(&CarrierStatus::Delivered)
    );
}

#[tokio::test]
async fn outage_rejects_send_without_consuming_the_key() {
    let sim = Simulator::new();
    let mut rx = sim.subscribe_status();
    sim.set_default_outcome(Outcome::RejectSend {
        code: "20500".into(),
        retryable: true,
    });
    let err = sim.send(sms("k", ALICE)).await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.carrier_code(), "20500");
    assert!(sim.outbound().is_empty());
    quiet(&mut rx, 50).await;

    sim.set_outcome_for(
        BOB,
        Outcome::RejectSend {
            code: "21610".into(),
            retryable: false,
        },
    );
    let err = sim.send(sms("b", BOB)).await.unwrap_err();
    assert!(matches!(err, SendError::Permanent { ref code, .. } if code == "21610"));

    // The outage ends; the retry with the same key goes through once.
    sim.set_default_outcome(Outcome::Deliver);
    let ok = sim.send(sms("k", ALICE)).await.unwrap();
    assert_eq!(sim.outbound().len(), 1);
    assert_eq!(sequence(&mut rx, &ok.carrier_message_id).await.len(), 2);
}

#[tokio::test]
async fn invalid_messages_refused_like_twilio() {
    let sim = Simulator::new();
    let err = sim.send(sms("k", "555-1234")).await.unwrap_err();
    assert_eq!(
        err,
        SendError::Permanent {
            code: "21211".into(),
            message: "The 'To' number 555-1234 is not a valid phone number.".into()
        }
    );
    let mut bad_from = sms("k", ALICE);
    bad_from.from = "shop".into();
    assert_eq!(
        sim.send(bad_from).await.unwrap_err().carrier_code(),
        "21212"
    );
    let mut empty = sms("k", ALICE);
    empty.body.clear();
    assert_eq!(sim.send(empty).await.unwrap_err().carrier_code(), "21602");
    let mut long = sms("k", ALICE);
    long.body = "é".repeat(1601);
    assert_eq!(sim.send(long).await.unwrap_err().carrier_code(), "21617");
    let mut exactly = sms("k", ALICE);
    exactly.body = "é".repeat(1600);
    sim.send(exactly).await.unwrap();
    assert_eq!(sim.outbound().len(), 1);
}

#[tokio::test]
async fn record_is_bounded_newest_last() {
    let sim = Simulator::with_config(SimulatorConfig {
        max_recorded: 3,
        max_idempotency_keys: 100,
    });
    let mut sids = Vec::new();
    for i in 0..5 {
        sids.push(
            sim.send(sms(&format!("k{i}"), ALICE))
                .await
                .unwrap()
                .carrier_message_id,
        );
    }
    let kept: Vec<String> = sim
        .outbound()
        .into_iter()
        .map(|m| m.carrier_message_id)
        .collect();
    assert_eq!(kept, sids[2..].to_vec());
    // Keys outlive the visible record.
    assert_eq!(
        sim.send(sms("k0", ALICE)).await.unwrap().carrier_message_id,
        sids[0]
    );
}

#[tokio::test]
async fn every_subscriber_gets_every_report() {
    let sim = Simulator::new();
    let mut one = sim.subscribe_status();
    let mut two = sim.subscribe_status();
    let dropped = sim.subscribe_status();
    drop(dropped);
    let a = sim.send(sms("a", ALICE)).await.unwrap();
    assert_eq!(sequence(&mut one, &a.carrier_message_id).await.len(), 2);
    assert_eq!(sequence(&mut two, &a.carrier_message_id).await.len(), 2);
}

#[tokio::test]
async fn inbound_text_as_a_customer() {
    let sim = Simulator::new();
    let media = vec![InboundMedia {
        url: "http://sb.local/sim/media/1".into(),
        content_type: Some("image/png".into()),
    }];
    let a = sim.inbound(ALICE, BIZ, "STOP", media.clone());
    let b = sim.inbound(ALICE, BIZ, "hi", vec![]);
    assert!(a.carrier_message_id.starts_with("SM") && a.carrier_message_id.len() == 34);
    assert_ne!(a.carrier_message_id, b.carrier_message_id);
    assert_eq!(
        (a.from.as_str(), a.to.as_str(), a.body.as_str()),
        (ALICE, BIZ, "STOP")
    );
    assert_eq!(a.media, media);
    assert_eq!(
        carrier::keywords::classify(&a.body),
        Some(carrier::keywords::Keyword::OptOut)
    );
    assert!(sim.outbound().is_empty(), "inbound is not outbound");
}

#[tokio::test]
async fn outcomes_are_json_configurable() {
    let outcome: Outcome = serde_json::from_str(
        r#"{"kind":"delay","ms":500,"then":{"kind":"fail","error_code":"30008"}}"#,
    )
    .unwrap();
    assert_eq!(
        outcome,
        Outcome::delay(
            500,
            Outcome::Fail {
                error_code: "30008".into()
            }
        )
    );
    let json = serde_json::to_value(Outcome::RejectSend {
        code: "20500".into(),
        retryable: true,
    })
    .unwrap();
    assert_eq!(
        json,
        serde_json::json!({"kind":"reject_send","code":"20500","retryable":true})
    );
}
