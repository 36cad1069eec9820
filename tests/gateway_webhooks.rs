//! Notifications through outbound webhooks, end to end: an admin registers an endpoint (a
//! real HTTP receiver on loopback), a customer texts through the simulator's webhook, and
//! the receiver gets `message.inbound` and, for the number's holder who turned on "Text
//! messages to desk phone", `desk_phone.sms` — signed, retried after a failure with the
//! same delivery id, and never for another organization or after removal.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use carrier::simulator::Simulator;
use gateway::carriers::CarrierKind;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use testkit::server::{add_user, call, TestServer, PASSWORD};

const LINE: &str = "+15550501000";
const CUSTOMER: &str = "+15556660501";

/// One request the receiver got: its path, headers of interest, and body.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    event: String,
    delivery: String,
    signature: String,
    body: Vec<u8>,
    answered: u16,
}

/// An HTTP receiver on loopback that records every request and fails the first
/// `fail_first` with 500.
#[derive(Clone)]
struct Receiver {
    base: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(fail_first: usize) -> Self {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let seen = got.clone();
        let app = axum::Router::new().route(
            "/{*path}",
            axum::routing::post(
                move |uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| {
                    let seen = seen.clone();
                    async move {
                        let mut seen = seen.lock().unwrap();
                        let answered = if seen.len() < fail_first {
                            AxumStatus::INTERNAL_SERVER_ERROR
                        } else {
                            AxumStatus::NO_CONTENT
                        };
                        let h = |n: &str| {
                            headers
                                .get(n)
                                .map(|v| v.to_str().unwrap().to_owned())
                                .unwrap_or_default()
                        };
                        seen.push(Received {
                            path: uri.path().to_owned(),
                            event: h("switchboard-event"),
                            delivery: h("switchboard-delivery"),
                            signature: h("switchboard-signature"),
                            body: body.to_vec(),
                            answered: answered.as_u16(),
                        });
                        answered
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, got }
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `want` holds for what was received.
    async fn until(&self, what: &str, want: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.got();
            if want(&got) {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never received {what}: {got:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Checks `Switchboard-Signature: t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
fn check_signature(secret: &str, r: &Received) {
    let (t, v1) = r
        .signature
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .unwrap_or_else(|| panic!("signature {:?}", r.signature));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&hex_decode(secret)).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&r.body);
    mac.verify_slice(&hex_decode(v1))
        .unwrap_or_else(|_| panic!("bad signature on {r:?}"));
}

async fn bootstrap(
    c: &reqwest::Client,
    s: &TestServer,
    org: &str,
    email: &str,
) -> (String, String) {
    let (status, v) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": org, "name": "Admin", "extension": "100", "email": email, "password": PASSWORD,
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    (
        v["token"].as_str().unwrap().to_owned(),
        v["user_id"].as_str().unwrap().to_owned(),
    )
}

/// The endpoint's delivery log (first page), newest first.
async fn deliveries(c: &reqwest::Client, s: &TestServer, admin: &str, hook: &str) -> Vec<Value> {
    let (status, v) = call(
        c.get(s.url(&format!("/v1/webhooks/{hook}/deliveries")))
            .bearer_auth(admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["items"].as_array().unwrap().clone()
}

/// Waits until the endpoint's delivery log satisfies `want`: the log then.
async fn until_log(
    c: &reqwest::Client,
    s: &TestServer,
    admin: &str,
    hook: &str,
    what: &str,
    want: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let log = deliveries(c, s, admin, hook).await;
        if want(&log) {
            return log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the delivery log never showed {what}: {log:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn customer_texts(c: &reqwest::Client, s: &TestServer, admin: &str, text: &str) {
    let (status, v) = call(
        c.post(s.url("/v1/simulator/inbound"))
            .bearer_auth(admin)
            .json(&json!({ "from": CUSTOMER, "to": LINE, "text": text })),
    )
    .await;
    assert!(status.is_success(), "{status} {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn customer_texts_are_notified_to_the_organizations_webhooks() {
    let s = TestServer::start_with_carrier(CarrierKind::Simulator(Simulator::new()), |_| {}).await;
    let c = testkit::http();
    let (ada, ada_id) = bootstrap(&c, &s, "Acme", "ada@hooks.example").await;
    let (bob, bob_t) = add_user(&c, &s, &ada, "bob@hooks.example", "101").await;
    let (status, v) = call(
        c.post(s.url("/v1/numbers"))
            .bearer_auth(&ada)
            .json(&json!({ "number": LINE, "user": bob })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    // Ada shares the line but keeps texts off her desk phone.
    let (status, v) = call(
        c.post(s.url(&format!(
            "/v1/numbers/{}/assignees",
            LINE.replace('+', "%2B")
        )))
        .bearer_auth(&ada)
        .json(&json!({ "user": ada_id })),
    )
    .await;
    assert!(status.is_success(), "{v}");
    let (status, v) = call(
        c.put(s.url("/v1/me/settings"))
            .bearer_auth(&bob_t)
            .json(&json!({ "text_messages_to_desk_phone": true })),
    )
    .await;
    assert!(status.is_success(), "{v}");
    let receiver = Receiver::start(1).await;

    // Only admins manage webhooks; bad input is refused; nothing is written.
    let head = s.ws.store.next_position();
    for (token, body, want) in [
        (
            &bob_t,
            json!({ "url": format!("{}/a", receiver.base), "events": ["message.inbound"] }),
            (StatusCode::FORBIDDEN, "admin_only"),
        ),
        (
            &ada,
            json!({ "url": format!("{}/a", receiver.base), "events": ["message.bogus"] }),
            (StatusCode::UNPROCESSABLE_ENTITY, "unknown_webhook_event"),
        ),
        (
            &ada,
            json!({ "url": format!("{}/a", receiver.base), "events": [] }),
            (StatusCode::UNPROCESSABLE_ENTITY, "unknown_webhook_event"),
        ),
        (
            &ada,
            json!({ "url": "ftp://hooks.example/a", "events": ["message.inbound"] }),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_webhook_url"),
        ),
    ] {
        let (status, e) = call(c.post(s.url("/v1/webhooks")).bearer_auth(token).json(&body)).await;
        assert_eq!(
            (status, e["code"].as_str().unwrap_or("")),
            want,
            "{body}: {e}"
        );
    }
    assert_eq!(s.ws.store.next_position(), head);

    let (status, hook) = call(
        c.post(s.url("/v1/webhooks"))
            .bearer_auth(&ada)
            .json(&json!({
                "url": format!("{}/acme", receiver.base),
                "events": ["message.inbound", "desk_phone.sms"],
            })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 64, "{hook}");
    let hook_id = hook["webhook_id"].as_str().unwrap().to_owned();
    let (status, list) = call(c.get(s.url("/v1/webhooks")).bearer_auth(&ada)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["webhook_id"], hook_id.as_str());
    assert!(list["items"][0].get("secret").is_none(), "{list}");

    // Another organization sees none of it, cannot remove it, and its own endpoint hears
    // nothing of Acme's texts.
    let (globex, _) = bootstrap(&c, &s, "Globex", "gus@hooks.example").await;
    let (_, list) = call(c.get(s.url("/v1/webhooks")).bearer_auth(&globex)).await;
    assert_eq!(list["items"], json!([]), "{list}");
    let (status, e) = call(
        c.delete(s.url(&format!("/v1/webhooks/{hook_id}")))
            .bearer_auth(&globex),
    )
    .await;
    assert_eq!(
        (status, e["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_webhook"))
    );
    let (status, _) = call(
        c.post(s.url("/v1/webhooks"))
            .bearer_auth(&globex)
            .json(&json!({
                "url": format!("{}/globex", receiver.base),
                "events": ["message.inbound", "desk_phone.sms"],
            })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    // The customer texts Bob's line: the first delivery fails (500) and is retried with
    // the same id; both notifications arrive, signed.
    customer_texts(&c, &s, &ada, "Is my order ready?").await;
    let got = receiver
        .until("both notifications, delivered", |got| {
            ["message.inbound", "desk_phone.sms"].iter().all(|e| {
                got.iter()
                    .any(|r| r.event == *e && r.answered == 204 && r.path == "/acme")
            })
        })
        .await;
    assert!(
        got.iter().all(|r| r.path == "/acme"),
        "Globex's endpoint was called: {got:#?}"
    );
    let failed = got.iter().find(|r| r.answered == 500).expect("a failure");
    assert!(
        got.iter()
            .any(|r| r.answered == 204 && r.delivery == failed.delivery && r.body == failed.body),
        "the failed delivery was retried with the same id and body: {got:#?}"
    );
    for r in &got {
        check_signature(&secret, r);
    }
    let delivered = |event: &str| -> Vec<Value> {
        got.iter()
            .filter(|r| r.event == event && r.answered == 204)
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    };
    let inbound = delivered("message.inbound");
    assert_eq!(inbound.len(), 1, "{inbound:?}");
    let n = &inbound[0];
    assert_eq!(
        (&n["type"], &n["from"], &n["to"], &n["text"]),
        (
            &json!("message.inbound"),
            &json!(CUSTOMER),
            &json!(LINE),
            &json!("Is my order ready?")
        ),
        "{n}"
    );
    assert!(
        n["conversation_id"].is_string() && n["delivery_id"].is_string(),
        "{n}"
    );
    // Bob and Ada hold the line; only Bob wants texts on his desk phone.
    let desk = delivered("desk_phone.sms");
    assert_eq!(desk.len(), 1, "{desk:?}");
    assert_eq!(
        (&desk[0]["user_id"], &desk[0]["extension"], &desk[0]["text"]),
        (&json!(bob), &json!("101"), &json!("Is my order ready?")),
        "{}",
        desk[0]
    );

    // The delivery log tells the story: both delivered, the one that failed first after
    // two attempts; only Acme's admin reads it.
    let log = until_log(&c, &s, &ada, &hook_id, "both delivered", |log| {
        log.len() == 2 && log.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    for d in &log {
        assert_eq!(d["status"], "delivered", "{d}");
        assert_eq!(d["last_status_code"], 204, "{d}");
        assert!(
            d["last_error"].is_null() && d["next_attempt_at_ms"].is_null(),
            "{d}"
        );
    }
    let retried = log
        .iter()
        .find(|d| d["delivery_id"] == failed.delivery.as_str())
        .expect("the failed delivery is in the log");
    assert_eq!(retried["attempts"], 2, "{retried}");
    let (status, detail) = call(
        c.get(s.url(&format!(
            "/v1/webhooks/{hook_id}/deliveries/{}",
            failed.delivery
        )))
        .bearer_auth(&ada),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    let attempts = detail["attempt_log"].as_array().unwrap();
    assert_eq!(
        attempts
            .iter()
            .map(|a| (
                a["attempt"].as_u64().unwrap(),
                a["status_code"].as_u64().unwrap()
            ))
            .collect::<Vec<_>>(),
        vec![(1, 500), (2, 204)],
        "{detail}"
    );
    assert!(
        attempts[0]["error"].as_str().unwrap().contains("500"),
        "{detail}"
    );
    assert_eq!(
        detail["request_body"],
        serde_json::from_slice::<Value>(&failed.body).unwrap(),
        "the log keeps the body sent"
    );
    for (token, path, want) in [
        (
            &bob_t,
            format!("/v1/webhooks/{hook_id}/deliveries"),
            (StatusCode::FORBIDDEN, "admin_only"),
        ),
        (
            &globex,
            format!("/v1/webhooks/{hook_id}/deliveries"),
            (StatusCode::NOT_FOUND, "unknown_webhook"),
        ),
        (
            &globex,
            format!("/v1/webhooks/{hook_id}/deliveries/{}", failed.delivery),
            (StatusCode::NOT_FOUND, "unknown_webhook"),
        ),
        (
            &ada,
            format!("/v1/webhooks/{hook_id}/deliveries/{}", uuid::Uuid::new_v4()),
            (StatusCode::NOT_FOUND, "unknown_delivery"),
        ),
    ] {
        let (status, e) = call(c.get(s.url(&path)).bearer_auth(token)).await;
        assert_eq!(
            (status, e["code"].as_str().unwrap_or("")),
            want,
            "{path}: {e}"
        );
    }
    let head = s.ws.store.next_position();
    let (status, e) = call(
        c.post(s.url(&format!(
            "/v1/webhooks/{hook_id}/deliveries/{}/redeliver",
            failed.delivery
        )))
        .bearer_auth(&globex),
    )
    .await;
    assert_eq!(
        (status, e["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_webhook"))
    );
    assert_eq!(
        s.ws.store.next_position(),
        head,
        "a refused redelivery writes nothing"
    );

    // Redelivered: the same body under a new delivery id, listed first in the log.
    let (status, again) = call(
        c.post(s.url(&format!(
            "/v1/webhooks/{hook_id}/deliveries/{}/redeliver",
            failed.delivery
        )))
        .bearer_auth(&ada),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    let new_id = again["delivery_id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, failed.delivery);
    assert_eq!(again["redelivery_of"], failed.delivery.as_str(), "{again}");
    let got = receiver
        .until("the redelivery", |got| {
            got.iter()
                .any(|r| r.delivery == new_id && r.answered == 204)
        })
        .await;
    let redelivered = got.iter().find(|r| r.delivery == new_id).unwrap();
    check_signature(&secret, redelivered);
    let mut first: Value = serde_json::from_slice(&failed.body).unwrap();
    first["delivery_id"] = json!(new_id);
    assert_eq!(
        serde_json::from_slice::<Value>(&redelivered.body).unwrap(),
        first
    );
    let log = until_log(&c, &s, &ada, &hook_id, "the redelivery delivered", |log| {
        log.iter()
            .any(|d| d["delivery_id"] == new_id.as_str() && d["status"] == "delivered")
    })
    .await;
    assert_eq!(
        log[0]["delivery_id"],
        new_id.as_str(),
        "newest first: {log:#?}"
    );
    // Paged: one at a time, the cursor leads through all three.
    let (_, page) = call(
        c.get(s.url(&format!("/v1/webhooks/{hook_id}/deliveries?limit=1")))
            .bearer_auth(&ada),
    )
    .await;
    let mut seen = vec![page["items"][0]["delivery_id"].clone()];
    let mut cursor = page["next_before"].clone();
    while let Some(before) = cursor.as_u64() {
        let (_, page) = call(
            c.get(s.url(&format!(
                "/v1/webhooks/{hook_id}/deliveries?limit=1&before={before}"
            )))
            .bearer_auth(&ada),
        )
        .await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["delivery_id"].clone()),
        );
        cursor = page["next_before"].clone();
    }
    assert_eq!(
        seen,
        log.iter()
            .map(|d| d["delivery_id"].clone())
            .collect::<Vec<_>>()
    );
    let got = receiver.got();

    // Removed: the next text is not notified to it. (A second endpoint registered after
    // the removal shows when the notifier has passed that text.)
    let (status, _) = call(
        c.delete(s.url(&format!("/v1/webhooks/{hook_id}")))
            .bearer_auth(&ada),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(
        c.post(s.url("/v1/webhooks"))
            .bearer_auth(&ada)
            .json(&json!({
                "url": format!("{}/after", receiver.base),
                "events": ["message.inbound"],
            })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let before = got.len();
    customer_texts(&c, &s, &ada, "Hello again").await;
    let got = receiver
        .until("the second text at the new endpoint", |got| {
            got.iter().any(|r| r.path == "/after" && r.answered == 204)
        })
        .await;
    let late: Vec<_> = got[before..]
        .iter()
        .filter(|r| r.path != "/after")
        .collect();
    assert!(late.is_empty(), "a removed endpoint was called: {late:#?}");
}

const INBOX_LINE: &str = "+15550501001";
const QUEUE_LINE: &str = "+15550501002";

/// Registers an endpoint for `events` at `url`: its id.
async fn register(
    c: &reqwest::Client,
    s: &TestServer,
    admin: &str,
    url: String,
    events: &[&str],
) -> String {
    let (status, hook) = call(
        c.post(s.url("/v1/webhooks"))
            .bearer_auth(admin)
            .json(&json!({ "url": url, "events": events })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    hook["webhook_id"].as_str().unwrap().to_owned()
}

async fn ok(r: reqwest::RequestBuilder) -> Value {
    let (status, v) = call(r).await;
    assert!(status.is_success(), "{status} {v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn texts_we_send_their_delivery_inbox_and_queue_work_are_notified_and_a_dead_endpoint_is_given_up(
) {
    let s = TestServer::start_with_carrier(CarrierKind::Simulator(Simulator::new()), |_| {}).await;
    let c = testkit::http();
    let (ada, ada_id) = bootstrap(&c, &s, "Acme", "ada@events.example").await;
    let post = |path: &str| c.post(s.url(path)).bearer_auth(&ada);
    ok(post("/v1/numbers").json(&json!({ "number": LINE, "user": ada_id }))).await;
    let inbox =
        ok(post("/v1/inboxes").json(&json!({ "name": "Front desk", "number": INBOX_LINE }))).await
            ["inbox_id"]
            .as_str()
            .unwrap()
            .to_owned();
    ok(post(&format!("/v1/inboxes/{inbox}/members")).json(&json!({ "user": ada_id }))).await;
    let queue = ok(post("/v1/queues").json(&json!({ "name": "Support", "number": QUEUE_LINE })))
        .await["queue_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for number in [INBOX_LINE, QUEUE_LINE] {
        ok(post(&format!(
            "/v1/numbers/{}/sms-registration",
            number.replace('+', "%2B")
        ))
        .json(&json!({ "registered": true })))
        .await;
    }
    ok(post(&format!("/v1/queues/{queue}/members")).json(&json!({ "user": ada_id }))).await;
    ok(post(&format!("/v1/queues/{queue}/login"))).await;

    let good = Receiver::start(0).await;
    let dead = Receiver::start(usize::MAX).await;
    let events = [
        "message.sent",
        "delivery.updated",
        "conversation.assigned",
        "conversation.returned",
        "conversation.done",
        "queue.queued",
        "queue.claimed",
        "queue.closed",
    ];
    register(&c, &s, &ada, format!("{}/all", good.base), &events).await;
    let dead_hook = register(
        &c,
        &s,
        &ada,
        format!("{}/dead", dead.base),
        &["message.inbound"],
    )
    .await;

    // A customer texts Ada's line; she answers, and the simulator delivers it.
    customer_texts(&c, &s, &ada, "Do you open on Sunday?").await;
    let their = domain::PhoneNumber::parse(CUSTOMER).unwrap();
    let org: domain::OrgId = ok(c.get(s.url("/v1/me")).bearer_auth(&ada)).await["organization_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let line =
        domain::ConversationId::external(org, &domain::PhoneNumber::parse(LINE).unwrap(), &their);
    // Answered as soon as the text has opened the conversation (the inbound router records
    // it after the simulator's answer).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, v) = call(
            post(&format!("/v1/conversations/{line}/messages"))
                .json(&json!({ "text": "From noon." })),
        )
        .await;
        if status.is_success() {
            break;
        }
        assert_eq!(v["code"], "conversation_not_found", "{status} {v}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "never answered: {status} {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The inbox: the customer writes, Ada takes it, returns it, and marks it done.
    let inbox_conv = domain::ConversationId::external(
        org,
        &domain::PhoneNumber::parse(INBOX_LINE).unwrap(),
        &their,
    );
    let (status, v) = call(
        c.post(s.url("/v1/simulator/inbound"))
            .bearer_auth(&ada)
            .json(&json!({ "from": CUSTOMER, "to": INBOX_LINE, "text": "Invoice question" })),
    )
    .await;
    assert!(status.is_success(), "{v}");
    // Assign to Me as soon as the text has opened the inbox conversation.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, v) = call(post(&format!(
            "/v1/conversations/{inbox_conv}/assign-to-me"
        )))
        .await;
        if status.is_success() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never assigned: {status} {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ok(post(&format!("/v1/conversations/{inbox_conv}/return"))).await;
    ok(post(&format!("/v1/conversations/{inbox_conv}/done"))).await;
    // The queue: the customer writes, Ada claims and closes it.
    let queue_conv = domain::ConversationId::external(
        org,
        &domain::PhoneNumber::parse(QUEUE_LINE).unwrap(),
        &their,
    );
    ok(c.post(s.url("/v1/simulator/inbound"))
        .bearer_auth(&ada)
        .json(&json!({ "from": CUSTOMER, "to": QUEUE_LINE, "text": "Where is my parcel?" })))
    .await;
    good.until("queue.queued", |got| {
        got.iter().any(|r| r.event == "queue.queued")
    })
    .await;
    ok(post(&format!(
        "/v1/queues/{queue}/interactions/{queue_conv}/claim"
    ))
    .json(&json!({})))
    .await;
    ok(post(&format!(
        "/v1/queues/{queue}/interactions/{queue_conv}/close"
    ))
    .json(&json!({})))
    .await;

    let got = good
        .until("every kind of event", |got| {
            events.iter().all(|e| got.iter().any(|r| r.event == *e))
                && got.iter().any(|r| {
                    r.event == "delivery.updated"
                        && serde_json::from_slice::<Value>(&r.body).unwrap()["status"]
                            == "delivered"
                })
        })
        .await;
    let body = |event: &str| -> Value {
        serde_json::from_slice(&got.iter().find(|r| r.event == event).unwrap().body).unwrap()
    };
    assert!(
        got.iter().all(|r| events.contains(&r.event.as_str())),
        "only the subscribed events: {got:#?}"
    );
    let sent = body("message.sent");
    assert_eq!(
        (
            &sent["text"],
            &sent["from"],
            &sent["to"],
            &sent["author_id"]
        ),
        (
            &json!("From noon."),
            &json!(LINE),
            &json!([CUSTOMER]),
            &json!(ada_id)
        ),
        "{sent}"
    );
    let delivered: Vec<Value> = got
        .iter()
        .filter(|r| r.event == "delivery.updated")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert!(
        delivered
            .iter()
            .all(|d| d["message_id"] == sent["message_id"] && d["to"] == CUSTOMER),
        "{delivered:#?}"
    );
    let assigned = body("conversation.assigned");
    assert_eq!(
        (
            &assigned["conversation_id"],
            &assigned["inbox_id"],
            &assigned["assigned_to"],
            &assigned["how"]
        ),
        (
            &json!(inbox_conv),
            &json!(inbox),
            &json!(ada_id),
            &json!("assigned")
        ),
        "{assigned}"
    );
    assert_eq!(
        body("conversation.returned")["previous_assignee"],
        json!(ada_id)
    );
    assert_eq!(body("conversation.done")["by_user_id"], json!(ada_id));
    let claimed = body("queue.claimed");
    assert_eq!(
        (
            &claimed["queue_id"],
            &claimed["conversation_id"],
            &claimed["agent_id"]
        ),
        (&json!(queue), &json!(queue_conv), &json!(ada_id)),
        "{claimed}"
    );
    assert_eq!(body("queue.closed")["reason"], json!("by_agent"));
    let positions: Vec<u64> = got
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["position"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(positions.iter().all(|p| *p > 0), "{positions:?}");

    // The dead endpoint: every attempt answered 500, then given up (the tests' schedule
    // is three quick retries), with the log saying so. The dispatcher counts a delivery
    // as handled only once it is given up, so the followers have settled only then.
    s.settled().await;
    let log = deliveries(&c, &s, &ada, &dead_hook).await;
    assert!(
        log.len() == 3 && log.iter().all(|d| d["status"] == "failed"),
        "settled with a delivery not given up: {:?} {log:#?}",
        s.ws.progress
    );
    for d in &log {
        assert_eq!(
            (&d["attempts"], &d["last_status_code"]),
            (&json!(4), &json!(500)),
            "{d}"
        );
        assert!(d["next_attempt_at_ms"].is_null(), "{d}");
        assert!(d["last_error"].as_str().unwrap().contains("500"), "{d}");
        assert_eq!(d["event"], "message.inbound");
    }
    let tries = dead.got();
    for d in &log {
        let id = d["delivery_id"].as_str().unwrap();
        assert_eq!(
            tries.iter().filter(|r| r.delivery == id).count(),
            4,
            "four attempts of {id}"
        );
    }
}

/// A receiver that always answers 503 with `Retry-After: 120`; how many it got.
async fn busy_receiver() -> (String, Arc<Mutex<usize>>) {
    let got: Arc<Mutex<usize>> = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/busy",
        axum::routing::post(move || {
            let seen = seen.clone();
            async move {
                *seen.lock().unwrap() += 1;
                (
                    AxumStatus::SERVICE_UNAVAILABLE,
                    [("retry-after", "120")],
                    "come back later",
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/busy", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_the_log_filters_by_status_and_removal_cancels_at_once() {
    let s = TestServer::start_with_carrier_and_state(
        CarrierKind::Simulator(Simulator::new()),
        |_| {},
        |state| {
            state.with_webhooks(workers::webhooks::WebhookConfig {
                allow_private: true,
                retry_after: vec![Duration::from_millis(50), Duration::from_secs(3600)],
            })
        },
    )
    .await;
    let c = testkit::http();
    let (ada, ada_id) = bootstrap(&c, &s, "Acme", "ada@retry-after.example").await;
    let (status, v) = call(
        c.post(s.url("/v1/numbers"))
            .bearer_auth(&ada)
            .json(&json!({ "number": LINE, "user": ada_id })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (url, got) = busy_receiver().await;
    let hook = register(&c, &s, &ada, url, &["message.inbound"]).await;
    customer_texts(&c, &s, &ada, "Anyone there?").await;

    // The first attempt fails; the next one waits the 120 s the receiver asked for, not
    // the schedule's 50 ms.
    let deliveries = s.url(&format!("/v1/webhooks/{hook}/deliveries"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let log = loop {
        let (_, log) = call(c.get(&deliveries).bearer_auth(&ada)).await;
        if log["items"][0]["attempts"].as_u64() == Some(1) {
            break log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never attempted: {log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let item = &log["items"][0];
    assert_eq!(item["status"], "pending", "{log}");
    let waits =
        item["next_attempt_at_ms"].as_u64().unwrap() - item["last_attempt_at_ms"].as_u64().unwrap();
    assert!(waits >= 119_000, "waits {waits} ms: {log}");
    assert_eq!(*got.lock().unwrap(), 1);

    // The log filtered by status.
    for (status, count) in [("pending", 1), ("delivered", 0), ("failed", 0)] {
        let (code, v) = call(
            c.get(format!("{deliveries}?status={status}"))
                .bearer_auth(&ada),
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{v}");
        assert_eq!(v["items"].as_array().unwrap().len(), count, "{status}: {v}");
    }
    let (code, v) = call(c.get(format!("{deliveries}?status=lost")).bearer_auth(&ada)).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");

    // Removed: its pending delivery is cancelled now, not at its attempt two minutes on.
    let delivery = item["delivery_id"].as_str().unwrap().to_owned();
    let (code, v) = call(
        c.delete(s.url(&format!("/v1/webhooks/{hook}")))
            .bearer_auth(&ada),
    )
    .await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{v}");
    let stream = eventlog::StreamName::new(format!("webhookdelivery-{delivery}")).unwrap();
    let records =
        s.ws.store
            .read_stream_blocking(&stream, 0, eventlog::Direction::Forward, 100)
            .unwrap();
    assert_eq!(
        records.last().map(|r| r.event_type.as_str()),
        Some("WebhookDeliveryCancelled"),
        "{:?}",
        records.iter().map(|r| &r.event_type).collect::<Vec<_>>()
    );
    assert_eq!(*got.lock().unwrap(), 1, "never sent again");
}
