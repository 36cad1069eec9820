//! Conversations over real HTTP: a direct conversation between two users, idempotent
//! posts, paginated history, read receipts, and what outsiders (another organization, a
//! non-participant, a member acting as admin) are refused.

use reqwest::{Client, StatusCode};
use serde_json::json;
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
        "name": email, "extension": ext, "role": "Member", "email": email, "password": PASSWORD,
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
    let c = Client::new();
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
    let c = Client::new();
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
        "name": "Mallory", "extension": "666", "role": "Admin", "email": "m@acme2.example", "password": PASSWORD,
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
    let c = Client::new();
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
    assert_eq!(h["items"][0]["text"], "hello channel");

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
