//! The interactions read model over real HTTP and a real log: lists with filters, unread
//! counts, previews, names, inbox views with badges, read your writes, access; and the
//! model built live (with restarts and repeated batches) equals a fresh rebuild.

use std::sync::Arc;

use domain::OrgId;
use projections::interactions::{InteractionsDb, InteractionsWriter};
use projections::ReadModel;
use rand::{Rng, SeedableRng};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use testkit::server::{
    add_user, call, conversation_ids as ids, customer_text, TestServer, PASSWORD,
};
use workers::inbound_router;

const INBOX_NUMBER: &str = "+15550102000";

struct Org {
    admin: String,
    admin_id: String,
    org: OrgId,
}

async fn bootstrap(c: &Client, s: &TestServer, email: &str) -> Org {
    let (status, boot) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Acme", "name": "Ada Admin", "extension": "100", "email": email, "password": PASSWORD,
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{boot}");
    Org {
        admin: boot["token"].as_str().unwrap().to_owned(),
        admin_id: boot["user_id"].as_str().unwrap().to_owned(),
        org: serde_json::from_value(boot["organization_id"].clone()).unwrap(),
    }
}

async fn direct(c: &Client, s: &TestServer, token: &str, with: &str) -> String {
    let (status, v) = call(
        c.post(s.url("/v1/conversations/direct"))
            .bearer_auth(token)
            .json(&json!({ "with": with })),
    )
    .await;
    assert!(status.is_success(), "{v}");
    v["conversation_id"].as_str().unwrap().to_owned()
}

/// Posts; returns the write's position.
async fn post(c: &Client, s: &TestServer, token: &str, conv: &str, text: &str) -> u64 {
    let (status, v) = call(
        c.post(s.url(&format!("/v1/conversations/{conv}/messages")))
            .bearer_auth(token)
            .json(&json!({ "text": text })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["position"].as_u64().unwrap()
}

async fn list(c: &Client, s: &TestServer, token: &str, query: &str) -> Value {
    let (status, v) = call(
        c.get(s.url(&format!("/v1/interactions?{query}")))
            .bearer_auth(token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

fn find<'a>(v: &'a Value, conv: &str) -> &'a Value {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["conversation_id"] == conv)
        .unwrap_or_else(|| panic!("{conv} not in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_show_unread_previews_names_and_filters() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let o = bootstrap(&c, &s, "ada@lists.example").await;
    let (alice, alice_t) = add_user(&c, &s, &o.admin, "alice@lists.example", "101").await;
    let (bob, bob_t) = add_user(&c, &s, &o.admin, "bob@lists.example", "102").await;

    let ab = direct(&c, &s, &alice_t, &bob).await;
    post(&c, &s, &alice_t, &ab, "one").await;
    post(&c, &s, &alice_t, &ab, "two").await;
    let p = post(&c, &s, &alice_t, &ab, "three 🎉").await;

    let v = list(&c, &s, &bob_t, &format!("after={p}")).await;
    let row = find(&v, &ab);
    assert_eq!(row["unread"], 3, "{v}");
    assert_eq!(row["kind"], "direct");
    assert_eq!(row["title"], "alice@lists.example");
    assert_eq!(row["preview"]["text"], "three 🎉");
    assert_eq!(row["preview"]["author_name"], "alice@lists.example");
    // The writer has read what they wrote.
    let v = list(&c, &s, &alice_t, &format!("after={p}")).await;
    assert_eq!(find(&v, &ab)["unread"], 0);
    assert_eq!(find(&v, &ab)["title"], "bob@lists.example");

    // Bob reads up to 2: one unread left.
    let (status, r) = call(
        c.post(s.url(&format!("/v1/conversations/{ab}/read")))
            .bearer_auth(&bob_t)
            .json(&json!({ "up_to": 2 })),
    )
    .await;
    assert!(status.is_success(), "{r}");
    let read_pos = r["position"].as_u64().unwrap();
    let v = list(&c, &s, &bob_t, &format!("after={read_pos}")).await;
    assert_eq!(find(&v, &ab)["unread"], 1, "{v}");

    // A channel, newer activity: it sorts first; filters separate the kinds.
    let (status, ch) = call(
        c.post(s.url("/v1/conversations/channel"))
            .bearer_auth(&alice_t)
            .json(&json!({ "name": "ops", "members": [bob] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ch}");
    let ch = ch["conversation_id"].as_str().unwrap().to_owned();
    let p = post(&c, &s, &bob_t, &ch, "deploy done").await;
    let v = list(&c, &s, &alice_t, &format!("after={p}")).await;
    let ids: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["conversation_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![ch.as_str(), ab.as_str()], "newest first: {v}");
    assert_eq!(find(&v, &ch)["title"], "ops");
    assert_eq!(find(&v, &ch)["unread"], 1);
    let v = list(&c, &s, &alice_t, "filter=channels").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let v = list(&c, &s, &alice_t, "filter=direct").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    assert_eq!(v["items"][0]["conversation_id"], ab.as_str());
    let v = list(&c, &s, &alice_t, "filter=external").await;
    assert!(v["items"].as_array().unwrap().is_empty());

    // Pagination: one per page, the cursor walks the rest, no repeats.
    let first = list(&c, &s, &alice_t, "limit=1").await;
    assert_eq!(first["items"][0]["conversation_id"], ch.as_str());
    let before = first["next_before"].as_u64().expect("a cursor");
    let second = list(&c, &s, &alice_t, &format!("limit=1&before={before}")).await;
    assert_eq!(second["items"][0]["conversation_id"], ab.as_str());
    let third = list(
        &c,
        &s,
        &alice_t,
        &format!(
            "limit=1&before={}",
            second["next_before"].as_u64().unwrap_or(0)
        ),
    )
    .await;
    assert!(third["items"].as_array().unwrap().is_empty(), "{third}");

    // The admin is in neither conversation.
    let v = list(&c, &s, &o.admin, "").await;
    assert!(v["items"].as_array().unwrap().is_empty(), "{v}");

    // Bad input: clear 400s.
    for q in [
        "filter=bogus",
        "limit=0",
        "limit=100000",
        "view=open",
        "nonsense=1",
    ] {
        let (status, v) = call(
            c.get(s.url(&format!("/v1/interactions?{q}")))
                .bearer_auth(&alice_t),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert!(v["code"].is_string(), "{v}");
    }
    // Unauthenticated.
    let (status, _) = call(c.get(s.url("/v1/interactions"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let _ = alice;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_views_carry_per_viewer_badges() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let o = bootstrap(&c, &s, "ada@views.example").await;
    let (alice, alice_t) = add_user(&c, &s, &o.admin, "alice@views.example", "101").await;
    let (bob, bob_t) = add_user(&c, &s, &o.admin, "bob@views.example", "102").await;
    let (_, carol_t) = add_user(&c, &s, &o.admin, "carol@views.example", "103").await;
    let (status, inbox) = call(
        c.post(s.url("/v1/inboxes"))
            .bearer_auth(&o.admin)
            .json(&json!({ "name": "Front desk", "number": INBOX_NUMBER })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{inbox}");
    let inbox = inbox["inbox_id"].as_str().unwrap().to_owned();
    for u in [&alice, &bob] {
        let (status, v) = call(
            c.post(s.url(&format!("/v1/inboxes/{inbox}/members")))
                .bearer_auth(&o.admin)
                .json(&json!({ "user": u })),
        )
        .await;
        assert!(status.is_success(), "{v}");
    }
    let record = customer_text(
        &s,
        o.org,
        INBOX_NUMBER,
        "+15557770009",
        "Where is my parcel?",
    )
    .await;
    let conv = match inbound_router::route(&s.ws, &record).await.unwrap() {
        inbound_router::Routed::Recorded(id) => id.to_string(),
        other => panic!("{other:?}"),
    };
    let head = s.ws.store.next_position() - 1;
    let view = |t: &str, v: &str| {
        let (c, s, t, v) = (
            c.clone(),
            s.url(&format!(
                "/v1/inboxes/{inbox}/conversations?view={v}&after={head}"
            )),
            t.to_owned(),
            v.to_owned(),
        );
        async move {
            let (status, body) = call(c.get(s).bearer_auth(&t)).await;
            assert_eq!(status, StatusCode::OK, "{v}: {body}");
            body
        }
    };
    let un = view(&alice_t, "unassigned").await;
    let row = find(&un, &conv);
    assert_eq!(row["status"], "unassigned");
    assert_eq!(row["badges"]["blue_badge"], true, "{un}");
    assert_eq!(row["preview"]["text"], "Where is my parcel?");
    assert_eq!(row["title"], "+15557770009");
    assert!(view(&alice_t, "mine").await["items"]
        .as_array()
        .unwrap()
        .is_empty());

    let (status, r) = call(
        c.post(s.url(&format!("/v1/conversations/{conv}/assign-to-me")))
            .bearer_auth(&alice_t),
    )
    .await;
    assert!(status.is_success(), "{r}");
    let head = r["position"].as_u64().unwrap();
    let get = |t: &str, v: &str| {
        let (c, s, t) = (
            c.clone(),
            s.url(&format!(
                "/v1/inboxes/{inbox}/conversations?view={v}&after={head}"
            )),
            t.to_owned(),
        );
        async move { call(c.get(s).bearer_auth(&t)).await.1 }
    };
    let mine = get(&alice_t, "mine").await;
    let row = find(&mine, &conv);
    assert_eq!(row["badges"]["green_flag"], true, "{mine}");
    assert_eq!(row["badges"]["green_badge"], true, "{mine}");
    assert_eq!(row["assignee"], alice.as_str());
    let open_for_bob = get(&bob_t, "open").await;
    let row = find(&open_for_bob, &conv);
    assert_eq!(row["badges"]["grey_flag"], true, "{open_for_bob}");
    assert_eq!(row["badges"]["green_flag"], false);
    assert!(get(&bob_t, "unassigned").await["items"]
        .as_array()
        .unwrap()
        .is_empty());

    let (status, r) = call(
        c.post(s.url(&format!("/v1/conversations/{conv}/done")))
            .bearer_auth(&alice_t),
    )
    .await;
    assert!(status.is_success(), "{r}");
    let head = r["position"].as_u64().unwrap();
    let (_, done) = call(
        c.get(s.url(&format!(
            "/v1/inboxes/{inbox}/conversations?view=done&after={head}"
        )))
        .bearer_auth(&bob_t),
    )
    .await;
    assert_eq!(find(&done, &conv)["status"], "done");
    let (_, open) = call(
        c.get(s.url(&format!(
            "/v1/inboxes/{inbox}/conversations?view=open&after={head}"
        )))
        .bearer_auth(&bob_t),
    )
    .await;
    assert!(open["items"].as_array().unwrap().is_empty(), "{open}");

    // Not a member, another organization, nobody: 404 / 404 / 401, and bad views 400.
    let (status, _) = call(
        c.get(s.url(&format!("/v1/inboxes/{inbox}/conversations")))
            .bearer_auth(&carol_t),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let other = bootstrap(&c, &s, "eve@other.example").await;
    let (status, _) = call(
        c.get(s.url(&format!("/v1/inboxes/{inbox}/conversations")))
            .bearer_auth(&other.admin),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(c.get(s.url(&format!("/v1/inboxes/{inbox}/conversations")))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, v) = call(
        c.get(s.url(&format!("/v1/inboxes/{inbox}/conversations?view=bogus")))
            .bearer_auth(&alice_t),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    // The other org's admin sees none of it in their own list either.
    let v = list(&c, &s, &other.admin, "").await;
    assert!(v["items"].as_array().unwrap().is_empty());
    let _ = o.admin_id;
}

/// A channel or direct conversation is on a member's list through their membership (not a
/// sorted key per member): it appears on joining, goes on leaving, and sits in the list by
/// its last activity, merged with the user's other entries and paged without repeats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memberships_follow_joins_and_leaves_and_page_by_activity() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let o = bootstrap(&c, &s, "ada@members.example").await;
    let (alice, alice_t) = add_user(&c, &s, &o.admin, "alice@members.example", "101").await;
    let (bob, bob_t) = add_user(&c, &s, &o.admin, "bob@members.example", "102").await;
    let (_, carol_t) = add_user(&c, &s, &o.admin, "carol@members.example", "103").await;

    let (status, v) = call(
        c.post(s.url("/v1/conversations/channel"))
            .bearer_auth(&alice_t)
            .json(&json!({ "name": "general", "members": [bob] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let general = v["conversation_id"].as_str().unwrap().to_owned();
    let ab = direct(&c, &s, &bob_t, &alice).await;
    post(&c, &s, &alice_t, &general, "first").await;
    post(&c, &s, &bob_t, &ab, "second").await;
    let p = post(&c, &s, &alice_t, &general, "third").await;

    // Newest activity first, one page at a time, each conversation once.
    let v = list(&c, &s, &bob_t, &format!("after={p}")).await;
    assert_eq!(ids(&v), [general.clone(), ab.clone()], "{v}");
    let first = list(&c, &s, &bob_t, &format!("after={p}&limit=1")).await;
    assert_eq!(ids(&first), std::slice::from_ref(&general));
    let before = first["next_before"].as_u64().expect("a cursor");
    let second = list(&c, &s, &bob_t, &format!("limit=1&before={before}")).await;
    assert_eq!(ids(&second), std::slice::from_ref(&ab), "{second}");
    if let Some(before) = second["next_before"].as_u64() {
        let third = list(&c, &s, &bob_t, &format!("limit=1&before={before}")).await;
        assert!(ids(&third).is_empty(), "{third}");
    }
    // Activity in the older one moves it to the top.
    let p = post(&c, &s, &bob_t, &ab, "fourth").await;
    let v = list(&c, &s, &alice_t, &format!("after={p}")).await;
    assert_eq!(ids(&v), [ab.clone(), general.clone()], "{v}");

    // Carol is not a member: not on her list until she joins, and gone once she leaves.
    let v = list(&c, &s, &carol_t, &format!("after={p}")).await;
    assert!(ids(&v).is_empty(), "{v}");
    for (action, listed) in [("join", true), ("leave", false), ("join", true)] {
        let (status, r) = call(
            c.post(s.url(&format!("/v1/conversations/{general}/{action}")))
                .bearer_auth(&carol_t),
        )
        .await;
        assert!(status.is_success(), "{action}: {status} {r}");
        let head = s.ws.store.next_position() - 1;
        let v = list(&c, &s, &carol_t, &format!("after={head}")).await;
        assert_eq!(ids(&v) == [general.clone()], listed, "after {action}: {v}");
        assert_eq!(
            ids(&list(&c, &s, &carol_t, &format!("after={head}&filter=channels")).await)
                == [general.clone()],
            listed
        );
    }
}

/// Builds a model from the log in chunks of random size, reopening it between chunks and
/// sometimes feeding a chunk again (as a restart from an older checkpoint would).
fn build_with_restarts(
    store: &Arc<dyn eventlog::EventStore>,
    dir: &std::path::Path,
    seed: u64,
) -> projections::db::Dump {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let all = store.read_all_blocking(0, usize::MAX).unwrap();
    let mut at = 0;
    while at < all.len() {
        let db = Arc::new(InteractionsDb::open(dir).unwrap());
        let mut w = InteractionsWriter::new(db.clone()).unwrap();
        for _ in 0..rng.random_range(1..4) {
            let n = rng.random_range(1..40).min(all.len() - at);
            if n == 0 {
                break;
            }
            let from = if at > 0 && rng.random_bool(0.3) {
                at.saturating_sub(rng.random_range(1..10))
            } else {
                at
            };
            w.apply_batch(&all[from..at + n]).unwrap();
            at += n;
        }
    }
    InteractionsDb::open(dir).unwrap().dump().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_model_equals_fresh_rebuild_after_random_commands_and_restarts() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let o = bootstrap(&c, &s, "ada@rebuild.example").await;
    let mut users = vec![(o.admin_id.clone(), o.admin.clone())];
    for i in 0..4 {
        users.push(
            add_user(
                &c,
                &s,
                &o.admin,
                &format!("u{i}@rebuild.example"),
                &format!("2{i}0"),
            )
            .await,
        );
    }
    let (status, inbox) = call(
        c.post(s.url("/v1/inboxes"))
            .bearer_auth(&o.admin)
            .json(&json!({ "name": "Desk", "number": INBOX_NUMBER })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{inbox}");
    let inbox = inbox["inbox_id"].as_str().unwrap().to_owned();
    for (u, _) in &users[1..3] {
        call(
            c.post(s.url(&format!("/v1/inboxes/{inbox}/members")))
                .bearer_auth(&o.admin)
                .json(&json!({ "user": u })),
        )
        .await;
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut convs: Vec<(String, Vec<usize>)> = Vec::new();
    let mut inbox_convs = Vec::new();
    for step in 0..120 {
        match rng.random_range(0..10) {
            0 => {
                let (a, b) = (
                    rng.random_range(0..users.len()),
                    rng.random_range(0..users.len()),
                );
                if a != b {
                    let id = direct(&c, &s, &users[a].1, &users[b].0).await;
                    convs.push((id, vec![a, b]));
                }
            }
            1 => {
                let a = rng.random_range(0..users.len());
                let members: Vec<usize> =
                    (0..users.len()).filter(|_| rng.random_bool(0.5)).collect();
                let ids: Vec<&str> = members
                    .iter()
                    .filter(|m| **m != a)
                    .map(|m| users[*m].0.as_str())
                    .collect();
                let (status, v) = call(
                    c.post(s.url("/v1/conversations/channel"))
                        .bearer_auth(&users[a].1)
                        .json(&json!({ "name": format!("ch{step}"), "members": ids })),
                )
                .await;
                assert_eq!(status, StatusCode::CREATED, "{v}");
                let mut all = members.clone();
                all.push(a);
                convs.push((v["conversation_id"].as_str().unwrap().to_owned(), all));
            }
            2 => {
                let from = format!("+1555888{:04}", rng.random_range(0..5));
                let record =
                    customer_text(&s, o.org, INBOX_NUMBER, &from, &format!("hello {step}")).await;
                if let inbound_router::Routed::Recorded(id) =
                    inbound_router::route(&s.ws, &record).await.unwrap()
                {
                    inbox_convs.push(id.to_string());
                }
            }
            3 if !inbox_convs.is_empty() => {
                let conv = &inbox_convs[rng.random_range(0..inbox_convs.len())];
                let who = &users[rng.random_range(1..3)].1;
                let action = ["assign-to-me", "return", "done"][rng.random_range(0..3)];
                call(
                    c.post(s.url(&format!("/v1/conversations/{conv}/{action}")))
                        .bearer_auth(who),
                )
                .await;
            }
            4 if !convs.is_empty() => {
                let (conv, members) = &convs[rng.random_range(0..convs.len())];
                let who = members[rng.random_range(0..members.len())];
                let up_to = rng.random_range(0..6);
                call(
                    c.post(s.url(&format!("/v1/conversations/{conv}/read")))
                        .bearer_auth(&users[who].1)
                        .json(&json!({ "up_to": up_to })),
                )
                .await;
            }
            _ if !convs.is_empty() => {
                let (conv, members) = &convs[rng.random_range(0..convs.len())];
                let who = members[rng.random_range(0..members.len())];
                post(&c, &s, &users[who].1, conv, &format!("message {step}")).await;
            }
            _ => {}
        }
    }
    let head = s.ws.store.next_position() - 1;
    assert!(
        s.interactions
            .wait_for(head, std::time::Duration::from_secs(10))
            .await
    );
    let live = s.interactions.db().dump().unwrap();
    assert!(
        live.iter().any(|(cf, _, _)| cf == "markers"),
        "the run read something"
    );

    let store = s.ws.store.clone();
    let fresh_dir = tempfile::tempdir().unwrap();
    let chunked_dir = tempfile::tempdir().unwrap();
    let (fresh, chunked) = tokio::task::spawn_blocking(move || {
        let db = Arc::new(InteractionsDb::open(fresh_dir.path()).unwrap());
        let mut w = InteractionsWriter::new(db.clone()).unwrap();
        let all = store.read_all_blocking(0, usize::MAX).unwrap();
        w.apply_batch(&all).unwrap();
        (
            db.dump().unwrap(),
            build_with_restarts(&store, chunked_dir.path(), 11),
        )
    })
    .await
    .unwrap();
    assert_eq!(live.len(), fresh.len());
    assert!(live == fresh, "the live model differs from a fresh rebuild");
    assert!(
        chunked == fresh,
        "a build with restarts and repeats differs from a fresh rebuild"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_runs_beside_the_live_model_and_switches_atomically() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let o = bootstrap(&c, &s, "ada@bluegreen.example").await;
    let (bob, bob_t) = add_user(&c, &s, &o.admin, "bob@bluegreen.example", "101").await;
    let conv = direct(&c, &s, &o.admin, &bob).await;
    for i in 0..30 {
        post(&c, &s, &o.admin, &conv, &format!("before {i}")).await;
    }
    let old_generation = s.interactions.generation();
    let old_dir = s.interactions.home_dir().join(&old_generation);
    assert!(old_dir.exists());

    // Writers and readers keep going while the rebuild runs.
    let busy = {
        let (c, s_url, admin, bob_t, conv) = (
            c.clone(),
            s.base.clone(),
            o.admin.clone(),
            bob_t.clone(),
            conv.clone(),
        );
        tokio::spawn(async move {
            let mut last = 0;
            for i in 0..40 {
                let (status, v) = call(
                    c.post(format!("{s_url}/v1/conversations/{conv}/messages"))
                        .bearer_auth(&admin)
                        .json(&json!({ "text": format!("during {i}") })),
                )
                .await;
                assert_eq!(status, StatusCode::CREATED, "{v}");
                last = v["position"].as_u64().unwrap();
                // As a client reads after its write (a list read without `after=` may
                // be a linger behind).
                let (status, v) = call(
                    c.get(format!("{s_url}/v1/interactions?after={last}"))
                        .bearer_auth(&bob_t),
                )
                .await;
                assert_eq!(status, StatusCode::OK, "{v}");
                assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");
            }
            last
        })
    };
    let log_path = s.log.path();
    let readmodels = s.log.dir().join("readmodels");
    let report = tokio::task::spawn_blocking(move || {
        let ro: Arc<dyn eventlog::EventStore> =
            Arc::new(eventlog::RocksLog::open_read_only(&log_path).unwrap());
        replay::rebuild::rebuild(ro, &readmodels, "interactions", true, |_, _| {}).unwrap()
    })
    .await
    .unwrap();
    assert_ne!(report.generation, old_generation);
    assert!(report.events > 30);
    let last = busy.await.unwrap();

    // The server switches to the new generation once it has caught up, then drops the old.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while s.interactions.generation() != report.generation {
        assert!(std::time::Instant::now() < deadline, "never switched");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let p = post(&c, &s, &o.admin, &conv, "after").await;
    assert!(p > last);
    let v = list(&c, &s, &bob_t, &format!("after={p}")).await;
    let row = find(&v, &conv);
    assert_eq!(row["unread"], 71, "every message, none twice: {v}");
    assert_eq!(row["preview"]["text"], "after");
    // Same content as a fresh build.
    let store = s.ws.store.clone();
    let live = s.interactions.db().dump().unwrap();
    let fresh = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(InteractionsDb::open(dir.path()).unwrap());
        let mut w = InteractionsWriter::new(db.clone()).unwrap();
        w.apply_batch(&store.read_all_blocking(0, usize::MAX).unwrap())
            .unwrap();
        db.dump().unwrap()
    })
    .await
    .unwrap();
    assert!(
        live == fresh,
        "the switched-to model differs from a fresh rebuild"
    );
    // Bad model names are refused.
    let err = replay::rebuild::rebuild(
        s.ws.store.clone(),
        &s.log.dir().join("readmodels"),
        "nope",
        false,
        |_, _| {},
    );
    assert!(err.is_err());
    // The old generation goes once it has stopped (it stops at its next event).
    post(&c, &s, &o.admin, &conv, "nudge").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while old_dir.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "old generation left on disk"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generation_of_an_older_layout_is_replaced_by_a_fresh_build() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let o = bootstrap(&c, &s, "ada@layout.example").await;
    let (status, v) = call(
        c.post(s.url("/v1/conversations/channel"))
            .bearer_auth(&o.admin)
            .json(&json!({ "name": "general" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let channel = v["conversation_id"].as_str().unwrap().to_owned();
    let head = s.ws.store.next_position() - 1;

    // A generation written by the previous layout, which claims to have applied everything
    // (it has no channel list): misread, it would list no channel.
    let root = tempfile::tempdir().unwrap();
    let home = projections::ModelHome::new(root.path(), projections::interactions::NAME);
    let old = home.current_or_init().unwrap();
    {
        let db = projections::db::ModelDb::open(
            &home.path_of(&old),
            &["sorted", "convs", "markers", "users"],
            &[],
            &[],
            "interactions/2",
        )
        .unwrap();
        db.commit(rocksdb::WriteBatch::default(), head).unwrap();
    }
    assert!(matches!(
        InteractionsDb::open(&home.path_of(&old)),
        Err(projections::ProjectionError::Layout { .. })
    ));

    // Started over it, the model builds a fresh generation from the log.
    let live = projections::LiveInteractions::start(root.path(), s.ws.store.clone()).unwrap();
    assert_ne!(live.generation(), old);
    assert_eq!(home.current().unwrap(), Some(live.generation()));
    assert!(
        live.wait_for(head, std::time::Duration::from_secs(10))
            .await
    );
    let admin: domain::UserId = o.admin_id.parse().unwrap();
    let page = live.db().channels(o.org, admin, None, 10).unwrap();
    let listed: Vec<String> = page
        .rows
        .iter()
        .map(|r| r.conversation.to_string())
        .collect();
    assert_eq!(listed, [channel]);
    assert!(page.rows[0].joined);
    tokio::task::spawn_blocking(move || live.close())
        .await
        .unwrap();
}
