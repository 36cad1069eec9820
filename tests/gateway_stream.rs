//! The WebSocket stream over real sockets: a participant receives messages live with
//! positions; a connection killed mid-burst resumes with `since` and sees every message
//! exactly once; outsiders receive nothing and bad tokens are refused; channel members get
//! exactly what was posted while they were members; logging out closes the session's open
//! streams; inbox and queue changes reach the team
//! (and, for queues, the admins) only and resume like messages; a client that stops reading is cut as a slow consumer
//! and resumes exactly. (Routing as of each event's position is tested directly in
//! `gateway_stream_hub`.)

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use testkit::server::{add_user, call, TestServer, PASSWORD};
use testkit::stream::{connect, frame, Ws};
use tokio_tungstenite::tungstenite::Message;

struct Setup {
    admin: String,
    bob: String,
    outsider: String,
    messages: String,
    conversation: String,
}

async fn setup(c: &Client, s: &TestServer) -> Setup {
    let (_, acme) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Acme", "name": "Ada", "extension": "100", "email": "ada@ws.example", "password": PASSWORD,
    })))
    .await;
    let admin = acme["token"].as_str().unwrap().to_owned();
    let (_, bob) = call(c.post(s.url("/v1/users")).bearer_auth(&admin).json(&json!({
        "name": "Bob", "extension": "101", "role": "member", "email": "bob@ws.example", "password": PASSWORD,
    })))
    .await;
    let (_, login) = call(
        c.post(s.url("/v1/sessions"))
            .json(&json!({ "email": "bob@ws.example", "password": PASSWORD })),
    )
    .await;
    let (_, other) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Other", "name": "Oz", "extension": "100", "email": "oz@other.example", "password": PASSWORD,
    })))
    .await;
    let (_, started) = call(
        c.post(s.url("/v1/conversations/direct"))
            .bearer_auth(&admin)
            .json(&json!({ "with": bob["user_id"] })),
    )
    .await;
    Setup {
        admin,
        bob: login["token"].as_str().unwrap().to_owned(),
        outsider: other["token"].as_str().unwrap().to_owned(),
        messages: s.url(&format!(
            "/v1/conversations/{}/messages",
            started["conversation_id"].as_str().unwrap()
        )),
        conversation: started["conversation_id"].as_str().unwrap().to_owned(),
    }
}

/// The code and reason of the close frame `ws` gets within `within` (anything before it
/// skipped); panics on anything else, including no close by then.
async fn closed_with(ws: &mut Ws, within: Duration) -> (u16, String) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Close(close)))) => {
                let close = close.expect("a close code");
                return (u16::from(close.code), close.reason.to_string());
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_connection_resumes_with_no_gap_and_no_duplicate() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let st = setup(&c, &s).await;
    let mut ws = connect(&s, &st.bob, None).await;
    let mut outsider = connect(&s, &st.outsider, None).await;
    // A burst of 30 messages, posted while Bob is connected.
    let poster = {
        let (c, messages, admin) = (c.clone(), st.messages.clone(), st.admin.clone());
        tokio::spawn(async move {
            for i in 0..30 {
                let (status, _) = call(
                    c.post(&messages)
                        .bearer_auth(&admin)
                        .json(&json!({ "text": format!("m{i}") })),
                )
                .await;
                assert_eq!(status, StatusCode::CREATED);
            }
        })
    };
    let mut seen: Vec<(u64, String)> = Vec::new();
    while seen.len() < 7 {
        let f = frame(&mut ws, Duration::from_secs(10))
            .await
            .expect("live frame");
        seen.push((
            f["position"].as_u64().unwrap(),
            f["item"]["text"].as_str().unwrap().to_owned(),
        ));
    }
    // The connection dies mid-burst.
    drop(ws);
    let last = seen.last().unwrap().0;
    let mut ws = connect(&s, &st.bob, Some(last)).await;
    while seen.len() < 30 {
        let f = frame(&mut ws, Duration::from_secs(10))
            .await
            .expect("resumed frame");
        seen.push((
            f["position"].as_u64().unwrap(),
            f["item"]["text"].as_str().unwrap().to_owned(),
        ));
    }
    poster.await.unwrap();
    let texts: Vec<String> = seen.iter().map(|(_, t)| t.clone()).collect();
    let expected: Vec<String> = (0..30).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, expected, "every message once, in order");
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "positions increase"
    );
    assert!(
        frame(&mut ws, Duration::from_millis(300)).await.is_none(),
        "nothing extra"
    );
    assert!(
        frame(&mut outsider, Duration::from_millis(300))
            .await
            .is_none(),
        "outsiders see nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_refuses_bad_tokens() {
    let s = TestServer::start().await;
    let c = testkit::http();
    setup(&c, &s).await;
    let url = format!(
        "{}/v1/stream?token=nope",
        s.base.replace("http://", "ws://")
    );
    assert!(
        tokio_tungstenite::connect_async(url).await.is_err(),
        "no upgrade without a valid token"
    );
    let (status, err) = call(c.get(s.url("/v1/stream"))).await;
    assert!(status.is_client_error());
    assert!(
        err["code"].is_string() || status == StatusCode::BAD_REQUEST,
        "{err}"
    );
}

/// A stream lives no longer than its session: logging out closes every open stream of
/// that session (4001 `session_ended`) and only those, and the token opens no new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_closes_the_sessions_open_streams() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let st = setup(&c, &s).await;
    let mut first = connect(&s, &st.bob, None).await;
    let mut second = connect(&s, &st.bob, None).await;
    let mut admins = connect(&s, &st.admin, None).await;
    let (status, _) = call(
        c.post(&st.messages)
            .bearer_auth(&st.admin)
            .json(&json!({ "text": "before" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    for ws in [&mut first, &mut second] {
        let f = frame(ws, Duration::from_secs(5))
            .await
            .expect("a live frame");
        assert_eq!(f["item"]["text"], "before");
    }

    let r = c
        .delete(s.url("/v1/sessions/current"))
        .bearer_auth(&st.bob)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    for ws in [&mut first, &mut second] {
        assert_eq!(
            closed_with(ws, Duration::from_secs(5)).await,
            (4001, "session_ended".to_owned())
        );
    }
    let url = format!(
        "{}/v1/stream?token={}",
        s.base.replace("http://", "ws://"),
        st.bob
    );
    assert!(
        tokio_tungstenite::connect_async(url).await.is_err(),
        "a revoked token opens no stream"
    );
    // Another session's stream goes on.
    let (status, _) = call(
        c.post(&st.messages)
            .bearer_auth(&st.admin)
            .json(&json!({ "text": "after" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut texts = Vec::new();
    while let Some(f) = frame(&mut admins, Duration::from_secs(5)).await {
        texts.push(f["item"]["text"].as_str().unwrap_or_default().to_owned());
        if texts.last().map(String::as_str) == Some("after") {
            break;
        }
    }
    assert_eq!(texts, ["before", "after"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_reaches_the_other_participant_only_and_is_never_stored() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let st = setup(&c, &s).await;
    let mut ada = connect(&s, &st.admin, None).await;
    let mut bob = connect(&s, &st.bob, None).await;
    // Each connection is registered with the hub before its upgrade is answered.
    let mut outsider = connect(&s, &st.outsider, None).await;
    let before = s.ws.store.next_position();
    let typing = json!({ "type": "typing", "conversation_id": st.conversation }).to_string();
    ada.send(Message::Text(typing.clone().into()))
        .await
        .unwrap();
    let f = frame(&mut bob, Duration::from_secs(5))
        .await
        .expect("typing frame");
    assert_eq!(f["type"], "typing");
    assert_eq!(f["conversation_id"], st.conversation.as_str());
    assert!(f["expires_at_ms"].as_u64().is_some());
    assert!(
        frame(&mut ada, Duration::from_millis(300)).await.is_none(),
        "not echoed to the typist"
    );
    assert!(
        frame(&mut outsider, Duration::from_millis(300))
            .await
            .is_none(),
        "not to other tenants"
    );
    // An outsider cannot type into a conversation they cannot see: once the server has
    // dealt with their typing, Ada's next typing is the next frame Bob gets.
    outsider
        .send(Message::Text(typing.clone().into()))
        .await
        .unwrap();
    testkit::stream::handled(&mut outsider).await;
    ada.send(Message::Text(typing.into())).await.unwrap();
    let next = frame(&mut bob, Duration::from_secs(5))
        .await
        .expect("Ada's typing");
    assert_eq!(next["user"], f["user"], "{next}");
    assert_eq!(
        s.ws.store.next_position(),
        before,
        "typing is never written to the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_and_read_frames_carry_the_callers_unread_count() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let st = setup(&c, &s).await;
    let mut ws = connect(&s, &st.bob, None).await;
    for i in 0..3 {
        let (status, _) = call(
            c.post(&st.messages)
                .bearer_auth(&st.admin)
                .json(&json!({ "text": format!("u{i}") })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    for expected in 1..=3 {
        let f = frame(&mut ws, Duration::from_secs(10))
            .await
            .expect("message frame");
        assert_eq!(f["item"]["type"], "message", "{f}");
        assert_eq!(f["unread"], expected, "{f}");
    }
    let (status, _) = call(
        c.post(s.url(&format!("/v1/conversations/{}/read", st.conversation)))
            .bearer_auth(&st.bob)
            .json(&json!({ "up_to": 2 })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let f = frame(&mut ws, Duration::from_secs(10))
        .await
        .expect("read frame");
    assert_eq!(f["item"]["type"], "read", "{f}");
    assert_eq!(f["unread"], 1, "{f}");
    let (status, _) = call(
        c.post(&st.messages)
            .bearer_auth(&st.bob)
            .json(&json!({ "text": "mine" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let f = frame(&mut ws, Duration::from_secs(10))
        .await
        .expect("own message frame");
    assert_eq!(f["unread"], 0, "writing reads everything before it: {f}");
    // A reconnect seeded from the read model agrees.
    drop(ws);
    let (status, _) = call(
        c.post(&st.messages)
            .bearer_auth(&st.admin)
            .json(&json!({ "text": "later" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut ws = connect(&s, &st.bob, Some(s.ws.store.next_position() - 2)).await;
    let f = frame(&mut ws, Duration::from_secs(10))
        .await
        .expect("resumed frame");
    assert_eq!(f["item"]["text"], "later", "{f}");
    assert_eq!(f["unread"], 1, "{f}");
}

/// The texts of the message frames that arrive within `wait` of each other.
async fn texts(ws: &mut Ws, wait: Duration) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(f) = frame(ws, wait).await {
        if let Some(t) = f["item"]["text"].as_str() {
            out.push(t.to_owned());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_and_leaving_a_channel_starts_and_stops_its_live_frames() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let st = setup(&c, &s).await;
    // Connected before the channel exists: the hub meets it at its first event.
    let mut bob = connect(&s, &st.bob, Some(s.ws.store.next_position() - 1)).await;
    let (status, channel) = call(
        c.post(s.url("/v1/conversations/channel"))
            .bearer_auth(&st.admin)
            .json(&json!({ "name": "general" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    let id = channel["conversation_id"].as_str().unwrap().to_owned();
    let post = |text: &str| {
        c.post(s.url(&format!("/v1/conversations/{id}/messages")))
            .bearer_auth(&st.admin)
            .json(&json!({ "text": text }))
    };
    assert_eq!(call(post("before")).await.0, StatusCode::CREATED);
    let join = c
        .post(s.url(&format!("/v1/conversations/{id}/join")))
        .bearer_auth(&st.bob);
    assert_eq!(call(join).await.0, StatusCode::OK);
    assert_eq!(call(post("while in")).await.0, StatusCode::CREATED);
    let leave = c
        .post(s.url(&format!("/v1/conversations/{id}/leave")))
        .bearer_auth(&st.bob);
    assert_eq!(call(leave).await.0, StatusCode::OK);
    assert_eq!(call(post("after")).await.0, StatusCode::CREATED);
    // Routing follows the events in log order, however late the hub routes them: Bob
    // gets exactly what happened while he was a member — his own joining (a system item)
    // and what was posted — and not his leaving.
    let got = texts(&mut bob, Duration::from_millis(500)).await;
    assert_eq!(got, vec!["Joined".to_owned(), "while in".to_owned()]);
    // A resume from before the channel routes the same way from storage.
    drop(bob);
    let mut bob = connect(&s, &st.bob, Some(0)).await;
    let got = texts(&mut bob, Duration::from_millis(500)).await;
    assert!(got.ends_with(&["while in".to_owned()]), "{got:?}");
    assert!(
        !got.iter().any(|t| t == "before" || t == "after"),
        "{got:?}"
    );
}

const INBOX_NUMBER: &str = "+15550401000";
const QUEUE_NUMBER: &str = "+15550402000";
const CUSTOMER: &str = "+15557770401";

async fn customer_texts(s: &TestServer, org: domain::OrgId, to: &str) -> String {
    let record = testkit::server::customer_text(s, org, to, CUSTOMER, "hello").await;
    match workers::inbound_router::route(&s.ws, &record)
        .await
        .unwrap()
    {
        workers::inbound_router::Routed::Recorded(id)
        | workers::inbound_router::Routed::Queued(id, _) => id.to_string(),
        other => panic!("{other:?}"),
    }
}

/// The next frame of `kind` ("inbox" or "queue"), skipping others.
async fn change(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let f = frame(ws, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("a {kind} frame"));
        if f["type"] == kind {
            return f;
        }
    }
}

/// Every frame's keys, sorted.
fn keys(f: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_and_queue_changes_reach_the_team_only_and_resume_with_since() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let (_, boot) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Acme", "name": "Ada", "extension": "100", "email": "ada@changes.example", "password": PASSWORD,
    })))
    .await;
    let admin = boot["token"].as_str().unwrap().to_owned();
    let org: domain::OrgId = serde_json::from_value(boot["organization_id"].clone()).unwrap();
    let (bob, bob_t) = add_user(&c, &s, &admin, "bob@changes.example", "101").await;
    let (_, cy_t) = add_user(&c, &s, &admin, "cy@changes.example", "102").await;
    let (_, other) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Other", "name": "Oz", "extension": "100", "email": "oz@changes.example", "password": PASSWORD,
    })))
    .await;
    let oz_t = other["token"].as_str().unwrap().to_owned();
    let (_, inbox) = call(
        c.post(s.url("/v1/inboxes"))
            .bearer_auth(&admin)
            .json(&json!({ "name": "Front desk", "number": INBOX_NUMBER })),
    )
    .await;
    let inbox = inbox["inbox_id"].as_str().unwrap().to_owned();
    let (_, queue) = call(
        c.post(s.url("/v1/queues"))
            .bearer_auth(&admin)
            .json(&json!({ "name": "Support", "number": QUEUE_NUMBER })),
    )
    .await;
    let queue = queue["queue_id"].as_str().unwrap().to_owned();
    let now = s.ws.store.next_position() - 1;
    let mut bob_ws = connect(&s, &bob_t, Some(now)).await;
    let mut ada_ws = connect(&s, &admin, Some(now)).await;
    let mut cy_ws = connect(&s, &cy_t, Some(now)).await;
    let mut oz_ws = connect(&s, &oz_t, Some(now)).await;
    for path in [
        format!("/v1/inboxes/{inbox}/members"),
        format!("/v1/queues/{queue}/members"),
    ] {
        let (status, _) = call(
            c.post(s.url(&path))
                .bearer_auth(&admin)
                .json(&json!({ "user": bob })),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let f = change(&mut bob_ws, "inbox").await;
    assert_eq!(
        keys(&f),
        [
            "assignee",
            "change",
            "conversation_id",
            "inbox_id",
            "position",
            "type"
        ]
    );
    assert_eq!(
        (
            &f["inbox_id"],
            &f["change"],
            &f["conversation_id"],
            &f["assignee"]
        ),
        (
            &json!(inbox),
            &json!("inbox_member_added"),
            &Value::Null,
            &Value::Null
        )
    );
    let f = change(&mut bob_ws, "queue").await;
    assert_eq!(
        keys(&f),
        [
            "agent",
            "change",
            "conversation_id",
            "position",
            "queue_id",
            "type"
        ]
    );
    assert_eq!(
        (&f["queue_id"], &f["change"], &f["agent"]),
        (&json!(queue), &json!("queue_member_added"), &json!(bob))
    );
    let (status, _) = call(
        c.post(s.url(&format!("/v1/queues/{queue}/login")))
            .bearer_auth(&bob_t),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let f = change(&mut bob_ws, "queue").await;
    assert_eq!(
        (&f["change"], &f["agent"]),
        (&json!("agent_logged_in"), &json!(bob))
    );

    // A customer texts the inbox: the conversation lands there, and Bob takes it.
    let x = customer_texts(&s, org, INBOX_NUMBER).await;
    let f = change(&mut bob_ws, "inbox").await;
    assert_eq!(
        (&f["change"], &f["conversation_id"]),
        (&json!("inbox_attached"), &json!(x))
    );
    let (status, _) = call(
        c.post(s.url(&format!("/v1/conversations/{x}/assign-to-me")))
            .bearer_auth(&bob_t),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let f = change(&mut bob_ws, "inbox").await;
    assert_eq!(
        (&f["change"], &f["conversation_id"], &f["assignee"]),
        (&json!("conversation_assigned"), &json!(x), &json!(bob))
    );

    // A customer texts the queue: it waits, Bob claims it.
    let y = customer_texts(&s, org, QUEUE_NUMBER).await;
    let f = change(&mut bob_ws, "queue").await;
    assert_eq!(
        (&f["change"], &f["conversation_id"], &f["agent"]),
        (&json!("interaction_queued"), &json!(y), &Value::Null)
    );
    let interaction = |action: &str| {
        c.post(s.url(&format!("/v1/queues/{queue}/interactions/{y}/{action}")))
            .bearer_auth(&bob_t)
    };
    assert_eq!(call(interaction("claim")).await.0, StatusCode::OK);
    let f = change(&mut bob_ws, "queue").await;
    assert_eq!(
        (&f["change"], &f["agent"]),
        (&json!("interaction_claimed"), &json!(bob))
    );
    let last = f["position"].as_u64().unwrap();

    // Bob's connection drops; what happens meanwhile comes on the resumed one, once.
    drop(bob_ws);
    assert_eq!(call(interaction("release")).await.0, StatusCode::OK);
    let (status, _) = call(
        c.post(s.url(&format!("/v1/conversations/{x}/done")))
            .bearer_auth(&bob_t),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut bob_ws = connect(&s, &bob_t, Some(last)).await;
    let mut resumed = Vec::new();
    while let Some(f) = frame(&mut bob_ws, Duration::from_millis(500)).await {
        resumed.push(f);
    }
    let seen: Vec<(Value, Value)> = resumed
        .iter()
        .map(|f| (f["type"].clone(), f["change"].clone()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (json!("queue"), json!("interaction_released")),
            (json!("inbox"), json!("marked_done")),
        ],
        "{resumed:?}"
    );
    assert!(resumed[0]["position"].as_u64().unwrap() > last);
    assert!(resumed[0]["position"].as_u64() < resumed[1]["position"].as_u64());

    // The admin, not on the team nor in the queue, sees every queue's changes (the waiting
    // lists are hers to see) and every inbox's conversations (she may take any over): the
    // changes, and their timeline items (the customers' texts, `null` type).
    let mut admin_saw = Vec::new();
    while let Some(f) = frame(&mut ada_ws, Duration::from_millis(500)).await {
        admin_saw.push((f["type"].clone(), f["change"].clone()));
    }
    let (queue_change, inbox_change, item) = (
        |c: &str| (json!("queue"), json!(c)),
        |c: &str| (json!("inbox"), json!(c)),
        (Value::Null, Value::Null),
    );
    assert_eq!(
        admin_saw,
        vec![
            queue_change("queue_member_added"),
            queue_change("agent_logged_in"),
            inbox_change("inbox_attached"),
            item.clone(),
            inbox_change("conversation_assigned"),
            item,
            queue_change("interaction_queued"),
            queue_change("interaction_claimed"),
            queue_change("interaction_released"),
            inbox_change("marked_done"),
        ]
    );

    // Not on the team, or another organization: nothing at all.
    assert!(frame(&mut cy_ws, Duration::from_millis(300))
        .await
        .is_none());
    assert!(frame(&mut oz_ws, Duration::from_millis(300))
        .await
        .is_none());
}

/// A gateway over the test server's workspace whose hub queues `queue` frames per
/// connection, with a small socket send buffer: a client that stops reading overflows it
/// after a few frames. Its base URL (ws://) and state.
async fn small_queue_gateway(s: &TestServer, queue: usize) -> (String, gateway::AppState) {
    gateway_with(
        s,
        gateway::hub::HubConfig {
            connection_queue: queue,
            ..Default::default()
        },
    )
    .await
}

/// A gateway over `s`'s workspace with its own hub settings, on a listener with a small
/// send buffer.
async fn gateway_with(
    s: &TestServer,
    config: gateway::hub::HubConfig,
) -> (String, gateway::AppState) {
    let state = gateway::AppState::new(s.ws.clone(), s.queues.clone(), s.interactions.clone())
        .with_hub(gateway::hub::HubSlot::new(config));
    serve_state(state).await
}

/// Serves `state` on a listener with a small send buffer; its `ws://` base.
async fn serve_state(state: gateway::AppState) -> (String, gateway::AppState) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(64).unwrap();
    let base = format!("ws://{}", listener.local_addr().unwrap());
    let app = gateway::router(state.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_as_a_slow_consumer_and_resumes_exactly() {
    const MESSAGES: usize = 60;
    let s = TestServer::start().await;
    let c = testkit::http();
    let st = setup(&c, &s).await;
    let (base, state) = small_queue_gateway(&s, 4).await;
    // Bob's client has a small receive buffer and reads nothing for now.
    let client = tokio::net::TcpSocket::new_v4().unwrap();
    client.set_recv_buffer_size(4096).unwrap();
    let tcp = client
        .connect(base.trim_start_matches("ws://").parse().unwrap())
        .await
        .unwrap();
    let since = s.ws.store.next_position() - 1;
    let url = format!("{base}/v1/stream?token={}&since={since}", st.bob);
    let (mut stalled, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
    let text = |i: usize| format!("{i:03}{}", "x".repeat(4000 - 3));
    let mut last = 0;
    for i in 0..MESSAGES {
        let (status, posted) = call(
            c.post(&st.messages)
                .bearer_auth(&st.admin)
                .json(&json!({ "text": text(i) })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{posted}");
        last = posted["position"].as_u64().unwrap();
    }
    // The hub has handed out (or tried to) every message: far more than the queue and
    // the socket buffers hold.
    let hub = state.hub.get(&state);
    for _ in 0..1000 {
        if hub.head() >= Some(last) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(hub.head() >= Some(last), "the hub reached the last message");
    // Reading again: what the socket held, then the close.
    let mut seen: Vec<(u64, String)> = Vec::new();
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), stalled.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let f: Value = serde_json::from_str(&t).unwrap();
                seen.push((
                    f["position"].as_u64().unwrap(),
                    f["item"]["text"].as_str().unwrap().to_owned(),
                ));
            }
            Ok(Some(Ok(Message::Close(close)))) => break close,
            Ok(Some(Ok(_))) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let close = close.expect("a close code");
    assert_eq!(u16::from(close.code), 4008);
    assert_eq!(&*close.reason, "slow_consumer");
    assert!(seen.len() < MESSAGES, "cut before the end: {}", seen.len());
    // Resuming from the last frame seen brings every remaining message, once, in order.
    let resume_from = seen.last().map_or(since, |(p, _)| *p);
    let url = format!("{base}/v1/stream?token={}&since={resume_from}", st.bob);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    while seen.len() < MESSAGES {
        let f = frame(&mut ws, Duration::from_secs(10))
            .await
            .expect("resumed frame");
        seen.push((
            f["position"].as_u64().unwrap(),
            f["item"]["text"].as_str().unwrap().to_owned(),
        ));
    }
    let texts: Vec<String> = seen.iter().map(|(_, t)| t.clone()).collect();
    assert_eq!(texts, (0..MESSAGES).map(text).collect::<Vec<_>>());
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "positions increase"
    );
    assert!(
        frame(&mut ws, Duration::from_millis(300)).await.is_none(),
        "nothing extra"
    );
}

/// Heartbeats: a client that answers the pings stays connected however quiet the
/// conversation; one that sends nothing back (here: reads nothing, so never pongs) is
/// closed as gone with 4002 `heartbeat_timeout` after two heartbeats.
/// The admin posts `text` and `ws` (a stream of a member) gets its frame.
async fn still_served(c: &Client, st: &Setup, ws: &mut Ws, text: &str) {
    let (status, _) = call(
        c.post(&st.messages)
            .bearer_auth(&st.admin)
            .json(&json!({ "text": text })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let f = frame(ws, Duration::from_secs(5)).await.expect("a frame");
    assert_eq!(f["item"]["text"], text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_answers_the_heartbeat_is_closed() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let st = setup(&c, &s).await;
    let every = Duration::from_millis(200);
    let (base, _state) = gateway_with(
        &s,
        gateway::hub::HubConfig {
            heartbeat: every,
            ..Default::default()
        },
    )
    .await;
    let url = format!("{base}/v1/stream?token={}", st.bob);
    let (mut alive, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let (mut silent, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    // The live client reads (and so answers every ping) for six heartbeats.
    let mut pings = 0;
    let until = tokio::time::Instant::now() + every * 6;
    while let Ok(next) = tokio::time::timeout_at(until, alive.next()).await {
        match next {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(Message::Close(close))) => panic!("a live client was closed: {close:?}"),
            Some(Ok(_)) => {}
            other => panic!("a live client lost its stream: {other:?}"),
        }
    }
    assert!(pings >= 3, "pinged {pings} times");
    // The silent one, reading only now: pings it never answered, then the close (within
    // a bound: a server that never closes it would ping it forever).
    assert_eq!(
        closed_with(&mut silent, Duration::from_secs(5)).await,
        (4002, "heartbeat_timeout".to_owned())
    );
    // The live client is still served.
    still_served(&c, &st, &mut alive, "still here?").await;
}

/// A client that closes its stream is let go at once: its connection ends (the reader
/// that takes the client's frames ends it, while the writer waits for frames), typing
/// frames sent before the close were taken, and the other client is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_closes_is_let_go_and_the_others_are_still_served() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let st = setup(&c, &s).await;
    let (base, state) = gateway_with(&s, gateway::hub::HubConfig::default()).await;
    let open = || state.metrics.websockets.get();
    let (mut staying, _) =
        tokio_tungstenite::connect_async(format!("{base}/v1/stream?token={}", st.admin))
            .await
            .unwrap();
    let (mut leaving, _) =
        tokio_tungstenite::connect_async(format!("{base}/v1/stream?token={}", st.bob))
            .await
            .unwrap();
    // The leaving client types, then closes.
    leaving
        .send(Message::Text(
            json!({ "type": "typing", "conversation_id": st.conversation })
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let typing = frame(&mut staying, Duration::from_secs(5))
        .await
        .expect("the typing frame");
    assert_eq!(typing["type"], "typing");
    assert_eq!(open(), 2);
    leaving.close(None).await.unwrap();
    // Bounded: a connection that never learns its client left stays open forever.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while open() != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed client's connection is still open ({} open)",
            open()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    still_served(&c, &st, &mut staying, "after the close").await;
}

/// A login lasts its time to live, and so do its streams: when it expires the open stream
/// closes with 4001 `session_expired` and the token is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_closes_when_its_session_expires() {
    let s = TestServer::start().await;
    let c = testkit::http();
    setup(&c, &s).await;
    let state = gateway::AppState::new(s.ws.clone(), s.queues.clone(), s.interactions.clone())
        .with_session_ttl(Duration::from_secs(1));
    let (base, _state) = serve_state(state).await;
    let http = base.replace("ws://", "http://");
    let (status, login) = call(
        c.post(format!("{http}/v1/sessions"))
            .json(&json!({ "email": "bob@ws.example", "password": PASSWORD })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{login}");
    let token = login["token"].as_str().unwrap().to_owned();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{base}/v1/stream?token={token}"))
        .await
        .unwrap();
    assert_eq!(
        closed_with(&mut ws, Duration::from_secs(10)).await,
        (4001, "session_expired".to_owned())
    );
    let (status, err) = call(c.get(format!("{http}/v1/me")).bearer_auth(&token)).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
}

/// A socket address as the kernel reports it for `fd` (its own with `peer` false, the
/// other end's with `peer` true); `None` for what is not an IP socket.
#[allow(
    unsafe_code,
    reason = "getsockname and getpeername have no safe wrapper in std"
)]
fn socket_address(fd: libc::c_int, peer: bool) -> Option<std::net::SocketAddr> {
    // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len =
        libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_storage>()).expect("fits");
    let out = std::ptr::addr_of_mut!(storage).cast::<libc::sockaddr>();
    // SAFETY: `out` points to `len` writable bytes; the kernel writes at most that many.
    let rc = unsafe {
        if peer {
            libc::getpeername(fd, out, &raw mut len)
        } else {
            libc::getsockname(fd, out, &raw mut len)
        }
    };
    if rc != 0 {
        return None;
    }
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a = unsafe { &*std::ptr::addr_of!(storage).cast::<libc::sockaddr_in>() };
            Some(std::net::SocketAddr::from((
                std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a = unsafe { &*std::ptr::addr_of!(storage).cast::<libc::sockaddr_in6>() };
            Some(std::net::SocketAddr::from((
                std::net::Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
            )))
        }
        _ => None,
    }
}

/// The file descriptor of this process's TCP socket from `local` to `peer` (the server's
/// side of a connection whose client is in this process too).
fn socket_between(local: std::net::SocketAddr, peer: std::net::SocketAddr) -> libc::c_int {
    let found: Vec<libc::c_int> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| {
            socket_address(fd, false) == Some(local) && socket_address(fd, true) == Some(peer)
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one socket from {local} to {peer}: {found:?}"
    );
    found[0]
}

/// The kernel's send buffer of socket `fd` (`SO_SNDBUF`, which reports twice what was
/// set: Linux doubles it for its bookkeeping).
#[allow(unsafe_code, reason = "getsockopt has no safe wrapper in std")]
fn send_buffer(fd: libc::c_int) -> usize {
    let mut value: libc::c_int = 0;
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).expect("fits");
    // SAFETY: `value` is a writable c_int and `len` its size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            std::ptr::addr_of_mut!(value).cast(),
            &raw mut len,
        )
    };
    assert_eq!(rc, 0, "getsockopt: {}", std::io::Error::last_os_error());
    usize::try_from(value).expect("a size")
}

/// A kernel setting under /proc/sys, as numbers.
fn sysctl(path: &str) -> Vec<usize> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .split_whitespace()
        .map(|n| n.parse().expect("a number"))
        .collect()
}

/// A slow WebSocket reader holds a bounded amount of kernel memory (issue 18, item 9):
/// the server's side of a stream's socket sends through a buffer capped at
/// `SOCKET_SEND_BUFFER` (the kernel reports it doubled), not the MiBs TCP autotuning
/// grants; an ordinary HTTP keep-alive connection keeps the kernel's autotuned buffer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streams_socket_sends_through_a_capped_kernel_buffer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::start().await;
    let c = testkit::http();
    let st = setup(&c, &s).await;
    let server: std::net::SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    let wmem_max = sysctl("/proc/sys/net/core/wmem_max")[0];
    let tcp_wmem = sysctl("/proc/sys/net/ipv4/tcp_wmem");

    // A stream: its socket is capped before the upgrade is answered.
    let ws = connect(&s, &st.bob, None).await;
    let client = match ws.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => tcp.local_addr().unwrap(),
        _ => panic!("a plain TCP stream"),
    };
    let capped = send_buffer(socket_between(server, client));
    assert_eq!(
        capped,
        2 * gateway::routes::stream::SOCKET_SEND_BUFFER,
        "the stream's send buffer (net.core.wmem_max {wmem_max})"
    );

    // An HTTP/1.1 keep-alive connection that was answered and stays open: not capped.
    let mut http = tokio::net::TcpStream::connect(server).await.unwrap();
    http.write_all(b"GET /healthz HTTP/1.1\r\nHost: switchboard\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !answer.ends_with(b"}") {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, http.read(&mut buf))
            .await
            .expect("the health answer in time")
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        !answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    let plain = send_buffer(socket_between(server, http.local_addr().unwrap()));
    assert_ne!(
        plain, capped,
        "an HTTP connection's buffer is not the stream's cap"
    );
    assert!(
        plain >= tcp_wmem[1],
        "an HTTP connection keeps at least the kernel's default send buffer \
         (net.ipv4.tcp_wmem {tcp_wmem:?}): {plain}"
    );
    // The stream still works through its smaller buffer.
    let mut ws = ws;
    let (status, _) = call(
        c.post(&st.messages)
            .bearer_auth(&st.admin)
            .json(&json!({ "text": "through the capped socket" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let f = frame(&mut ws, Duration::from_secs(10))
        .await
        .expect("the message frame");
    assert_eq!(f["item"]["text"], "through the capped socket", "{f}");
}

/// Issue 18, item 14: the frames are published as an AsyncAPI document at
/// `/asyncapi.json` (no credentials needed, like `/openapi.json`). Every frame every test
/// reads through `testkit::stream::frame` is checked against it; here, the document is
/// what the server serves, real frames of each kind fit exactly one of its messages, and
/// the checker refuses frames that drift from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_asyncapi_document_describes_every_frame_and_catches_drift() {
    use testkit::stream::FrameChecker;
    let s = TestServer::start().await;
    let c = testkit::http();
    let (status, doc) = call(c.get(s.url("/asyncapi.json"))).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(doc, gateway::asyncapi::document());
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(doc["channels"]["stream"]["address"], "/v1/stream");
    let checker = FrameChecker::new(&doc);

    let st = setup(&c, &s).await;
    let mut ada = connect(&s, &st.admin, None).await;
    let mut bob = connect(&s, &st.bob, None).await;
    // A client's typing frame is a client message; Bob gets the server's typing frame.
    let typing = json!({ "type": "typing", "conversation_id": st.conversation });
    assert_eq!(checker.client_frame(&typing), Ok("client_typing"));
    let stopped = json!({ "type": "typing_stopped", "conversation_id": st.conversation });
    assert_eq!(checker.client_frame(&stopped), Ok("client_typing"));
    assert!(checker.client_frame(&json!({ "type": "typing" })).is_err());
    assert!(checker
        .client_frame(&json!({ "type": "shouting", "conversation_id": st.conversation }))
        .is_err());
    ada.send(Message::Text(typing.to_string().into()))
        .await
        .unwrap();
    let typed = frame(&mut bob, Duration::from_secs(10))
        .await
        .expect("a typing frame");
    assert_eq!(checker.server_frame(&typed), Ok("typing"));
    ada.send(Message::Text(stopped.to_string().into()))
        .await
        .unwrap();
    let ended = frame(&mut bob, Duration::from_secs(10))
        .await
        .expect("a stopped typing frame");
    assert_eq!(
        (ended["stopped"].clone(), checker.server_frame(&ended)),
        (json!(true), Ok("typing"))
    );

    // A message: a timeline frame, with the recipient's unread count.
    let (status, _) = call(
        c.post(&st.messages)
            .bearer_auth(&st.admin)
            .json(&json!({ "text": "hello" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let message = loop {
        let f = frame(&mut bob, Duration::from_secs(10))
            .await
            .expect("the message frame");
        if f["item"]["type"] == "message" {
            break f;
        }
    };
    assert_eq!(checker.server_frame(&message), Ok("timeline"));
    assert_eq!(message["unread"], 1);

    // An inbox change, to its new member.
    let (status, inbox) = call(
        c.post(s.url("/v1/inboxes"))
            .bearer_auth(&st.admin)
            .json(&json!({ "name": "Front desk", "number": "+15550409000" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{inbox}");
    let bob_id = {
        let (_, me) = call(c.get(s.url("/v1/me")).bearer_auth(&st.bob)).await;
        me["user_id"].clone()
    };
    let (status, _) = call(
        c.post(s.url(&format!(
            "/v1/inboxes/{}/members",
            inbox["inbox_id"].as_str().unwrap()
        )))
        .bearer_auth(&st.admin)
        .json(&json!({ "user": bob_id })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let added = change(&mut bob, "inbox").await;
    assert_eq!(checker.server_frame(&added), Ok("inbox"));

    // Drift the checker must catch: a field gone, a field the document does not know, a
    // change it does not list, a value of the wrong type.
    let mutated = |f: &Value, edit: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut f = f.clone();
        edit(f.as_object_mut().unwrap());
        f
    };
    for (what, bad) in [
        (
            "no position",
            mutated(&message, &|m| drop(m.remove("position"))),
        ),
        (
            "an unknown field",
            mutated(&message, &|m| drop(m.insert("extra".into(), json!(1)))),
        ),
        (
            "an item of no known type",
            mutated(&message, &|m| m["item"]["type"] = json!("gossip")),
        ),
        (
            "an unknown change",
            mutated(&added, &|m| {
                drop(m.insert("change".into(), json!("inbox_exploded")));
            }),
        ),
        (
            "a position as text",
            mutated(&added, &|m| drop(m.insert("position".into(), json!("12")))),
        ),
        (
            "typing without its user",
            mutated(&typed, &|m| drop(m.remove("user"))),
        ),
    ] {
        assert!(checker.server_frame(&bad).is_err(), "{what} passed: {bad}");
    }
}
