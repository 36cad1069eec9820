//! Full-text search over real HTTP and a real log: words found across a direct
//! conversation, a channel, an inbox conversation and a personal number's External
//! conversation for exactly those who may see them; pagination; read your writes; bad
//! queries; our number's automatic answer to a HELP found (and shown as the conversation's
//! last message); and the index built in chunks with reopens (resuming from its commit
//! payload) equals a fresh build, with no duplicate hits.

use std::collections::HashSet;
use std::sync::Arc;

use carrier::simulator::Simulator;
use gateway::carriers::CarrierKind;
use projections::search::writer::WANTED_COMMIT_FLOOR;
use projections::search::{SearchIndex, SearchWriter};
use projections::ReadModel;
use rand::{Rng, SeedableRng};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use testkit::server::{add_user, call, conversation_ids as convs, customer_text, TestServer};
use testkit::texting::{org_with_number, Org};
use workers::inbound_router;

const INBOX_NUMBER: &str = "+15550102000";
const DAVE_NUMBER: &str = "+15550103000";

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

/// Posts; the write's position.
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

/// A customer's text routed into its conversation; (conversation, log head).
async fn inbound(s: &TestServer, org: &Org, to: &str, from: &str, text: &str) -> (String, u64) {
    let record = customer_text(s, org.id, to, from, text).await;
    let conv = match inbound_router::route(&s.ws, &record).await.unwrap() {
        inbound_router::Routed::Recorded(id) => id.to_string(),
        other => panic!("{other:?}"),
    };
    (conv, s.ws.store.next_position() - 1)
}

/// A new organization (`ada@<domain>.example`, with `number`), its second user bob (on
/// extension `ext`), and ada's direct conversation with him.
async fn ada_to_bob(
    c: &Client,
    s: &TestServer,
    domain: &str,
    number: &str,
    ext: &str,
) -> (Org, String) {
    let o = org_with_number(c, &s.base, &format!("ada@{domain}.example"), number).await;
    let bob = add_user(c, s, &o.token, &format!("bob@{domain}.example"), ext).await;
    let conv = direct(c, s, &o.token, &bob.0).await;
    (o, conv)
}

/// `GET /v1/search?{query}`, expecting 200.
/// A new conversation with two posts, "<word> first" and "<word> second": the org, the
/// conversation, every event the log holds then, and where the events after the first
/// post start (a writer fed `..split` and then `split..` gets the two as two batches).
async fn two_posts(
    c: &Client,
    s: &TestServer,
    domain: &str,
    number: &str,
    ext: &str,
    word: &str,
) -> (Org, String, Vec<eventlog::RecordedEvent>, usize) {
    let (o, conv) = ada_to_bob(c, s, domain, number, ext).await;
    let first = post(c, s, &o.token, &conv, &format!("{word} first")).await;
    post(c, s, &o.token, &conv, &format!("{word} second")).await;
    let store = s.ws.store.clone();
    let all = tokio::task::spawn_blocking(move || store.read_all_blocking(0, usize::MAX))
        .await
        .unwrap()
        .unwrap();
    let split = all.iter().position(|e| e.position > first).unwrap();
    (o, conv, all, split)
}

async fn search(c: &Client, s: &TestServer, token: &str, query: &str) -> Value {
    let (status, v) = call(
        c.get(s.url(&format!("/v1/search?{query}")))
            .bearer_auth(token),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{query}: {v} (search at {:?}, interactions at {:?})",
        s.search.position(),
        s.interactions.position()
    );
    v
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_help_auto_reply_is_found_and_is_the_last_message() {
    const OUR: &str = "+15550104000";
    const CUSTOMER: &str = "+15557770123";
    const HELP_TEXT: &str = "Acme helpdesk: call 555-0100, or reply STOP to opt out.";
    let s = TestServer::start_with_carrier(CarrierKind::Simulator(Simulator::new()), |setup| {
        setup.help_text = Some(HELP_TEXT.into());
    })
    .await;
    let c = testkit::http();
    let org = org_with_number(&c, &s.base, "ada@help.example", OUR).await;
    let (status, v) = call(
        c.post(s.url("/v1/simulator/inbound"))
            .bearer_auth(&org.token)
            .json(&json!({ "from": CUSTOMER, "to": OUR, "text": "HELP" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");

    // The outbox answers on its own: wait until the list shows the answer.
    let mut row = Value::Null;
    for _ in 0..200 {
        let (status, list) = call(c.get(s.url("/v1/interactions")).bearer_auth(&org.token)).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        row = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["their_number"] == CUSTOMER)
            .cloned()
            .unwrap_or(Value::Null);
        if row["preview"]["author_kind"] == "auto_reply" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let preview = &row["preview"];
    assert_eq!(preview["author_kind"], "auto_reply", "{row}");
    assert_eq!(preview["author"], OUR, "{row}");
    assert_eq!(preview["text"], HELP_TEXT, "{row}");
    // Two messages nobody has read: the customer's HELP and our answer (seq 1 and 2).
    assert_eq!(row["unread"], 2, "{row}");
    let conv = row["conversation_id"].as_str().unwrap();
    let answered_at = row["last_position"].as_u64().unwrap();

    let v = search(
        &c,
        &s,
        &org.token,
        &format!("q=helpdesk&after={answered_at}"),
    )
    .await;
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{v}");
    assert_eq!(items[0]["conversation_id"], conv, "{v}");
    assert_eq!(items[0]["author_kind"], "auto_reply", "{v}");
    assert_eq!(items[0]["author"], OUR, "{v}");
    assert_eq!(items[0]["seq"], 2, "{v}");
    assert_eq!(items[0]["position"], answered_at, "{v}");
    // The customer's HELP is a message of its own, older than the answer.
    let v = search(&c, &s, &org.token, "q=help").await;
    assert_eq!(convs(&v), [conv], "{v}");
    assert_eq!(v["items"][0]["author_kind"], "external", "{v}");
    assert_eq!(v["items"][0]["seq"], 1, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn words_are_found_only_where_the_caller_may_look() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let o = org_with_number(&c, &s.base, "ada@search.example", "+15550101000").await;
    let (alice, alice_t) = add_user(&c, &s, &o.token, "alice@search.example", "101").await;
    let (bob, bob_t) = add_user(&c, &s, &o.token, "bob@search.example", "102").await;
    let (carol, carol_t) = add_user(&c, &s, &o.token, "carol@search.example", "103").await;
    let (dave, dave_t) = add_user(&c, &s, &o.token, "dave@search.example", "104").await;

    // Alice and Bob, directly.
    let ab = direct(&c, &s, &alice_t, &bob).await;
    post(
        &c,
        &s,
        &alice_t,
        &ab,
        "The zebra crossing on Main St is closed",
    )
    .await;
    post(&c, &s, &bob_t, &ab, "thanks, taking the bridge").await;
    // A channel of Alice and Carol.
    let ch = channel(&c, &s, &alice_t, "ops", &[&carol]).await;
    post(&c, &s, &carol_t, &ch, "Zebra migration meeting at noon").await;
    // An inbox with Bob and Carol on its team; a customer writes in.
    let (status, inbox) = call(
        c.post(s.url("/v1/inboxes"))
            .bearer_auth(&o.token)
            .json(&json!({ "name": "Front desk", "number": INBOX_NUMBER })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{inbox}");
    let inbox = inbox["inbox_id"].as_str().unwrap().to_owned();
    for u in [&bob, &carol] {
        let (status, v) = call(
            c.post(s.url(&format!("/v1/inboxes/{inbox}/members")))
                .bearer_auth(&o.token)
                .json(&json!({ "user": u })),
        )
        .await;
        assert!(status.is_success(), "{v}");
    }
    let (inbox_conv, _) = inbound(
        &s,
        &o,
        INBOX_NUMBER,
        "+15557770001",
        "Where is my zebra plush? Order #4411",
    )
    .await;
    // Dave's own business number; a customer texts him.
    let (status, v) = call(
        c.post(s.url("/v1/numbers"))
            .bearer_auth(&o.token)
            .json(&json!({ "number": DAVE_NUMBER, "user": dave })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (dave_conv, _) = inbound(
        &s,
        &o,
        DAVE_NUMBER,
        "+15557770002",
        "zebra stripes, café au lait",
    )
    .await;
    // Another organization says zebra too.
    let other = org_with_number(&c, &s.base, "eve@other.example", "+15550201000").await;
    let (frank, _) = add_user(&c, &s, &other.token, "frank@other.example", "101").await;
    let ef = direct(&c, &s, &other.token, &frank).await;
    let head = post(&c, &s, &other.token, &ef, "zebra zebra zebra").await;

    let q = |t: &str| format!("q={t}&after={head}");
    assert_eq!(
        sorted(convs(&search(&c, &s, &alice_t, &q("zebra")).await)),
        sorted(vec![ab.clone(), ch.clone()])
    );
    assert_eq!(
        sorted(convs(&search(&c, &s, &bob_t, &q("zebra")).await)),
        sorted(vec![ab.clone(), inbox_conv.clone()])
    );
    assert_eq!(
        sorted(convs(&search(&c, &s, &carol_t, &q("zebra")).await)),
        sorted(vec![ch.clone(), inbox_conv.clone()])
    );
    assert_eq!(
        convs(&search(&c, &s, &dave_t, &q("zebra")).await),
        vec![dave_conv.clone()]
    );
    // The admin is in none of them and not on the inbox's team, but sees every inbox
    // conversation (the visibility rule, as reading it over HTTP does).
    assert_eq!(
        convs(&search(&c, &s, &o.token, &q("zebra")).await),
        vec![inbox_conv.clone()]
    );
    // The other organization finds only its own.
    assert_eq!(
        convs(&search(&c, &s, &other.token, &q("zebra")).await),
        vec![ef.clone()]
    );

    // What a hit carries: newest first, author and name, seq, a highlighted snippet.
    let v = search(&c, &s, &bob_t, &q("zebra")).await;
    let first = &v["items"][0];
    assert_eq!(
        first["conversation_id"],
        inbox_conv.as_str(),
        "newest first: {v}"
    );
    assert_eq!(first["author_kind"], "external");
    assert_eq!(first["author"], "+15557770001");
    assert_eq!(first["seq"], 1);
    assert!(
        first["snippet"]["html"]
            .as_str()
            .unwrap()
            .contains("<b>zebra</b>"),
        "{v}"
    );
    let second = &v["items"][1];
    assert_eq!(second["author_kind"], "user");
    assert_eq!(second["author"], alice.as_str());
    assert_eq!(second["author_name"], "alice@search.example");
    let text = second["snippet"]["text"].as_str().unwrap();
    let (a, b) = (
        usize::try_from(second["snippet"]["highlights"][0][0].as_u64().unwrap()).unwrap(),
        usize::try_from(second["snippet"]["highlights"][0][1].as_u64().unwrap()).unwrap(),
    );
    assert_eq!(&text[a..b], "zebra");
    assert!(second["position"].as_u64().unwrap() < first["position"].as_u64().unwrap());

    // Every word must match; phrases; exclusions; case and accents fold; digits are words.
    assert_eq!(
        convs(&search(&c, &s, &alice_t, &q("zebra%20noon")).await),
        vec![ch.clone()]
    );
    assert_eq!(
        convs(&search(&c, &s, &alice_t, &q("%22zebra%20crossing%22")).await),
        vec![ab.clone()]
    );
    assert_eq!(
        convs(&search(&c, &s, &alice_t, &q("zebra%20-noon")).await),
        vec![ab.clone()]
    );
    assert_eq!(
        convs(&search(&c, &s, &alice_t, &q("ZEBRA%20MAIN")).await),
        vec![ab.clone()]
    );
    assert_eq!(
        convs(&search(&c, &s, &dave_t, &q("cafe")).await),
        vec![dave_conv.clone()]
    );
    assert_eq!(
        convs(&search(&c, &s, &bob_t, &q("4411")).await),
        vec![inbox_conv.clone()]
    );
    assert!(convs(&search(&c, &s, &alice_t, &q("bridge%20zebra")).await).is_empty());

    // Leaving the channel takes its messages out of Carol's search; joining an inbox
    // team brings its conversations in.
    let (status, r) = call(
        c.post(s.url(&format!("/v1/conversations/{ch}/leave")))
            .bearer_auth(&carol_t),
    )
    .await;
    assert!(status.is_success(), "{r}");
    let left = r["position"].as_u64().unwrap();
    assert_eq!(
        convs(&search(&c, &s, &carol_t, &format!("q=zebra&after={left}")).await),
        vec![inbox_conv.clone()]
    );
    let (status, r) = call(
        c.post(s.url(&format!("/v1/inboxes/{inbox}/members")))
            .bearer_auth(&o.token)
            .json(&json!({ "user": dave })),
    )
    .await;
    assert!(status.is_success(), "{r}");
    assert_eq!(
        sorted(convs(&search(&c, &s, &dave_t, "q=zebra").await)),
        sorted(vec![dave_conv.clone(), inbox_conv.clone()])
    );
    let _ = alice;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_walk_every_hit_once_newest_first() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let o = org_with_number(&c, &s.base, "ada@pages.example", "+15550101000").await;
    let (bob, bob_t) = add_user(&c, &s, &o.token, "bob@pages.example", "102").await;
    let conv = direct(&c, &s, &o.token, &bob).await;
    let mut positions = Vec::new();
    for i in 0..25 {
        positions.push(post(&c, &s, &o.token, &conv, &format!("alpha report number {i}")).await);
        if i % 5 == 0 {
            post(&c, &s, &bob_t, &conv, "something else entirely").await;
        }
    }
    let head = *positions.last().unwrap();
    positions.reverse();

    let mut seen = Vec::new();
    let mut before: Option<u64> = None;
    let mut pages = 0;
    loop {
        let mut query = format!("q=alpha&limit=10&after={head}");
        if let Some(b) = before {
            query.push_str(&format!("&before={b}"));
        }
        let v = search(&c, &s, &bob_t, &query).await;
        pages += 1;
        for item in v["items"].as_array().unwrap() {
            seen.push(item["position"].as_u64().unwrap());
        }
        match v["next_before"].as_u64() {
            Some(b) => before = Some(b),
            None => break,
        }
        assert!(pages < 10, "the cursor does not end: {v}");
    }
    assert_eq!(seen, positions, "every hit once, newest first");
    assert_eq!(pages, 3);
    // A page starting inside the range.
    let v = search(
        &c,
        &s,
        &bob_t,
        &format!("q=alpha&limit=3&before={}", positions[4]),
    )
    .await;
    let got: Vec<u64> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["position"].as_u64().unwrap())
        .collect();
    assert_eq!(got, positions[5..8].to_vec());
    // The snippet shows the matching text.
    assert!(v["items"][0]["snippet"]["text"]
        .as_str()
        .unwrap()
        .starts_with("alpha report"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_after_a_write_sees_it_and_bad_queries_are_400() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let o = org_with_number(&c, &s.base, "ada@ryw.example", "+15550101000").await;
    let (bob, bob_t) = add_user(&c, &s, &o.token, "bob@ryw.example", "102").await;
    let conv = direct(&c, &s, &o.token, &bob).await;
    // Read your writes: every message is found by the search right after it.
    for i in 0..20 {
        let word = format!("w{i}x");
        let p = post(&c, &s, &o.token, &conv, &format!("note {word}")).await;
        let v = search(&c, &s, &bob_t, &format!("q={word}&after={p}")).await;
        assert_eq!(v["items"].as_array().unwrap().len(), 1, "{word}: {v}");
    }
    // A position the log has not reached: 503 view_behind with Retry-After.
    let far = s.ws.store.next_position() + 1_000;
    let r = c
        .get(s.url(&format!("/v1/search?q=note&after={far}")))
        .bearer_auth(&bob_t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "view_behind");

    // Field syntax names no field: "kind:message" is two words (found in no message).
    let v = search(&c, &s, &bob_t, "q=kind:message").await;
    assert!(v["items"].as_array().unwrap().is_empty(), "{v}");
    let v = search(&c, &s, &bob_t, "q=Re:%20note").await;
    assert!(v["items"].as_array().unwrap().is_empty(), "{v}");
    post(&c, &s, &o.token, &conv, "Re: the 5:30 call, don't be late").await;
    let p = post(&c, &s, &o.token, &conv, "unrelated").await;
    let v = search(&c, &s, &bob_t, &format!("q=re:%205:30%20don't&after={p}")).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");

    // Bad queries: 400 invalid_search (syntax, match-all, ranges, empty, too long).
    let long = "a".repeat(300);
    for q in [
        "q=%22unbalanced",
        "q=(zebra",
        "q=*",
        "q=position:[0%20TO%2010]",
        "q=",
        "q=%20%20",
        "q=!!!",
        "",
        &format!("q={long}"),
    ] {
        let (status, v) = call(c.get(s.url(&format!("/v1/search?{q}"))).bearer_auth(&bob_t)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert_eq!(v["code"], "invalid_search", "{q}: {v}");
    }
    for (q, code) in [
        ("q=note&limit=0", "invalid_limit"),
        ("q=note&limit=101", "invalid_limit"),
        ("q=note&before=x", "invalid_query"),
        ("q=note&nonsense=1", "invalid_query"),
    ] {
        let (status, v) = call(c.get(s.url(&format!("/v1/search?{q}"))).bearer_auth(&bob_t)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert_eq!(v["code"], code, "{q}: {v}");
    }
    // Unauthenticated.
    let (status, v) = call(c.get(s.url("/v1/search?q=note"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
}

/// Builds the index from the log in chunks of random size, reopening it between chunks
/// and sometimes feeding events again (as a restart from an older checkpoint would).
fn build_with_restarts(
    store: &Arc<dyn eventlog::EventStore>,
    dir: &std::path::Path,
    seed: u64,
) -> (Vec<String>, Option<u64>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let all = store.read_all_blocking(0, usize::MAX).unwrap();
    let mut at = 0;
    while at < all.len() {
        let index = Arc::new(SearchIndex::open(dir).unwrap());
        let mut w = SearchWriter::new(index.clone()).unwrap();
        w.open_texts_with(actors::sealing::Sealer::of(&**store));
        // It resumes from the payload of its last commit: the last event fed before.
        assert_eq!(w.checkpoint(), at.checked_sub(1).map(|i| all[i].position));
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
    let index = SearchIndex::open(dir).unwrap();
    (index.dump().unwrap(), index.checkpoint().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_resumes_from_its_commit_payload_without_duplicates() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let o = org_with_number(&c, &s.base, "ada@resume.example", "+15550101000").await;
    let mut users = vec![(o.admin.to_string(), o.token.clone())];
    for i in 0..3 {
        users.push(
            add_user(
                &c,
                &s,
                &o.token,
                &format!("u{i}@resume.example"),
                &format!("2{i}0"),
            )
            .await,
        );
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut convs: Vec<(String, Vec<usize>)> = Vec::new();
    for step in 0..80 {
        match rng.random_range(0..6) {
            0 => {
                let (a, b) = (
                    rng.random_range(0..users.len()),
                    rng.random_range(0..users.len()),
                );
                if a != b {
                    convs.push((direct(&c, &s, &users[a].1, &users[b].0).await, vec![a, b]));
                }
            }
            _ if !convs.is_empty() => {
                let (conv, members) = &convs[rng.random_range(0..convs.len())];
                let who = members[rng.random_range(0..members.len())];
                post(&c, &s, &users[who].1, conv, &format!("kiwi message {step}")).await;
            }
            _ => {}
        }
    }
    let head = s.ws.store.next_position() - 1;
    assert!(
        s.search
            .wait_for(head, std::time::Duration::from_secs(10))
            .await
    );
    let live = s.search.db().dump().unwrap();
    let messages = live.iter().filter(|d| d.contains("kiwi message")).count();
    assert!(messages > 20, "the run posted something: {messages}");

    let store = s.ws.store.clone();
    let (fresh, chunked) = tokio::task::spawn_blocking(move || {
        let fresh_dir = tempfile::tempdir().unwrap();
        let chunked_dir = tempfile::tempdir().unwrap();
        let index = Arc::new(SearchIndex::open(fresh_dir.path()).unwrap());
        let mut w = SearchWriter::new(index.clone()).unwrap();
        w.open_texts_with(actors::sealing::Sealer::of(&*store));
        let all = store.read_all_blocking(0, usize::MAX).unwrap();
        w.apply_batch(&all).unwrap();
        // Feeding everything again adds nothing: it is all at or below the checkpoint.
        w.apply_batch(&all).unwrap();
        drop(w);
        let reopened = SearchIndex::open(fresh_dir.path()).unwrap();
        assert_eq!(
            reopened.checkpoint().unwrap(),
            Some(all.last().unwrap().position)
        );
        (
            reopened.dump().unwrap(),
            build_with_restarts(&store, chunked_dir.path(), 3),
        )
    })
    .await
    .unwrap();
    assert_eq!(live.len(), fresh.len());
    assert!(live == fresh, "the live index differs from a fresh build");
    assert!(
        chunked.0 == fresh,
        "a build with restarts and repeats differs from a fresh build"
    );
    assert_eq!(
        chunked.1,
        Some(head),
        "the chunked build's payload names the last event"
    );
    // No duplicate documents: every message id once.
    let ids: HashSet<&String> = fresh.iter().collect();
    assert_eq!(ids.len(), fresh.len());
    // And through the API, every kiwi message exactly once.
    let admin = &users[0].1;
    let mut before = None;
    let mut positions = HashSet::new();
    loop {
        let mut query = format!("q=kiwi&limit=100&after={head}");
        if let Some(b) = before {
            query.push_str(&format!("&before={b}"));
        }
        let v = search(&c, &s, admin, &query).await;
        for i in v["items"].as_array().unwrap() {
            assert!(
                positions.insert(i["position"].as_u64().unwrap()),
                "duplicate hit {i}"
            );
        }
        match v["next_before"].as_u64() {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    let admin_convs: Vec<&String> = convs
        .iter()
        .filter(|(_, m)| m.contains(&0))
        .map(|(id, _)| id)
        .collect();
    let expected = live
        .iter()
        .filter(|d| {
            d.contains("kiwi message") && admin_convs.iter().any(|id| d.contains(id.as_str()))
        })
        .count();
    assert_eq!(positions.len(), expected);
    // The server's model, stopped and started again on its directory, resumes from its
    // commit payload: nothing missing, nothing twice.
    s.search.close();
    let root = s.log.dir().join("readmodels");
    // `close` returned after the runner had ended, so its writer lock is released.
    let restarted = projections::LiveSearch::start(&root, s.ws.store.clone()).unwrap();
    assert_eq!(restarted.generation(), s.search.generation());
    assert_eq!(restarted.position(), Some(head), "resumed from the payload");
    let (conv, members) = &convs[0];
    let last = post(&c, &s, &users[members[0]].1, conv, "kiwi after restart").await;
    assert!(
        restarted
            .wait_for(last, std::time::Duration::from_secs(10))
            .await
    );
    let after = restarted.db().dump().unwrap();
    assert_eq!(
        after.len(),
        live.len() + 1,
        "one new document, none repeated"
    );
    restarted.close();
}

/// A server's writer commits the first batch after a quiet spell at once and, while it is
/// searched, holds the documents of the next ones back for at most `COMMIT_INTERVAL`:
/// searches (and read-your-writes) see them only once the flush commits them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_held_back_until_its_commit_and_then_visible() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let (o, _, all, split) = two_posts(&c, &s, "burst", "+15550101900", "290", "plum").await;
    let first = all[split - 1].position;
    let store = s.ws.store.clone();
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let index = Arc::new(SearchIndex::open(dir.path()).unwrap());
        let plums = |index: &SearchIndex| {
            let docs = index.dump().unwrap();
            docs.iter().filter(|d| d.contains("plum")).count()
        };
        // An interval no test run outlasts: what is held back stays so until flushed.
        let interval = std::time::Duration::from_secs(3600);
        let mut w = SearchWriter::with_commit_interval(index.clone(), interval).unwrap();
        w.open_texts_with(actors::sealing::Sealer::of(&*store));
        assert_eq!(w.flush_at(), None, "nothing held back");
        w.apply_batch(&all[..split]).unwrap();
        assert_eq!(
            w.visible(),
            Some(first),
            "the first batch is committed at once"
        );
        assert_eq!(index.checkpoint().unwrap(), Some(first));
        assert_eq!(plums(&index), 1);

        let committed = std::time::Instant::now();
        w.apply_batch(&all[split..]).unwrap();
        let head = all.last().unwrap().position;
        assert_eq!(w.checkpoint(), Some(head));
        assert_eq!(w.visible(), Some(first), "held back: not visible yet");
        assert_eq!(index.checkpoint().unwrap(), Some(first), "nor stored");
        assert_eq!(plums(&index), 1);
        // Searched: due an interval after the last commit (a search-idle index waits for
        // the log to go quiet, as the next test shows).
        assert!(!index.demand().searching());
        let due = w.flush_at().expect("a flush is due");
        assert!(due <= committed + interval, "{due:?}");
        assert!(due > std::time::Instant::now(), "not due yet");
        // A search waiting for them has them committed much sooner.
        let wanted = w.flush_when_wanted().expect("due when wanted");
        assert!(wanted <= committed + WANTED_COMMIT_FLOOR, "{wanted:?}");

        w.flush().unwrap();
        assert_eq!(w.visible(), Some(head));
        assert_eq!(w.flush_at(), None);
        assert_eq!(index.checkpoint().unwrap(), Some(head));
        assert_eq!(plums(&index), 2);
    })
    .await
    .unwrap();
    // The live model flushes on its own: a search after the last write finds both.
    let v = search(
        &c,
        &s,
        &o.token,
        &format!("q=plum&after={}", s.ws.store.next_position() - 1),
    )
    .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 2, "{v}");
}

/// Commits for searchers (`projections::search::demand`): under a stream of batches a
/// search-idle writer holds documents until the log goes quiet (a refresh interval after
/// its last batch), while a searched one commits them a refresh interval after its last
/// commit; documents waiting less than the interval do not make a search wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_index_holds_documents_until_the_log_goes_quiet_a_searched_one_commits_them() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let (_, _, all, split) = two_posts(&c, &s, "idle", "+15550101920", "292", "sloe").await;
    let first = all[split - 1].position;
    let store = s.ws.store.clone();
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let index = Arc::new(SearchIndex::open(dir.path()).unwrap());
        // Longer than the test: nothing here falls due by the clock.
        let interval = std::time::Duration::from_secs(600);
        let mut w = SearchWriter::with_commit_interval(index.clone(), interval).unwrap();
        w.open_texts_with(actors::sealing::Sealer::of(&*store));
        w.apply_batch(&all[..split]).unwrap();
        assert_eq!(
            w.visible(),
            Some(first),
            "the first batch is committed at once"
        );
        let committed = std::time::Instant::now();
        // The next batch is stored strictly later than the commit.
        while std::time::Instant::now() <= committed {
            std::hint::spin_loop();
        }
        let stored = std::time::Instant::now();
        w.apply_batch(&all[split..]).unwrap();
        assert_eq!(w.visible(), Some(first), "held back");
        assert!(!index.demand().searched_lately(), "nobody searched yet");
        let idle = w.flush_at().expect("a flush is due");
        assert!(
            idle >= stored + interval,
            "idle: once the log is quiet an interval after the last batch"
        );
        assert!(
            !index.demand().searching(),
            "documents waiting less than the interval do not make a search wait"
        );
        assert!(index.demand().searched_lately());
        let searched = w.flush_at().expect("a flush is due");
        assert!(
            searched <= committed + interval,
            "searched: an interval after the last commit"
        );
        assert!(searched < idle);
        w.flush().unwrap();
        assert_eq!(w.visible(), Some(all.last().unwrap().position));
        assert!(!index.demand().searching(), "nothing waits once committed");
    })
    .await
    .unwrap();
}

/// A runner whose index commits once an hour still lets a search read its own write: the
/// search that waits for a position (`Live::wait_for`, as `after=` does) tells the runner
/// (`Wanted`), which commits what it holds back at once instead of when its interval is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_waiting_for_held_back_documents_has_them_committed() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let (o, conv) = ada_to_bob(&c, &s, "wanted", "+15550101910", "291").await;
    post(&c, &s, &o.token, &conv, "quince first").await;

    let dir = tempfile::tempdir().unwrap();
    let index = Arc::new(SearchIndex::open(dir.path()).unwrap());
    let interval = std::time::Duration::from_secs(3600);
    let mut w = SearchWriter::with_commit_interval(index.clone(), interval).unwrap();
    w.open_texts_with(actors::sealing::Sealer::of(&*s.ws.store));
    let (tx, mut visible) = tokio::sync::watch::channel(None);
    let wanted = Arc::new(projections::Wanted::default());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let runner = {
        let (store, wanted, stop) = (s.ws.store.clone(), wanted.clone(), stop.clone());
        std::thread::spawn(move || {
            projections::follow_blocking(store, &mut w, &tx, &wanted, &stop, |_, _| {}).unwrap()
        })
    };
    // What the log holds so far: the first batch after a quiet spell is committed at once,
    // and a search waits for the rest (the catch-up may come in more than one batch).
    let first = s.ws.store.next_position() - 1;
    wanted.want(first);
    let bound = std::time::Duration::from_secs(60);
    tokio::time::timeout(bound, visible.wait_for(|p| p.is_some_and(|p| p >= first)))
        .await
        .expect("what the log held is committed")
        .unwrap();

    // Within the hour: held back, unless a search waits for it.
    let second = post(&c, &s, &o.token, &conv, "quince second").await;
    wanted.want(second);
    tokio::time::timeout(bound, visible.wait_for(|p| p.is_some_and(|p| p >= second)))
        .await
        .expect("committed for the search waiting for it, not an hour later")
        .unwrap();
    let quinces = index
        .dump()
        .unwrap()
        .iter()
        .filter(|d| d.contains("quince"))
        .count();
    assert_eq!(quinces, 2);
    stop.store(true, std::sync::atomic::Ordering::Release);
    tokio::task::spawn_blocking(move || runner.join().unwrap())
        .await
        .unwrap();
}
