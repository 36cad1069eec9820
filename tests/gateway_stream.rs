//! The WebSocket stream over real sockets: a participant receives messages live with
//! positions; a connection killed mid-burst resumes with `since` and sees every message
//! exactly once; outsiders receive nothing and bad tokens are refused.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use testkit::server::{call, TestServer, PASSWORD};
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
        "name": "Bob", "extension": "101", "role": "Member", "email": "bob@ws.example", "password": PASSWORD,
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

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(s: &TestServer, token: &str, since: Option<u64>) -> Ws {
    let mut url = format!(
        "{}/v1/stream?token={token}",
        s.base.replace("http://", "ws://")
    );
    if let Some(p) = since {
        url.push_str(&format!("&since={p}"));
    }
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket")
        .0
}

/// The next data frame within `wait`, skipping pings.
async fn frame(ws: &mut Ws, wait: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(wait, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).ok(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_reaches_the_other_participant_only_and_is_never_stored() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let st = setup(&c, &s).await;
    let mut ada = connect(&s, &st.admin, None).await;
    let mut bob = connect(&s, &st.bob, None).await;
    let mut outsider = connect(&s, &st.outsider, None).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
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
    // An outsider cannot type into a conversation they cannot see.
    outsider.send(Message::Text(typing.into())).await.unwrap();
    assert!(frame(&mut bob, Duration::from_millis(300)).await.is_none());
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
    let mut bob = connect(&s, &st.bob, None).await;
    // Routed to Ada: the viewers are cached for the channel now.
    assert_eq!(call(post("before")).await.0, StatusCode::CREATED);
    let join = c
        .post(s.url(&format!("/v1/conversations/{id}/join")))
        .bearer_auth(&st.bob);
    assert_eq!(call(join).await.0, StatusCode::OK);
    assert_eq!(call(post("while in")).await.0, StatusCode::CREATED);
    // Bob has it before he leaves.
    let mut got = Vec::new();
    while !got.iter().any(|t| t == "while in") {
        let f = frame(&mut bob, Duration::from_secs(5))
            .await
            .expect("a frame while a member");
        got.extend(f["item"]["text"].as_str().map(str::to_owned));
    }
    let leave = c
        .post(s.url(&format!("/v1/conversations/{id}/leave")))
        .bearer_auth(&st.bob);
    assert_eq!(call(leave).await.0, StatusCode::OK);
    assert_eq!(call(post("after")).await.0, StatusCode::CREATED);
    // Viewers are resolved when the hub routes an event, from the conversation's state
    // then: a hub running behind may count Bob in for "before" (he may read it in the
    // history by then anyway). Once he has left, nothing more reaches him.
    got.extend(texts(&mut bob, Duration::from_millis(500)).await);
    assert!(
        !got.iter().any(|t| t == "after"),
        "nothing after leaving: {got:?}"
    );
}
