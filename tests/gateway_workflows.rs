//! Whole user workflows over real sockets, with the embedded simulator as the carrier:
//! HTTP through reqwest, `/v1/stream` through tokio-tungstenite, customers' texts through
//! the simulator's inbound webhook (`POST /v1/simulator/inbound`) and what the carrier was
//! handed read back from `GET /v1/simulator/outbound`.
//!
//! - composing from a chosen From number (and refusing one the user does not hold);
//! - a customer's reply continuing the conversation, live on the user's stream;
//! - read receipts and unread counts between two users;
//! - typing indicators (internal viewers only, never stored, never texted);
//! - a mixed group: one text per external member, the replies reaching the team;
//! - a shared inbox worked by two agents while the customer texts in.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use carrier::simulator::Simulator;
use domain::{ConversationId, OrgId, PhoneNumber};
use futures_util::SinkExt;
use gateway::carriers::CarrierKind;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use testkit::server::{add_user, call, TestServer, PASSWORD};
use testkit::stream::{connect, frame, Ws};
use tokio_tungstenite::tungstenite::Message;

const LINE_A: &str = "+15550601001";
const LINE_B: &str = "+15550601002";
const LINE_C: &str = "+15550601003";
const INBOX_NUMBER: &str = "+15550602000";
const CUSTOMER: &str = "+15557760001";
const VENDOR: &str = "+15557760002";

/// How long anything expected may take to show up.
const WAIT: Duration = Duration::from_secs(10);
/// How long a stream is watched for something that must not come.
const QUIET: Duration = Duration::from_millis(300);

/// A server with the simulator as its carrier and an organization whose first admin
/// (Root) drives the simulator.
struct World {
    s: TestServer,
    c: Client,
    org: OrgId,
    root: String,
    root_id: String,
}

async fn world(email: &str) -> World {
    let s = TestServer::start_with_carrier(CarrierKind::Simulator(Simulator::new()), |_| {}).await;
    let c = testkit::http();
    let (status, boot) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Acme", "name": "Root", "extension": "100", "email": email, "password": PASSWORD,
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{boot}");
    World {
        org: serde_json::from_value(boot["organization_id"].clone()).unwrap(),
        root: boot["token"].as_str().unwrap().to_owned(),
        root_id: boot["user_id"].as_str().unwrap().to_owned(),
        s,
        c,
    }
}

impl World {
    /// A member with a login: (user id, token).
    async fn user(&self, name: &str, extension: &str) -> (String, String) {
        add_user(
            &self.c,
            &self.s,
            &self.root,
            &format!("{name}@workflows.example"),
            extension,
        )
        .await
    }

    /// A personal business number of `user` (assigned and SMS-registered).
    async fn number(&self, number: &str, user: &str) {
        let (status, v) = call(
            self.c
                .post(self.s.url("/v1/numbers"))
                .bearer_auth(&self.root)
                .json(&json!({ "number": number, "user": user })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }

    fn external(&self, our: &str, their: &str) -> ConversationId {
        ConversationId::external(
            self.org,
            &PhoneNumber::parse(our).unwrap(),
            &PhoneNumber::parse(their).unwrap(),
        )
    }

    /// `token` starts (or continues) the External conversation of `our` and `their`.
    async fn start_external(&self, token: &str, our: &str, their: &str) -> (StatusCode, Value) {
        call(
            self.c
                .post(self.s.url("/v1/conversations/external"))
                .bearer_auth(token)
                .json(&json!({ "our": our, "their": their })),
        )
        .await
    }

    async fn post(&self, token: &str, id: &str, text: &str) -> (StatusCode, Value) {
        call(
            self.c
                .post(self.s.url(&format!("/v1/conversations/{id}/messages")))
                .bearer_auth(token)
                .json(&json!({ "text": text })),
        )
        .await
    }

    /// Posts `text`, which must be accepted; the position it was written at.
    async fn posted(&self, token: &str, id: &str, text: &str) -> u64 {
        let (status, v) = self.post(token, id, text).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v["position"].as_u64().expect("written")
    }

    async fn history(&self, token: &str, id: &str) -> Vec<Value> {
        let (status, h) = call(
            self.c
                .get(self.s.url(&format!("/v1/conversations/{id}/messages")))
                .bearer_auth(token),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{h}");
        h["items"].as_array().unwrap().clone()
    }

    /// A customer texts `to` through the simulator's inbound webhook.
    async fn customer_texts(&self, from: &str, to: &str, text: &str) {
        let (status, v) = call(
            self.c
                .post(self.s.url("/v1/simulator/inbound"))
                .bearer_auth(&self.root)
                .json(&json!({ "from": from, "to": to, "text": text })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        assert!(v["position"].is_u64(), "{v}");
    }

    /// What the simulated carrier was handed so far: (from, to, body), oldest first.
    async fn outbound(&self) -> Vec<(String, String, String)> {
        let (status, v) = call(
            self.c
                .get(self.s.url("/v1/simulator/outbound"))
                .bearer_auth(&self.root),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v["texts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["from"].as_str().unwrap().to_owned(),
                    t["to"].as_str().unwrap().to_owned(),
                    t["body"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Waits until the carrier has been handed `n` texts; returns them.
    async fn outbound_reaches(&self, n: usize) -> Vec<(String, String, String)> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let out = self.outbound().await;
            if out.len() >= n {
                return out;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the carrier got {out:?}, not {n} texts"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `GET path` as `token`, which must answer 200.
    async fn get(&self, token: &str, path: &str) -> Value {
        let (status, v) = call(self.c.get(self.s.url(path)).bearer_auth(token)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {v}");
        v
    }

    /// The rows of an inbox view as `token` sees it once the read model reached `after`.
    async fn inbox_view(&self, token: &str, inbox: &str, view: &str, after: u64) -> Vec<Value> {
        let v = self
            .get(
                token,
                &format!("/v1/inboxes/{inbox}/conversations?view={view}&after={after}"),
            )
            .await;
        v["items"].as_array().unwrap().clone()
    }

    /// Sends `r`, which must be refused with `status` and `code`, writing nothing.
    async fn refused(&self, r: reqwest::RequestBuilder, status: StatusCode, code: &str) {
        let before = self.s.ws.store.next_position();
        let (got, body) = call(r).await;
        assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{body}");
        assert_eq!(
            self.s.ws.store.next_position(),
            before,
            "a refusal wrote: {body}"
        );
    }
}

/// The first frame matching `want` within [`WAIT`], skipping others; panics with `what`.
async fn until(ws: &mut Ws, what: &str, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match frame(ws, left).await {
            Some(f) if want(&f) => return f,
            Some(_) => {}
            None => panic!("no frame for: {what}"),
        }
    }
}

/// Every frame arriving within [`QUIET`] of the one before.
async fn drain(ws: &mut Ws) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(f) = frame(ws, QUIET).await {
        out.push(f);
    }
    out
}

/// The timeline item of `kind` whose text is `text`.
fn item_is(f: &Value, kind: &str, text: &str) -> bool {
    f["item"]["type"] == kind && f["item"]["text"] == text
}

fn typing_frame(conversation: &str) -> Message {
    Message::Text(
        json!({ "type": "typing", "conversation_id": conversation })
            .to_string()
            .into(),
    )
}

fn now_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(since.as_millis()).unwrap()
}

/// The (type, text) of a history's messages and inbound texts, in order.
fn texts_of(items: &[Value]) -> Vec<(String, String)> {
    items
        .iter()
        .filter(|i| i["type"] == "message" || i["type"] == "inbound")
        .map(|i| {
            (
                i["type"].as_str().unwrap().to_owned(),
                i["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// A user holding two numbers picks the From of each text: the carrier gets the one
/// chosen, and the two are separate conversations with the customer. A number the user
/// does not hold is refused with a stable code, writing nothing; losing a number loses
/// the conversations texting from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn composing_from_a_chosen_number_texts_from_that_number() {
    let w = world("root@from.example").await;
    let (bob, bob_t) = w.user("bob", "101").await;
    // Line A is Bob's own; line B is Root's, shared with Bob; line C is Root's only.
    w.number(LINE_A, &bob).await;
    w.number(LINE_B, &w.root_id).await;
    let (status, v) = call(
        w.c.post(w.s.url(&format!("/v1/numbers/{LINE_B}/assignees")))
            .bearer_auth(&w.root)
            .json(&json!({ "user": bob })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    w.number(LINE_C, &w.root_id).await;
    // Bob's From picker: A and B, not C.
    let numbers = w.get(&bob_t, "/v1/numbers").await;
    let mine: BTreeSet<&str> = numbers["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["mine"] == true && n["sms_registered"] == true)
        .map(|n| n["number"].as_str().unwrap())
        .collect();
    assert_eq!(mine, BTreeSet::from([LINE_A, LINE_B]), "{numbers}");

    // Refusals first, while nothing else writes: each writes nothing.
    let start = |token: &str, our: &str| {
        w.c.post(w.s.url("/v1/conversations/external"))
            .bearer_auth(token.to_owned())
            .json(&json!({ "our": our, "their": CUSTOMER }))
    };
    w.refused(
        start(&bob_t, LINE_C),
        StatusCode::CONFLICT,
        "from_number_not_assigned_to_you",
    )
    .await;
    w.refused(
        start(&bob_t, "+15550609999"),
        StatusCode::NOT_FOUND,
        "unknown_number",
    )
    .await;
    w.refused(
        start(&bob_t, "my other line"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_phone_number",
    )
    .await;
    // Root's conversation on line C exists; Bob can neither see it nor text through it.
    let (status, v) = w.start_external(&w.root, LINE_C, CUSTOMER).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let on_c = w.external(LINE_C, CUSTOMER).to_string();
    w.refused(
        w.c.post(w.s.url(&format!("/v1/conversations/{on_c}/messages")))
            .bearer_auth(&bob_t)
            .json(&json!({ "text": "from C?" })),
        StatusCode::NOT_FOUND,
        "conversation_not_found",
    )
    .await;
    assert_eq!(w.outbound().await, vec![], "nothing reached the carrier");

    // From B (the second number), then from A.
    let (status, v) = w.start_external(&bob_t, LINE_B, CUSTOMER).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let on_b = v["conversation_id"].as_str().unwrap().to_owned();
    assert_eq!(on_b, w.external(LINE_B, CUSTOMER).to_string());
    w.posted(&bob_t, &on_b, "from B").await;
    let out = w.outbound_reaches(1).await;
    assert_eq!(
        out,
        vec![(LINE_B.into(), CUSTOMER.into(), "from B".into())],
        "the carrier texts from the chosen number"
    );
    let (status, v) = w.start_external(&bob_t, LINE_A, CUSTOMER).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let on_a = v["conversation_id"].as_str().unwrap().to_owned();
    assert_ne!(
        on_a, on_b,
        "one conversation per (our number, their number)"
    );
    let at = w.posted(&bob_t, &on_a, "from A").await;
    let out = w.outbound_reaches(2).await;
    assert_eq!(
        out,
        vec![
            (LINE_B.into(), CUSTOMER.into(), "from B".into()),
            (LINE_A.into(), CUSTOMER.into(), "from A".into()),
        ]
    );
    assert_eq!(
        texts_of(&w.history(&bob_t, &on_a).await),
        pairs(&[("message", "from A")])
    );
    assert_eq!(
        texts_of(&w.history(&bob_t, &on_b).await),
        pairs(&[("message", "from B")])
    );
    // Bob's External list: both, each with its number.
    let list = w
        .get(
            &bob_t,
            &format!("/v1/interactions?filter=external&after={at}"),
        )
        .await;
    let rows: BTreeSet<(&str, &str, &str)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["conversation_id"].as_str().unwrap(),
                r["our_number"].as_str().unwrap(),
                r["their_number"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        BTreeSet::from([
            (on_a.as_str(), LINE_A, CUSTOMER),
            (on_b.as_str(), LINE_B, CUSTOMER)
        ]),
        "{list}"
    );

    // Root takes line B back from Bob: the conversation from B is no longer his.
    let (status, v) = call(
        w.c.delete(w.s.url(&format!("/v1/numbers/{LINE_B}/assignees/{bob}")))
            .bearer_auth(&w.root),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = w.post(&bob_t, &on_b, "still from B?").await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("conversation_not_found")),
        "{v}"
    );
    let (status, v) = w.start_external(&bob_t, LINE_B, CUSTOMER).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("from_number_not_assigned_to_you")
        ),
        "{v}"
    );
    w.s.settled().await;
    assert_eq!(w.outbound().await.len(), 2, "nothing more was texted");
}

/// The customer answers through the carrier's webhook: the text continues the same
/// External conversation (one per pair of numbers), shows in its history and list row,
/// and is pushed live to the holder of the number only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_customers_reply_through_the_webhook_continues_the_conversation_live() {
    let w = world("root@reply.example").await;
    let (bob, bob_t) = w.user("bob", "101").await;
    let (_, carol_t) = w.user("carol", "102").await;
    w.number(LINE_A, &bob).await;
    let (status, v) = w.start_external(&bob_t, LINE_A, CUSTOMER).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["conversation_id"].as_str().unwrap().to_owned();
    let at = w.posted(&bob_t, &id, "Your order shipped").await;
    w.outbound_reaches(1).await;
    // The list has Bob's post (so a stream meeting the conversation starts from it).
    w.get(&bob_t, &format!("/v1/interactions?after={at}")).await;

    let mut bob_ws = connect(&w.s, &bob_t, None).await;
    let mut carol_ws = connect(&w.s, &carol_t, None).await;
    w.customer_texts(CUSTOMER, LINE_A, "Thanks! When does it arrive?")
        .await;
    let f = until(&mut bob_ws, "the customer's reply", |f| {
        f["item"]["type"] == "inbound"
    })
    .await;
    assert_eq!(f["conversation_id"], id.as_str(), "{f}");
    assert_eq!(f["item"]["from"], CUSTOMER, "{f}");
    assert_eq!(f["item"]["text"], "Thanks! When does it arrive?", "{f}");
    assert_eq!(f["item"]["seq"], 2, "after Bob's message: {f}");
    assert_eq!(f["unread"], 1, "{f}");
    let at = f["position"].as_u64().unwrap();
    assert_eq!(
        texts_of(&w.history(&bob_t, &id).await),
        pairs(&[
            ("message", "Your order shipped"),
            ("inbound", "Thanks! When does it arrive?")
        ])
    );
    let list = w
        .get(
            &bob_t,
            &format!("/v1/interactions?filter=external&after={at}"),
        )
        .await;
    let rows = list["items"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        1,
        "the reply started no other conversation: {list}"
    );
    assert_eq!(rows[0]["conversation_id"], id.as_str());
    assert_eq!(rows[0]["unread"], 1, "{list}");
    assert_eq!(rows[0]["preview"]["author_kind"], "external", "{list}");
    assert_eq!(
        rows[0]["preview"]["text"], "Thanks! When does it arrive?",
        "{list}"
    );
    // Carol holds no number: she sees none of it.
    let seen = drain(&mut carol_ws).await;
    assert!(seen.is_empty(), "{seen:?}");
    let (status, _) = call(
        w.c.get(w.s.url(&format!("/v1/conversations/{id}/messages")))
            .bearer_auth(&carol_t),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Read receipts in a direct conversation: Bob reads, Ada's stream gets the receipt
/// naming Bob and how far he read (at the position the read was written), Bob's own
/// frame and list carry his new unread count; nobody else hears of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_receipts_reach_the_sender_and_move_the_readers_unread_count() {
    let w = world("root@receipts.example").await;
    let (ada, ada_t) = w.user("ada", "101").await;
    let (bob, bob_t) = w.user("bob", "102").await;
    let (_, carol_t) = w.user("carol", "103").await;
    let (status, v) = call(
        w.c.post(w.s.url("/v1/conversations/direct"))
            .bearer_auth(&ada_t)
            .json(&json!({ "with": bob })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["conversation_id"].as_str().unwrap().to_owned();
    let mut ada_ws = connect(&w.s, &ada_t, None).await;
    let mut bob_ws = connect(&w.s, &bob_t, None).await;
    let mut carol_ws = connect(&w.s, &carol_t, None).await;

    w.posted(&ada_t, &id, "one").await;
    let at = w.posted(&ada_t, &id, "two").await;
    for (text, unread) in [("one", 1), ("two", 2)] {
        let f = until(&mut bob_ws, text, |f| item_is(f, "message", text)).await;
        assert_eq!(
            (&f["item"]["author"], &f["unread"]),
            (&json!(ada), &json!(unread)),
            "{f}"
        );
        let f = until(&mut ada_ws, text, |f| item_is(f, "message", text)).await;
        assert_eq!(f["unread"], 0, "her own message: {f}");
    }
    let unread_of = |token: &str, after: u64| {
        let (w, id, token) = (&w, id.clone(), token.to_owned());
        async move {
            let list = w
                .get(
                    &token,
                    &format!("/v1/interactions?filter=direct&after={after}"),
                )
                .await;
            let row = list["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["conversation_id"] == id.as_str())
                .cloned()
                .unwrap_or_else(|| panic!("no row: {list}"));
            row["unread"].as_u64().unwrap()
        }
    };
    assert_eq!(unread_of(&bob_t, at).await, 2);
    assert_eq!(unread_of(&ada_t, at).await, 0);

    // Bob reads the first message.
    let read = |up_to: u64| {
        w.c.post(w.s.url(&format!("/v1/conversations/{id}/read")))
            .bearer_auth(&bob_t)
            .json(&json!({ "up_to": up_to }))
    };
    let (status, v) = call(read(1)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let read_at = v["position"].as_u64().expect("written");
    let receipt = until(&mut ada_ws, "Bob's receipt", |f| {
        f["item"]["type"] == "read"
    })
    .await;
    assert_eq!(receipt["position"], read_at, "{receipt}");
    assert_eq!(receipt["conversation_id"], id.as_str(), "{receipt}");
    assert_eq!(receipt["item"]["user"], bob.as_str(), "{receipt}");
    assert_eq!(receipt["item"]["up_to"], 1, "{receipt}");
    let own = until(&mut bob_ws, "Bob's read", |f| f["item"]["type"] == "read").await;
    assert_eq!(own["position"], read_at, "{own}");
    assert_eq!(own["unread"], 1, "{own}");
    assert_eq!(unread_of(&bob_t, read_at).await, 1);

    // Then everything.
    let (status, v) = call(read(2)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let read_at = v["position"].as_u64().expect("written");
    let receipt = until(&mut ada_ws, "Bob's receipt", |f| {
        f["item"]["type"] == "read"
    })
    .await;
    assert_eq!(
        (
            &receipt["position"],
            &receipt["item"]["user"],
            &receipt["item"]["up_to"]
        ),
        (&json!(read_at), &json!(bob), &json!(2)),
        "{receipt}"
    );
    let own = until(&mut bob_ws, "Bob's read", |f| f["item"]["type"] == "read").await;
    assert_eq!(own["unread"], 0, "{own}");
    assert_eq!(unread_of(&bob_t, read_at).await, 0);
    assert_eq!(unread_of(&ada_t, read_at).await, 0);
    // The receipts are in the history Ada sees.
    let reads: Vec<(Value, Value)> = w
        .history(&ada_t, &id)
        .await
        .into_iter()
        .filter(|i| i["type"] == "read")
        .map(|i| (i["user"].clone(), i["up_to"].clone()))
        .collect();
    assert_eq!(reads, vec![(json!(bob), json!(1)), (json!(bob), json!(2))]);

    // Reading again as far writes nothing; beyond the last message is refused.
    let (status, v) = call(read(2)).await;
    assert_eq!(
        (status, &v["position"]),
        (StatusCode::OK, &Value::Null),
        "{v}"
    );
    w.refused(read(3), StatusCode::CONFLICT, "read_beyond_last_message")
        .await;
    let seen = drain(&mut ada_ws).await;
    assert!(seen.is_empty(), "nothing more for Ada: {seen:?}");
    let seen = drain(&mut carol_ws).await;
    assert!(seen.is_empty(), "Carol is not in it: {seen:?}");
}

/// The typing frames `ws` gets within [`QUIET`].
async fn typing_frames(ws: &mut Ws) -> Vec<Value> {
    drain(ws)
        .await
        .into_iter()
        .filter(|f| f["type"] == "typing")
        .collect()
}

/// Checks a typing frame: who, where, and an expiry a few seconds after it was sent.
fn check_typing(f: &Value, conversation: &str, user: &str, sent_ms: u64) {
    assert_eq!(f["type"], "typing", "{f}");
    assert_eq!(f["conversation_id"], conversation, "{f}");
    assert_eq!(f["user"], user, "{f}");
    assert!(f.get("position").is_none(), "typing has no position: {f}");
    let expires = f["expires_at_ms"].as_u64().expect("expires_at_ms");
    assert!(
        (sent_ms + 1_000..=now_ms() + 15_000).contains(&expires),
        "expires at {expires}, sent at {sent_ms}: {f}"
    );
}

/// Typing goes to the conversation's other internal viewers only: not back to the
/// typist, not to outsiders, never to external numbers (nothing reaches the carrier), and
/// nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn typing_reaches_the_other_internal_members_only() {
    let w = world("root@typing.example").await;
    let (ada, ada_t) = w.user("ada", "101").await;
    let (bob, bob_t) = w.user("bob", "102").await;
    let (carol, carol_t) = w.user("carol", "103").await;
    let (_, dan_t) = w.user("dan", "104").await;
    w.number(LINE_A, &bob).await;
    let (status, v) = call(
        w.c.post(w.s.url("/v1/conversations/direct"))
            .bearer_auth(&bob_t)
            .json(&json!({ "with": ada })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let direct = v["conversation_id"].as_str().unwrap().to_owned();
    let (status, v) = call(
        w.c.post(w.s.url("/v1/conversations/group"))
            .bearer_auth(&bob_t)
            .json(&json!({ "from": LINE_A, "users": [ada, carol], "externals": [CUSTOMER] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let group = v["conversation_id"].as_str().unwrap().to_owned();
    let mut ada_ws = connect(&w.s, &ada_t, None).await;
    let mut bob_ws = connect(&w.s, &bob_t, None).await;
    let mut carol_ws = connect(&w.s, &carol_t, None).await;
    let mut dan_ws = connect(&w.s, &dan_t, None).await;
    let before = w.s.ws.store.next_position();

    // Direct: Ada sees Bob typing; Bob, Carol and Dan get nothing.
    let sent = now_ms();
    bob_ws.send(typing_frame(&direct)).await.unwrap();
    let f = until(&mut ada_ws, "Bob typing", |f| f["type"] == "typing").await;
    check_typing(&f, &direct, &bob, sent);
    for (who, ws) in [
        ("Bob", &mut bob_ws),
        ("Carol", &mut carol_ws),
        ("Dan", &mut dan_ws),
    ] {
        let got = typing_frames(ws).await;
        assert!(got.is_empty(), "{who} got {got:?}");
    }

    // Mixed group: Ada and Carol see Bob typing; nothing for Bob or Dan, nothing texted.
    let sent = now_ms();
    bob_ws.send(typing_frame(&group)).await.unwrap();
    for ws in [&mut ada_ws, &mut carol_ws] {
        let f = until(ws, "Bob typing in the group", |f| f["type"] == "typing").await;
        check_typing(&f, &group, &bob, sent);
    }
    // And Carol typing reaches Ada and Bob.
    let sent = now_ms();
    carol_ws.send(typing_frame(&group)).await.unwrap();
    for ws in [&mut ada_ws, &mut bob_ws] {
        let f = until(ws, "Carol typing in the group", |f| f["type"] == "typing").await;
        check_typing(&f, &group, &carol, sent);
    }
    // Dan, not a member, cannot type into it.
    dan_ws.send(typing_frame(&group)).await.unwrap();
    for (who, ws) in [
        ("Ada", &mut ada_ws),
        ("Bob", &mut bob_ws),
        ("Carol", &mut carol_ws),
        ("Dan", &mut dan_ws),
    ] {
        let got = typing_frames(ws).await;
        assert!(got.is_empty(), "{who} got {got:?}");
    }
    assert_eq!(
        w.outbound().await,
        vec![],
        "typing never reaches the carrier"
    );
    assert_eq!(
        w.s.ws.store.next_position(),
        before,
        "typing is never written to the log"
    );
}

/// A typing indicator ends when the typist's message is posted, or when they say they
/// stopped: the others get a `stopped` frame expiring now, once, and only if one showed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn typing_ends_when_the_message_is_sent_or_the_typist_stops() {
    let w = world("root@typing-ends.example").await;
    let (ada, ada_t) = w.user("ada", "101").await;
    let (bob, bob_t) = w.user("bob", "102").await;
    let (status, v) = call(
        w.c.post(w.s.url("/v1/conversations/direct"))
            .bearer_auth(&bob_t)
            .json(&json!({ "with": ada })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let direct = v["conversation_id"].as_str().unwrap().to_owned();
    let mut ada_ws = connect(&w.s, &ada_t, None).await;
    let mut bob_ws = connect(&w.s, &bob_t, None).await;
    let stopped = |f: &Value| f["type"] == "typing" && f["stopped"] == json!(true);

    // Bob types, then sends: Ada's indicator ends with the message.
    bob_ws.send(typing_frame(&direct)).await.unwrap();
    let f = until(&mut ada_ws, "Bob typing", |f| f["type"] == "typing").await;
    assert!(f.get("stopped").is_none(), "{f}");
    w.posted(&bob_t, &direct, "here it is").await;
    // (The stop and the message come in either order: one is handed out by the post, the
    // other when the log's subscription delivers the message.)
    let (mut stop, mut message) = (None, false);
    while stop.is_none() || !message {
        let f = until(
            &mut ada_ws,
            "Bob's message and the end of his typing",
            |f| stopped(f) || item_is(f, "message", "here it is"),
        )
        .await;
        if stopped(&f) {
            assert!(stop.replace(f).is_none(), "one stop only");
        } else {
            message = true;
        }
    }
    let f = stop.unwrap();
    assert_eq!(
        (&f["user"], &f["conversation_id"]),
        (&json!(bob), &json!(direct)),
        "{f}"
    );
    assert!(f["expires_at_ms"].as_u64().unwrap() <= now_ms(), "{f}");

    // Bob types and clears his input: the same.
    bob_ws.send(typing_frame(&direct)).await.unwrap();
    until(&mut ada_ws, "Bob typing again", |f| f["type"] == "typing").await;
    let stop = Message::Text(
        json!({ "type": "typing_stopped", "conversation_id": direct })
            .to_string()
            .into(),
    );
    bob_ws.send(stop.clone()).await.unwrap();
    until(&mut ada_ws, "Bob stopped typing again", stopped).await;

    // Nothing shows any more: stopping again, or posting without typing, sends no frame.
    bob_ws.send(stop).await.unwrap();
    w.posted(&bob_t, &direct, "one more thing").await;
    let seen = drain(&mut ada_ws).await;
    assert!(
        seen.iter().all(|f| f["type"] != "typing"),
        "no typing frame without typing: {seen:?}"
    );
    assert!(
        seen.iter().any(|f| item_is(f, "message", "one more thing")),
        "{seen:?}"
    );
    // Bob never gets his own.
    assert!(typing_frames(&mut bob_ws).await.is_empty());
}

/// A mixed group over HTTP: the creator's post goes to each external member by SMS from
/// the group's number (one text each), the internal members see it live, and an external
/// member's answer through the webhook reaches the number's holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mixed_group_texts_every_external_member_from_its_number() {
    let w = world("root@group.example").await;
    let (bob, bob_t) = w.user("bob", "101").await;
    let (carol, carol_t) = w.user("carol", "102").await;
    w.number(LINE_A, &bob).await;
    let mut bob_ws = connect(&w.s, &bob_t, None).await;
    let mut carol_ws = connect(&w.s, &carol_t, None).await;
    let (status, v) = call(
        w.c.post(w.s.url("/v1/conversations/group"))
            .bearer_auth(&bob_t)
            .json(&json!({ "from": LINE_A, "users": [carol], "externals": [CUSTOMER, VENDOR] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let group = v["conversation_id"].as_str().unwrap().to_owned();

    let at = w.posted(&bob_t, &group, "Delivery moved to 3pm").await;
    let f = until(&mut carol_ws, "the group message", |f| {
        item_is(f, "message", "Delivery moved to 3pm")
    })
    .await;
    assert_eq!(
        (&f["conversation_id"], &f["item"]["author"], &f["unread"]),
        (&json!(group), &json!(bob), &json!(1)),
        "{f}"
    );
    let out: BTreeSet<_> = w.outbound_reaches(2).await.into_iter().collect();
    assert_eq!(
        out,
        BTreeSet::from([
            (
                LINE_A.into(),
                CUSTOMER.into(),
                "Delivery moved to 3pm".into()
            ),
            (LINE_A.into(), VENDOR.into(), "Delivery moved to 3pm".into()),
        ])
    );
    // Carol's list shows the group with its members named and the preview.
    let list = w
        .get(&carol_t, &format!("/v1/interactions?after={at}"))
        .await;
    let row = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["conversation_id"] == group.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("no group row: {list}"));
    assert_eq!(
        (&row["kind"], &row["our_number"], &row["preview"]["text"]),
        (
            &json!("group"),
            &json!(LINE_A),
            &json!("Delivery moved to 3pm")
        ),
        "{row}"
    );
    let title = row["title"].as_str().unwrap();
    assert!(
        title.contains(CUSTOMER) && title.contains(VENDOR),
        "{title}"
    );

    // The vendor answers our number: Bob, who holds it, gets it live.
    w.customer_texts(VENDOR, LINE_A, "3pm works").await;
    let f = until(&mut bob_ws, "the vendor's answer", |f| {
        item_is(f, "inbound", "3pm works")
    })
    .await;
    assert_eq!(f["item"]["from"], VENDOR, "{f}");
    // The group's message was texted once to each.
    w.s.settled().await;
    let out = w.outbound().await;
    let copies = out
        .iter()
        .filter(|(_, _, body)| body == "Delivery moved to 3pm")
        .count();
    assert_eq!(copies, 2, "{out:?}");
}

/// PRODUCT.md: in a mixed group "internal members see every message". An external
/// member's answer to the group's number continues the conversation our number last
/// texted them from: the group, so every internal member sees it, not only the number's
/// holder; once the holder texts them one-to-one, their next answer continues that.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_external_members_reply_reaches_every_internal_member_of_the_group() {
    let w = world("root@group-reply.example").await;
    let (bob, bob_t) = w.user("bob", "101").await;
    let (carol, carol_t) = w.user("carol", "102").await;
    w.number(LINE_A, &bob).await;
    let (status, v) = call(
        w.c.post(w.s.url("/v1/conversations/group"))
            .bearer_auth(&bob_t)
            .json(&json!({ "from": LINE_A, "users": [carol], "externals": [CUSTOMER, VENDOR] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let group = v["conversation_id"].as_str().unwrap().to_owned();
    w.posted(&bob_t, &group, "Delivery moved to 3pm").await;
    w.outbound_reaches(2).await;
    let mut carol_ws = connect(&w.s, &carol_t, None).await;
    w.customer_texts(VENDOR, LINE_A, "3pm works").await;
    let f = until(&mut carol_ws, "the vendor's answer", |f| {
        f["item"]["text"] == "3pm works"
    })
    .await;
    assert_eq!(f["conversation_id"], group.as_str(), "{f}");
    assert_eq!(f["item"]["from"], VENDOR, "{f}");
    assert!(
        w.history(&carol_t, &group)
            .await
            .iter()
            .any(|i| i["text"] == "3pm works"),
        "the answer is in the group's history"
    );
    let external = w.external(LINE_A, VENDOR).to_string();
    let (status, _) = call(
        w.c.get(w.s.url(&format!("/v1/conversations/{external}/messages")))
            .bearer_auth(&bob_t),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "no External conversation yet"
    );

    // Bob texts the vendor one-to-one: the vendor's next answer continues that, and
    // Carol, who is not in it, does not get it.
    let (status, v) = call(
        w.c.post(w.s.url("/v1/conversations/external"))
            .bearer_auth(&bob_t)
            .json(&json!({ "our": LINE_A, "their": VENDOR })),
    )
    .await;
    assert!(status.is_success(), "{v}");
    assert_eq!(v["conversation_id"], external.as_str(), "{v}");
    w.posted(&bob_t, &external, "Can you bring the invoice?")
        .await;
    w.outbound_reaches(3).await;
    let mut bob_ws = connect(&w.s, &bob_t, None).await;
    w.customer_texts(VENDOR, LINE_A, "Sure, I will").await;
    let f = until(&mut bob_ws, "the one-to-one answer", |f| {
        f["item"]["text"] == "Sure, I will"
    })
    .await;
    assert_eq!(f["conversation_id"], external.as_str(), "{f}");
    assert!(
        !w.history(&bob_t, &group)
            .await
            .iter()
            .any(|i| i["text"] == "Sure, I will"),
        "the one-to-one answer stays out of the group"
    );
    let stray = frame(&mut carol_ws, QUIET).await;
    assert!(
        stray.is_none_or(|f| f["item"]["text"] != "Sure, I will"),
        "Carol got the one-to-one answer"
    );
}

/// A shared inbox worked by two agents while the customer texts in through the webhook:
/// Unassigned → Ada assigns to herself → transfers to Bob → Bob returns it → Ada takes it
/// and marks it Done → the customer's next text reopens it. After each step, each agent's
/// views (Unassigned, Mine, Assigned, Done, Open) show it where it is, with its status,
/// assignee and badges; only the holder replies, from the inbox's number.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_agents_work_an_inbox_conversation_the_customer_texts_into() {
    let w = world("root@inbox-flow.example").await;
    let (ada, ada_t) = w.user("ada", "101").await;
    let (bob, bob_t) = w.user("bob", "102").await;
    let (status, v) = call(
        w.c.post(w.s.url("/v1/inboxes"))
            .bearer_auth(&w.root)
            .json(&json!({ "name": "Front desk", "number": INBOX_NUMBER })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let inbox = v["inbox_id"].as_str().unwrap().to_owned();
    let (status, v) = call(
        w.c.post(w.s.url(&format!("/v1/numbers/{INBOX_NUMBER}/sms-registration")))
            .bearer_auth(&w.root)
            .json(&json!({ "registered": true })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    for user in [&ada, &bob] {
        let (status, v) = call(
            w.c.post(w.s.url(&format!("/v1/inboxes/{inbox}/members")))
                .bearer_auth(&w.root)
                .json(&json!({ "user": user })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let id = w.external(INBOX_NUMBER, CUSTOMER).to_string();
    let mut ada_ws = connect(&w.s, &ada_t, None).await;
    let mut bob_ws = connect(&w.s, &bob_t, None).await;

    // After `step`, the conversation shows in exactly the (agent, view) pairs of
    // `expected`, with that agent's lit badges (space-separated), and the status and
    // assignee of `status_of(step)`; every other view of either agent is empty.
    let views = ["unassigned", "mine", "assigned", "done", "open"];
    let check =
        |step: &'static str,
         after: u64,
         expected: Vec<(&'static str, &'static str, Option<&'static str>)>| {
            let (w, inbox, id) = (&w, inbox.clone(), id.clone());
            let agents = [("ada", ada_t.clone()), ("bob", bob_t.clone())];
            let names = [("ada", ada.clone()), ("bob", bob.clone())];
            async move {
                for (agent, token) in &agents {
                    for view in views {
                        let rows = w.inbox_view(token, &inbox, view, after).await;
                        let ids: Vec<&str> = rows
                            .iter()
                            .map(|r| r["conversation_id"].as_str().unwrap())
                            .collect();
                        let want = expected.iter().find(|(a, v, _)| a == agent && *v == view);
                        match want {
                            None => assert_eq!(ids, Vec::<&str>::new(), "{step}: {agent} {view}"),
                            Some((_, _, badge)) => {
                                assert_eq!(ids, vec![id.as_str()], "{step}: {agent} {view}");
                                let row = &rows[0];
                                let (status, assignee) = status_of(step);
                                let assignee = assignee.map(|who| {
                                    names.iter().find(|(n, _)| *n == who).unwrap().1.clone()
                                });
                                assert_eq!(
                                    (&row["status"], &row["assignee"]),
                                    (&json!(status), &json!(assignee)),
                                    "{step}: {agent} {view}: {row}"
                                );
                                let lit: Vec<&str> =
                                    ["blue_badge", "green_flag", "green_badge", "grey_flag"]
                                        .into_iter()
                                        .filter(|b| row["badges"][*b] == true)
                                        .collect();
                                assert_eq!(
                                    lit,
                                    badge
                                        .map(|b| b.split(' ').collect::<Vec<_>>())
                                        .unwrap_or_default(),
                                    "{step}: {agent} {view} badges: {row}"
                                );
                            }
                        }
                    }
                }
            }
        };
    /// The status and assignee the conversation has after each step.
    fn status_of(step: &str) -> (&'static str, Option<&'static str>) {
        match step {
            "texted" | "returned" | "reopened" => ("unassigned", None),
            "assigned" | "answered" => ("assigned", Some("ada")),
            "transferred" => ("assigned", Some("bob")),
            "done" => ("done", None),
            other => panic!("{other}"),
        }
    }
    let act = |token: &str, action: &str, body: Option<Value>| {
        let r =
            w.c.post(w.s.url(&format!("/v1/conversations/{id}/{action}")))
                .bearer_auth(token.to_owned());
        match body {
            Some(b) => r.json(&b),
            None => r,
        }
    };
    let acted = |token: &str, action: &str, body: Option<Value>| {
        let r = act(token, action, body);
        async move {
            let (status, v) = call(r).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            v["position"].as_u64().expect("written")
        }
    };
    let not_yours = |token: &str| {
        w.c.post(w.s.url(&format!("/v1/conversations/{id}/messages")))
            .bearer_auth(token.to_owned())
            .json(&json!({ "text": "may I?" }))
    };

    // The customer texts the inbox: Unassigned, new activity for both.
    w.customer_texts(CUSTOMER, INBOX_NUMBER, "Is my order ready?")
        .await;
    let mut at = 0;
    for ws in [&mut ada_ws, &mut bob_ws] {
        let f = until(ws, "the customer's text", |f| {
            item_is(f, "inbound", "Is my order ready?")
        })
        .await;
        assert_eq!(f["conversation_id"], id.as_str(), "{f}");
        at = f["position"].as_u64().unwrap();
    }
    check(
        "texted",
        at,
        vec![
            ("ada", "unassigned", Some("blue_badge")),
            ("ada", "open", Some("blue_badge")),
            ("bob", "unassigned", Some("blue_badge")),
            ("bob", "open", Some("blue_badge")),
        ],
    )
    .await;
    // Nobody may reply before taking it.
    w.refused(
        not_yours(&ada_t),
        StatusCode::FORBIDDEN,
        "not_assigned_to_you",
    )
    .await;

    // Ada: Assign to Me. Bob sees the change and cannot take it.
    let at = acted(&ada_t, "assign-to-me", None).await;
    let f = until(&mut bob_ws, "assigned", |f| f["type"] == "inbox").await;
    assert_eq!(
        (&f["change"], &f["assignee"], &f["conversation_id"]),
        (&json!("conversation_assigned"), &json!(ada), &json!(id)),
        "{f}"
    );
    check(
        "assigned",
        at,
        vec![
            ("ada", "mine", Some("green_flag green_badge")),
            ("ada", "assigned", Some("green_flag green_badge")),
            ("ada", "open", Some("green_flag green_badge")),
            ("bob", "assigned", Some("grey_flag")),
            ("bob", "open", Some("grey_flag")),
        ],
    )
    .await;
    w.refused(
        act(&bob_t, "assign-to-me", None),
        StatusCode::CONFLICT,
        "already_assigned",
    )
    .await;
    w.refused(
        not_yours(&bob_t),
        StatusCode::FORBIDDEN,
        "not_assigned_to_you",
    )
    .await;
    // Ada answers from the inbox's number; the customer writes back, and it stays hers.
    w.posted(&ada_t, &id, "Checking now").await;
    w.outbound_reaches(1).await;
    w.customer_texts(CUSTOMER, INBOX_NUMBER, "Thanks").await;
    let f = until(&mut ada_ws, "the customer's answer", |f| {
        item_is(f, "inbound", "Thanks")
    })
    .await;
    assert_eq!(f["unread"], 1, "{f}");
    let at = f["position"].as_u64().unwrap();
    check(
        "answered",
        at,
        vec![
            ("ada", "mine", Some("green_flag green_badge")),
            ("ada", "assigned", Some("green_flag green_badge")),
            ("ada", "open", Some("green_flag green_badge")),
            ("bob", "assigned", Some("grey_flag")),
            ("bob", "open", Some("grey_flag")),
        ],
    )
    .await;

    // Ada transfers it to Bob: now only Bob replies.
    let at = acted(&ada_t, "transfer", Some(json!({ "to": bob }))).await;
    check(
        "transferred",
        at,
        vec![
            ("ada", "assigned", Some("grey_flag")),
            ("ada", "open", Some("grey_flag")),
            ("bob", "mine", Some("green_flag green_badge")),
            ("bob", "assigned", Some("green_flag green_badge")),
            ("bob", "open", Some("green_flag green_badge")),
        ],
    )
    .await;
    let (status, v) = w.post(&ada_t, &id, "one more from Ada").await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_assigned_to_you")),
        "{v}"
    );
    w.posted(&bob_t, &id, "Ready at 5").await;
    let out = w.outbound_reaches(2).await;
    assert_eq!(
        out,
        vec![
            (INBOX_NUMBER.into(), CUSTOMER.into(), "Checking now".into()),
            (INBOX_NUMBER.into(), CUSTOMER.into(), "Ready at 5".into()),
        ],
        "each reply from the inbox's number"
    );

    // Bob returns it to the inbox: Unassigned, and he can no longer reply.
    let at = acted(&bob_t, "return", None).await;
    check(
        "returned",
        at,
        vec![
            ("ada", "unassigned", Some("blue_badge")),
            ("ada", "open", Some("blue_badge")),
            ("bob", "unassigned", None),
            ("bob", "open", None),
        ],
    )
    .await;
    let (status, v) = w.post(&bob_t, &id, "one more from Bob").await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_assigned_to_you")),
        "{v}"
    );

    // Ada takes it again and marks it Done.
    acted(&ada_t, "assign-to-me", None).await;
    let at = acted(&ada_t, "done", None).await;
    check(
        "done",
        at,
        vec![("ada", "done", None), ("bob", "done", None)],
    )
    .await;

    // The customer texts again: reopened as Unassigned, in the same conversation.
    w.customer_texts(CUSTOMER, INBOX_NUMBER, "One more question")
        .await;
    let f = until(&mut bob_ws, "reopened", |f| {
        f["type"] == "inbox" && f["change"] == "reopened_by_inbound_text"
    })
    .await;
    assert_eq!(
        (&f["conversation_id"], &f["assignee"]),
        (&json!(id), &Value::Null),
        "{f}"
    );
    let at = f["position"].as_u64().unwrap();
    check(
        "reopened",
        at,
        vec![
            ("ada", "unassigned", Some("blue_badge")),
            ("ada", "open", Some("blue_badge")),
            ("bob", "unassigned", Some("blue_badge")),
            ("bob", "open", Some("blue_badge")),
        ],
    )
    .await;
    assert_eq!(
        texts_of(&w.history(&bob_t, &id).await),
        pairs(&[
            ("inbound", "Is my order ready?"),
            ("message", "Checking now"),
            ("inbound", "Thanks"),
            ("message", "Ready at 5"),
            ("inbound", "One more question"),
        ])
    );
    assert_eq!(w.outbound().await.len(), 2, "nothing else was texted");
}
