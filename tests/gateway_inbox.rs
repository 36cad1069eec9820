//! The shared-inbox workflow over real HTTP with two agents: a customer texts the inbox
//! number, Assign to Me (exactly one holder), Transfer, Return to Inbox, admin takeover,
//! Mark as Done; outsiders get nothing.

use domain::{Conversation, ConversationId, OrgId, UserId};
use reqwest::StatusCode;
use serde_json::{json, Value};
use testkit::server::{add_user, call, customer_text, TestServer, PASSWORD};
use workers::inbound_router;

const INBOX_NUMBER: &str = "+15550101000";
const CUSTOMER: &str = "+15557770001";

async fn customer_texts(s: &TestServer, org: OrgId) -> ConversationId {
    let record = customer_text(s, org, INBOX_NUMBER, CUSTOMER, "Is my order ready?").await;
    match inbound_router::route(&s.ws, &record).await.unwrap() {
        inbound_router::Routed::Recorded(id) => id,
        other => panic!("{other:?}"),
    }
}

async fn holder(s: &TestServer, id: ConversationId) -> Option<UserId> {
    s.ws.conversations
        .query(&id, |c: &Conversation, _| c.assignee())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_work_an_inbox_conversation() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let (_, boot) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Acme", "name": "Ada", "extension": "100", "email": "ada@inbox.example", "password": PASSWORD,
    })))
    .await;
    let admin = boot["token"].as_str().unwrap().to_owned();
    let org: OrgId = serde_json::from_value(boot["organization_id"].clone()).unwrap();
    let (alice, alice_token) = add_user(&c, &s, &admin, "alice@inbox.example", "101").await;
    let (bob, bob_token) = add_user(&c, &s, &admin, "bob@inbox.example", "102").await;

    let (status, inbox) = call(
        c.post(s.url("/v1/inboxes"))
            .bearer_auth(&admin)
            .json(&json!({ "name": "Front desk", "number": INBOX_NUMBER })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{inbox}");
    let members = s.url(&format!(
        "/v1/inboxes/{}/members",
        inbox["inbox_id"].as_str().unwrap()
    ));
    for u in [&alice, &bob, &boot["user_id"].as_str().unwrap().to_owned()] {
        let r = c
            .post(&members)
            .bearer_auth(&admin)
            .json(&json!({ "user": u }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let (status, err) = call(
        c.post(&members)
            .bearer_auth(&alice_token)
            .json(&json!({ "user": bob })),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("admin_only"))
    );

    let id = customer_texts(&s, org).await;
    let url = |action: &str| s.url(&format!("/v1/conversations/{id}/{action}"));
    let alice_id: UserId = alice.parse().unwrap();
    let bob_id: UserId = bob.parse().unwrap();

    // Both press Assign to Me: Alice first wins, Bob is told who holds it.
    assert_eq!(
        c.post(url("assign-to-me"))
            .bearer_auth(&alice_token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let (status, err) = call(c.post(url("assign-to-me")).bearer_auth(&bob_token)).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_assigned"))
    );
    assert_eq!(holder(&s, id).await, Some(alice_id));
    // Both can see the history; only team members can.
    let (status, h) = call(c.get(url("messages")).bearer_auth(&bob_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h["items"][0]["text"], "Is my order ready?");
    // Any team member may mark it read (the team is who sees it).
    let (status, read) = call(
        c.post(url("read"))
            .bearer_auth(&bob_token)
            .json(&json!({ "up_to": 1 })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{read}");

    // Transfer to Bob, Bob returns it, the admin takes it over from Alice, then done.
    let r = c
        .post(url("transfer"))
        .bearer_auth(&alice_token)
        .json(&json!({ "to": bob }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(holder(&s, id).await, Some(bob_id));
    assert_eq!(
        c.post(url("return"))
            .bearer_auth(&bob_token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(holder(&s, id).await, None);
    assert_eq!(
        c.post(url("assign-to-me"))
            .bearer_auth(&alice_token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        c.post(url("assign-to-me"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK,
        "admin takeover"
    );
    let admin_id: UserId = serde_json::from_value(boot["user_id"].clone()).unwrap();
    assert_eq!(holder(&s, id).await, Some(admin_id));
    let (status, err) = call(c.post(url("done")).bearer_auth(&alice_token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(
        c.post(url("done"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // The history tells every step, who took it and from whom.
    let (status, h) = call(c.get(url("messages")).bearer_auth(&bob_token)).await;
    assert_eq!(status, StatusCode::OK, "{h}");
    let steps: Vec<&Value> = h["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "system")
        .map(|i| &i["note"])
        .collect();
    let (alice, bob, admin_user) = (json!(alice), json!(bob), json!(admin_id));
    assert_eq!(
        steps,
        [
            &json!({ "type": "inbox_assigned", "to": alice, "taken_from": null }),
            &json!({ "type": "inbox_transferred", "from": alice, "to": bob, "by": alice }),
            &json!({ "type": "inbox_returned", "from": bob, "by": bob }),
            &json!({ "type": "inbox_assigned", "to": alice, "taken_from": null }),
            &json!({ "type": "inbox_assigned", "to": admin_user, "taken_from": alice }),
            &json!({ "type": "inbox_done", "was_assigned_to": admin_user, "by": admin_user }),
        ],
        "{h}"
    );
    assert!(h["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "system")
        .all(|i| i["at_ms"].as_u64().is_some_and(|t| t > 0) && i["text"].is_string()));

    // Another organization cannot touch it.
    let (_, other) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Other", "name": "Oz", "extension": "100", "email": "oz@inbox2.example", "password": PASSWORD,
    })))
    .await;
    let outsider = other["token"].as_str().unwrap();
    let (status, _) = call(c.post(url("assign-to-me")).bearer_auth(outsider)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(c.get(url("messages")).bearer_auth(outsider)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// An inbox's team over the API: `GET /v1/inboxes` lists the inboxes a user is on (every
/// one for an admin) with their teams; an admin renames an inbox and takes a member off
/// its team, after which that member no longer sees it or its conversations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_rename_inboxes_and_manage_their_teams() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let (_, boot) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Acme", "name": "Ada", "extension": "100", "email": "ada@team.example", "password": PASSWORD,
    })))
    .await;
    let admin = boot["token"].as_str().unwrap().to_owned();
    let (alice, alice_token) = add_user(&c, &s, &admin, "alice@team.example", "101").await;
    let (_, carl_token) = add_user(&c, &s, &admin, "carl@team.example", "102").await;
    let (_, inbox) = call(
        c.post(s.url("/v1/inboxes"))
            .bearer_auth(&admin)
            .json(&json!({ "name": "Front desk", "number": INBOX_NUMBER })),
    )
    .await;
    let id = inbox["inbox_id"].as_str().unwrap().to_owned();
    let (status, _) = call(
        c.post(s.url(&format!("/v1/inboxes/{id}/members")))
            .bearer_auth(&admin)
            .json(&json!({ "user": alice })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let list = |token: &str| c.get(s.url("/v1/inboxes")).bearer_auth(token.to_owned());
    let (status, mine) = call(list(&alice_token)).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine["items"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine["items"][0]["inbox_id"], id.as_str());
    assert_eq!(mine["items"][0]["name"], "Front desk");
    assert_eq!(mine["items"][0]["number"], INBOX_NUMBER);
    assert_eq!(mine["items"][0]["members"], json!([alice]));
    assert_eq!(mine["items"][0]["member"], true);
    let (_, theirs) = call(list(&carl_token)).await;
    assert_eq!(theirs["items"], json!([]), "not on the team: {theirs}");
    let (_, admins) = call(list(&admin)).await;
    assert_eq!(admins["items"][0]["member"], false, "{admins}");

    // Renaming: admins only, and a blank name is refused.
    let rename = |token: &str, name: &str| {
        c.patch(s.url(&format!("/v1/inboxes/{id}")))
            .bearer_auth(token.to_owned())
            .json(&json!({ "name": name }))
    };
    let (status, err) = call(rename(&alice_token, "Mine now")).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("admin_only"))
    );
    let (status, err) = call(rename(&admin, "  ")).await;
    assert!(status.is_client_error(), "{status} {err}");
    let (status, _) = call(rename(&admin, "Reception")).await;
    assert_eq!(status, StatusCode::OK);
    let (_, mine) = call(list(&alice_token)).await;
    assert_eq!(mine["items"][0]["name"], "Reception");

    // Taking Alice off the team: admins only; then the inbox is gone from her list and
    // its views refuse her.
    let remove = |token: &str| {
        c.delete(s.url(&format!("/v1/inboxes/{id}/members/{alice}")))
            .bearer_auth(token.to_owned())
    };
    let (status, err) = call(remove(&carl_token)).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("admin_only"))
    );
    let (status, removed) = call(remove(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    let (_, mine) = call(list(&alice_token)).await;
    assert_eq!(mine["items"], json!([]), "{mine}");
    let (status, _) = call(
        c.get(s.url(&format!("/v1/inboxes/{id}/conversations")))
            .bearer_auth(&alice_token),
    )
    .await;
    assert!(status.is_client_error(), "{status}");
}

/// An admin may take over any inbox conversation without being on its team (issue 18,
/// item 16): she reads it, assigns it to herself even while a team member holds it, and
/// replies; a member who is not on the team still gets 404 and can do none of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_off_the_team_takes_over_an_inbox_conversation() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let (_, boot) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Acme", "name": "Ada", "extension": "100", "email": "ada@takeover.example", "password": PASSWORD,
    })))
    .await;
    let admin = boot["token"].as_str().unwrap().to_owned();
    let admin_id: UserId = serde_json::from_value(boot["user_id"].clone()).unwrap();
    let org: OrgId = serde_json::from_value(boot["organization_id"].clone()).unwrap();
    let (alice, alice_token) = add_user(&c, &s, &admin, "alice@takeover.example", "101").await;
    let (_, carl_token) = add_user(&c, &s, &admin, "carl@takeover.example", "102").await;
    let (status, inbox) = call(
        c.post(s.url("/v1/inboxes"))
            .bearer_auth(&admin)
            .json(&json!({ "name": "Front desk", "number": INBOX_NUMBER })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{inbox}");
    let inbox_id = inbox["inbox_id"].as_str().unwrap().to_owned();
    // Only Alice is on the team.
    let (status, _) = call(
        c.post(s.url(&format!("/v1/inboxes/{inbox_id}/members")))
            .bearer_auth(&admin)
            .json(&json!({ "user": alice })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let id = customer_texts(&s, org).await;
    let url = |action: &str| s.url(&format!("/v1/conversations/{id}/{action}"));
    let (status, _) = call(c.post(url("assign-to-me")).bearer_auth(&alice_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(holder(&s, id).await, Some(alice.parse().unwrap()));

    // Carl, a member off the team, sees nothing and can do nothing; nothing is written.
    let before = s.ws.store.next_position();
    let (status, _) = call(c.get(url("messages")).bearer_auth(&carl_token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, e) = call(c.post(url("assign-to-me")).bearer_auth(&carl_token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{e}");
    let (status, e) = call(
        c.post(url("messages"))
            .bearer_auth(&carl_token)
            .json(&json!({ "text": "not mine to answer" })),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{e}");
    assert_eq!(s.ws.store.next_position(), before, "Carl wrote nothing");
    assert_eq!(holder(&s, id).await, Some(alice.parse().unwrap()));

    // The admin, not on the team either, opens it…
    let (status, h) = call(c.get(url("messages")).bearer_auth(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{h}");
    assert_eq!(h["items"][0]["text"], "Is my order ready?", "{h}");
    // …takes it over from Alice…
    let (status, v) = call(c.post(url("assign-to-me")).bearer_auth(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(holder(&s, id).await, Some(admin_id));
    // …and answers the customer from the inbox's number.
    let (status, v) = call(
        c.post(url("messages"))
            .bearer_auth(&admin)
            .json(&json!({ "text": "Yes, ready since noon" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, h) = call(c.get(url("messages")).bearer_auth(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{h}");
    assert!(
        h["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["type"] == "message" && i["text"] == "Yes, ready since noon"),
        "{h}"
    );
    // Alice, who no longer holds it, may not answer for it.
    let (status, e) = call(
        c.post(url("messages"))
            .bearer_auth(&alice_token)
            .json(&json!({ "text": "me too" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
}
