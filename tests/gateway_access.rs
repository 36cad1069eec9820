//! Walks every authenticated route as an unauthenticated caller, as an admin and a member
//! of another organization, and as an outsider (a member of the same organization who is
//! neither an admin nor a participant): the first always gets 401 `unauthenticated`, the
//! others never succeed on anything of Acme's — only on what any member may do in their
//! own organization (list its users and numbers, start their own conversation) — and a
//! refused request writes nothing.

use reqwest::{Method, StatusCode};
use serde_json::json;
use testkit::server::{add_user, call, customer_text, TestServer, PASSWORD};

const INBOX_NUMBER: &str = "+15550303000";
const QUEUE_NUMBER: &str = "+15550304000";
const ACME_NUMBER: &str = "+15550305000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_strangers_and_other_tenants() {
    let s = TestServer::start().await;
    let c = testkit::http();
    // Acme owns a direct conversation, an inbox conversation and a queue.
    let (_, acme) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Acme", "name": "Ada", "extension": "100", "email": "ada@access.example", "password": PASSWORD,
    })))
    .await;
    let admin = acme["token"].as_str().unwrap().to_owned();
    let admin_id = acme["user_id"].as_str().unwrap().to_owned();
    let org: domain::OrgId = serde_json::from_value(acme["organization_id"].clone()).unwrap();
    let (bob, _) = add_user(&c, &s, &admin, "bob@access.example", "101").await;
    let (_, direct) = call(
        c.post(s.url("/v1/conversations/direct"))
            .bearer_auth(&admin)
            .json(&json!({ "with": bob })),
    )
    .await;
    let direct = direct["conversation_id"].as_str().unwrap().to_owned();
    let (_, inbox) = call(
        c.post(s.url("/v1/inboxes"))
            .bearer_auth(&admin)
            .json(&json!({ "name": "Desk", "number": INBOX_NUMBER })),
    )
    .await;
    let inbox = inbox["inbox_id"].as_str().unwrap().to_owned();
    let record = customer_text(&s, org, INBOX_NUMBER, "+15556660001", "hello").await;
    let actors::process::inbound_router::Routed::Recorded(inbox_conversation) =
        actors::process::inbound_router::route(&s.ws, &record)
            .await
            .unwrap()
    else {
        panic!("not recorded")
    };
    let (_, queue) = call(
        c.post(s.url("/v1/queues"))
            .bearer_auth(&admin)
            .json(&json!({ "name": "Q", "number": QUEUE_NUMBER })),
    )
    .await;
    let queue = queue["queue_id"].as_str().unwrap().to_owned();
    // Ada's texting number, a mixed group on it, a channel, and a call in the direct
    // conversation.
    let (status, v) = call(
        c.post(s.url("/v1/numbers"))
            .bearer_auth(&admin)
            .json(&json!({ "number": ACME_NUMBER, "user": admin_id })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, group) = call(
        c.post(s.url("/v1/conversations/group"))
            .bearer_auth(&admin)
            .json(&json!({ "from": ACME_NUMBER, "users": [bob], "externals": ["+15556660002"] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let group = group["conversation_id"].as_str().unwrap().to_owned();
    let (status, channel) = call(
        c.post(s.url("/v1/conversations/channel"))
            .bearer_auth(&admin)
            .json(&json!({ "name": "general", "members": [bob] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    let channel = channel["conversation_id"].as_str().unwrap().to_owned();
    let (status, started_call) = call(
        c.post(s.url(&format!("/v1/conversations/{direct}/calls")))
            .bearer_auth(&admin)
            .json(&json!({ "media": "video" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{started_call}");
    let call_id = started_call["call_id"].as_str().unwrap().to_owned();
    // Carol is in Acme but in none of its conversations, inboxes or queues.
    let carol = add_user(&c, &s, &admin, "carol@access.example", "102").await;

    // Globex is another tenant; its admin is fully authenticated.
    let (_, globex) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Globex", "name": "Gus", "extension": "100", "email": "gus@globex.example", "password": PASSWORD,
    })))
    .await;
    let stranger = globex["token"].as_str().unwrap().to_owned();
    let globex_member = add_user(&c, &s, &stranger, "gina@globex.example", "101").await;

    let routes: Vec<(Method, String, serde_json::Value)> = vec![
        (Method::GET, "/v1/me".into(), json!(null)),
        (Method::DELETE, "/v1/sessions/current".into(), json!(null)),
        (
            Method::POST,
            "/v1/users".into(),
            json!({ "name": "X", "extension": "555", "role": "Admin", "email": "x@access.example", "password": PASSWORD }),
        ),
        (
            Method::POST,
            "/v1/conversations/direct".into(),
            json!({ "with": bob }),
        ),
        (
            Method::GET,
            format!("/v1/conversations/{direct}/messages"),
            json!(null),
        ),
        (
            Method::POST,
            format!("/v1/conversations/{direct}/messages"),
            json!({ "text": "intrusion" }),
        ),
        (
            Method::POST,
            format!("/v1/conversations/{direct}/read"),
            json!({ "up_to": 1 }),
        ),
        (
            Method::POST,
            "/v1/inboxes".into(),
            json!({ "name": "Mine", "number": INBOX_NUMBER }),
        ),
        (
            Method::POST,
            format!("/v1/inboxes/{inbox}/members"),
            json!({ "user": bob }),
        ),
        (Method::GET, "/v1/inboxes".into(), json!(null)),
        (
            Method::PATCH,
            format!("/v1/inboxes/{inbox}"),
            json!({ "name": "Taken over" }),
        ),
        (
            Method::DELETE,
            format!("/v1/inboxes/{inbox}/members/{bob}"),
            json!(null),
        ),
        (
            Method::POST,
            format!("/v1/conversations/{inbox_conversation}/assign-to-me"),
            json!(null),
        ),
        (
            Method::POST,
            format!("/v1/conversations/{inbox_conversation}/transfer"),
            json!({ "to": bob }),
        ),
        (
            Method::POST,
            format!("/v1/conversations/{inbox_conversation}/return"),
            json!(null),
        ),
        (
            Method::POST,
            format!("/v1/conversations/{inbox_conversation}/done"),
            json!(null),
        ),
        (
            Method::POST,
            "/v1/queues".into(),
            json!({ "name": "Mine", "number": QUEUE_NUMBER }),
        ),
        (
            Method::POST,
            format!("/v1/queues/{queue}/members"),
            json!({ "user": bob }),
        ),
        (
            Method::DELETE,
            format!("/v1/queues/{queue}/members/{bob}"),
            json!(null),
        ),
        (
            Method::PUT,
            format!("/v1/queues/{queue}/policy"),
            json!({ "wait_timeout_ms": 1000 }),
        ),
        (
            Method::POST,
            format!("/v1/queues/{queue}/login"),
            json!(null),
        ),
        (
            Method::POST,
            format!("/v1/queues/{queue}/logout"),
            json!(null),
        ),
        (
            Method::POST,
            format!("/v1/queues/{queue}/interactions/{inbox_conversation}/claim"),
            json!(null),
        ),
        (Method::GET, "/v1/queue-views/history".into(), json!(null)),
        (Method::GET, "/v1/queues".into(), json!(null)),
        (
            Method::GET,
            format!("/v1/queues/{queue}/waiting"),
            json!(null),
        ),
        (Method::GET, "/v1/users".into(), json!(null)),
        (
            Method::POST,
            format!("/v1/users/{bob}/role"),
            json!({ "role": "Admin" }),
        ),
        (
            Method::PUT,
            format!("/v1/users/{bob}/settings"),
            json!({ "text_messages_to_desk_phone": true }),
        ),
        (Method::GET, "/v1/me/settings".into(), json!(null)),
        (
            Method::PUT,
            "/v1/me/settings".into(),
            json!({ "text_messages_to_desk_phone": true }),
        ),
        (Method::GET, "/v1/numbers".into(), json!(null)),
        (
            Method::POST,
            "/v1/numbers/%2B15550305000/assignees".into(),
            json!({ "user": bob }),
        ),
        (
            Method::DELETE,
            format!("/v1/numbers/%2B15550305000/assignees/{admin_id}"),
            json!(null),
        ),
        (
            Method::POST,
            "/v1/numbers/%2B15550303000/route".into(),
            json!({ "type": "user", "user": bob }),
        ),
        (
            Method::POST,
            "/v1/conversations/group".into(),
            json!({ "from": ACME_NUMBER, "users": [bob], "externals": ["+15556660003"] }),
        ),
        (
            Method::GET,
            format!("/v1/conversations/{group}/messages"),
            json!(null),
        ),
        (
            Method::POST,
            format!("/v1/conversations/{group}/calls"),
            json!({ "media": "audio" }),
        ),
        (
            Method::POST,
            format!("/v1/conversations/{direct}/calls"),
            json!({ "media": "audio" }),
        ),
        (
            Method::POST,
            format!("/v1/conversations/{direct}/calls/{call_id}/end"),
            json!(null),
        ),
        (
            Method::POST,
            format!("/v1/conversations/{channel}/name"),
            json!({ "name": "hijacked" }),
        ),
        (
            Method::GET,
            format!("/v1/conversations/{channel}/members"),
            json!(null),
        ),
        (
            Method::GET,
            format!("/v1/conversations/{direct}/members"),
            json!(null),
        ),
        (Method::GET, "/v1/channels".into(), json!(null)),
    ];
    // Routes about the caller only (their session, settings and queue views).
    let about_the_caller = |path: &str| {
        matches!(
            path,
            "/v1/me" | "/v1/sessions/current" | "/v1/queue-views/history" | "/v1/me/settings"
        )
    };
    // What any member may do in their own organization (list its users, numbers and
    // channels, and the queues they are an agent of: none of Acme's).
    let own_organization = |method: &Method, path: &str| {
        matches!(
            (method.as_str(), path),
            ("GET", "/v1/users")
                | ("GET", "/v1/inboxes")
                | ("GET", "/v1/numbers")
                | ("GET", "/v1/queues")
                | ("GET", "/v1/channels")
        )
    };
    // Acme's data, which no answer to another organization may contain.
    let acme_marks = [
        bob.clone(),
        admin_id.clone(),
        carol.0.clone(),
        direct.clone(),
        group.clone(),
        channel.clone(),
        queue.clone(),
        ACME_NUMBER.to_owned(),
        INBOX_NUMBER.to_owned(),
    ];
    let before = s.ws.store.next_position();
    for (method, path, body) in &routes {
        let request = |token: Option<&str>| {
            let mut r = c.request(method.clone(), s.url(path));
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            if !body.is_null() {
                r = r.json(body);
            }
            r
        };
        let (status, err) = call(request(None)).await;
        assert_eq!(
            (status, err["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthenticated")),
            "{method} {path}"
        );
        if about_the_caller(path) {
            continue;
        }
        for token in [&stranger, &globex_member.1] {
            let (status, err) = call(request(Some(token.as_str()))).await;
            // Creating its own users, inboxes, queues or a conversation is Globex's right,
            // but never with Acme's users or numbers; everything else of Acme's is
            // invisible.
            assert!(
                !status.is_success()
                    || (*method == Method::POST && path == "/v1/users")
                    || own_organization(method, path),
                "{method} {path}: {status} {err}"
            );
            assert!(
                err["code"].is_string() || status.is_success(),
                "{method} {path}"
            );
            if status.is_success() {
                let text = err.to_string();
                for mark in &acme_marks {
                    assert!(
                        !text.contains(mark.as_str()),
                        "{method} {path} leaks {mark}: {text}"
                    );
                }
            }
        }
    }
    // Globex's own-user creation aside, nothing of Acme's was touched.
    let (_, history) = call(
        c.get(s.url("/v1/queue-views/history"))
            .bearer_auth(&stranger),
    )
    .await;
    assert!(history.as_array().unwrap().is_empty());
    let written = s.ws.store.next_position() - before;
    assert!(
        written <= 3,
        "only Globex's own new user may have been written, got {written} events"
    );

    // Carol, an outsider in Acme: refused (and nothing written) wherever a participant,
    // team member or admin is needed.
    let outsider_may = |method: &Method, path: &str| {
        own_organization(method, path)
            // Her own direct conversation with Bob is hers to start.
            || path == "/v1/conversations/direct"
            // Logging out of a queue one is not logged in to changes nothing.
            || path.ends_with("/logout")
    };
    for (method, path, body) in &routes {
        if about_the_caller(path) || outsider_may(method, path) {
            continue;
        }
        let mut r = c.request(method.clone(), s.url(path)).bearer_auth(&carol.1);
        if !body.is_null() {
            r = r.json(body);
        }
        let before = s.ws.store.next_position();
        let (status, err) = call(r).await;
        assert!(
            status.is_client_error() && err["code"].is_string(),
            "{method} {path}: {status} {err}"
        );
        assert_eq!(
            s.ws.store.next_position(),
            before,
            "{method} {path} wrote something"
        );
    }

    // Carol browses Acme's channels (anyone in Acme may join one); Globex, once the list
    // has caught up with everything, still sees none of them.
    let head = s.ws.store.next_position() - 1;
    let channels = |token: &str| {
        c.get(s.url(&format!("/v1/channels?after={head}")))
            .bearer_auth(token.to_owned())
    };
    let (status, list) = call(channels(&carol.1)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(
        (&items[0]["conversation_id"], &items[0]["joined"]),
        (&json!(channel), &json!(false))
    );
    for token in [&stranger, &globex_member.1] {
        let (status, list) = call(channels(token)).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list["items"], json!([]), "{list}");
    }
}
