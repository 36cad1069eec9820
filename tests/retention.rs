//! Retention and erasure over real HTTP, a real log and its keyring: an erased customer's
//! texts read as `[erased]` in the history, the lists and search, nobody else's do, and
//! texts the customer sends afterwards are readable; a retention erases the texts written
//! before its cut and keeps the newer ones. Admins only; bad input is refused with a code
//! and writes nothing.

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use testkit::server::{add_user, call, customer_text, TestServer};
use testkit::texting::{org_with_number, Org};
use workers::inbound_router;

const LINE: &str = "+15550701000";
const ANN: &str = "+15556660701";
const BOB: &str = "+15556660702";

/// A customer's text routed into its conversation (written on day 0 of the epoch, as
/// `customer_text` dates it); (conversation, log head).
async fn inbound(s: &TestServer, org: &Org, from: &str, text: &str) -> (String, u64) {
    let record = customer_text(s, org.id, LINE, from, text).await;
    let conv = match inbound_router::route(&s.ws, &record).await.unwrap() {
        inbound_router::Routed::Recorded(id) => id.to_string(),
        other => panic!("{other:?}"),
    };
    (conv, s.ws.store.next_position() - 1)
}

async fn reply(c: &Client, s: &TestServer, token: &str, conv: &str, text: &str) -> u64 {
    let (status, v) = call(
        c.post(s.url(&format!("/v1/conversations/{conv}/messages")))
            .bearer_auth(token)
            .json(&json!({ "text": text })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["position"].as_u64().unwrap()
}

/// The texts of a conversation's messages, oldest first, with their `erased` flags.
async fn texts(c: &Client, s: &TestServer, token: &str, conv: &str) -> Vec<(String, bool)> {
    let (status, v) = call(
        c.get(s.url(&format!("/v1/conversations/{conv}/messages?limit=100")))
            .bearer_auth(token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message" || i["type"] == "inbound")
        .map(|i| {
            (
                i["text"].as_str().unwrap().to_owned(),
                i["erased"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// The texts search finds for `q`, read after `after`.
async fn found(c: &Client, s: &TestServer, token: &str, q: &str, after: u64) -> Vec<String> {
    let (status, v) = call(
        c.get(s.url(&format!("/v1/search?q={q}&after={after}")))
            .bearer_auth(token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let mut texts: Vec<String> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["snippet"]["text"].as_str().unwrap().to_owned())
        .collect();
    texts.sort();
    texts
}

/// The preview of `conv` in the caller's list, read after `after`.
async fn preview(c: &Client, s: &TestServer, token: &str, conv: &str, after: u64) -> Value {
    let (status, v) = call(
        c.get(s.url(&format!("/v1/conversations/{conv}?after={after}")))
            .bearer_auth(token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["preview"]["text"].clone()
}

fn message(texts: &[(String, bool)], words: &str) -> bool {
    texts.iter().any(|(t, erased)| t == words && !erased)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_customer_reads_as_erased_everywhere_and_no_one_else_does() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let org = org_with_number(&c, &s.base, "ada@erasure.example", LINE).await;
    let (ann_conv, _) = inbound(&s, &org, ANN, "my secret order A1 arrives").await;
    let (bob_conv, _) = inbound(&s, &org, BOB, "bob order B2 arrives").await;
    let head = reply(&c, &s, &org.token, &ann_conv, "your order A1 ships today").await;
    assert_eq!(
        found(&c, &s, &org.token, "order", head).await,
        [
            "bob order B2 arrives",
            "my secret order A1 arrives",
            "your order A1 ships today"
        ]
    );

    // Only an admin erases; a malformed number is refused; neither writes anything.
    let (_, bo) = add_user(&c, &s, &org.token, "bo@erasure.example", "101").await;
    let before = s.ws.store.next_position();
    let (status, v) = call(
        c.post(s.url("/v1/erasures"))
            .bearer_auth(&bo)
            .json(&json!({ "number": ANN })),
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("admin_only"))
    );
    let (status, v) = call(
        c.post(s.url("/v1/erasures"))
            .bearer_auth(&org.token)
            .json(&json!({ "number": "not a number" })),
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("invalid_phone_number")
        )
    );
    assert_eq!(s.ws.store.next_position(), before, "nothing written");

    let (status, erased) = call(
        c.post(s.url("/v1/erasures"))
            .bearer_auth(&org.token)
            .json(&json!({ "number": ANN })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{erased}");
    // Ann's key of day 0 (her text) and of today (the reply to her).
    assert_eq!(erased["keys_destroyed"], 2, "{erased}");
    let after = erased["position"].as_u64().unwrap();

    // Her conversation: every text erased, in the history and the list.
    assert_eq!(
        texts(&c, &s, &org.token, &ann_conv).await,
        [("[erased]".to_owned(), true), ("[erased]".to_owned(), true)]
    );
    assert_eq!(
        preview(&c, &s, &org.token, &ann_conv, after).await,
        "[erased]"
    );
    // Bob's untouched.
    assert!(message(
        &texts(&c, &s, &org.token, &bob_conv).await,
        "bob order B2 arrives"
    ));
    assert_eq!(
        preview(&c, &s, &org.token, &bob_conv, after).await,
        "bob order B2 arrives"
    );
    // Search forgets her texts, and only hers.
    assert_eq!(
        found(&c, &s, &org.token, "order", after).await,
        ["bob order B2 arrives"]
    );
    assert!(found(&c, &s, &org.token, "secret", after).await.is_empty());

    // What she sends afterwards is new data: readable, and found.
    let reply_after = reply(&c, &s, &org.token, &ann_conv, "welcome back Ann").await;
    let history = texts(&c, &s, &org.token, &ann_conv).await;
    assert!(message(&history, "welcome back Ann"), "{history:?}");
    assert_eq!(
        found(&c, &s, &org.token, "welcome", reply_after).await,
        ["welcome back Ann"]
    );

    let (status, list) = call(c.get(s.url("/v1/erasures")).bearer_auth(&org.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["number"], ANN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retention_erases_the_texts_written_before_its_cut() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let org = org_with_number(&c, &s.base, "ada@retention.example", LINE).await;
    // Written on day 0 of the epoch: long before any retention's cut.
    let (conv, _) = inbound(&s, &org, ANN, "ancient request from 1970").await;
    let head = reply(&c, &s, &org.token, &conv, "fresh answer today").await;
    assert_eq!(
        found(&c, &s, &org.token, "ancient", head).await.len(),
        1,
        "indexed before the retention"
    );

    let (status, v) = call(c.get(s.url("/v1/retention")).bearer_auth(&org.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        v["message_days"],
        Value::Null,
        "texts are kept for ever by default"
    );

    // Refused: a member; 0 days; more than 100 years. Nothing written.
    let (_, bo) = add_user(&c, &s, &org.token, "bo@retention.example", "101").await;
    let before = s.ws.store.next_position();
    let put = |token: &str, body: Value| {
        c.put(s.url("/v1/retention"))
            .bearer_auth(token.to_owned())
            .json(&body)
    };
    let (status, v) = call(put(&bo, json!({ "message_days": 30 }))).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("admin_only"))
    );
    for days in [0, 36_501] {
        let (status, v) = call(put(&org.token, json!({ "message_days": days }))).await;
        assert_eq!(
            (status, v["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_retention")),
            "{days}"
        );
    }
    assert_eq!(s.ws.store.next_position(), before, "nothing written");

    let (status, v) = call(put(&org.token, json!({ "message_days": 30 }))).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["message_days"], 30);
    assert!(v["keys_destroyed"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["erased_before"].as_str().unwrap() > "2026-01-01", "{v}");
    let after = s.ws.store.next_position() - 1;

    assert_eq!(
        texts(&c, &s, &org.token, &conv).await,
        [
            ("[erased]".to_owned(), true),
            ("fresh answer today".to_owned(), false)
        ]
    );
    assert!(found(&c, &s, &org.token, "ancient", after).await.is_empty());
    assert_eq!(
        found(&c, &s, &org.token, "fresh", after).await,
        ["fresh answer today"]
    );

    let (status, v) = call(put(&org.token, json!({ "message_days": null }))).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["message_days"], Value::Null);
    let (_, v) = call(c.get(s.url("/v1/retention")).bearer_auth(&org.token)).await;
    assert_eq!(v["message_days"], Value::Null, "{v}");
}

/// A receiver on loopback that takes every delivery; how many it got.
async fn receiver() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let got = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_body_quoting_an_erased_text_is_erased_with_it() {
    use carrier::simulator::Simulator;
    use gateway::carriers::CarrierKind;
    let s = TestServer::start_with_carrier(CarrierKind::Simulator(Simulator::new()), |_| {}).await;
    let c = testkit::http();
    let org = org_with_number(&c, &s.base, "ada@erased-hooks.example", LINE).await;
    let (url, got) = receiver().await;
    let (status, hook) = call(
        c.post(s.url("/v1/webhooks"))
            .bearer_auth(&org.token)
            .json(&json!({ "url": url, "events": ["message.inbound"] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let hook = hook["webhook_id"].as_str().unwrap().to_owned();
    let (status, v) = call(
        c.post(s.url("/v1/simulator/inbound"))
            .bearer_auth(&org.token)
            .json(&json!({ "from": ANN, "to": LINE, "text": "my card ends 4242" })),
    )
    .await;
    assert!(status.is_success(), "{v}");
    // Delivered, its body quoting the text.
    let deliveries = s.url(&format!("/v1/webhooks/{hook}/deliveries"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let delivery = loop {
        let (_, log) = call(c.get(&deliveries).bearer_auth(&org.token)).await;
        if log["items"][0]["status"] == "delivered" {
            break log["items"][0]["delivery_id"].as_str().unwrap().to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never delivered: {log}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(got.load(std::sync::atomic::Ordering::SeqCst), 1);
    let detail_url = s.url(&format!("/v1/webhooks/{hook}/deliveries/{delivery}"));
    let (_, detail) = call(c.get(&detail_url).bearer_auth(&org.token)).await;
    assert_eq!(
        detail["request_body"]["text"], "my card ends 4242",
        "{detail}"
    );

    let (status, v) = call(
        c.post(s.url("/v1/erasures"))
            .bearer_auth(&org.token)
            .json(&json!({ "number": ANN })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    // The stored body is sealed under the text's key: gone with it, and never sent again.
    let (_, detail) = call(c.get(&detail_url).bearer_auth(&org.token)).await;
    assert_eq!(detail["request_body"], "[erased]", "{detail}");
    let (status, v) = call(
        c.post(s.url(&format!(
            "/v1/webhooks/{hook}/deliveries/{delivery}/redeliver"
        )))
        .bearer_auth(&org.token),
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("delivery_erased"))
    );
}

/// A small PNG of `side` × `side` pixels, different for each side.
fn png(side: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(side, side, |x, y| {
        image::Rgb([
            u8::try_from((x * 31 + side) % 256).unwrap(),
            u8::try_from((y * 17) % 256).unwrap(),
            u8::try_from(side % 256).unwrap(),
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

async fn upload(c: &Client, s: &TestServer, token: &str, bytes: &[u8]) -> String {
    let boundary = "sbretention1";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let (status, v) = call(
        c.post(s.url("/v1/attachments"))
            .bearer_auth(token)
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["attachment_id"].as_str().unwrap().to_owned()
}

/// The attachment ids of a conversation's messages, oldest first.
async fn attachments(c: &Client, s: &TestServer, token: &str, conv: &str) -> Vec<String> {
    let (_, v) = call(
        c.get(s.url(&format!("/v1/conversations/{conv}/messages?limit=100")))
            .bearer_auth(token),
    )
    .await;
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["attachments"].as_array().cloned().unwrap_or_default())
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_only_an_erased_customer_needed_is_deleted_and_shared_media_stays() {
    use carrier::simulator::Simulator;
    use gateway::carriers::CarrierKind;
    let s = TestServer::start_with_carrier(CarrierKind::Simulator(Simulator::new()), |_| {}).await;
    let c = testkit::http();
    let org = org_with_number(&c, &s.base, "ada@erased-media.example", LINE).await;
    let line = domain::PhoneNumber::parse(LINE).unwrap();
    let conv_of = |n: &str| {
        domain::ConversationId::external(org.id, &line, &domain::PhoneNumber::parse(n).unwrap())
            .to_string()
    };
    let (ann_conv, bob_conv) = (conv_of(ANN), conv_of(BOB));
    for who in [ANN, BOB] {
        let (status, v) = call(
            c.post(s.url("/v1/conversations/external"))
                .bearer_auth(&org.token)
                .json(&json!({ "our": LINE, "their": who })),
        )
        .await;
        assert!(status.is_success(), "{v}");
    }
    let (only_ann, shared) = (
        upload(&c, &s, &org.token, &png(8)).await,
        upload(&c, &s, &org.token, &png(9)).await,
    );
    let send = |conv: String, attachments: Vec<String>| {
        c.post(s.url(&format!("/v1/conversations/{conv}/messages")))
            .bearer_auth(org.token.clone())
            .json(&json!({ "text": "", "attachments": attachments }))
    };
    let (status, v) = call(send(ann_conv.clone(), vec![only_ann, shared.clone()])).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, v) = call(send(bob_conv.clone(), vec![shared])).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let ann_media = attachments(&c, &s, &org.token, &ann_conv).await;
    let bob_media = attachments(&c, &s, &org.token, &bob_conv).await;
    assert_eq!((ann_media.len(), bob_media.len()), (2, 1));
    assert_eq!(
        ann_media[1], bob_media[0],
        "the same bytes are one attachment"
    );
    let fetch = |id: &str, conv: &str| {
        c.get(s.url(&format!("/v1/attachments/{id}?conversation={conv}")))
            .bearer_auth(org.token.clone())
            .send()
    };
    for (id, conv) in [(&ann_media[0], &ann_conv), (&bob_media[0], &bob_conv)] {
        assert_eq!(fetch(id, conv).await.unwrap().status(), StatusCode::OK);
    }

    let (status, v) = call(
        c.post(s.url("/v1/erasures"))
            .bearer_auth(&org.token)
            .json(&json!({ "number": ANN })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    // The follower deletes the blob only Ann's conversation needed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let r = fetch(&ann_media[0], &ann_conv).await.unwrap();
        if r.status() == StatusCode::GONE {
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["code"], "media_erased");
            break;
        }
        assert_eq!(r.status(), StatusCode::OK);
        assert!(std::time::Instant::now() < deadline, "never erased");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Bob's conversation needs the shared picture: it stays, wherever it is referenced.
    assert_eq!(
        fetch(&bob_media[0], &bob_conv).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        fetch(&ann_media[1], &ann_conv).await.unwrap().status(),
        StatusCode::OK
    );
}
