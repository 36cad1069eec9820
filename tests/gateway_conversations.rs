//! Conversations over real HTTP: a direct conversation between two users, idempotent
//! posts, paginated history, read receipts, and what outsiders (another organization, a
//! non-participant, a member acting as admin) are refused.

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use testkit::server::{call, TestServer, PASSWORD};

struct Org {
    admin_token: String,
}

async fn org(c: &Client, s: &TestServer, email: &str) -> Org {
    let (status, v) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Org", "name": "Admin", "extension": "100", "email": email, "password": PASSWORD,
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    Org {
        admin_token: v["token"].as_str().unwrap().to_owned(),
    }
}

/// Adds a member and logs them in; returns (user id, token).
async fn member(
    c: &Client,
    s: &TestServer,
    admin: &str,
    email: &str,
    ext: &str,
) -> (String, String) {
    let (status, v) = call(c.post(s.url("/v1/users")).bearer_auth(admin).json(&json!({
        "name": email, "extension": ext, "role": "member", "email": email, "password": PASSWORD,
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, login) = call(
        c.post(s.url("/v1/sessions"))
            .json(&json!({ "email": email, "password": PASSWORD })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    (
        v["user_id"].as_str().unwrap().to_owned(),
        login["token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_talk_directly() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let acme = org(&c, &s, "admin@acme.example").await;
    let (bob, bob_token) = member(&c, &s, &acme.admin_token, "bob@acme.example", "101").await;
    let (_, carol_token) = member(&c, &s, &acme.admin_token, "carol@acme.example", "102").await;

    let (status, started) = call(
        c.post(s.url("/v1/conversations/direct"))
            .bearer_auth(&acme.admin_token)
            .json(&json!({ "with": bob })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let id = started["conversation_id"].as_str().unwrap().to_owned();
    let (status, again) = call(
        c.post(s.url("/v1/conversations/direct"))
            .bearer_auth(&acme.admin_token)
            .json(&json!({ "with": bob })),
    )
    .await;
    assert_eq!(
        (status, &again["conversation_id"]),
        (StatusCode::OK, &started["conversation_id"]),
        "one per pair"
    );

    // An idempotent post: the retry returns the first result and writes nothing.
    let messages = s.url(&format!("/v1/conversations/{id}/messages"));
    let key = "6f9d7c0e-3b1a-4c55-9e1f-2a7b8c9d0e1f";
    let post = || {
        c.post(&messages)
            .bearer_auth(&acme.admin_token)
            .header("Idempotency-Key", key)
            .json(&json!({ "text": "hi Bob 👋" }))
    };
    let (status, first) = call(post()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let before = s.ws.store.next_position();
    let (status, retry) = call(post()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(retry["message_id"], first["message_id"]);
    assert_eq!(retry["deduplicated"], true);
    assert_eq!(
        s.ws.store.next_position(),
        before,
        "the retry wrote nothing"
    );

    // Bob sees it, replies, and reads up to it.
    let (status, h) = call(c.get(&messages).bearer_auth(&bob_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h["items"][0]["text"], "hi Bob 👋");
    assert_eq!(h["items"][0]["type"], "message");
    for i in 0..5 {
        let (status, _) = call(
            c.post(&messages)
                .bearer_auth(&bob_token)
                .json(&json!({ "text": format!("reply {i}") })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let read = s.url(&format!("/v1/conversations/{id}/read"));
    let r = c
        .post(&read)
        .bearer_auth(&acme.admin_token)
        .json(&json!({ "up_to": 6 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Paginated history: newest page first, then older with the cursor.
    let (_, page1) = call(c.get(format!("{messages}?limit=3")).bearer_auth(&bob_token)).await;
    assert_eq!(page1["items"].as_array().unwrap().len(), 3);
    assert_eq!(page1["items"][2]["type"], "read");
    let before = page1["next_before"].as_u64().expect("an older page");
    let (_, page2) = call(
        c.get(format!("{messages}?limit=50&before={before}"))
            .bearer_auth(&bob_token),
    )
    .await;
    let texts: Vec<&str> = page2["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["text"].as_str())
        .collect();
    assert_eq!(texts, vec!["hi Bob 👋", "reply 0", "reply 1", "reply 2"]);
    assert!(page2["next_before"].is_null());

    // Carol is in the organization but not in the conversation.
    let (status, err) = call(c.get(&messages).bearer_auth(&carol_token)).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("conversation_not_found"))
    );
    let (status, _) = call(
        c.post(&messages)
            .bearer_auth(&carol_token)
            .json(&json!({ "text": "let me in" })),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_organizations_and_members_get_nothing() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let acme = org(&c, &s, "admin@acme2.example").await;
    let globex = org(&c, &s, "admin@globex.example").await;
    let (bob, bob_token) = member(&c, &s, &acme.admin_token, "bob@acme2.example", "101").await;
    let (_, started) = call(
        c.post(s.url("/v1/conversations/direct"))
            .bearer_auth(&acme.admin_token)
            .json(&json!({ "with": bob })),
    )
    .await;
    let id = started["conversation_id"].as_str().unwrap();
    let messages = s.url(&format!("/v1/conversations/{id}/messages"));
    // Another tenant cannot read, write, or even learn it exists.
    let (status, _) = call(c.get(&messages).bearer_auth(&globex.admin_token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        c.post(&messages)
            .bearer_auth(&globex.admin_token)
            .json(&json!({ "text": "x" })),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Nor start a conversation with one of its users.
    let (status, _) = call(
        c.post(s.url("/v1/conversations/direct"))
            .bearer_auth(&globex.admin_token)
            .json(&json!({ "with": bob })),
    )
    .await;
    assert!(status.is_client_error(), "{status}");
    // A member cannot add users; bad input is refused with a code.
    let (status, err) = call(c.post(s.url("/v1/users")).bearer_auth(&bob_token).json(&json!({
        "name": "Mallory", "extension": "666", "role": "admin", "email": "m@acme2.example", "password": PASSWORD,
    })))
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("admin_only"))
    );
    let (status, err) = call(
        c.post(&messages)
            .bearer_auth(&bob_token)
            .json(&json!({ "text": "" })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT.max(status), "{err}");
    assert!(err["code"].is_string());
    let (status, err) = call(
        c.post(&messages)
            .bearer_auth(&bob_token)
            .json(&json!({ "text": "x".repeat(5000) })),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("too_long"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_with_members_who_join_add_and_leave() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let acme = org(&c, &s, "admin@chan.example").await;
    let (bob, bob_token) = member(&c, &s, &acme.admin_token, "bob@chan.example", "101").await;
    let (carol, carol_token) = member(&c, &s, &acme.admin_token, "carol@chan.example", "102").await;
    let (dave, dave_token) = member(&c, &s, &acme.admin_token, "dave@chan.example", "103").await;
    let globex = org(&c, &s, "admin@globex-chan.example").await;

    let (status, ch) = call(
        c.post(s.url("/v1/conversations/channel"))
            .bearer_auth(&acme.admin_token)
            .json(&json!({ "name": "#support", "members": [bob] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ch}");
    let id = ch["conversation_id"].as_str().unwrap().to_owned();
    let url = |p: &str| s.url(&format!("/v1/conversations/{id}/{p}"));

    // Carol is not a member yet: she cannot read, but may join.
    let (status, _) = call(c.get(url("messages")).bearer_auth(&carol_token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        c.post(url("join"))
            .bearer_auth(&carol_token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let (status, _) = call(
        c.post(url("messages"))
            .bearer_auth(&carol_token)
            .json(&json!({ "text": "hello channel" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, h) = call(c.get(url("messages")).bearer_auth(&bob_token)).await;
    let said: Vec<&Value> = h["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message")
        .map(|i| &i["text"])
        .collect();
    assert_eq!(said, [&json!("hello channel")], "{h}");

    // A member adds Dave; a stranger from another organization can neither join nor add.
    let r = c
        .post(url("members"))
        .bearer_auth(&bob_token)
        .json(&json!({ "users": [dave] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, _) = call(c.get(url("messages")).bearer_auth(&dave_token)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(c.post(url("join")).bearer_auth(&globex.admin_token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        c.post(url("members"))
            .bearer_auth(&globex.admin_token)
            .json(&json!({ "users": [carol] })),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Carol leaves and loses access.
    assert_eq!(
        c.post(url("leave"))
            .bearer_auth(&carol_token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let (status, _) = call(c.get(url("messages")).bearer_auth(&carol_token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let _ = carol;
}

/// Sends `r`, expects a refusal with `status` and `code`, and checks nothing was written.
async fn refused(
    s: &TestServer,
    r: reqwest::RequestBuilder,
    status: StatusCode,
    code: &str,
) -> serde_json::Value {
    let before = s.ws.store.next_position();
    let (got, body) = call(r).await;
    assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{body}");
    assert_eq!(
        s.ws.store.next_position(),
        before,
        "a refusal wrote: {body}"
    );
    body
}

const GROUP_LINE: &str = "+15550501000";
const UNREGISTERED_LINE: &str = "+15550502000";
const CUSTOMER: &str = "+15557770001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_group_with_calls_and_a_renamed_channel() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let acme = org(&c, &s, "admin@group.example").await;
    let admin = &acme.admin_token;
    let (bob, bob_token) = member(&c, &s, admin, "bob@group.example", "101").await;
    let (carol, carol_token) = member(&c, &s, admin, "carol@group.example", "102").await;
    let globex = org(&c, &s, "admin@globex-group.example").await;
    for (number, registered) in [(GROUP_LINE, true), (UNREGISTERED_LINE, false)] {
        let (status, v) = call(
            c.post(s.url("/v1/numbers"))
                .bearer_auth(admin)
                .json(&json!({ "number": number, "user": bob, "sms_registered": registered })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }

    // Bob starts a group from his line with Carol and a customer; a retry with the same
    // Idempotency-Key answers the same group and writes nothing.
    let groups = s.url("/v1/conversations/group");
    let key = "0b8f3c2e-6a1d-4f7e-9c3b-5d2a1e0f9b8c";
    let body = json!({ "from": GROUP_LINE, "users": [carol], "externals": [CUSTOMER] });
    let (status, started) = call(
        c.post(&groups)
            .bearer_auth(&bob_token)
            .header("Idempotency-Key", key)
            .json(&body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let group = started["conversation_id"].as_str().unwrap().to_owned();
    let before = s.ws.store.next_position();
    let (status, again) = call(
        c.post(&groups)
            .bearer_auth(&bob_token)
            .header("Idempotency-Key", key)
            .json(&body),
    )
    .await;
    assert_eq!(
        (status, &again["conversation_id"]),
        (StatusCode::CREATED, &started["conversation_id"])
    );
    assert_eq!(
        s.ws.store.next_position(),
        before,
        "the retry wrote nothing"
    );
    // Bob writes (texting from his line); Carol sees it; the admin, not a member, does not.
    let url = |p: &str| s.url(&format!("/v1/conversations/{group}/{p}"));
    let (status, v) = call(
        c.post(url("messages"))
            .bearer_auth(&bob_token)
            .json(&json!({ "text": "hello everyone" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, h) = call(c.get(url("messages")).bearer_auth(&carol_token)).await;
    assert_eq!(status, StatusCode::OK, "{h}");
    assert_eq!(h["items"][0]["text"], "hello everyone");
    refused(
        &s,
        c.get(url("messages")).bearer_auth(admin),
        StatusCode::NOT_FOUND,
        "conversation_not_found",
    )
    .await;

    // Refusals, each writing nothing.
    let start =
        |token: &str, body: serde_json::Value| c.post(&groups).bearer_auth(token).json(&body);
    let cases = [
        (
            &carol_token,
            json!({ "from": GROUP_LINE, "users": [bob], "externals": [CUSTOMER] }),
            StatusCode::CONFLICT,
            "from_number_not_assigned_to_you",
        ),
        (
            &bob_token,
            json!({ "from": UNREGISTERED_LINE, "users": [carol], "externals": [CUSTOMER] }),
            StatusCode::CONFLICT,
            "from_number_not_sms_registered",
        ),
        (
            &bob_token,
            json!({ "from": GROUP_LINE, "users": [carol], "externals": [] }),
            StatusCode::CONFLICT,
            "group_needs_external",
        ),
        (
            &bob_token,
            json!({ "from": GROUP_LINE, "users": [], "externals": [CUSTOMER] }),
            StatusCode::CONFLICT,
            "group_too_small",
        ),
        (
            &bob_token,
            json!({ "from": GROUP_LINE, "users": [carol], "externals": [GROUP_LINE] }),
            StatusCode::CONFLICT,
            "external_is_our_number",
        ),
        (
            &bob_token,
            json!({ "from": GROUP_LINE, "users": [uuid::Uuid::new_v4()], "externals": [CUSTOMER] }),
            StatusCode::NOT_FOUND,
            "unknown_user",
        ),
        (
            &bob_token,
            json!({ "from": "+15550509999", "users": [carol], "externals": [CUSTOMER] }),
            StatusCode::NOT_FOUND,
            "unknown_number",
        ),
        (
            &bob_token,
            json!({ "from": "my line", "users": [carol], "externals": [CUSTOMER] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_phone_number",
        ),
        (
            &bob_token,
            json!({ "from": GROUP_LINE, "users": [carol], "externals": ["call me"] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_phone_number",
        ),
        (
            &bob_token,
            json!({ "from": GROUP_LINE, "users": [carol] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            &bob_token,
            json!({ "from": GROUP_LINE, "users": [carol], "externals": (0..11).map(|i| format!("+1555888000{i:02}")).collect::<Vec<_>>() }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many",
        ),
        // Another organization cannot text from Acme's number with Acme's users.
        (
            &globex.admin_token,
            json!({ "from": GROUP_LINE, "users": [bob], "externals": [CUSTOMER] }),
            StatusCode::NOT_FOUND,
            "unknown_number",
        ),
    ];
    for (token, body, status, code) in cases {
        refused(&s, start(token, body), status, code).await;
    }
    refused(
        &s,
        c.post(&groups)
            .bearer_auth(&bob_token)
            .header("Idempotency-Key", "again")
            .json(&json!({ "from": GROUP_LINE, "users": [carol], "externals": [CUSTOMER] })),
        StatusCode::BAD_REQUEST,
        "invalid_idempotency_key",
    )
    .await;

    // Calls: a participant starts a video call; it shows in the history; another ends it.
    let (status, started_call) = call(
        c.post(url("calls"))
            .bearer_auth(&bob_token)
            .header("Idempotency-Key", key)
            .json(&json!({ "media": "video" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{started_call}");
    let call_id = started_call["call_id"].as_str().unwrap().to_owned();
    let before = s.ws.store.next_position();
    let (status, retry) = call(
        c.post(url("calls"))
            .bearer_auth(&bob_token)
            .header("Idempotency-Key", key)
            .json(&json!({ "media": "video" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        (&retry["call_id"], &retry["deduplicated"]),
        (&started_call["call_id"], &json!(true))
    );
    assert_eq!(
        s.ws.store.next_position(),
        before,
        "the retry wrote nothing"
    );
    // Carol's stream carries it live (resuming just before it).
    let at = started_call["position"].as_u64().expect("written");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "{}/v1/stream?token={carol_token}&since={}",
        s.base.replace("http://", "ws://"),
        at - 1
    ))
    .await
    .expect("websocket");
    let live = loop {
        use futures_util::StreamExt;
        let next = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("a frame");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = next {
            break serde_json::from_str::<serde_json::Value>(&t).unwrap();
        }
    };
    assert_eq!(
        (
            &live["position"],
            &live["item"]["type"],
            &live["item"]["call_id"]
        ),
        (&json!(at), &json!("call_started"), &json!(call_id)),
        "{live}"
    );
    let (_, h) = call(c.get(url("messages")).bearer_auth(&carol_token)).await;
    let last = h["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (&last["type"], &last["call_id"], &last["media"], &last["by"]),
        (
            &json!("call_started"),
            &json!(call_id),
            &json!("video"),
            &json!(bob)
        ),
        "{h}"
    );
    let end = |call: &str| s.url(&format!("/v1/conversations/{group}/calls/{call}/end"));
    refused(
        &s,
        c.post(end(&call_id)).bearer_auth(admin),
        StatusCode::NOT_FOUND,
        "conversation_not_found",
    )
    .await;
    refused(
        &s,
        c.post(end(&call_id)).bearer_auth(&globex.admin_token),
        StatusCode::NOT_FOUND,
        "conversation_not_found",
    )
    .await;
    refused(
        &s,
        c.post(end(&uuid::Uuid::new_v4().to_string()))
            .bearer_auth(&carol_token),
        StatusCode::NOT_FOUND,
        "call_not_found",
    )
    .await;
    refused(
        &s,
        c.post(end("today")).bearer_auth(&carol_token),
        StatusCode::BAD_REQUEST,
        "invalid_path",
    )
    .await;
    let (status, v) = call(c.post(end(&call_id)).bearer_auth(&carol_token)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["position"].is_u64());
    let (status, v) = call(c.post(end(&call_id)).bearer_auth(&bob_token)).await;
    assert_eq!(
        (status, &v["position"]),
        (StatusCode::OK, &serde_json::Value::Null),
        "ending an ended call changes nothing"
    );
    let (_, h) = call(c.get(url("messages")).bearer_auth(&bob_token)).await;
    let last = h["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (&last["type"], &last["call_id"], &last["by"]),
        (&json!("call_ended"), &json!(call_id), &json!(carol))
    );
    for (token, body, status, code) in [
        (
            &bob_token,
            json!({ "media": "hologram" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            &bob_token,
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            admin,
            json!({ "media": "audio" }),
            StatusCode::NOT_FOUND,
            "conversation_not_found",
        ),
        (
            &globex.admin_token,
            json!({ "media": "audio" }),
            StatusCode::NOT_FOUND,
            "conversation_not_found",
        ),
    ] {
        refused(
            &s,
            c.post(url("calls")).bearer_auth(token).json(&body),
            status,
            code,
        )
        .await;
    }
    refused(
        &s,
        c.post(s.url("/v1/conversations/not-an-id/calls"))
            .bearer_auth(&bob_token)
            .json(&json!({ "media": "audio" })),
        StatusCode::BAD_REQUEST,
        "invalid_path",
    )
    .await;

    // Rename: members of a channel only; not a group; not blank.
    let (status, ch) = call(
        c.post(s.url("/v1/conversations/channel"))
            .bearer_auth(admin)
            .json(&json!({ "name": "support", "members": [bob] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ch}");
    let channel = ch["conversation_id"].as_str().unwrap().to_owned();
    let name = s.url(&format!("/v1/conversations/{channel}/name"));
    let (status, v) = call(
        c.post(&name)
            .bearer_auth(&bob_token)
            .json(&json!({ "name": "customer-support" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let position = v["position"].as_u64().expect("written");
    let (status, v) = call(
        c.post(&name)
            .bearer_auth(&bob_token)
            .json(&json!({ "name": "customer-support" })),
    )
    .await;
    assert_eq!(
        (status, &v["position"]),
        (StatusCode::OK, &serde_json::Value::Null)
    );
    let (status, list) = call(
        c.get(s.url(&format!(
            "/v1/interactions?filter=channels&after={position}"
        )))
        .bearer_auth(&bob_token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert!(
        list.to_string().contains("customer-support"),
        "the list shows the new name: {list}"
    );
    for (token, url, body, status, code) in [
        (
            &carol_token,
            name.clone(),
            json!({ "name": "mine now" }),
            StatusCode::NOT_FOUND,
            "conversation_not_found",
        ),
        (
            &globex.admin_token,
            name.clone(),
            json!({ "name": "mine now" }),
            StatusCode::NOT_FOUND,
            "conversation_not_found",
        ),
        (
            &bob_token,
            name.clone(),
            json!({ "name": "   " }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "blank",
        ),
        (
            &bob_token,
            name.clone(),
            json!({ "name": "x".repeat(81) }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_long",
        ),
        (
            &bob_token,
            name.clone(),
            json!({ "title": "support" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            &bob_token,
            url("name"),
            json!({ "name": "a group" }),
            StatusCode::FORBIDDEN,
            "not_a_channel",
        ),
    ] {
        refused(&s, c.post(url).bearer_auth(token).json(&body), status, code).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_assignee_starts_a_call_in_an_inbox_conversation() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let (status, acme) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Acme", "name": "Ada", "extension": "100", "email": "ada@inbox-call.example", "password": PASSWORD,
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{acme}");
    let admin = acme["token"].as_str().unwrap().to_owned();
    let org: domain::OrgId = serde_json::from_value(acme["organization_id"].clone()).unwrap();
    let (bob, bob_token) = member(&c, &s, &admin, "bob@inbox-call.example", "101").await;
    let (_, carol_token) = member(&c, &s, &admin, "carol@inbox-call.example", "102").await;
    let desk = "+15550601000";
    let (_, inbox) = call(
        c.post(s.url("/v1/inboxes"))
            .bearer_auth(&admin)
            .json(&json!({ "name": "Desk", "number": desk })),
    )
    .await;
    let inbox = inbox["inbox_id"].as_str().unwrap().to_owned();
    let (status, _) = call(
        c.post(s.url(&format!("/v1/inboxes/{inbox}/members")))
            .bearer_auth(&admin)
            .json(&json!({ "user": bob })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let record = testkit::server::customer_text(&s, org, desk, CUSTOMER, "call me?").await;
    let workers::inbound_router::Routed::Recorded(id) =
        workers::inbound_router::route(&s.ws, &record)
            .await
            .unwrap()
    else {
        panic!("not recorded")
    };
    let calls = s.url(&format!("/v1/conversations/{id}/calls"));
    let start = |token: &str| {
        c.post(&calls)
            .bearer_auth(token)
            .json(&json!({ "media": "audio" }))
    };
    // On the team but Unassigned: Bob sees it, but may not speak for it yet.
    refused(
        &s,
        start(&bob_token),
        StatusCode::FORBIDDEN,
        "not_assigned_to_you",
    )
    .await;
    refused(
        &s,
        start(&carol_token),
        StatusCode::NOT_FOUND,
        "conversation_not_found",
    )
    .await;
    let (status, _) = call(
        c.post(s.url(&format!("/v1/conversations/{id}/assign-to-me")))
            .bearer_auth(&bob_token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = call(start(&bob_token)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert!(v["call_id"].is_string());
}

/// An `Idempotency-Key` names one request of one caller into one target: the same key
/// from another user, into another conversation, or from another organization is a
/// different request (its own result, never somebody else's), while a retry of the same
/// request writes nothing. Creating a channel honours the key as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_are_scoped_to_the_caller_and_the_target() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let acme = org(&c, &s, "admin@acme.example").await;
    let globex = org(&c, &s, "admin@globex.example").await;
    let (bob, bob_token) = member(&c, &s, &acme.admin_token, "bob@acme.example", "101").await;
    let key = "0b4e3f7a-5d6c-4e2b-8a9f-1c2d3e4f5a6b";

    // A channel created with a key; its retry answers the same channel and writes nothing.
    let create = |token: &str| {
        c.post(s.url("/v1/conversations/channel"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({ "name": "ops", "members": [bob] }))
    };
    let (status, channel) = call(create(&acme.admin_token)).await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    let before = s.ws.store.next_position();
    let (status, again) = call(create(&acme.admin_token)).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["conversation_id"], channel["conversation_id"]);
    assert_eq!(
        s.ws.store.next_position(),
        before,
        "the retry wrote nothing"
    );
    // The same key from another organization's admin: a channel of its own.
    let (status, theirs) = call(
        c.post(s.url("/v1/conversations/channel"))
            .bearer_auth(&globex.admin_token)
            .header("Idempotency-Key", key)
            .json(&json!({ "name": "ops", "members": [] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{theirs}");
    assert_ne!(theirs["conversation_id"], channel["conversation_id"]);

    // A direct conversation as a second target.
    let (status, direct) = call(
        c.post(s.url("/v1/conversations/direct"))
            .bearer_auth(&acme.admin_token)
            .json(&json!({ "with": bob })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{direct}");

    let post = |token: &str, conversation: &serde_json::Value, text: &str| {
        let id = conversation["conversation_id"].as_str().unwrap();
        c.post(s.url(&format!("/v1/conversations/{id}/messages")))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({ "text": text }))
    };
    let (status, first) = call(post(&acme.admin_token, &channel, "from the admin")).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["deduplicated"], false);
    // Bob, in the same channel, with the same key: his own message, not the admin's.
    let (status, bobs) = call(post(&bob_token, &channel, "from bob")).await;
    assert_eq!(status, StatusCode::CREATED, "{bobs}");
    assert_eq!(bobs["deduplicated"], false);
    assert_ne!(bobs["message_id"], first["message_id"]);
    // The admin, same key, another conversation: a new message there.
    let (status, elsewhere) = call(post(&acme.admin_token, &direct, "in the direct")).await;
    assert_eq!(status, StatusCode::CREATED, "{elsewhere}");
    assert_eq!(elsewhere["deduplicated"], false);
    assert_ne!(elsewhere["message_id"], first["message_id"]);
    // The admin's retry into the channel: the first result, nothing written.
    let before = s.ws.store.next_position();
    let (status, retry) = call(post(&acme.admin_token, &channel, "from the admin")).await;
    assert_eq!(status, StatusCode::CREATED, "{retry}");
    assert_eq!(retry["message_id"], first["message_id"]);
    assert_eq!(retry["deduplicated"], true);
    assert_eq!(
        s.ws.store.next_position(),
        before,
        "the retry wrote nothing"
    );

    // Each message is in the history as its author wrote it.
    let id = channel["conversation_id"].as_str().unwrap();
    let (status, h) = call(
        c.get(s.url(&format!("/v1/conversations/{id}/messages")))
            .bearer_auth(&bob_token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{h}");
    let texts: Vec<&str> = h["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["text"].as_str())
        .collect();
    assert_eq!(texts, ["from the admin", "from bob"], "oldest first: {h}");
}

/// Every JSON body must be an object (issue 18, item 3): serde reads a struct from a
/// sequence, so `["hi"]` used to post a message and a five-element array to create a
/// user. Both are 422 `invalid_body` now, and a body that is not JSON at all is 400
/// `malformed_json`; none of them writes anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_arrays_and_non_json_bodies_are_refused_and_write_nothing() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let acme = org(&c, &s, "admin@arrays.example").await;
    let admin = &acme.admin_token;
    let (bob, _) = member(&c, &s, admin, "bob@arrays.example", "101").await;
    let (status, started) = call(
        c.post(s.url("/v1/conversations/direct"))
            .bearer_auth(admin)
            .json(&json!({ "with": bob })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let id = started["conversation_id"].as_str().unwrap().to_owned();
    let messages = s.url(&format!("/v1/conversations/{id}/messages"));
    let users = s.url("/v1/users");
    let as_json = |r: reqwest::RequestBuilder, body: &'static str| {
        r.bearer_auth(admin)
            .header("content-type", "application/json")
            .body(body)
    };

    refused(
        &s,
        c.post(&messages).bearer_auth(admin).json(&json!(["hi"])),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    refused(
        &s,
        c.post(&users).bearer_auth(admin).json(&json!([
            "Mallory",
            "666",
            "member",
            "mallory@arrays.example",
            PASSWORD
        ])),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    // Arrays behind whitespace, and the other JSON values that are not objects, too.
    for body in [" \n [\"hi\"]", "\"hi\"", "42", "null", "true"] {
        refused(
            &s,
            as_json(c.post(&messages), body),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        )
        .await;
    }
    for body in ["hello", "[\"hi\"", "{\"text\": \"hi\""] {
        refused(
            &s,
            as_json(c.post(&messages), body),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        )
        .await;
    }
    refused(
        &s,
        as_json(c.post(&users), "hello"),
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;

    // Nothing came of them: the conversation is empty, Mallory does not exist and cannot
    // log in.
    let (status, h) = call(c.get(&messages).bearer_auth(admin)).await;
    assert_eq!(status, StatusCode::OK, "{h}");
    assert_eq!(h["items"], json!([]), "{h}");
    let (status, listed) = call(c.get(&users).bearer_auth(admin)).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {listed}"))
        .iter()
        .filter_map(|u| u["name"].as_str())
        .collect();
    assert!(!names.contains(&"Mallory"), "{listed}");
    assert_eq!(names.len(), 2, "the admin and Bob only: {listed}");
    let (status, _) = call(
        c.post(s.url("/v1/sessions"))
            .json(&json!({ "email": "mallory@arrays.example", "password": PASSWORD })),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The same requests as objects are taken.
    let (status, v) = call(
        c.post(&messages)
            .bearer_auth(admin)
            .json(&json!({ "text": "hi" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, v) = call(c.post(&users).bearer_auth(admin).json(&json!({
        "name": "Mallory", "extension": "666", "role": "member",
        "email": "mallory@arrays.example", "password": PASSWORD,
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
}

/// A mixed group's members list names its external numbers too (issue 18, item 16):
/// `externals: [{number, name}]`, each named from the viewer's phonebook (their own
/// contacts first, then the organization's), `null` when the number is unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_groups_members_list_names_its_external_numbers() {
    const VENDOR: &str = "+15557770002";
    let s = TestServer::start().await;
    let c = testkit::http();
    let acme = org(&c, &s, "admin@group-members.example").await;
    let admin = &acme.admin_token;
    let (bob, bob_token) = member(&c, &s, admin, "bob@group-members.example", "101").await;
    let (carol, carol_token) = member(&c, &s, admin, "carol@group-members.example", "102").await;
    let (status, v) = call(
        c.post(s.url("/v1/numbers"))
            .bearer_auth(admin)
            .json(&json!({ "number": GROUP_LINE, "user": bob })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    // The vendor is in the organization's phonebook; the customer only in Bob's own.
    for (token, body) in [
        (
            &bob_token,
            json!({ "name": "Vera Vendor", "numbers": [VENDOR], "scope": "organization" }),
        ),
        (
            &bob_token,
            json!({ "name": "Bob's customer", "numbers": [CUSTOMER] }),
        ),
    ] {
        let (status, v) = call(c.post(s.url("/v1/contacts")).bearer_auth(token).json(&body)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}: {v}");
    }
    let (status, started) = call(
        c.post(s.url("/v1/conversations/group"))
            .bearer_auth(&bob_token)
            .json(
                &json!({ "from": GROUP_LINE, "users": [carol], "externals": [CUSTOMER, VENDOR] }),
            ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let group = started["conversation_id"].as_str().unwrap().to_owned();
    let members_as = |token: &str| {
        c.get(s.url(&format!("/v1/conversations/{group}/members")))
            .bearer_auth(token.to_owned())
    };
    let externals =
        |v: &serde_json::Value| -> std::collections::BTreeSet<(String, Option<String>)> {
            v["externals"]
                .as_array()
                .unwrap_or_else(|| panic!("no externals: {v}"))
                .iter()
                .map(|e| {
                    (
                        e["number"].as_str().unwrap().to_owned(),
                        e["name"].as_str().map(str::to_owned),
                    )
                })
                .collect()
        };

    let (status, v) = call(members_as(&carol_token)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["kind"], "group", "{v}");
    let internal: std::collections::BTreeSet<&str> = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(internal, [bob.as_str(), carol.as_str()].into(), "{v}");
    assert_eq!(
        externals(&v),
        [
            (CUSTOMER.to_owned(), None),
            (VENDOR.to_owned(), Some("Vera Vendor".to_owned())),
        ]
        .into(),
        "Carol sees the organization's name for the vendor, none for the customer: {v}"
    );
    let (status, v) = call(members_as(&bob_token)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        externals(&v),
        [
            (CUSTOMER.to_owned(), Some("Bob's customer".to_owned())),
            (VENDOR.to_owned(), Some("Vera Vendor".to_owned())),
        ]
        .into(),
        "Bob sees his own contact's name: {v}"
    );
    // Someone outside the group learns nothing.
    let (status, _) = call(members_as(admin)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
