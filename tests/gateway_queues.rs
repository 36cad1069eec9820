//! SMS queues over real HTTP: an admin sets up a queue, two agents log in, a customer's
//! text waits in Pending, one claim wins, transfer, close, and the History view finds it
//! by the customer's number. Views read the caller's own writes (`?after=`).

use domain::OrgId;
use reqwest::StatusCode;
use serde_json::json;
use testkit::server::{add_user, call, customer_text, TestServer, PASSWORD};
use workers::inbound_router;

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
    // the queue do not see it while she holds it.
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
    // Closed, it stays readable by the queue's agents (its History), read only; not by
    // someone off the queue.
    let (status, h) = call(c.get(&messages).bearer_auth(&alice_token)).await;
    assert_eq!(status, StatusCode::OK, "{h}");
    assert!(h["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["text"] == "I need help"));
    let (status, refused) = call(
        c.post(&messages)
            .bearer_auth(&alice_token)
            .json(&json!({ "text": "too late" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let (status, _) = call(c.get(&messages).bearer_auth(&carol_token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_read_their_login_state_and_a_queues_waiting_list() {
    const NUMBER: &str = "+15550202100";
    let s = TestServer::start().await;
    let c = testkit::http();
    let (_, boot) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Acme", "name": "Ada", "extension": "100", "email": "ada@waiting.example", "password": PASSWORD,
    })))
    .await;
    let admin = boot["token"].as_str().unwrap().to_owned();
    let org: OrgId = serde_json::from_value(boot["organization_id"].clone()).unwrap();
    let (alice, alice_token) = add_user(&c, &s, &admin, "alice@waiting.example", "101").await;
    let (bob, bob_token) = add_user(&c, &s, &admin, "bob@waiting.example", "102").await;
    let (_, carol_token) = add_user(&c, &s, &admin, "carol@waiting.example", "103").await;
    let (_, q) = call(
        c.post(s.url("/v1/queues"))
            .bearer_auth(&admin)
            .json(&json!({ "name": "Billing", "number": NUMBER, "policy": {
                "on_wait_timeout": { "type": "close" }, "on_idle_timeout": "return_to_queue", "max_pending_visible": 1,
            } })),
    )
    .await;
    let queue = q["queue_id"].as_str().unwrap().to_owned();
    let mut last = 0;
    for u in [&alice, &bob] {
        let (status, added) = call(
            c.post(s.url(&format!("/v1/queues/{queue}/members")))
                .bearer_auth(&admin)
                .json(&json!({ "user": u })),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        last = added["position"].as_u64().unwrap();
    }
    let mine = |token: &str, after: u64| {
        c.get(s.url(&format!("/v1/queues?after={after}")))
            .bearer_auth(token.to_owned())
    };

    // A member starts logged out; logging in and out shows in their listing only.
    let (status, list) = call(mine(&alice_token, last)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["queue_id"], queue);
    assert_eq!(list["items"][0]["name"], "Billing");
    assert_eq!(list["items"][0]["logged_in"], false);
    let (status, done) = call(
        c.post(s.url(&format!("/v1/queues/{queue}/login")))
            .bearer_auth(&alice_token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let after = done["position"].as_u64().unwrap();
    let (_, list) = call(mine(&alice_token, after)).await;
    assert_eq!(list["items"][0]["logged_in"], true, "{list}");
    let (_, list) = call(mine(&bob_token, after)).await;
    assert_eq!(
        list["items"][0]["logged_in"], false,
        "only Alice logged in: {list}"
    );
    let (_, list) = call(mine(&carol_token, after)).await;
    assert_eq!(list["items"], json!([]), "not an agent of any queue");
    // An admin who is no agent sees every queue of the organization, and its agents.
    let (_, list) = call(mine(&admin, after)).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    let item = &list["items"][0];
    assert_eq!(
        (&item["queue_id"], &item["member"], &item["logged_in"]),
        (&json!(queue), &json!(false), &json!(false)),
        "{list}"
    );
    let mut agents = vec![alice.clone(), bob.clone()];
    agents.sort();
    let mut listed: Vec<String> = serde_json::from_value(item["members"].clone()).unwrap();
    listed.sort();
    assert_eq!(listed, agents, "{list}");
    assert_eq!(item["logged_in_members"], json!([alice]), "{list}");
    let (_, list) = call(mine(&alice_token, after)).await;
    assert_eq!(list["items"][0]["member"], true, "{list}");

    // Two customers wait: members and admins see the waiting list, oldest first — agents
    // as many as the policy shows (one), admins all.
    let mut queued = Vec::new();
    for customer in ["+15558880077", "+15558880078"] {
        let record = customer_text(&s, org, NUMBER, customer, "Invoice question").await;
        let inbound_router::Routed::Queued(conversation, _) =
            inbound_router::route(&s.ws, &record).await.unwrap()
        else {
            panic!("not queued")
        };
        queued.push(conversation);
    }
    let (conversation, second) = (queued[0], queued[1]);
    let now = s.ws.store.next_position() - 1;
    let waiting = |token: &str, after: u64| {
        c.get(s.url(&format!("/v1/queues/{queue}/waiting?after={after}")))
            .bearer_auth(token.to_owned())
    };
    for (token, shown) in [(&alice_token, 1), (&bob_token, 1), (&admin, 2)] {
        let (status, w) = call(waiting(token, now)).await;
        assert_eq!(status, StatusCode::OK, "{w}");
        assert_eq!(w["queue_id"], queue);
        assert_eq!(w["name"], "Billing");
        assert_eq!(w["items"].as_array().unwrap().len(), shown, "{w}");
        assert_eq!(w["items"][0]["conversation_id"], conversation.to_string());
        assert_eq!(w["items"][0]["customer"], "+15558880077");
        assert!(w["items"][0]["since_ms"].as_u64().unwrap() > 0);
    }
    let (_, w) = call(waiting(&admin, now)).await;
    assert_eq!(w["items"][1]["conversation_id"], second.to_string());
    assert!(w["items"][0]["since_ms"].as_u64() <= w["items"][1]["since_ms"].as_u64());
    let (_, list) = call(mine(&bob_token, now)).await;
    assert_eq!(list["items"][0]["waiting"], 2, "{list}");
    let (status, err) = call(waiting(&carol_token, now)).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_a_queue_member")),
        "{err}"
    );

    // Claimed work leaves the waiting list (read after the claim's own position).
    let (status, claimed) = call(
        c.post(s.url(&format!(
            "/v1/queues/{queue}/interactions/{conversation}/claim"
        )))
        .bearer_auth(&alice_token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{claimed}");
    let after = claimed["position"].as_u64().unwrap();
    let (_, w) = call(waiting(&bob_token, after)).await;
    assert_eq!(w["items"].as_array().unwrap().len(), 1, "{w}");
    assert_eq!(
        w["items"][0]["conversation_id"],
        second.to_string(),
        "the claimed one left: {w}"
    );
    let (_, list) = call(mine(&bob_token, after)).await;
    assert_eq!(list["items"][0]["waiting"], 1, "{list}");

    // Logging out shows too.
    let (_, done) = call(
        c.post(s.url(&format!("/v1/queues/{queue}/logout")))
            .bearer_auth(&alice_token),
    )
    .await;
    let (_, list) = call(mine(&alice_token, done["position"].as_u64().unwrap())).await;
    assert_eq!(list["items"][0]["logged_in"], false, "{list}");

    // Bad input: an unknown queue, an id that is not one, an unknown parameter.
    let unknown = domain::QueueId::random();
    let (status, err) = call(
        c.get(s.url(&format!("/v1/queues/{unknown}/waiting")))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("queue_not_found"))
    );
    let (status, err) = call(c.get(s.url("/v1/queues/nope/waiting")).bearer_auth(&admin)).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_path"))
    );
    let (status, err) = call(
        c.get(s.url(&format!("/v1/queues/{queue}/waiting?limit=5")))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_query"))
    );
    let (status, err) = call(c.get(s.url("/v1/queues?after=x")).bearer_auth(&admin)).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_query"))
    );
}

/// An admin changes a queue's timeout policy and takes an agent off it: the agent is
/// logged out, no longer lists the queue and cannot log in again; agents can do neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_set_a_queues_policy_and_remove_agents() {
    const NUMBER: &str = "+15550202300";
    let s = TestServer::start().await;
    let c = testkit::http();
    let (_, boot) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Acme", "name": "Ada", "extension": "100", "email": "ada@policy.example", "password": PASSWORD,
    })))
    .await;
    let admin = boot["token"].as_str().unwrap().to_owned();
    let (alice, alice_token) = add_user(&c, &s, &admin, "alice@policy.example", "101").await;
    let (_, q) = call(
        c.post(s.url("/v1/queues"))
            .bearer_auth(&admin)
            .json(&json!({ "name": "Billing", "number": NUMBER })),
    )
    .await;
    let queue = q["queue_id"].as_str().unwrap().to_owned();
    let queue_id: domain::QueueId = queue.parse().unwrap();
    let (status, _) = call(
        c.post(s.url(&format!("/v1/queues/{queue}/members")))
            .bearer_auth(&admin)
            .json(&json!({ "user": alice })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        c.post(s.url(&format!("/v1/queues/{queue}/login")))
            .bearer_auth(&alice_token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // The policy: admins only; it is the queue's from then on.
    let policy = json!({
        "wait_timeout_ms": 60_000, "on_wait_timeout": { "type": "close" },
        "idle_timeout_ms": 300_000, "on_idle_timeout": "return_to_queue",
    });
    let set = |token: &str| {
        c.put(s.url(&format!("/v1/queues/{queue}/policy")))
            .bearer_auth(token.to_owned())
            .json(&policy)
    };
    let (status, err) = call(set(&alice_token)).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("admin_only"))
    );
    let (status, done) = call(set(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let stored =
        s.ws.queues
            .query(&queue_id, |q: &domain::Queue, _| {
                q.header().map(|h| h.policy.clone())
            })
            .await
            .unwrap()
            .unwrap();
    assert_eq!(
        serde_json::to_value(&stored).unwrap()["wait_timeout_ms"],
        60_000
    );
    assert_eq!(
        serde_json::to_value(&stored).unwrap()["on_wait_timeout"],
        "Close"
    );

    // Removing Alice: admins only; then she is off it and cannot log back in.
    let remove = |token: &str| {
        c.delete(s.url(&format!("/v1/queues/{queue}/members/{alice}")))
            .bearer_auth(token.to_owned())
    };
    let (status, err) = call(remove(&alice_token)).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("admin_only"))
    );
    let (status, removed) = call(remove(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    let after = removed["position"].as_u64().unwrap();
    let (_, list) = call(
        c.get(s.url(&format!("/v1/queues?after={after}")))
            .bearer_auth(&alice_token),
    )
    .await;
    assert_eq!(list["items"], json!([]), "{list}");
    let (status, err) = call(
        c.post(s.url(&format!("/v1/queues/{queue}/login")))
            .bearer_auth(&alice_token),
    )
    .await;
    assert_eq!(
        (status.is_client_error(), err["code"].as_str()),
        (true, Some("not_a_queue_member")),
        "{status} {err}"
    );
}

/// A queue's `close_with_reply` wait timeout texts the customer (issue 18, item 2): when
/// nobody claims the interaction in time it closes, and the reply goes out from the
/// queue's number like any text (the queue's number is SMS-registered by default), shows
/// in the conversation as our number's automatic reply, with its delivery, and is sent
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_close_with_reply_timeout_texts_the_customer_and_records_the_reply() {
    use std::sync::Arc;
    use std::time::Duration;

    const CUSTOMER: &str = "+15558880077";
    const REPLY: &str = "We are closed";
    const WAIT_MS: u64 = 30_000;
    let s = TestServer::start_with_carrier(
        gateway::carriers::CarrierKind::Simulator(carrier::simulator::Simulator::new()),
        |_| {},
    )
    .await;
    let c = testkit::http();
    let (status, boot) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Acme", "name": "Ada", "extension": "100", "email": "ada@close-reply.example", "password": PASSWORD,
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{boot}");
    let admin = boot["token"].as_str().unwrap().to_owned();
    let org: OrgId = serde_json::from_value(boot["organization_id"].clone()).unwrap();
    let (status, q) = call(c.post(s.url("/v1/queues")).bearer_auth(&admin).json(
        &json!({ "name": "After hours", "number": QUEUE_NUMBER, "policy": {
                "wait_timeout_ms": WAIT_MS,
                "on_wait_timeout": { "type": "close_with_reply", "text": REPLY },
            } }),
    ))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{q}");
    let queue: domain::QueueId = serde_json::from_value(q["queue_id"].clone()).unwrap();

    // The queue timers, on a clock the test moves (the server's own run on the wall clock
    // in production).
    let clock =
        actors::clock::ManualClock::new(actors::clock::Clock::now_ms(&actors::clock::SystemClock));
    let timers = tokio::spawn(workers::queue_timers::run(
        s.ws.clone(),
        Arc::new(clock.clone()),
    ));

    // A customer texts the queue's number; nobody claims it.
    let (status, v) = call(
        c.post(s.url("/v1/simulator/inbound"))
            .bearer_auth(&admin)
            .json(&json!({ "from": CUSTOMER, "to": QUEUE_NUMBER, "text": "Anyone there?" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let conversation = domain::ConversationId::external(
        org,
        &domain::PhoneNumber::parse(QUEUE_NUMBER).unwrap(),
        &domain::PhoneNumber::parse(CUSTOMER).unwrap(),
    );
    let waiting = || async {
        s.ws.queues
            .query(&queue, move |q: &domain::Queue, _| {
                q.waiting(conversation).is_some()
            })
            .await
            .unwrap()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !waiting().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the customer's text never waited in the queue"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, out) = call(c.get(s.url("/v1/simulator/outbound")).bearer_auth(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(
        out["texts"],
        json!([]),
        "nothing is sent before the timeout"
    );

    // Past the deadline: the interaction closes, and the reply reaches the carrier, from
    // the queue's number to the customer.
    clock.advance(WAIT_MS + 60_000);
    let sent_replies = || async {
        let (status, out) = call(c.get(s.url("/v1/simulator/outbound")).bearer_auth(&admin)).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        out["texts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["body"] == REPLY)
            .cloned()
            .collect::<Vec<_>>()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let sent = loop {
        let sent = sent_replies().await;
        if !sent.is_empty() {
            break sent;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closing reply never reached the carrier"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (&sent[0]["from"], &sent[0]["to"]),
        (&json!(QUEUE_NUMBER), &json!(CUSTOMER)),
        "{sent:?}"
    );
    assert!(!waiting().await, "the interaction closed");

    // The conversation shows it as our number's automatic reply to the customer's text,
    // with its delivery.
    let messages = s.url(&format!("/v1/conversations/{conversation}/messages"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let (items, reply) = loop {
        let (status, h) = call(c.get(&messages).bearer_auth(&admin)).await;
        assert_eq!(status, StatusCode::OK, "{h}");
        let items = h["items"].as_array().unwrap().clone();
        let reply = items
            .iter()
            .find(|i| i["type"] == "auto_reply" && i["text"] == REPLY)
            .cloned();
        if let Some(r) = &reply {
            if r["deliveries"]
                .as_array()
                .is_some_and(|d| d.iter().any(|d| d["status"] == "delivered"))
            {
                break (items, r.clone());
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivered auto reply in the history: {h}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let inbound = items
        .iter()
        .find(|i| i["type"] == "inbound")
        .unwrap_or_else(|| panic!("the customer's text: {items:?}"));
    assert_eq!(inbound["text"], "Anyone there?");
    assert_eq!(reply["from"], QUEUE_NUMBER, "{reply}");
    assert_eq!(reply["reply_to"], inbound["message_id"], "{reply}");
    assert_eq!(
        reply["deliveries"],
        json!([{ "to": CUSTOMER, "status": "delivered", "error_code": null, "reason": null,
                 "at_ms": reply["deliveries"][0]["at_ms"] }]),
        "{reply}"
    );
    assert_eq!(
        items.iter().filter(|i| i["type"] == "auto_reply").count(),
        1,
        "one reply: {items:?}"
    );
    // The system note says why it closed.
    assert!(
        items.iter().any(|i| i["type"] == "system"
            && i["note"]["type"] == "closed"
            && i["note"]["reason"] == "wait_timeout"),
        "{items:?}"
    );
    // Still one text to the customer now that its delivery is recorded.
    assert_eq!(sent_replies().await.len(), 1);
    timers.abort();
}
