//! SMS queues over real HTTP: an admin sets up a queue, two agents log in, a customer's
//! text waits in Pending, one claim wins, transfer, close, and the History view finds it
//! by the customer's number. Views read the caller's own writes (`?after=`).

use actors::process::inbound_router;
use domain::OrgId;
use reqwest::StatusCode;
use serde_json::json;
use testkit::server::{add_user, call, customer_text, TestServer, PASSWORD};

const QUEUE_NUMBER: &str = "+15550202000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_claim_transfer_and_close_through_the_api() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let (_, boot) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Acme", "name": "Ada", "extension": "100", "email": "ada@queue.example", "password": PASSWORD,
    })))
    .await;
    let admin = boot["token"].as_str().unwrap().to_owned();
    let org: OrgId = serde_json::from_value(boot["organization_id"].clone()).unwrap();
    let (alice, alice_token) = add_user(&c, &s, &admin, "alice@queue.example", "101").await;
    let (bob, bob_token) = add_user(&c, &s, &admin, "bob@queue.example", "102").await;
    let (_, carol_token) = add_user(&c, &s, &admin, "carol@queue.example", "103").await;

    let (status, q) = call(
        c.post(s.url("/v1/queues"))
            .bearer_auth(&admin)
            .json(&json!({ "name": "Support", "number": QUEUE_NUMBER })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{q}");
    let queue = q["queue_id"].as_str().unwrap().to_owned();
    let (status, _) = call(
        c.post(s.url(&format!("/v1/numbers/{QUEUE_NUMBER}/sms-registration")))
            .bearer_auth(&admin)
            .json(&json!({ "registered": true })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for u in [&alice, &bob] {
        let (status, _) = call(
            c.post(s.url(&format!("/v1/queues/{queue}/members")))
                .bearer_auth(&admin)
                .json(&json!({ "user": u })),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    for t in [&alice_token, &bob_token] {
        let (status, _) = call(
            c.post(s.url(&format!("/v1/queues/{queue}/login")))
                .bearer_auth(t),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, err) = call(
        c.post(s.url(&format!("/v1/queues/{queue}/login")))
            .bearer_auth(&carol_token),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_a_queue_member"))
    );

    // A customer texts the queue's number.
    let record = customer_text(&s, org, QUEUE_NUMBER, "+15558880042", "I need help").await;
    let inbound_router::Routed::Queued(conversation, _) =
        inbound_router::route(&s.ws, &record).await.unwrap()
    else {
        panic!("not queued")
    };
    let now = s.ws.store.next_position() - 1;

    let view = |tab: &str, token: &str, after: u64, search: &str| {
        c.get(s.url(&format!(
            "/v1/queue-views/{tab}?after={after}&search={search}"
        )))
        .bearer_auth(token.to_owned())
    };
    let (status, pending) = call(view("pending", &alice_token, now, "")).await;
    assert_eq!(status, StatusCode::OK, "{pending}");
    assert_eq!(pending[0]["customer"], "+15558880042");
    assert_eq!(pending[0]["conversation_id"], conversation.to_string());

    let act = |action: &str, token: &str| {
        c.post(s.url(&format!(
            "/v1/queues/{queue}/interactions/{conversation}/{action}"
        )))
        .bearer_auth(token.to_owned())
    };
    let (status, claimed) = call(act("claim", &alice_token)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, err) = call(act("claim", &bob_token)).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_claimed"))
    );
    let after = claimed["position"].as_u64().unwrap();
    let (_, active) = call(view("active", &alice_token, after, "")).await;
    assert_eq!(active.as_array().unwrap().len(), 1);
    let (_, pending) = call(view("pending", &bob_token, after, "")).await;
    assert!(
        pending.as_array().unwrap().is_empty(),
        "claimed work leaves Pending"
    );

    // The agent on it reads the history and replies from the queue's number; others in
    // the queue do not see it.
    let messages = s.url(&format!("/v1/conversations/{conversation}/messages"));
    let (status, h) = call(c.get(&messages).bearer_auth(&alice_token)).await;
    assert_eq!(status, StatusCode::OK, "{h}");
    assert!(h["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["text"] == "I need help"));
    let (status, _) = call(c.get(&messages).bearer_auth(&bob_token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, posted) = call(
        c.post(&messages)
            .bearer_auth(&alice_token)
            .json(&json!({ "text": "Happy to help!" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{posted}");

    let (status, _) = call(act("transfer", &alice_token).json(&json!({ "to": bob }))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(c.get(&messages).bearer_auth(&bob_token)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the transfer hands the conversation over"
    );
    let (status, _) = call(c.get(&messages).bearer_auth(&alice_token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, closed) = call(act("close", &bob_token)).await;
    assert_eq!(status, StatusCode::OK);
    let after = closed["position"].as_u64().unwrap();
    let (_, history) = call(view("history", &bob_token, after, "8880042")).await;
    assert_eq!(history.as_array().unwrap().len(), 1);
    assert_eq!(history[0]["agent"], bob);
    let (_, none) = call(view("history", &carol_token, after, "")).await;
    assert!(
        none.as_array().unwrap().is_empty(),
        "not a member: no history"
    );
    let (status, _) = call(
        c.get(s.url("/v1/queue-views/everything"))
            .bearer_auth(&bob_token),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
