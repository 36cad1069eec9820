//! Texts in and out through carriers, end to end over real HTTP and a real log: the Twilio
//! adapter against a fake Twilio (`testkit::fake_twilio`, which signs its webhooks with an
//! HMAC computed independently of the code under test), and the embedded simulator through
//! `/v1/simulator/*`.

use std::collections::BTreeSet;
use std::time::Duration;

use actors::{event_codec, ExecuteOptions};
use carrier::simulator::Simulator;
use domain::conversation::{DeliveryStatus, DeliveryUpdated, SenderNumber};
use domain::outbox::OutboxEvent;
use domain::{
    CommandMeta, Conversation, ConversationCommand, ConversationEvent, ConversationId, MessageId,
    PhoneNumber, Role,
};
use eventlog::{Direction, StreamName};
use gateway::carriers::CarrierKind;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use testkit::fake_twilio::{self, FakeTwilio, SentMessage};
use testkit::server::{add_user, call, TestServer};
use testkit::texting::{self, Org};
use workers::outbox::{message_outbox_id, outbox_stream};

const OUR: &str = "+15550100100";
const CUSTOMER: &str = "+15557770001";
const VENDOR: &str = "+15557770002";
const WAIT: Duration = Duration::from_secs(15);

fn number(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).unwrap()
}

fn external(org: &Org, their: &str) -> ConversationId {
    ConversationId::external(org.id, &number(OUR), &number(their))
}

async fn org_with_number(c: &Client, s: &TestServer, email: &str, number: &str) -> Org {
    texting::org_with_number(c, &s.base, email, number).await
}

async fn start_external(c: &Client, s: &TestServer, org: &Org, their: &str) -> ConversationId {
    texting::start_external(c, &s.base, org, OUR, their).await
}

async fn post(
    c: &Client,
    s: &TestServer,
    token: &str,
    id: ConversationId,
    body: Value,
) -> (StatusCode, Value) {
    call(
        c.post(s.url(&format!("/v1/conversations/{id}/messages")))
            .bearer_auth(token)
            .json(&body),
    )
    .await
}

async fn post_text(
    c: &Client,
    s: &TestServer,
    org: &Org,
    id: ConversationId,
    text: &str,
) -> MessageId {
    texting::post_text(c, &s.base, org, id, text).await
}

fn events(s: &TestServer, stream: &StreamName) -> Vec<eventlog::RecordedEvent> {
    s.ws.store
        .read_stream_blocking(stream, 0, Direction::Forward, 100_000)
        .unwrap()
}

fn conversation_events(s: &TestServer, id: ConversationId) -> Vec<ConversationEvent> {
    let stream = StreamName::from_parts("conversation", id).unwrap();
    events(s, &stream)
        .iter()
        .map(|r| event_codec::decode_opened_blocking::<ConversationEvent>(r, &s.ws.sealer).unwrap())
        .collect()
}

fn delivery_updates(
    s: &TestServer,
    id: ConversationId,
    message: MessageId,
) -> Vec<DeliveryUpdated> {
    conversation_events(s, id)
        .into_iter()
        .filter_map(|e| match e {
            ConversationEvent::DeliveryUpdated(d) if d.message_id == message => Some(d),
            _ => None,
        })
        .collect()
}

async fn delivery(
    s: &TestServer,
    id: ConversationId,
    message: MessageId,
    to: &str,
) -> Option<DeliveryStatus> {
    let to = number(to);
    s.ws.conversations
        .query(&id, move |c: &Conversation, _| {
            c.delivery(&message, &to).cloned()
        })
        .await
        .unwrap()
}

/// Polls `check` every 20 ms until it holds; panics after [`WAIT`] with `what`.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn delivered_as(
    s: &TestServer,
    id: ConversationId,
    message: MessageId,
    to: &str,
    expected: DeliveryStatus,
) {
    eventually(&format!("{message} to {to} is {expected:?}"), || {
        let expected = expected.clone();
        async move { delivery(s, id, message, to).await == Some(expected) }
    })
    .await;
}

fn outbox_records(s: &TestServer, message: MessageId, to: &str) -> Vec<OutboxEvent> {
    events(s, &outbox_stream(message_outbox_id(message, &number(to))))
        .iter()
        .map(|r| event_codec::decode::<OutboxEvent>(r).unwrap())
        .collect()
}

/// Waits for the fake's `n`-th message and returns it.
async fn nth_sent(fake: &FakeTwilio, n: usize) -> SentMessage {
    fake.wait_for_sent(n, WAIT).await[n - 1].clone()
}

async fn twilio_server(fake: &FakeTwilio) -> TestServer {
    TestServer::start_with_carrier(CarrierKind::Twilio(fake.carrier()), |setup| {
        setup.backoff = carrier::Backoff {
            base: Duration::from_millis(30),
            cap: Duration::from_millis(200),
            max_attempts: 5,
            jitter: 0.0,
            seed: 0,
        };
        setup.help_text = Some("Acme: reply STOP to opt out.".into());
    })
    .await
}

#[test]
fn the_test_signer_matches_twilios_documented_example() {
    let params: Vec<(String, String)> = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+12349013030"),
        ("Digits", "1234"),
        ("From", "+12349013030"),
        ("To", "+18005551212"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(
        fake_twilio::sign(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            &params
        ),
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_text_goes_out_through_twilio_and_status_callbacks_only_move_it_forward() {
    let fake = FakeTwilio::start().await;
    let s = twilio_server(&fake).await;
    let c = testkit::http();
    let org = org_with_number(&c, &s, "ada@out.example", OUR).await;
    let id = start_external(&c, &s, &org, CUSTOMER).await;
    let message = post_text(&c, &s, &org, id, "Your order is ready ☕").await;

    let sent = nth_sent(&fake, 1).await;
    assert!(sent.authorized, "basic auth with the account's credentials");
    assert_eq!(sent.get("To"), Some(CUSTOMER));
    assert_eq!(sent.get("From"), Some(OUR));
    assert_eq!(sent.get("Body"), Some("Your order is ready ☕"));
    let callback = sent.get("StatusCallback").unwrap();
    let outbox = message_outbox_id(message, &number(CUSTOMER));
    assert_eq!(
        callback,
        s.url(&format!("/v1/carriers/twilio/status?sms={outbox}"))
    );
    delivered_as(&s, id, message, CUSTOMER, DeliveryStatus::Queued).await;
    let queued = delivery_updates(&s, id, message);
    assert_eq!(
        queued[0].carrier_message_id.as_deref(),
        Some(sent.sid.as_str())
    );

    // A bad signature, and none at all: 403 and nothing written.
    let before = s.ws.store.next_position();
    let url = s.url(&format!("/v1/carriers/twilio/status?sms={outbox}"));
    let params: Vec<(String, String)> = [
        ("MessageSid", sent.sid.as_str()),
        ("MessageStatus", "delivered"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let forged = fake_twilio::sign("not-the-token", &url, &params);
    let r = fake.post_signed(&url, &params, Some(&forged)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "invalid_signature");
    let r = c
        .post(&url)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(format!("MessageSid={}&MessageStatus=delivered", sent.sid))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Signed for another URL (the query names another text).
    let elsewhere = fake_twilio::sign(
        fake_twilio::AUTH_TOKEN,
        &s.url("/v1/carriers/twilio/status"),
        &params,
    );
    let r = fake.post_signed(&url, &params, Some(&elsewhere)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    s.settled().await;
    assert_eq!(s.ws.store.next_position(), before, "nothing written");
    assert_eq!(
        delivery(&s, id, message, CUSTOMER).await,
        Some(DeliveryStatus::Queued)
    );

    // Sent, then delivered; then a duplicate delivered and a late sent.
    for status in ["sent", "delivered", "delivered", "sent"] {
        assert!(fake.callback(&sent, status, None, None).await.is_success());
    }
    delivered_as(&s, id, message, CUSTOMER, DeliveryStatus::Delivered).await;
    s.settled().await;
    let updates: Vec<DeliveryStatus> = delivery_updates(&s, id, message)
        .into_iter()
        .map(|d| d.status)
        .collect();
    assert_eq!(
        updates,
        [
            DeliveryStatus::Queued,
            DeliveryStatus::Sent,
            DeliveryStatus::Delivered
        ],
        "each state once, never backwards"
    );
    assert_eq!(fake.sent().len(), 1, "sent once");

    // Out of order: delivered arrives before sent (and sending, queued after both).
    let second = post_text(&c, &s, &org, id, "and another").await;
    let sent2 = nth_sent(&fake, 2).await;
    delivered_as(&s, id, second, CUSTOMER, DeliveryStatus::Queued).await;
    for status in ["delivered", "sent", "sending", "queued"] {
        assert!(fake.callback(&sent2, status, None, None).await.is_success());
    }
    delivered_as(&s, id, second, CUSTOMER, DeliveryStatus::Delivered).await;
    s.settled().await;
    let updates: Vec<DeliveryStatus> = delivery_updates(&s, id, second)
        .into_iter()
        .map(|d| d.status)
        .collect();
    assert_eq!(updates, [DeliveryStatus::Queued, DeliveryStatus::Delivered]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn texts_and_media_go_over_https_to_a_carrier_whose_root_is_trusted() {
    let fake = FakeTwilio::start_tls().await;
    assert!(fake.base.starts_with("https://127.0.0.1:"), "{}", fake.base);

    // Without the extra root the certificate is refused: the call fails (retryable, as
    // any connection failure) and no request reached the carrier.
    let untrusting = carrier::twilio::TwilioCarrier::new(carrier::twilio::TwilioConfig {
        extra_roots_pem: None,
        ..fake.config()
    })
    .unwrap();
    let err = untrusting
        .send_sms(&carrier::OutboundSms {
            idempotency_key: "tls-probe".into(),
            from: OUR.into(),
            to: CUSTOMER.into(),
            body: "never sent".into(),
            media: Vec::new(),
            status_callback: None,
        })
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(
        err.message().to_ascii_lowercase().contains("certificate"),
        "{}",
        err.message()
    );
    assert!(fake.sent().is_empty());

    // Trusting it (`--twilio-ca-file`): the text goes out over TLS and is accepted.
    let s = twilio_server(&fake).await;
    let c = testkit::http();
    let org = org_with_number(&c, &s, "ada@tls.example", OUR).await;
    let id = start_external(&c, &s, &org, CUSTOMER).await;
    let message = post_text(&c, &s, &org, id, "sent over TLS").await;
    let sent = nth_sent(&fake, 1).await;
    assert!(sent.authorized);
    assert_eq!(sent.get("Body"), Some("sent over TLS"));
    delivered_as(&s, id, message, CUSTOMER, DeliveryStatus::Queued).await;
    assert_eq!(
        delivery_updates(&s, id, message)[0]
            .carrier_message_id
            .as_deref(),
        Some(sent.sid.as_str())
    );

    // Inbound MMS media is fetched from the carrier over TLS too.
    let png = png(8, 8);
    let media_url = fake.serve_media("MEtls.png", png.clone(), "image/png");
    assert!(media_url.starts_with("https://"));
    let params = FakeTwilio::inbound_params(
        "SMtlsinbound0001",
        CUSTOMER,
        OUR,
        "photo over TLS",
        &[(&media_url, "image/png")],
    );
    let r = fake
        .post_signed(&s.url("/v1/carriers/twilio/inbound"), &params, None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    eventually("the MMS is in the conversation with its image", || async {
        conversation_events(&s, id).iter().any(|e| {
            matches!(e, ConversationEvent::InboundReceived(m)
                if m.text == "photo over TLS"
                    && m.media.len() == 1
                    && m.media[0].mime == "image/png"
                    && m.media[0].size_bytes == png.len() as u64)
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failures_and_undelivered_reports_carry_the_carriers_code() {
    let fake = FakeTwilio::start().await;
    let s = twilio_server(&fake).await;
    let c = testkit::http();
    let org = org_with_number(&c, &s, "ada@codes.example", OUR).await;
    let id = start_external(&c, &s, &org, CUSTOMER).await;

    // The carrier refuses the request itself: final, no retry.
    fake.fail_next(&[400]);
    let refused = post_text(&c, &s, &org, id, "to a landline").await;
    eventually("a final failure", || async {
        matches!(
            delivery(&s, id, refused, CUSTOMER).await,
            Some(DeliveryStatus::Failed { .. })
        )
    })
    .await;
    let failed = delivery_updates(&s, id, refused);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].error_code.as_deref(), Some("20400"));
    assert_eq!(fake.sent().len(), 1, "a 4xx is not retried");

    // Accepted, then undelivered downstream with Twilio's code.
    let later = post_text(&c, &s, &org, id, "second").await;
    let sent = nth_sent(&fake, 2).await;
    delivered_as(&s, id, later, CUSTOMER, DeliveryStatus::Queued).await;
    fake.callback(&sent, "undelivered", Some("30003"), None)
        .await;
    eventually("undelivered", || async {
        matches!(
            delivery(&s, id, later, CUSTOMER).await,
            Some(DeliveryStatus::Undelivered { .. })
        )
    })
    .await;
    let last = delivery_updates(&s, id, later).pop().unwrap();
    assert_eq!(last.error_code.as_deref(), Some("30003"));
    // A late delivered after a final state changes nothing.
    fake.callback(&sent, "delivered", None, None).await;
    s.settled().await;
    assert!(matches!(
        delivery(&s, id, later, CUSTOMER).await,
        Some(DeliveryStatus::Undelivered { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_carrier_outage_is_retried_until_the_text_goes_out() {
    let fake = FakeTwilio::start().await;
    let s = twilio_server(&fake).await;
    let c = testkit::http();
    let org = org_with_number(&c, &s, "ada@outage.example", OUR).await;
    let id = start_external(&c, &s, &org, CUSTOMER).await;
    fake.fail_next(&[503, 503, 429]);
    let message = post_text(&c, &s, &org, id, "are you there?").await;
    delivered_as(&s, id, message, CUSTOMER, DeliveryStatus::Queued).await;
    let sent = fake.sent();
    assert_eq!(
        sent.iter().map(|m| m.answered).collect::<Vec<_>>(),
        [503, 503, 429, 201]
    );
    let records = outbox_records(&s, message, CUSTOMER);
    let failures: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            OutboxEvent::SmsSendFailed(f) => {
                Some((f.attempt, f.code.clone(), f.retry_at_ms.is_some()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        failures,
        [
            (1, "20503".to_owned(), true),
            (2, "20503".to_owned(), true),
            (3, "20429".to_owned(), true)
        ]
    );
    let accepted: Vec<_> = records
        .iter()
        .filter(|r| matches!(r, OutboxEvent::SmsAccepted(a) if a.attempt == 4))
        .collect();
    assert_eq!(accepted.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_slow_text_does_not_hold_up_the_others() {
    let fake = FakeTwilio::start().await;
    let s = twilio_server(&fake).await;
    let c = testkit::http();
    let org = org_with_number(&c, &s, "ada@slow.example", OUR).await;
    let slow = start_external(&c, &s, &org, CUSTOMER).await;
    let fast = start_external(&c, &s, &org, VENDOR).await;
    // The first text's request is taken and never answered.
    fake.set_hang(true);
    post_text(&c, &s, &org, slow, "stuck").await;
    nth_sent(&fake, 1).await;
    fake.set_hang(false);
    let message = post_text(&c, &s, &org, fast, "not stuck").await;
    delivered_as(&s, fast, message, VENDOR, DeliveryStatus::Queued).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_inbound_mms_is_stored_deduplicated_and_served_to_participants_only() {
    let fake = FakeTwilio::start().await;
    let s = twilio_server(&fake).await;
    let c = testkit::http();
    let org = org_with_number(&c, &s, "ada@in.example", OUR).await;
    let (_, outsider) = add_user(&c, &s, &org.token, "eve@in.example", "101").await;
    let other = org_with_number(&c, &s, "zed@other.example", "+15550100999").await;
    let png = png(40, 30);
    let media_url = fake.serve_media("ME1.png", png.clone(), "image/png");
    let inbound = s.url("/v1/carriers/twilio/inbound");
    let sid = "SMinbound000000000000000000000001";
    let params = FakeTwilio::inbound_params(
        sid,
        CUSTOMER,
        OUR,
        "here is the photo",
        &[(&media_url, "image/png")],
    );

    // Unsigned or forged: 403, nothing written.
    let before = s.ws.store.next_position();
    let r = fake
        .post_signed(&inbound, &params, Some("AAAAAAAAAAAAAAAAAAAAAAAAAAA="))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(s.ws.store.next_position(), before);

    let r = fake.post_signed(&inbound, &params, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/xml"));
    assert!(r.text().await.unwrap().contains("<Response/>"));
    // Twilio retries the webhook: still one message.
    let r = fake.post_signed(&inbound, &params, None).await;
    assert_eq!(r.status(), StatusCode::OK);

    let id = external(&org, CUSTOMER);
    let inbound_count = |s: &TestServer| {
        conversation_events(s, id)
            .into_iter()
            .filter(|e| matches!(e, ConversationEvent::InboundReceived(_)))
            .count()
    };
    eventually("the text is in the conversation", || async {
        inbound_count(&s) == 1
    })
    .await;
    s.settled().await;
    assert_eq!(inbound_count(&s), 1, "deduplicated on MessageSid");

    let (status, history) = call(
        c.get(s.url(&format!("/v1/conversations/{id}/messages")))
            .bearer_auth(&org.token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let item = &history["items"][0];
    assert_eq!(item["text"], "here is the photo");
    let attachment = &item["attachments"][0];
    assert_eq!(attachment["mime"], "image/png");
    let attachment_id = attachment["id"].as_str().unwrap();

    let get = |token: &str, key: &str, conversation: ConversationId| {
        c.get(s.url(&format!(
            "/v1/attachments/{key}?conversation={conversation}"
        )))
        .bearer_auth(token.to_owned())
        .send()
    };
    let r = get(&org.token, attachment_id, id).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[reqwest::header::CONTENT_TYPE], "image/png");
    assert_eq!(r.bytes().await.unwrap().as_ref(), png.as_slice());
    let hash = blake3::hash(&png).to_hex().to_string();
    let r = get(&org.token, &hash, id).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "by content hash too");
    // Someone of the organization who is not a participant, and another organization.
    assert_eq!(
        get(&outsider, attachment_id, id).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&other.token, attachment_id, id).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&other.token, &hash, id).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inbound_media_that_cannot_be_fetched_never_costs_the_text() {
    let fake = FakeTwilio::start().await;
    let s = twilio_server(&fake).await;
    let c = testkit::http();
    let org = org_with_number(&c, &s, "ada@media.example", OUR).await;
    let (_, outsider) = add_user(&c, &s, &org.token, "eve@media.example", "101").await;
    let good = fake.serve_media("MEgood.png", png(4, 4), "image/png");
    let missing = fake.fail_media("MEmissing.jpg", 404);
    let broken = fake.fail_media("MEbroken.jpg", 500);
    let page = fake.serve_media(
        "MEpage.png",
        b"<html><body>Service unavailable</body></html>".to_vec(),
        "text/html",
    );
    let inbound = s.url("/v1/carriers/twilio/inbound");
    let params = FakeTwilio::inbound_params(
        "SMmediafail0001",
        CUSTOMER,
        OUR,
        "four pictures",
        &[
            (&good, "image/png"),
            (&missing, "image/jpeg"),
            (&broken, "image/jpeg"),
            (&page, "image/png"),
        ],
    );
    let r = fake.post_signed(&inbound, &params, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    // Transient failures were retried (404: Twilio's media may not be ready yet); a body
    // that is not what it claims was not.
    assert_eq!(fake.media_requests("MEmissing.jpg"), 3);
    assert_eq!(fake.media_requests("MEbroken.jpg"), 3);
    assert_eq!(fake.media_requests("MEpage.png"), 1);

    let id = external(&org, CUSTOMER);
    let received = || {
        conversation_events(&s, id)
            .into_iter()
            .find_map(|e| match e {
                ConversationEvent::InboundReceived(m) if m.text == "four pictures" => Some(m),
                _ => None,
            })
    };
    eventually("the text is recorded", || async { received().is_some() }).await;
    let m = received().unwrap();
    let mimes: Vec<&str> = m.media.iter().map(|a| a.mime.as_str()).collect();
    let unavailable = gateway::carriers::attachments::UNAVAILABLE_MIME;
    assert_eq!(mimes, ["image/png", unavailable, unavailable, unavailable]);
    assert!(m.media[1..].iter().all(|a| a.size_bytes == 0));

    // Participants see why; others see nothing.
    let get = |token: &str, key: String| {
        c.get(s.url(&format!("/v1/attachments/{key}?conversation={id}")))
            .bearer_auth(token.to_owned())
            .send()
    };
    let r = get(&org.token, m.media[0].id.to_string()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for (a, why) in m.media[1..]
        .iter()
        .zip(["HTTP 404", "HTTP 500", "claimed image/png"])
    {
        let r = get(&org.token, a.id.to_string()).await.unwrap();
        assert_eq!(r.status(), StatusCode::GONE);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "media_unavailable");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(why), "{message}");
        assert_eq!(
            get(&outsider, a.id.to_string()).await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
    }

    // A picture-only MMS whose picture cannot be had is still a message.
    let params = FakeTwilio::inbound_params(
        "SMmediafail0002",
        CUSTOMER,
        OUR,
        "",
        &[(&missing, "image/jpeg")],
    );
    let r = fake.post_signed(&inbound, &params, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    eventually("the empty-text MMS is recorded", || async {
        conversation_events(&s, id).iter().any(|e| {
            matches!(e, ConversationEvent::InboundReceived(m)
                if m.text == "" && m.media.len() == 1 && m.media[0].mime == unavailable)
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stop_withholds_texts_start_resumes_them_and_help_is_answered() {
    let fake = FakeTwilio::start().await;
    let s = twilio_server(&fake).await;
    let c = testkit::http();
    let org = org_with_number(&c, &s, "ada@stop.example", OUR).await;
    let inbound = s.url("/v1/carriers/twilio/inbound");
    let text_in = |sid: &'static str, from: &'static str, body: &'static str| {
        let params = FakeTwilio::inbound_params(sid, from, OUR, body, &[]);
        let (fake, inbound) = (&fake, inbound.clone());
        async move {
            let r = fake.post_signed(&inbound, &params, None).await;
            assert_eq!(r.status(), StatusCode::OK);
        }
    };
    let id = external(&org, CUSTOMER);
    let opted_out = |s: &TestServer| {
        let customer = number(CUSTOMER);
        let registry = s.ws.conversations.clone();
        async move {
            registry
                .query(&id, move |c: &Conversation, _| c.is_opted_out(&customer))
                .await
                .unwrap()
        }
    };

    text_in("SMstop0001", CUSTOMER, "Stop").await;
    eventually("opted out", || opted_out(&s)).await;
    let (status, err) = post(&c, &s, &org.token, id, json!({ "text": "one more offer" })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["code"], "recipient_opted_out");

    // In a group, the opted-out member is withheld and the other gets the text.
    let group = ConversationId::random();
    let start = CommandMeta::user(org.id, org.admin, Role::Admin, 1).issue(
        ConversationCommand::StartGroup {
            id: group,
            users: BTreeSet::new(),
            externals: [number(CUSTOMER), number(VENDOR)].into(),
            from: SenderNumber {
                number: number(OUR),
                sms_registered: true,
                assigned_to_sender: true,
            },
            known_users: [org.admin].into(),
        },
    );
    s.ws.conversations
        .execute(&group, start, ExecuteOptions::default())
        .await
        .unwrap();
    let message = post_text(&c, &s, &org, group, "group news").await;
    delivered_as(&s, group, message, VENDOR, DeliveryStatus::Queued).await;
    assert!(conversation_events(&s, group).iter().any(|e| matches!(
        e, ConversationEvent::SmsWithheld(w) if w.message_id == message && w.to == number(CUSTOMER)
    )));
    let sent = fake.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].get("To"), Some(VENDOR));
    assert!(
        sent.iter().all(|m| m.get("To") != Some(CUSTOMER)),
        "the carrier never saw the opted-out number"
    );

    // HELP gets the help text, even while opted out.
    text_in("SMhelp0001", CUSTOMER, "help").await;
    let help = nth_sent(&fake, 2).await;
    assert_eq!(help.get("To"), Some(CUSTOMER));
    assert_eq!(help.get("From"), Some(OUR));
    assert_eq!(help.get("Body"), Some("Acme: reply STOP to opt out."));
    // The answer is in the conversation, right after the HELP, as our number's message,
    // and its delivery is recorded like any text's.
    let auto_reply = |s: &TestServer| {
        conversation_events(s, id)
            .into_iter()
            .filter_map(|e| match e {
                ConversationEvent::AutoReplyPosted(r) => Some(r),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    eventually("the HELP answer is recorded", || async {
        !auto_reply(&s).is_empty()
    })
    .await;
    let reply = auto_reply(&s).remove(0);
    assert_eq!(reply.from, number(OUR));
    assert_eq!(reply.text, "Acme: reply STOP to opt out.");
    let events = conversation_events(&s, id);
    let at = events
        .iter()
        .position(|e| matches!(e, ConversationEvent::AutoReplyPosted(_)))
        .unwrap();
    assert!(
        matches!(&events[at - 1], ConversationEvent::InboundReceived(m)
            if m.text == "help" && m.message_id == reply.reply_to),
        "{:?}",
        events[at - 1]
    );
    assert!(matches!(&events[at + 1], ConversationEvent::SmsRequested(r)
        if r.message_id == reply.message_id && r.to == number(CUSTOMER) && r.from == number(OUR)));
    delivered_as(&s, id, reply.message_id, CUSTOMER, DeliveryStatus::Queued).await;
    assert_eq!(
        delivery_updates(&s, id, reply.message_id)[0]
            .carrier_message_id
            .as_deref(),
        Some(help.sid.as_str())
    );
    assert!(fake
        .callback(&help, "delivered", None, None)
        .await
        .is_success());
    delivered_as(
        &s,
        id,
        reply.message_id,
        CUSTOMER,
        DeliveryStatus::Delivered,
    )
    .await;
    // Agents see it in the history.
    let (status, history) = call(
        c.get(s.url(&format!("/v1/conversations/{id}/messages")))
            .bearer_auth(&org.token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let items = history["items"].as_array().unwrap();
    let shown = items
        .iter()
        .find(|i| i["type"] == "auto_reply")
        .unwrap_or_else(|| panic!("{history}"));
    assert_eq!(shown["from"], OUR);
    assert_eq!(shown["text"], "Acme: reply STOP to opt out.");
    assert_eq!(shown["message_id"], reply.message_id.to_string());
    // Twilio retries the HELP webhook: still one answer, sent once.
    text_in("SMhelp0001", CUSTOMER, "help").await;
    s.settled().await;
    assert_eq!(auto_reply(&s).len(), 1);
    assert_eq!(fake.sent().len(), 2);

    // START opts back in.
    text_in("SMstart0001", CUSTOMER, "START").await;
    eventually("opted in", || async { !opted_out(&s).await }).await;
    let message = post_text(&c, &s, &org, id, "welcome back").await;
    let back = nth_sent(&fake, 3).await;
    assert_eq!(back.get("To"), Some(CUSTOMER));
    delivered_as(&s, id, message, CUSTOMER, DeliveryStatus::Queued).await;
}

/// A PNG of `w`×`h` pixels of noise (incompressible, so its size follows its pixels).
fn png(w: u32, h: u32) -> Vec<u8> {
    let mut seed: u32 = 0x1234_5678;
    let img = image::RgbImage::from_fn(w, h, |_, _| {
        let mut px = [0u8; 3];
        for p in &mut px {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *p = seed.to_be_bytes()[0];
        }
        image::Rgb(px)
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// `bytes` as a multipart upload named `file_name`.
async fn upload(
    c: &Client,
    s: &TestServer,
    token: &str,
    query: &str,
    file_name: &str,
    claimed_type: &str,
    bytes: &[u8],
) -> (StatusCode, Value) {
    let boundary = "sbboundary7d1f";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: {claimed_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    call(
        c.post(s.url(&format!("/v1/attachments{query}")))
            .bearer_auth(token)
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_image_goes_out_as_mms_within_600_kb_and_non_images_are_refused() {
    let fake = FakeTwilio::start().await;
    let s = twilio_server(&fake).await;
    let c = testkit::http();
    let org = org_with_number(&c, &s, "ada@mms.example", OUR).await;
    let id = start_external(&c, &s, &org, CUSTOMER).await;

    let big = png(1400, 1300);
    assert!(big.len() > 5 * 1024 * 1024, "{} bytes", big.len());
    let (status, up) = upload(&c, &s, &org.token, "", "photo.png", "image/png", &big).await;
    assert_eq!(status, StatusCode::CREATED, "{up}");
    assert_eq!(up["mime"], "image/png");
    assert_eq!(up["size"], big.len() as u64);
    let hash = up["attachment_id"].as_str().unwrap().to_owned();
    assert_eq!(hash, blake3::hash(&big).to_hex().to_string());

    let (status, v) = post(
        &c,
        &s,
        &org.token,
        id,
        json!({ "text": "see attached", "attachments": [hash] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    // The poster can fetch what the message carries at once (the reference index waits
    // for itself); the original upload is not in any message, and another conversation of
    // the organization does not reference the image.
    let posted = conversation_events(&s, id)
        .into_iter()
        .find_map(|e| match e {
            ConversationEvent::MessagePosted(m) if m.text == "see attached" => Some(m),
            _ => None,
        })
        .unwrap();
    let attached = posted.attachments[0].id;
    let fetch = |key: String, conversation: ConversationId| {
        c.get(s.url(&format!(
            "/v1/attachments/{key}?conversation={conversation}"
        )))
        .bearer_auth(org.token.clone())
        .send()
    };
    let r = fetch(attached.to_string(), id).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[reqwest::header::CONTENT_TYPE], "image/jpeg");
    assert_eq!(
        fetch(hash.clone(), id).await.unwrap().status(),
        StatusCode::NOT_FOUND,
        "the unresized upload is in no message"
    );
    let elsewhere = start_external(&c, &s, &org, VENDOR).await;
    assert_eq!(
        fetch(attached.to_string(), elsewhere)
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    // The index is durable: the attachment's stream names the conversation.
    let index = events(
        &s,
        &StreamName::from_parts(
            gateway::carriers::attachments::ATTACHMENT_CATEGORY,
            attached,
        )
        .unwrap(),
    );
    assert!(index
        .iter()
        .any(|r| r.event_id == gateway::carriers::attachments::reference_event_id(attached, id)));
    let sent = nth_sent(&fake, 1).await;
    let urls = sent.all("MediaUrl");
    assert_eq!(urls.len(), 1);
    let r = c.get(urls[0]).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the carrier can fetch it without a token"
    );
    assert_eq!(r.headers()[reqwest::header::CONTENT_TYPE], "image/jpeg");
    let mms = r.bytes().await.unwrap();
    assert!(mms.len() <= 600 * 1024, "{} bytes", mms.len());
    let decoded = image::load_from_memory(&mms).expect("still decodes");
    assert!(decoded.width() > 0 && decoded.height() > 0);
    // The signed URL is good for that attachment only.
    let last = if urls[0].ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &urls[0][..urls[0].len() - 1]);
    assert_eq!(
        c.get(forged).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    // A text file named .jpg: stored as a file, but refused for MMS, and nothing written.
    let fake_jpg = b"just some words, not a picture at all\n".repeat(20);
    let (status, err) = upload(
        &c,
        &s,
        &org.token,
        "?mms=true",
        "cat.jpg",
        "image/jpeg",
        &fake_jpg,
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        )
    );
    let (status, up) = upload(&c, &s, &org.token, "", "cat.jpg", "image/jpeg", &fake_jpg).await;
    assert_eq!(status, StatusCode::CREATED, "{up}");
    assert_eq!(
        up["mime"], "application/octet-stream",
        "sniffed, not trusted"
    );
    let before = s.ws.store.next_position();
    let (status, err) = post(
        &c,
        &s,
        &org.token,
        id,
        json!({ "text": "cat", "attachments": [up["attachment_id"]] }),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        ),
        "{err}"
    );
    assert_eq!(s.ws.store.next_position(), before, "nothing written");
    // An attachment nobody here uploaded.
    let (status, err) = post(
        &c,
        &s,
        &org.token,
        id,
        json!({ "text": "x", "attachments": ["ab".repeat(32)] }),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("attachment_not_found"))
    );
    // Too large for any attachment.
    let huge = vec![0u8; domain::limits::MAX_ATTACHMENT_LEN + 1];
    let (status, err) = upload(
        &c,
        &s,
        &org.token,
        "",
        "huge.bin",
        "application/octet-stream",
        &huge,
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("attachment_too_large"))
    );
    assert_eq!(fake.sent().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_simulator_path_end_to_end_through_switchboards_routes() {
    let sim = Simulator::new();
    let s = TestServer::start_with_carrier(CarrierKind::Simulator(sim.clone()), |setup| {
        setup.help_text = Some("Acme help".into());
    })
    .await;
    let c = testkit::http();
    let org = org_with_number(&c, &s, "ada@sim.example", OUR).await;
    let (_, member) = add_user(&c, &s, &org.token, "bob@sim.example", "101").await;

    // Twilio's webhooks are not mounted; the simulator's are, for admins only.
    let r = c
        .post(s.url("/v1/carriers/twilio/inbound"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (status, _) = call(c.get(s.url("/v1/simulator/outbound")).bearer_auth(&member)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Text as a customer.
    let (status, v) = call(
        c.post(s.url("/v1/simulator/inbound"))
            .bearer_auth(&org.token)
            .json(&json!({ "from": CUSTOMER, "to": OUR, "text": "Hi, is the shop open?" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, _) = call(
        c.post(s.url("/v1/simulator/inbound"))
            .bearer_auth(&org.token)
            .json(&json!({ "from": CUSTOMER, "to": "+15550199999", "text": "not yours" })),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let id = external(&org, CUSTOMER);
    eventually("the customer's text is in the conversation", || async {
        conversation_events(&s, id)
            .iter()
            .any(|e| matches!(e, ConversationEvent::InboundReceived(m) if m.text == "Hi, is the shop open?"))
    })
    .await;

    // Reply: delivered by default.
    let reply = post_text(&c, &s, &org, id, "Yes, until 6").await;
    delivered_as(&s, id, reply, CUSTOMER, DeliveryStatus::Delivered).await;
    let (status, out) = call(
        c.get(s.url("/v1/simulator/outbound"))
            .bearer_auth(&org.token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let texts = out["texts"].as_array().unwrap();
    assert_eq!(texts.len(), 1);
    assert_eq!(texts[0]["to"], CUSTOMER);
    assert_eq!(texts[0]["body"], "Yes, until 6");
    assert_eq!(texts[0]["status"], "delivered");
    // The simulator reports at once, often before its answer to the send is recorded: a
    // state may be skipped, none repeats, none goes back.
    let stages: Vec<_> = delivery_updates(&s, id, reply)
        .into_iter()
        .map(|d| d.status.stage())
        .collect();
    assert!(stages.windows(2).all(|w| w[0] < w[1]), "{stages:?}");
    assert_eq!(stages.last(), Some(&DeliveryStatus::Delivered.stage()));

    // Choose failure for this customer.
    let (status, _) = call(
        c.post(s.url("/v1/simulator/outcome"))
            .bearer_auth(&org.token)
            .json(&json!({ "to": CUSTOMER, "outcome": { "kind": "fail", "error_code": "30008" } })),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let failing = post_text(&c, &s, &org, id, "this one fails").await;
    eventually("failed", || async {
        matches!(
            delivery(&s, id, failing, CUSTOMER).await,
            Some(DeliveryStatus::Failed { .. })
        )
    })
    .await;
    let last = delivery_updates(&s, id, failing).pop().unwrap();
    assert_eq!(last.error_code.as_deref(), Some("30008"));

    // Hold, then release as delivered.
    call(
        c.post(s.url("/v1/simulator/outcome"))
            .bearer_auth(&org.token)
            .json(&json!({ "to": CUSTOMER, "outcome": { "kind": "hold" } })),
    )
    .await;
    let held = post_text(&c, &s, &org, id, "held").await;
    delivered_as(&s, id, held, CUSTOMER, DeliveryStatus::Sent).await;
    let sid = delivery_updates(&s, id, held)[0]
        .carrier_message_id
        .clone()
        .unwrap();
    eventually("held at the simulator", || async {
        sim.held().contains(&sid)
    })
    .await;
    let (status, _) = call(
        c.post(s.url("/v1/simulator/release"))
            .bearer_auth(&org.token)
            .json(&json!({ "carrier_message_id": sid, "outcome": { "kind": "deliver" } })),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    delivered_as(&s, id, held, CUSTOMER, DeliveryStatus::Delivered).await;

    // HELP through the simulator gets the help text back.
    call(
        c.post(s.url("/v1/simulator/inbound"))
            .bearer_auth(&org.token)
            .json(&json!({ "from": CUSTOMER, "to": OUR, "text": "HELP" })),
    )
    .await;
    eventually("the help reply", || async {
        sim.outbound()
            .iter()
            .any(|m| m.body == "Acme help" && m.to == CUSTOMER)
    })
    .await;
    // Recorded in the conversation, its delivery followed (this customer's texts are
    // held at the simulator now: sent, not delivered).
    eventually("the help reply is recorded and sent", || async {
        let reply = conversation_events(&s, id)
            .into_iter()
            .find_map(|e| match e {
                ConversationEvent::AutoReplyPosted(r) => Some(r),
                _ => None,
            });
        match reply {
            Some(r) => {
                r.text == "Acme help"
                    && delivery(&s, id, r.message_id, CUSTOMER)
                        .await
                        .is_some_and(|d| d.stage() >= DeliveryStatus::Sent.stage())
            }
            None => false,
        }
    })
    .await;
}

/// The history's view of `message`'s SMS to `to` once its status is `status`: polls
/// `GET /v1/conversations/{id}/messages` (every 20 ms, at most [`WAIT`]); the message's
/// item and that delivery.
async fn history_delivery(
    c: &Client,
    s: &TestServer,
    token: &str,
    id: ConversationId,
    message: MessageId,
    to: &str,
    status: &str,
) -> (Value, Value) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (code, h) = call(
            c.get(s.url(&format!("/v1/conversations/{id}/messages")))
                .bearer_auth(token),
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{h}");
        let item = h["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["message_id"] == json!(message))
            .cloned()
            .unwrap_or_else(|| panic!("{message} is not in the history: {h}"));
        if let Some(d) = item["deliveries"].as_array().and_then(|ds| {
            ds.iter()
                .find(|d| d["to"] == to && d["status"] == status)
                .cloned()
        }) {
            return (item, d);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the history never showed {message} to {to} {status}; last: {item}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next `delivery` item on the stream for `message` whose status is `status`; every
/// delivery status seen on the way must be spelled snake_case, as in the history.
async fn delivery_frame(ws: &mut testkit::stream::Ws, message: MessageId, status: &str) -> Value {
    const STATUSES: [&str; 7] = [
        "requested",
        "queued",
        "sent",
        "delivered",
        "failed",
        "undelivered",
        "withheld",
    ];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let f = testkit::stream::frame(ws, left)
            .await
            .unwrap_or_else(|| panic!("no {status} delivery frame for {message}"));
        let item = &f["item"];
        if item["type"] != "delivery" {
            continue;
        }
        let seen = item["status"].as_str().unwrap_or_default();
        assert!(
            STATUSES.contains(&seen),
            "a delivery status as spelled: {f}"
        );
        if item["message_id"] == json!(message) && seen == status {
            return item.clone();
        }
    }
}

/// Each outbound text's delivery is in the history (issue 18, item 1): a client that
/// reopens a conversation tells a delivered text from a failed one. Every message item
/// carries `deliveries: [{to, status, error_code, reason, at_ms}]`, statuses snake_case
/// as on the stream's `delivery` frames and in the simulator, and a failure names the
/// carrier's code and what it means in words.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_history_carries_each_texts_delivery_state() {
    let s = TestServer::start_with_carrier(CarrierKind::Simulator(Simulator::new()), |_| {}).await;
    let c = testkit::http();
    let org = org_with_number(&c, &s, "ada@history-delivery.example", OUR).await;
    let id = start_external(&c, &s, &org, CUSTOMER).await;
    let mut ws = testkit::stream::connect(&s, &org.token, None).await;

    // Delivered by default.
    let delivered = post_text(&c, &s, &org, id, "Your order shipped").await;
    let (item, d) =
        history_delivery(&c, &s, &org.token, id, delivered, CUSTOMER, "delivered").await;
    assert_eq!(item["type"], "message", "{item}");
    assert_eq!(item["deliveries"].as_array().unwrap().len(), 1, "{item}");
    assert!(d["at_ms"].as_u64().is_some_and(|t| t > 0), "{d}");
    assert_eq!(
        d,
        json!({ "to": CUSTOMER, "status": "delivered", "error_code": null, "reason": null, "at_ms": d["at_ms"] }),
    );
    let f = delivery_frame(&mut ws, delivered, "delivered").await;
    assert_eq!(
        (&f["to"], &f["error_code"], &f["reason"]),
        (&json!(CUSTOMER), &Value::Null, &Value::Null),
        "{f}"
    );

    // Undelivered, with the carrier's code and its meaning.
    let (status, _) = call(
        c.post(s.url("/v1/simulator/outcome"))
            .bearer_auth(&org.token)
            .json(&json!({ "to": CUSTOMER, "outcome": { "kind": "undeliver", "error_code": "30008" } })),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let undelivered = post_text(&c, &s, &org, id, "Are you there?").await;
    let (_, d) =
        history_delivery(&c, &s, &org.token, id, undelivered, CUSTOMER, "undelivered").await;
    assert_eq!(d["error_code"], "30008", "{d}");
    assert_eq!(d["reason"], "Unknown error from the carrier", "{d}");
    assert_eq!(
        d["reason"].as_str(),
        carrier::error_codes::describe("30008"),
        "{d}"
    );
    let f = delivery_frame(&mut ws, undelivered, "undelivered").await;
    assert_eq!(
        (&f["error_code"], &f["reason"]),
        (&json!("30008"), &json!("Unknown error from the carrier")),
        "{f}"
    );

    // Failed, with another code.
    let (status, _) = call(
        c.post(s.url("/v1/simulator/outcome"))
            .bearer_auth(&org.token)
            .json(&json!({ "to": CUSTOMER, "outcome": { "kind": "fail", "error_code": "30003" } })),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let failed = post_text(&c, &s, &org, id, "Hello?").await;
    let (_, d) = history_delivery(&c, &s, &org.token, id, failed, CUSTOMER, "failed").await;
    assert_eq!(
        (&d["error_code"], &d["reason"]),
        (
            &json!("30003"),
            &json!("The handset is unreachable (off or out of coverage)")
        ),
        "{d}"
    );

    // Each message keeps its own state; the simulator spells them the same way.
    let (_, d) = history_delivery(&c, &s, &org.token, id, delivered, CUSTOMER, "delivered").await;
    assert_eq!(d["error_code"], Value::Null, "{d}");
    let (status, out) = call(
        c.get(s.url("/v1/simulator/outbound"))
            .bearer_auth(&org.token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let statuses: Vec<(&str, &str)> = out["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["body"].as_str().unwrap(), t["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("Your order shipped", "delivered"),
            ("Are you there?", "undelivered"),
            ("Hello?", "failed"),
        ]
    );
}
