//! Browsing an organization's channels over real HTTP (`GET /v1/channels`): every channel
//! of the caller's organization, joined or not, newest activity first, with its member
//! count and whether the caller is in it — following joins, leaves, renames and new
//! messages, paginated with `before=`; never another organization's; refused to the
//! unauthenticated and for bad queries.

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use testkit::server::{add_user, call, TestServer, PASSWORD};

/// Bootstraps an organization: (admin user id, admin token).
async fn organization(c: &Client, s: &TestServer, name: &str, email: &str) -> (String, String) {
    let (status, v) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": name, "name": "Ada", "extension": "100", "email": email, "password": PASSWORD,
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    (
        v["user_id"].as_str().unwrap().to_owned(),
        v["token"].as_str().unwrap().to_owned(),
    )
}

/// Creates a channel as `token` with `members`: its id.
async fn channel(c: &Client, s: &TestServer, token: &str, name: &str, members: &[&str]) -> String {
    let (status, v) = call(
        c.post(s.url("/v1/conversations/channel"))
            .bearer_auth(token)
            .json(&json!({ "name": name, "members": members })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["conversation_id"].as_str().unwrap().to_owned()
}

/// `POST` to a channel's `action` as `token`, expecting success.
async fn act(c: &Client, s: &TestServer, token: &str, conv: &str, action: &str, body: Value) {
    let mut r = c
        .post(s.url(&format!("/v1/conversations/{conv}/{action}")))
        .bearer_auth(token);
    if !body.is_null() {
        r = r.json(&body);
    }
    let (status, v) = call(r).await;
    assert!(status.is_success(), "{action}: {status} {v}");
}

/// One page of `GET /v1/channels?<query>` as `token` sees it once the list has caught up
/// with everything written so far.
async fn page(c: &Client, s: &TestServer, token: &str, query: &str) -> Value {
    let head = s.ws.store.next_position() - 1;
    let (status, v) = call(
        c.get(s.url(&format!("/v1/channels?after={head}&{query}")))
            .bearer_auth(token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

/// The whole list (one page of up to 200).
async fn all(c: &Client, s: &TestServer, token: &str) -> Vec<Value> {
    let v = page(c, s, token, "limit=200").await;
    assert!(v["next_before"].is_null(), "{v}");
    v["items"].as_array().unwrap().clone()
}

fn ids(items: &[Value]) -> Vec<&str> {
    items
        .iter()
        .map(|i| i["conversation_id"].as_str().unwrap())
        .collect()
}

fn find<'a>(items: &'a [Value], conv: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i["conversation_id"] == conv)
        .unwrap_or_else(|| panic!("{conv} not listed in {items:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_browse_their_organizations_channels_and_join_them() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let (ada, admin) = organization(&c, &s, "Acme", "ada@channels.example").await;
    let (bob, bob_token) = add_user(&c, &s, &admin, "bob@channels.example", "101").await;
    let (carol, carol_token) = add_user(&c, &s, &admin, "carol@channels.example", "102").await;
    let (_, gus) = organization(&c, &s, "Globex", "gus@channels.example").await;

    // Acme's channels, oldest first; Carol is in "carol-and-bob" only. A direct
    // conversation is no channel.
    let general = channel(&c, &s, &admin, "general", &[&bob]).await;
    let random = channel(&c, &s, &admin, "random", &[]).await;
    let ours = channel(&c, &s, &bob_token, "carol-and-bob", &[&carol]).await;
    let (status, direct) = call(
        c.post(s.url("/v1/conversations/direct"))
            .bearer_auth(&admin)
            .json(&json!({ "with": carol })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{direct}");
    let direct = direct["conversation_id"].as_str().unwrap().to_owned();
    let secret = channel(&c, &s, &gus, "globex-only", &[]).await;

    // Carol sees all of Acme's channels, newest activity first, and none of Globex's.
    let list = all(&c, &s, &carol_token).await;
    assert_eq!(ids(&list), [&ours, &random, &general]);
    assert!(!ids(&list).contains(&direct.as_str()));
    assert!(!ids(&list).contains(&secret.as_str()));
    let g = find(&list, &general);
    assert_eq!(
        (
            g["name"].as_str(),
            g["members"].as_u64(),
            g["joined"].as_bool()
        ),
        (Some("general"), Some(2), Some(false))
    );
    assert!(g["last_activity_at_ms"].as_u64().unwrap() > 0);
    let o = find(&list, &ours);
    assert_eq!(
        (o["members"].as_u64(), o["joined"].as_bool()),
        (Some(2), Some(true))
    );
    assert_eq!(find(&list, &random)["members"], 1);
    // Ada (an admin) is in "general" and "random", not in "carol-and-bob".
    let list = all(&c, &s, &admin).await;
    assert_eq!(find(&list, &general)["joined"], true);
    assert_eq!(find(&list, &ours)["joined"], false);
    // Globex sees its own channel only.
    let list = all(&c, &s, &gus).await;
    assert_eq!(ids(&list), [&secret]);

    // A message moves its channel to the top; its position is the new cursor.
    act(
        &c,
        &s,
        &admin,
        &general,
        "messages",
        json!({ "text": "hello all" }),
    )
    .await;
    let list = all(&c, &s, &carol_token).await;
    assert_eq!(ids(&list), [&general, &ours, &random]);
    let positions: Vec<u64> = list
        .iter()
        .map(|i| i["position"].as_u64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] > w[1]), "{positions:?}");

    // Carol joins "general": she is counted and marked as joined; leaving undoes both.
    act(&c, &s, &carol_token, &general, "join", Value::Null).await;
    let g = find(&all(&c, &s, &carol_token).await, &general).clone();
    assert_eq!(
        (g["members"].as_u64(), g["joined"].as_bool()),
        (Some(3), Some(true))
    );
    // Others see the new count, not her flag.
    let g = find(&all(&c, &s, &bob_token).await, &general).clone();
    assert_eq!(
        (g["members"].as_u64(), g["joined"].as_bool()),
        (Some(3), Some(true))
    );
    act(&c, &s, &carol_token, &general, "leave", Value::Null).await;
    let g = find(&all(&c, &s, &carol_token).await, &general).clone();
    assert_eq!(
        (g["members"].as_u64(), g["joined"].as_bool()),
        (Some(2), Some(false))
    );

    // A rename shows at once, to members and others alike.
    act(
        &c,
        &s,
        &admin,
        &random,
        "name",
        json!({ "name": "watercooler" }),
    )
    .await;
    for token in [&admin, &carol_token] {
        assert_eq!(
            find(&all(&c, &s, token).await, &random)["name"],
            "watercooler"
        );
    }
    // The histories tell who joined, left and renamed, between the messages.
    let notes = |h: &Value| -> Vec<Value> {
        h["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["type"] == "system")
            .map(|i| i["note"].clone())
            .collect()
    };
    let (status, h) = call(
        c.get(s.url(&format!("/v1/conversations/{general}/messages")))
            .bearer_auth(&bob_token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{h}");
    assert_eq!(
        notes(&h),
        [
            json!({ "type": "member_joined", "user": carol }),
            json!({ "type": "member_left", "user": carol }),
        ],
        "{h}"
    );
    let (_, h) = call(
        c.get(s.url(&format!("/v1/conversations/{random}/messages")))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(
        notes(&h),
        [json!({ "type": "channel_renamed", "name": "watercooler", "by": ada })],
        "{h}"
    );
    let _ = bob;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_walk_every_channel_once_newest_first() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let (_, admin) = organization(&c, &s, "Acme", "ada@pages.example").await;
    let (_, member) = add_user(&c, &s, &admin, "bob@pages.example", "101").await;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(channel(&c, &s, &admin, &format!("ch{i}"), &[]).await);
    }
    // Activity reorders them: ch2 and ch5 are now the most recent.
    act(
        &c,
        &s,
        &admin,
        &created[2],
        "messages",
        json!({ "text": "a" }),
    )
    .await;
    act(
        &c,
        &s,
        &admin,
        &created[5],
        "messages",
        json!({ "text": "b" }),
    )
    .await;
    let mut expected: Vec<&str> = vec![&created[5], &created[2]];
    expected.extend(
        created
            .iter()
            .rev()
            .filter(|c| **c != created[2] && **c != created[5])
            .map(String::as_str),
    );
    assert_eq!(ids(&all(&c, &s, &member).await), expected);

    for limit in [1, 2, 3, 7] {
        let mut walked = Vec::new();
        let mut query = format!("limit={limit}");
        let mut pages = 0;
        loop {
            let v = page(&c, &s, &member, &query).await;
            let items = v["items"].as_array().unwrap();
            assert!(items.len() <= limit, "{v}");
            walked.extend(ids(items).into_iter().map(str::to_owned));
            pages += 1;
            assert!(pages <= 8, "the walk does not end: {v}");
            match v["next_before"].as_u64() {
                Some(b) => {
                    assert_eq!(Some(b), items.last().and_then(|i| i["position"].as_u64()));
                    query = format!("limit={limit}&before={b}");
                }
                None => break,
            }
        }
        assert_eq!(walked, expected, "limit {limit}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_channel_list_refuses_strangers_and_bad_queries() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let (_, admin) = organization(&c, &s, "Acme", "ada@refuse.example").await;
    channel(&c, &s, &admin, "general", &[]).await;

    let (status, v) = call(c.get(s.url("/v1/channels"))).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
    let (status, v) = call(c.get(s.url("/v1/channels")).bearer_auth("not-a-token")).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
    for (query, code) in [
        ("limit=0", "invalid_limit"),
        ("limit=201", "invalid_limit"),
        ("limit=ten", "invalid_query"),
        ("before=-1", "invalid_query"),
        ("filter=channels", "invalid_query"),
    ] {
        let (status, v) = call(
            c.get(s.url(&format!("/v1/channels?{query}")))
                .bearer_auth(&admin),
        )
        .await;
        assert_eq!(
            (status, v["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{query}: {v}"
        );
    }
    // A position the model will not reach in time.
    let (status, v) = call(
        c.get(s.url(&format!("/v1/channels?after={}", u64::MAX / 2)))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("view_behind"))
    );
}
