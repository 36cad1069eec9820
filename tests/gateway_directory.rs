//! The directory over real HTTP: the users and numbers lists any member reads (the From
//! picker's `mine`), the admin powers over roles, number assignees and routing, and the
//! per-user setting "Text messages to desk phone", the members list of a channel (names
//! from the directory, participants only) — with the refusals (members, other
//! organizations, bad input), each of which writes nothing.

use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{json, Value};
use testkit::server::{add_user, call, TestServer, PASSWORD};

const BOB_LINE: &str = "+15550401000";
const ADA_LINE: &str = "+15550402000";
const DESK: &str = "+15550403000";

fn enc(number: &str) -> String {
    number.replace('+', "%2B")
}

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

/// Sends `r`, expects a refusal with `status` and `code`, and checks nothing was written.
async fn refused(s: &TestServer, r: RequestBuilder, status: StatusCode, code: &str) -> Value {
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

/// The numbers list as `token` sees it, keyed by number.
async fn numbers(c: &Client, s: &TestServer, token: &str) -> serde_json::Map<String, Value> {
    let (status, v) = call(c.get(s.url("/v1/numbers")).bearer_auth(token)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["number"].as_str().unwrap().to_owned(), n.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_read_the_directory_and_admins_manage_numbers_and_roles() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let (ada, admin) = organization(&c, &s, "Acme", "ada@dir.example").await;
    let (bob, bob_token) = add_user(&c, &s, &admin, "bob@dir.example", "101").await;
    let (carol, carol_token) = add_user(&c, &s, &admin, "carol@dir.example", "102").await;
    let (_, globex) = organization(&c, &s, "Globex", "gus@dir.example").await;

    // Every member reads the organization's users, by name.
    let (status, users) = call(c.get(s.url("/v1/users")).bearer_auth(&carol_token)).await;
    assert_eq!(status, StatusCode::OK, "{users}");
    let listed: Vec<(&str, &str, &str, &str)> = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["user_id"].as_str().unwrap(),
                u["name"].as_str().unwrap(),
                u["extension"].as_str().unwrap(),
                u["role"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            (ada.as_str(), "Ada", "100", "admin"),
            (bob.as_str(), "bob@dir.example", "101", "member"),
            (carol.as_str(), "carol@dir.example", "102", "member"),
        ]
    );
    // Another organization lists only its own.
    let (_, theirs) = call(c.get(s.url("/v1/users")).bearer_auth(&globex)).await;
    assert_eq!(theirs["items"].as_array().unwrap().len(), 1);
    assert_ne!(theirs["items"][0]["user_id"], ada.as_str());

    // Numbers: Bob's registered line, Ada's unregistered one, an inbox's.
    for (number, user, registered) in [(BOB_LINE, &bob, true), (ADA_LINE, &ada, false)] {
        let (status, v) = call(
            c.post(s.url("/v1/numbers"))
                .bearer_auth(&admin)
                .json(&json!({ "number": number, "user": user, "sms_registered": registered })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    let (status, inbox) = call(
        c.post(s.url("/v1/inboxes"))
            .bearer_auth(&admin)
            .json(&json!({ "name": "Front desk", "number": DESK })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{inbox}");
    let inbox = inbox["inbox_id"].as_str().unwrap().to_owned();

    let seen = numbers(&c, &s, &bob_token).await;
    assert_eq!(seen.len(), 3);
    assert_eq!(
        seen[BOB_LINE],
        json!({ "number": BOB_LINE, "sms_registered": true, "route": { "type": "user", "user": bob }, "assigned_to": [bob], "mine": true })
    );
    assert_eq!(
        seen[ADA_LINE],
        json!({ "number": ADA_LINE, "sms_registered": false, "route": { "type": "user", "user": ada }, "assigned_to": [ada], "mine": false })
    );
    assert_eq!(
        seen[DESK],
        json!({ "number": DESK, "sms_registered": true, "route": { "type": "inbox", "inbox": inbox }, "assigned_to": [], "mine": false }),
        "an inbox's number is registered, as POST /v1/numbers registers by default"
    );
    assert!(
        numbers(&c, &s, &globex).await.is_empty(),
        "other tenants see none"
    );

    // Assignees: admin only; a member, another tenant and bad input are refused.
    let assignees = |number: &str| s.url(&format!("/v1/numbers/{}/assignees", enc(number)));
    refused(
        &s,
        c.post(assignees(ADA_LINE))
            .bearer_auth(&carol_token)
            .json(&json!({ "user": carol })),
        StatusCode::FORBIDDEN,
        "admin_only",
    )
    .await;
    refused(
        &s,
        c.post(assignees(ADA_LINE))
            .bearer_auth(&globex)
            .json(&json!({ "user": carol })),
        StatusCode::NOT_FOUND,
        "unknown_number",
    )
    .await;
    refused(
        &s,
        c.post(s.url("/v1/numbers/not-a-number/assignees"))
            .bearer_auth(&admin)
            .json(&json!({ "user": carol })),
        StatusCode::BAD_REQUEST,
        "invalid_path",
    )
    .await;
    refused(
        &s,
        c.post(assignees("+15550409999"))
            .bearer_auth(&admin)
            .json(&json!({ "user": carol })),
        StatusCode::NOT_FOUND,
        "unknown_number",
    )
    .await;
    refused(
        &s,
        c.post(assignees(ADA_LINE))
            .bearer_auth(&admin)
            .json(&json!({ "user": uuid::Uuid::new_v4() })),
        StatusCode::NOT_FOUND,
        "unknown_user",
    )
    .await;
    refused(
        &s,
        c.post(assignees(ADA_LINE))
            .bearer_auth(&admin)
            .json(&json!({ "user": "carol" })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    refused(
        &s,
        c.post(assignees(DESK))
            .bearer_auth(&admin)
            .json(&json!({ "user": carol })),
        StatusCode::FORBIDDEN,
        "not_a_personal_number",
    )
    .await;
    let (status, v) = call(
        c.post(assignees(ADA_LINE))
            .bearer_auth(&admin)
            .json(&json!({ "user": carol })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["position"].is_u64());
    let seen = numbers(&c, &s, &carol_token).await;
    assert_eq!(seen[ADA_LINE]["mine"], true);
    assert_eq!(
        seen[ADA_LINE]["assigned_to"].as_array().unwrap().len(),
        2,
        "{seen:?}"
    );
    // Assigning again changes nothing.
    let (status, v) = call(
        c.post(assignees(ADA_LINE))
            .bearer_auth(&admin)
            .json(&json!({ "user": carol })),
    )
    .await;
    assert_eq!((status, &v["position"]), (StatusCode::OK, &Value::Null));
    // Unassign: the user the number is routed to keeps it; others lose it.
    let unassign = |user: &str| s.url(&format!("/v1/numbers/{}/assignees/{user}", enc(ADA_LINE)));
    refused(
        &s,
        c.delete(unassign(&carol)).bearer_auth(&bob_token),
        StatusCode::FORBIDDEN,
        "admin_only",
    )
    .await;
    refused(
        &s,
        c.delete(unassign(&ada)).bearer_auth(&admin),
        StatusCode::CONFLICT,
        "routed_user_must_keep_number",
    )
    .await;
    refused(
        &s,
        c.delete(unassign("carol")).bearer_auth(&admin),
        StatusCode::BAD_REQUEST,
        "invalid_path",
    )
    .await;
    let (status, v) = call(c.delete(unassign(&carol)).bearer_auth(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(numbers(&c, &s, &carol_token).await[ADA_LINE]["mine"], false);

    // Routing: to a user (who gets the line), back to the inbox made on the number (which
    // takes it from everyone); never to an inbox of another number or a made-up one.
    let route = |number: &str| s.url(&format!("/v1/numbers/{}/route", enc(number)));
    refused(
        &s,
        c.post(route(DESK))
            .bearer_auth(&bob_token)
            .json(&json!({ "type": "user", "user": bob })),
        StatusCode::FORBIDDEN,
        "admin_only",
    )
    .await;
    refused(
        &s,
        c.post(route(DESK))
            .bearer_auth(&globex)
            .json(&json!({ "type": "user", "user": bob })),
        StatusCode::NOT_FOUND,
        "unknown_number",
    )
    .await;
    refused(
        &s,
        c.post(route(DESK))
            .bearer_auth(&admin)
            .json(&json!({ "type": "carrier_pigeon" })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    refused(
        &s,
        c.post(route(BOB_LINE))
            .bearer_auth(&admin)
            .json(&json!({ "type": "inbox", "inbox": inbox })),
        StatusCode::NOT_FOUND,
        "unknown_destination",
    )
    .await;
    refused(
        &s,
        c.post(route(DESK))
            .bearer_auth(&admin)
            .json(&json!({ "type": "queue", "queue": uuid::Uuid::new_v4() })),
        StatusCode::NOT_FOUND,
        "unknown_destination",
    )
    .await;
    let (status, v) = call(
        c.post(route(DESK))
            .bearer_auth(&admin)
            .json(&json!({ "type": "user", "user": bob })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let seen = numbers(&c, &s, &bob_token).await;
    assert_eq!(
        (&seen[DESK]["route"], &seen[DESK]["mine"]),
        (&json!({ "type": "user", "user": bob }), &json!(true))
    );
    let (status, v) = call(
        c.post(route(DESK))
            .bearer_auth(&admin)
            .json(&json!({ "type": "inbox", "inbox": inbox })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let seen = numbers(&c, &s, &bob_token).await;
    assert_eq!(seen[DESK]["route"]["inbox"], inbox.as_str());
    assert_eq!(seen[DESK]["assigned_to"], json!([]));

    // Roles: admin only, at once effective, and the last admin stays one.
    let role = |user: &str| s.url(&format!("/v1/users/{user}/role"));
    refused(
        &s,
        c.post(role(&bob))
            .bearer_auth(&carol_token)
            .json(&json!({ "role": "admin" })),
        StatusCode::FORBIDDEN,
        "admin_only",
    )
    .await;
    refused(
        &s,
        c.post(role(&bob))
            .bearer_auth(&globex)
            .json(&json!({ "role": "admin" })),
        StatusCode::NOT_FOUND,
        "unknown_user",
    )
    .await;
    refused(
        &s,
        c.post(role(&bob))
            .bearer_auth(&admin)
            .json(&json!({ "role": "Owner" })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    refused(
        &s,
        c.post(role("bob"))
            .bearer_auth(&admin)
            .json(&json!({ "role": "admin" })),
        StatusCode::BAD_REQUEST,
        "invalid_path",
    )
    .await;
    refused(
        &s,
        c.post(role(&ada))
            .bearer_auth(&admin)
            .json(&json!({ "role": "member" })),
        StatusCode::CONFLICT,
        "last_admin",
    )
    .await;
    let (status, v) = call(
        c.post(role(&bob))
            .bearer_auth(&admin)
            .json(&json!({ "role": "admin" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (_, me) = call(c.get(s.url("/v1/me")).bearer_auth(&bob_token)).await;
    assert_eq!(me["role"], "admin");
    // Bob's new powers apply to his very next request: he demotes Ada...
    let (status, v) = call(
        c.post(role(&ada))
            .bearer_auth(&bob_token)
            .json(&json!({ "role": "member" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // ...who lost hers at once.
    refused(
        &s,
        c.post(assignees(BOB_LINE))
            .bearer_auth(&admin)
            .json(&json!({ "user": carol })),
        StatusCode::FORBIDDEN,
        "admin_only",
    )
    .await;
    refused(
        &s,
        c.post(role(&bob))
            .bearer_auth(&bob_token)
            .json(&json!({ "role": "member" })),
        StatusCode::CONFLICT,
        "last_admin",
    )
    .await;

    // Names: a user renames themself, an admin anyone of theirs; nobody else's.
    let name = |user: &str| s.url(&format!("/v1/users/{user}/name"));
    let listed = |token: String, user: String| {
        let (c, url) = (c.clone(), s.url("/v1/users"));
        async move {
            let (_, list) = call(c.get(url).bearer_auth(token)).await;
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|u| u["user_id"] == user.as_str())
                .map(|u| u["name"].clone())
        }
    };
    let (status, v) = call(
        c.put(name(&carol))
            .bearer_auth(&carol_token)
            .json(&json!({ "name": "  Caroline  " })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        listed(bob_token.clone(), carol.clone()).await,
        Some(json!("Caroline")),
        "trimmed, and seen by the others at once"
    );
    let (status, v) = call(
        c.put(name(&carol))
            .bearer_auth(&bob_token)
            .json(&json!({ "name": "Carol" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "an admin renames anyone: {v}");
    refused(
        &s,
        c.put(name(&bob))
            .bearer_auth(&carol_token)
            .json(&json!({ "name": "Bobby" })),
        StatusCode::FORBIDDEN,
        "admin_only",
    )
    .await;
    refused(
        &s,
        c.put(name(&carol))
            .bearer_auth(&carol_token)
            .json(&json!({ "name": "   " })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "blank",
    )
    .await;
    refused(
        &s,
        c.put(name(&carol))
            .bearer_auth(&globex)
            .json(&json!({ "name": "Mallory" })),
        StatusCode::NOT_FOUND,
        "unknown_user",
    )
    .await;
    // The same name again writes nothing.
    let before = s.ws.store.next_position();
    let (status, _) = call(
        c.put(name(&carol))
            .bearer_auth(&carol_token)
            .json(&json!({ "name": "Carol" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s.ws.store.next_position(), before);
    assert_eq!(
        listed(carol_token.clone(), carol.clone()).await,
        Some(json!("Carol"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_messages_to_desk_phone_is_each_users_setting() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let (_, admin) = organization(&c, &s, "Acme", "ada@settings.example").await;
    let (bob, bob_token) = add_user(&c, &s, &admin, "bob@settings.example", "101").await;
    let (carol, carol_token) = add_user(&c, &s, &admin, "carol@settings.example", "102").await;
    let (_, globex) = organization(&c, &s, "Globex", "gus@settings.example").await;
    let mine = s.url("/v1/me/settings");
    let get = |token: &str| {
        let r = c.get(&mine).bearer_auth(token);
        async move {
            let (status, v) = call(r).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            v
        }
    };
    assert_eq!(
        get(&bob_token).await,
        json!({ "text_messages_to_desk_phone": false })
    );

    // Bob turns it on; only his changes; the same again writes nothing.
    let (status, v) = call(
        c.put(&mine)
            .bearer_auth(&bob_token)
            .json(&json!({ "text_messages_to_desk_phone": true })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["position"].is_u64());
    assert_eq!(get(&bob_token).await["text_messages_to_desk_phone"], true);
    assert_eq!(
        get(&carol_token).await["text_messages_to_desk_phone"],
        false
    );
    let (status, v) = call(
        c.put(&mine)
            .bearer_auth(&bob_token)
            .json(&json!({ "text_messages_to_desk_phone": true })),
    )
    .await;
    assert_eq!((status, &v["position"]), (StatusCode::OK, &Value::Null));

    // Bad input: 4xx with a code, nothing written.
    for (body, status, code) in [
        (json!({}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        (
            json!({ "text_messages_to_desk_phone": "yes" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json!({ "text_messages_to_desk_phone": false, "ringtone": "bell" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
    ] {
        refused(
            &s,
            c.put(&mine).bearer_auth(&bob_token).json(&body),
            status,
            code,
        )
        .await;
    }
    refused(
        &s,
        c.put(&mine)
            .bearer_auth(&bob_token)
            .header("content-type", "application/json")
            .body("{"),
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;

    // Another user's: the user themself or an admin only; other tenants never.
    let theirs = |user: &str| s.url(&format!("/v1/users/{user}/settings"));
    refused(
        &s,
        c.put(theirs(&carol))
            .bearer_auth(&bob_token)
            .json(&json!({ "text_messages_to_desk_phone": true })),
        StatusCode::FORBIDDEN,
        "admin_only",
    )
    .await;
    refused(
        &s,
        c.put(theirs(&carol))
            .bearer_auth(&globex)
            .json(&json!({ "text_messages_to_desk_phone": true })),
        StatusCode::NOT_FOUND,
        "unknown_user",
    )
    .await;
    refused(
        &s,
        c.put(theirs("carol"))
            .bearer_auth(&admin)
            .json(&json!({ "text_messages_to_desk_phone": true })),
        StatusCode::BAD_REQUEST,
        "invalid_path",
    )
    .await;
    refused(
        &s,
        c.put(theirs(&uuid::Uuid::new_v4().to_string()))
            .bearer_auth(&admin)
            .json(&json!({ "text_messages_to_desk_phone": true })),
        StatusCode::NOT_FOUND,
        "unknown_user",
    )
    .await;
    let (status, v) = call(
        c.put(theirs(&carol))
            .bearer_auth(&admin)
            .json(&json!({ "text_messages_to_desk_phone": true })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(get(&carol_token).await["text_messages_to_desk_phone"], true);
    let (status, v) = call(
        c.put(theirs(&bob))
            .bearer_auth(&bob_token)
            .json(&json!({ "text_messages_to_desk_phone": false })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(get(&bob_token).await["text_messages_to_desk_phone"], false);
    // Unauthenticated: nothing.
    refused(
        &s,
        c.get(&mine),
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channels_members_are_listed_to_its_participants_only() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let (ada, admin) = organization(&c, &s, "Acme", "ada@members.example").await;
    let (bob, bob_token) = add_user(&c, &s, &admin, "bob@members.example", "101").await;
    let (carol, carol_token) = add_user(&c, &s, &admin, "carol@members.example", "102").await;
    let (_, stranger) = organization(&c, &s, "Globex", "gus@members.example").await;
    let (status, channel) = call(
        c.post(s.url("/v1/conversations/channel"))
            .bearer_auth(&admin)
            .json(&json!({ "name": "launch", "members": [bob] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    let channel = channel["conversation_id"].as_str().unwrap().to_owned();
    let members = |token: &str| {
        c.get(s.url(&format!("/v1/conversations/{channel}/members")))
            .bearer_auth(token.to_owned())
    };

    let (status, list) = call(members(&bob_token)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["kind"], "channel");
    assert_eq!(list["name"], "launch");
    assert_eq!(list["conversation_id"], channel);
    let ids: Vec<&str> = list["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [ada.as_str(), bob.as_str()], "by name: {list}");
    assert_eq!(list["members"][0]["name"], "Ada");
    assert_eq!(list["members"][0]["extension"], "100");

    // Not a member (yet), another organization, no such conversation: 404, as for history.
    refused(
        &s,
        members(&carol_token),
        StatusCode::NOT_FOUND,
        "conversation_not_found",
    )
    .await;
    refused(
        &s,
        members(&stranger),
        StatusCode::NOT_FOUND,
        "conversation_not_found",
    )
    .await;
    refused(
        &s,
        c.get(s.url(&format!(
            "/v1/conversations/{}/members",
            domain::ConversationId::random()
        )))
        .bearer_auth(&admin),
        StatusCode::NOT_FOUND,
        "conversation_not_found",
    )
    .await;
    refused(
        &s,
        c.get(s.url("/v1/conversations/launch/members"))
            .bearer_auth(&admin),
        StatusCode::BAD_REQUEST,
        "invalid_path",
    )
    .await;

    // Carol joins: she sees the members, herself included; Bob leaves: he no longer does.
    let (status, _) = call(
        c.post(s.url(&format!("/v1/conversations/{channel}/join")))
            .bearer_auth(&carol_token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = call(members(&carol_token)).await;
    assert!(
        list["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["user_id"] == carol),
        "{list}"
    );
    let (status, _) = call(
        c.post(s.url(&format!("/v1/conversations/{channel}/leave")))
            .bearer_auth(&bob_token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    refused(
        &s,
        members(&bob_token),
        StatusCode::NOT_FOUND,
        "conversation_not_found",
    )
    .await;
    let (_, list) = call(members(&admin)).await;
    assert_eq!(
        list["members"].as_array().unwrap().len(),
        2,
        "Ada and Carol: {list}"
    );
    assert!(!list.to_string().contains(&bob), "{list}");

    // A direct conversation lists its two members.
    let (_, direct) = call(
        c.post(s.url("/v1/conversations/direct"))
            .bearer_auth(&bob_token)
            .json(&json!({ "with": carol })),
    )
    .await;
    let direct = direct["conversation_id"].as_str().unwrap();
    let (status, list) = call(
        c.get(s.url(&format!("/v1/conversations/{direct}/members")))
            .bearer_auth(&carol_token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["kind"], "direct");
    assert_eq!(list["name"], Value::Null);
    assert_eq!(list["members"].as_array().unwrap().len(), 2);
}
