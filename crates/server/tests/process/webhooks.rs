//! Outbound webhooks on real processes: a delivery that failed before the server was
//! killed (SIGKILL) is retried by the restarted server, whose attempt count goes on from
//! the log, until the receiver takes it; the delivery log read from the new process tells
//! every attempt, and a redelivery reaches the receiver under a new id.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::common::{bootstrap, get, post, start_with, until};
use serde_json::{json, Value};

const LINE: &str = "+15550601000";
const CUSTOMER: &str = "+15556660601";

/// What the receiver got: (delivery id, body, the status it answered).
type Got = Arc<Mutex<Vec<(String, Value, u16)>>>;

/// A receiver on loopback that answers 503 until `accept` is set, then 200.
async fn receiver(accept: Arc<AtomicBool>) -> (String, Got) {
    let got: Got = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (seen, accept) = (seen.clone(), accept.clone());
                async move {
                    let status = if accept.load(Ordering::SeqCst) {
                        axum::http::StatusCode::OK
                    } else {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    };
                    let delivery = headers
                        .get("switchboard-delivery")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    seen.lock().unwrap().push((delivery, body, status.as_u16()));
                    (status, "not now")
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_failed_before_a_crash_is_retried_after_the_restart() {
    let data = tempfile::tempdir().unwrap();
    let accept = Arc::new(AtomicBool::new(false));
    let (hook_url, got) = receiver(accept.clone()).await;
    // Long enough pauses that the retry after the first failure is still ahead when the
    // server is killed, and plenty of them so nothing is given up meanwhile.
    let args = [
        "--allow-private-webhooks",
        "--webhook-retry-after",
        "2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s",
    ];
    let server = start_with(data.path(), &args).await;
    let c = testkit::http();
    let base = server.base.clone();
    let ada = bootstrap(&c, &base, "ada@durable-hooks.example").await;
    let me = get(&c, format!("http://{base}/v1/me"), &ada).await;
    post(
        &c,
        format!("http://{base}/v1/numbers"),
        Some(&ada),
        json!({ "number": LINE, "user": me["user_id"] }),
    )
    .await;
    let hook = post(
        &c,
        format!("http://{base}/v1/webhooks"),
        Some(&ada),
        json!({ "url": hook_url, "events": ["message.inbound"] }),
    )
    .await;
    let hook = hook["webhook_id"].as_str().unwrap().to_owned();
    post(
        &c,
        format!("http://{base}/v1/simulator/inbound"),
        Some(&ada),
        json!({ "from": CUSTOMER, "to": LINE, "text": "Are you still there?" }),
    )
    .await;

    // The first attempt fails, and the log records it with its next attempt ahead.
    let log_url = |base: &str| format!("http://{base}/v1/webhooks/{hook}/deliveries");
    let log = until(
        "the failed first attempt recorded",
        || get(&c, log_url(&base), &ada),
        |log| log["items"][0]["attempts"].as_u64().is_some_and(|a| a >= 1),
    )
    .await;
    let delivery = log["items"][0]["delivery_id"].as_str().unwrap().to_owned();
    assert_eq!(log["items"][0]["status"], "pending", "{log}");
    assert_eq!(log["items"][0]["last_status_code"], 503, "{log}");
    assert!(log["items"][0]["next_attempt_at_ms"].is_u64(), "{log}");

    // Killed; the receiver recovers while the server is down; the server comes back.
    drop(server);
    let failed_before = got.lock().unwrap().len();
    assert!(failed_before >= 1);
    accept.store(true, Ordering::SeqCst);
    let server = start_with(data.path(), &args).await;
    let base = server.base.clone();
    let ada = server.login(&c, "ada@durable-hooks.example").await;

    let log = until(
        "delivered after the restart",
        || get(&c, log_url(&base), &ada),
        |log| log["items"][0]["status"] == "delivered",
    )
    .await;
    assert_eq!(log["items"].as_array().unwrap().len(), 1, "{log}");
    let received = got.lock().unwrap().clone();
    assert!(
        received.iter().all(|(id, _, _)| *id == delivery),
        "one delivery id on every attempt: {received:#?}"
    );
    assert!(
        received.iter().all(|(_, body, _)| *body == received[0].1),
        "the same body on every attempt"
    );
    assert_eq!(received[0].1["text"], "Are you still there?");
    assert_eq!(received.last().unwrap().2, 200);
    let detail = get(
        &c,
        format!("http://{base}/v1/webhooks/{hook}/deliveries/{delivery}"),
        &ada,
    )
    .await;
    let attempts = detail["attempt_log"].as_array().unwrap();
    let numbers: Vec<u64> = attempts
        .iter()
        .map(|a| a["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(
        numbers,
        (1..=numbers.len() as u64).collect::<Vec<_>>(),
        "attempts counted on across the restart: {detail}"
    );
    assert!(numbers.len() >= 2, "{detail}");
    assert_eq!(attempts[0]["status_code"], 503, "{detail}");
    assert!(
        attempts[0]["error"].as_str().unwrap().contains("not now"),
        "the receiver's answer is kept: {detail}"
    );
    assert_eq!(attempts.last().unwrap()["status_code"], 200, "{detail}");
    assert_eq!(detail["attempts"], numbers.len(), "{detail}");
    // Every attempt the receiver saw is in the log (at least once: one made just before
    // the kill may be repeated).
    assert!(numbers.len() <= received.len(), "{detail} {received:#?}");

    // An admin sends it again: a new delivery, the same body under its own id.
    let again = post(
        &c,
        format!("http://{base}/v1/webhooks/{hook}/deliveries/{delivery}/redeliver"),
        Some(&ada),
        json!({}),
    )
    .await;
    let new_id = again["delivery_id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, delivery);
    let received = until(
        "the redelivery received",
        || async { got.lock().unwrap().clone() },
        |r| {
            r.iter()
                .any(|(id, _, status)| *id == new_id && *status == 200)
        },
    )
    .await;
    let (_, body, _) = received.iter().find(|(id, _, _)| *id == new_id).unwrap();
    assert_eq!(body["text"], "Are you still there?");
    assert_eq!(body["delivery_id"], new_id.as_str());
}
