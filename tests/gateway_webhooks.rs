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
            json!({ "url": format!("{}/a", receiver.base), "events": ["message.sent"] }),
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
