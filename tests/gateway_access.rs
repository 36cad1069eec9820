//! Walks every authenticated route as an unauthenticated caller and as an admin of another
//! organization: the first always gets 401 `unauthenticated`, the second never succeeds,
//! and neither writes anything.

use reqwest::{Client, Method, StatusCode};
use serde_json::json;
use testkit::server::{add_user, call, customer_text, TestServer, PASSWORD};

const INBOX_NUMBER: &str = "+15550303000";
const QUEUE_NUMBER: &str = "+15550304000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_strangers_and_other_tenants() {
    let s = TestServer::start().await;
    let c = Client::new();
    // Acme owns a direct conversation, an inbox conversation and a queue.
    let (_, acme) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Acme", "name": "Ada", "extension": "100", "email": "ada@access.example", "password": PASSWORD,
    })))
    .await;
    let admin = acme["token"].as_str().unwrap().to_owned();
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

    // Globex is another tenant; its admin is fully authenticated.
    let (_, globex) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Globex", "name": "Gus", "extension": "100", "email": "gus@globex.example", "password": PASSWORD,
    })))
    .await;
    let stranger = globex["token"].as_str().unwrap().to_owned();

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
        if path == "/v1/me" || path == "/v1/sessions/current" || path == "/v1/queue-views/history" {
            continue; // about the caller only
        }
        let (status, err) = call(request(Some(&stranger))).await;
        // Creating its own users, inboxes, queues or a conversation is Globex's right, but
        // never with Acme's users or numbers; everything else of Acme's is invisible.
        assert!(
            !status.is_success() || path == "/v1/users",
            "{method} {path}: {status} {err}"
        );
        assert!(
            err["code"].is_string() || status.is_success(),
            "{method} {path}"
        );
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
}
