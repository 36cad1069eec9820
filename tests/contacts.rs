//! The phonebook over real HTTP: personal and organization contacts (create, read,
//! patch, replace, delete) by the directory's rules, contact search across the phonebook,
//! the user directory and recently seen numbers, number → name, and access: another
//! user's personal contact and another organization's contacts are 404, no token is 401,
//! bad input is a 4xx that writes nothing.

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use testkit::server::{add_user, call, customer_text, TestServer, PASSWORD};
use testkit::texting::org_with_number;
use workers::inbound_router;

const ADMIN_NUMBER: &str = "+15550101000";
const INBOX_NUMBER: &str = "+15550102000";

async fn create(c: &Client, s: &TestServer, token: &str, body: Value) -> String {
    let (status, v) = call(c.post(s.url("/v1/contacts")).bearer_auth(token).json(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}: {v}");
    v["contact_id"].as_str().unwrap().to_owned()
}

async fn list(c: &Client, s: &TestServer, token: &str, query: &str) -> Vec<String> {
    let (status, v) = call(
        c.get(s.url(&format!("/v1/contacts{query}")))
            .bearer_auth(token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn status_of(r: reqwest::RequestBuilder) -> (StatusCode, Value) {
    call(r).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_are_personal_or_shared_by_the_directory_rules() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let o = org_with_number(&c, &s.base, "ada@contacts.example", ADMIN_NUMBER).await;
    let (_, alice_t) = add_user(&c, &s, &o.token, "alice@contacts.example", "101").await;
    let (_, bob_t) = add_user(&c, &s, &o.token, "bob@contacts.example", "102").await;

    // Personal by default; any member may add to the shared phonebook.
    let mum = create(
        &c,
        &s,
        &alice_t,
        json!({ "name": "Mum", "numbers": ["+1 613 555 0143"] }),
    )
    .await;
    let plumber = create(
        &c,
        &s,
        &alice_t,
        json!({ "name": "Bob's Plumbing", "company": "Plumbing Inc", "numbers": ["+16135550142"], "scope": "organization" }),
    )
    .await;
    assert_eq!(list(&c, &s, &alice_t, "").await, ["Bob's Plumbing", "Mum"]);
    assert_eq!(list(&c, &s, &bob_t, "").await, ["Bob's Plumbing"]);
    assert_eq!(list(&c, &s, &o.token, "").await, ["Bob's Plumbing"]);
    assert_eq!(list(&c, &s, &alice_t, "?scope=personal").await, ["Mum"]);
    assert_eq!(
        list(&c, &s, &alice_t, "?scope=organization").await,
        ["Bob's Plumbing"]
    );
    let (status, v) = status_of(
        c.get(s.url(&format!("/v1/contacts/{mum}")))
            .bearer_auth(&alice_t),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["scope"], "personal");
    assert_eq!(v["numbers"], json!(["+16135550143"]), "normalised: {v}");

    // A personal contact is its owner's alone: not even an admin sees or edits it.
    for token in [&bob_t, &o.token] {
        let (status, v) = status_of(
            c.get(s.url(&format!("/v1/contacts/{mum}")))
                .bearer_auth(token),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
        assert_eq!(v["code"], "contact_not_found");
        let (status, _) = status_of(
            c.patch(s.url(&format!("/v1/contacts/{mum}")))
                .bearer_auth(token)
                .json(&json!({ "name": "Hacked" })),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = status_of(
            c.delete(s.url(&format!("/v1/contacts/{mum}")))
                .bearer_auth(token),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    // PATCH changes the fields given; PUT replaces them all.
    let (status, v) = status_of(
        c.patch(s.url(&format!("/v1/contacts/{mum}")))
            .bearer_auth(&alice_t)
            .json(&json!({ "company": "Family" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["position"].as_u64().is_some());
    let (_, v) = status_of(
        c.get(s.url(&format!("/v1/contacts/{mum}")))
            .bearer_auth(&alice_t),
    )
    .await;
    assert_eq!(
        (v["name"].as_str(), v["company"].as_str()),
        (Some("Mum"), Some("Family"))
    );
    assert_eq!(v["numbers"], json!(["+16135550143"]));
    let (status, v) = status_of(
        c.put(s.url(&format!("/v1/contacts/{mum}")))
            .bearer_auth(&alice_t)
            .json(&json!({ "name": "Mother" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (_, v) = status_of(
        c.get(s.url(&format!("/v1/contacts/{mum}")))
            .bearer_auth(&alice_t),
    )
    .await;
    assert_eq!(v["name"], "Mother");
    assert_eq!(v["company"], "");
    assert_eq!(v["numbers"], json!([]));
    // The same again changes nothing.
    let (status, v) = status_of(
        c.put(s.url(&format!("/v1/contacts/{mum}")))
            .bearer_auth(&alice_t)
            .json(&json!({ "name": "Mother" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(v["position"].is_null(), "{v}");
    // Any member keeps the shared phonebook up to date.
    let (status, v) = status_of(
        c.patch(s.url(&format!("/v1/contacts/{plumber}")))
            .bearer_auth(&bob_t)
            .json(&json!({ "numbers": ["+16135550142", "+16135550199"] })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");

    // Bad input: a 4xx with a stable code, and nothing written.
    let head = s.ws.store.next_position();
    for (body, code, expected) in [
        (
            json!({ "name": "" }),
            "blank",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "name": "x".repeat(201) }),
            "too_long",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "name": "X", "numbers": ["not a number"] }),
            "invalid_phone_number",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "name": "X", "numbers": (0..11).map(|i| format!("+1613555{i:04}")).collect::<Vec<_>>() }),
            "too_many",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "name": "X", "scope": "global" }),
            "invalid_body",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "name": "X", "colour": "red" }),
            "invalid_body",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, v) = status_of(
            c.post(s.url("/v1/contacts"))
                .bearer_auth(&alice_t)
                .json(&body),
        )
        .await;
        assert_eq!(status, expected, "{body}: {v}");
        assert_eq!(v["code"], code, "{body}: {v}");
    }
    let (status, v) = status_of(
        c.post(s.url("/v1/contacts"))
            .bearer_auth(&alice_t)
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (status, v) = status_of(
        c.patch(s.url(&format!("/v1/contacts/{plumber}")))
            .bearer_auth(&alice_t)
            .json(&json!({ "name": "  " })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (status, _) = status_of(c.get(s.url("/v1/contacts/not-an-id")).bearer_auth(&alice_t)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, v) = status_of(
        c.get(s.url("/v1/contacts?scope=everyone"))
            .bearer_auth(&alice_t),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(
        s.ws.store.next_position(),
        head,
        "a refused request wrote something"
    );

    // Idempotency-Key: the retry names the same contact and writes nothing.
    let key = uuid::Uuid::new_v4().to_string();
    let mut ids = Vec::new();
    let mut heads = Vec::new();
    for _ in 0..2 {
        let (status, v) = status_of(
            c.post(s.url("/v1/contacts"))
                .bearer_auth(&bob_t)
                .header("idempotency-key", &key)
                .json(&json!({ "name": "Locksmith", "scope": "organization" })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        ids.push(v["contact_id"].as_str().unwrap().to_owned());
        heads.push(s.ws.store.next_position());
    }
    assert_eq!(ids[0], ids[1]);
    assert_eq!(heads[0], heads[1]);
    assert_eq!(
        list(&c, &s, &bob_t, "").await,
        ["Bob's Plumbing", "Locksmith"]
    );

    // Another organization: 404 for these ids, and its phonebook is its own.
    let other = org_with_number(&c, &s.base, "eve@other.example", "+15550201000").await;
    let (status, _) = status_of(
        c.get(s.url(&format!("/v1/contacts/{plumber}")))
            .bearer_auth(&other.token),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = status_of(
        c.patch(s.url(&format!("/v1/contacts/{plumber}")))
            .bearer_auth(&other.token)
            .json(&json!({ "name": "Mine now" })),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = status_of(
        c.delete(s.url(&format!("/v1/contacts/{plumber}")))
            .bearer_auth(&other.token),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(list(&c, &s, &other.token, "").await.is_empty());

    // Delete; then it is gone.
    let (status, v) = status_of(
        c.delete(s.url(&format!("/v1/contacts/{plumber}")))
            .bearer_auth(&alice_t),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, _) = status_of(
        c.get(s.url(&format!("/v1/contacts/{plumber}")))
            .bearer_auth(&alice_t),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = status_of(
        c.delete(s.url(&format!("/v1/contacts/{plumber}")))
            .bearer_auth(&alice_t),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // No token: 401 everywhere.
    for r in [
        c.get(s.url("/v1/contacts")),
        c.post(s.url("/v1/contacts")).json(&json!({ "name": "X" })),
        c.get(s.url(&format!("/v1/contacts/{mum}"))),
        c.patch(s.url(&format!("/v1/contacts/{mum}")))
            .json(&json!({ "name": "X" })),
        c.put(s.url(&format!("/v1/contacts/{mum}")))
            .json(&json!({ "name": "X" })),
        c.delete(s.url(&format!("/v1/contacts/{mum}"))),
        c.get(s.url("/v1/contacts/search?q=mum")),
        c.get(s.url("/v1/numbers/%2B16135550143/name")),
    ] {
        let (status, v) = status_of(r).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    }
}

/// `s` percent-encoded for a query string.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `GET /v1/contacts/search?q=`: (source, name) of each match.
async fn find(c: &Client, s: &TestServer, token: &str, q: &str) -> Vec<(String, String)> {
    let (status, v) = call(
        c.get(s.url(&format!("/v1/contacts/search?q={}", encode(q))))
            .bearer_auth(token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{q}: {v}");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["source"].as_str().unwrap().to_owned(),
                i["name"].as_str().map_or_else(
                    || i["numbers"][0].as_str().unwrap().to_owned(),
                    str::to_owned,
                ),
            )
        })
        .collect()
}

fn has(found: &[(String, String)], source: &str, name: &str) -> bool {
    found.iter().any(|(s, n)| s == source && n == name)
}

async fn name_of(c: &Client, s: &TestServer, token: &str, number: &str) -> (StatusCode, Value) {
    call(
        c.get(s.url(&format!("/v1/numbers/{}/name", number.replace('+', "%2B"))))
            .bearer_auth(token),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_search_covers_phonebook_directory_and_recent_numbers() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let o = org_with_number(&c, &s.base, "ada@find.example", ADMIN_NUMBER).await;
    let (_, alice_t) = add_user(&c, &s, &o.token, "alice@find.example", "101").await;
    let (status, v) = call(c.post(s.url("/v1/users")).bearer_auth(&o.token).json(&json!({
        "name": "Zoë Zimmer", "extension": "345", "role": "member", "email": "zoe@find.example", "password": PASSWORD,
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    create(
        &c,
        &s,
        &o.token,
        json!({ "name": "Bob's Plumbing", "company": "Plumbing Inc", "numbers": ["+16135550142"], "scope": "organization" }),
    )
    .await;
    create(
        &c,
        &s,
        &alice_t,
        json!({ "name": "Mum", "numbers": ["+16135550143"] }),
    )
    .await;
    create(
        &c,
        &s,
        &alice_t,
        json!({ "name": "Plumber Joe", "numbers": ["+16135550142"] }),
    )
    .await;
    // Customers text the admin's number: recently seen numbers.
    for (from, text) in [("+15550199887", "hi"), ("+14165550123", "hello")] {
        let record = customer_text(&s, o.id, ADMIN_NUMBER, from, text).await;
        assert!(matches!(
            inbound_router::route(&s.ws, &record).await.unwrap(),
            inbound_router::Routed::Recorded(_)
        ));
    }
    let head = s.ws.store.next_position() - 1;
    assert!(
        s.interactions
            .wait_for(head, std::time::Duration::from_secs(10))
            .await
    );

    // The phonebook: name, company, digits of numbers.
    assert_eq!(
        find(&c, &s, &o.token, "plumb").await,
        [("phonebook".into(), "Bob's Plumbing".into())]
    );
    assert!(has(
        &find(&c, &s, &o.token, "INC").await,
        "phonebook",
        "Bob's Plumbing"
    ));
    assert!(has(
        &find(&c, &s, &o.token, "(613) 555-0142").await,
        "phonebook",
        "Bob's Plumbing"
    ));
    // Personal contacts are searched for their owner only.
    let alice_plumb = find(&c, &s, &alice_t, "plumb").await;
    assert!(
        has(&alice_plumb, "phonebook", "Plumber Joe")
            && has(&alice_plumb, "phonebook", "Bob's Plumbing")
    );
    assert!(has(
        &find(&c, &s, &alice_t, "mum").await,
        "phonebook",
        "Mum"
    ));
    assert!(find(&c, &s, &o.token, "mum").await.is_empty());
    // The directory: name (accents as typed, any case), extension, the user's numbers.
    assert_eq!(
        find(&c, &s, &o.token, "zimmer").await,
        [("directory".into(), "Zoë Zimmer".into())]
    );
    assert!(has(
        &find(&c, &s, &o.token, "zoë").await,
        "directory",
        "Zoë Zimmer"
    ));
    assert!(has(
        &find(&c, &s, &o.token, "345").await,
        "directory",
        "Zoë Zimmer"
    ));
    assert!(has(
        &find(&c, &s, &o.token, "34").await,
        "directory",
        "Zoë Zimmer"
    ));
    assert!(has(
        &find(&c, &s, &o.token, "ada").await,
        "directory",
        "Ada"
    ));
    // Recently seen numbers, digits matched as digits.
    let found = find(&c, &s, &o.token, "555 0199").await;
    assert_eq!(found, [("recent".into(), "+15550199887".into())]);
    let found = find(&c, &s, &o.token, "555 01").await;
    assert!(has(&found, "recent", "+15550199887"), "{found:?}");
    assert!(
        has(&found, "directory", "Ada"),
        "the admin's own line: {found:?}"
    );
    assert!(has(&found, "phonebook", "Bob's Plumbing"), "{found:?}");
    assert!(has(&found, "recent", "+14165550123"), "{found:?}");
    // Alice holds no number and is on no inbox: nobody texted her.
    assert!(find(&c, &s, &alice_t, "0199").await.is_empty());
    // A recent number that is also a contact shows once, as the contact.
    create(
        &c,
        &s,
        &o.token,
        json!({ "name": "Toronto Customer", "numbers": ["+14165550123"], "scope": "organization" }),
    )
    .await;
    let found = find(&c, &s, &o.token, "416 555").await;
    assert_eq!(found, [("phonebook".into(), "Toronto Customer".into())]);
    // Another organization finds none of it.
    let other = org_with_number(&c, &s.base, "eve@other.example", "+15550201000").await;
    for q in ["plumb", "zimmer", "555 0199", "613"] {
        assert!(find(&c, &s, &other.token, q).await.is_empty(), "{q}");
    }
    // Bad searches.
    for (q, code) in [
        ("", "invalid_search"),
        ("q=", "invalid_search"),
        ("q=%20", "invalid_search"),
        (&*format!("q={}", "a".repeat(101)), "invalid_search"),
        ("q=a&limit=0", "invalid_limit"),
        ("q=a&colour=red", "invalid_query"),
    ] {
        let (status, v) = call(
            c.get(s.url(&format!("/v1/contacts/search?{q}")))
                .bearer_auth(&o.token),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert_eq!(v["code"], code, "{q}: {v}");
    }

    // Number → name, as each caller sees it.
    let (status, v) = name_of(&c, &s, &o.token, "+16135550142").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({ "number": "+16135550142", "name": "Bob's Plumbing" })
    );
    assert_eq!(
        name_of(&c, &s, &alice_t, "+16135550142").await.1["name"],
        "Plumber Joe"
    );
    assert_eq!(
        name_of(&c, &s, &alice_t, "+16135550143").await.1["name"],
        "Mum"
    );
    assert!(name_of(&c, &s, &o.token, "+16135550143").await.1["name"].is_null());
    assert_eq!(
        name_of(&c, &s, &alice_t, ADMIN_NUMBER).await.1["name"],
        "Ada"
    );
    assert!(name_of(&c, &s, &o.token, "+19995550000").await.1["name"].is_null());
    let (status, inbox) = call(
        c.post(s.url("/v1/inboxes"))
            .bearer_auth(&o.token)
            .json(&json!({ "name": "Front desk", "number": INBOX_NUMBER })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{inbox}");
    assert_eq!(
        name_of(&c, &s, &alice_t, INBOX_NUMBER).await.1["name"],
        "Front desk"
    );
    // Another organization learns nothing from our numbers.
    assert!(name_of(&c, &s, &other.token, "+16135550142").await.1["name"].is_null());
    assert!(name_of(&c, &s, &other.token, ADMIN_NUMBER).await.1["name"].is_null());
    assert!(name_of(&c, &s, &other.token, INBOX_NUMBER).await.1["name"].is_null());
    // A malformed number in a path is a malformed path, as the README says.
    let (status, v) = name_of(&c, &s, &o.token, "not-a-number").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["code"], "invalid_path");
}
