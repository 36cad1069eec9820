//! The Twilio adapter against a fake carrier: a real axum server on 127.0.0.1:0 that
//! records every request and answers as told.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use carrier::twilio::{
    compute_signature, fetch_media, parse_form, parse_status, MediaFetchError, TwilioCarrier,
    TwilioConfig, SIGNATURE_HEADER,
};
use carrier::{Carrier, CarrierStatus, OutboundMedia, OutboundSms, SendError, StatusReport};
use tokio::sync::mpsc;

/// A plain HTTP client: reqwest's rustls has no crypto provider of its own here, so the
/// process default (`ring`) is installed first.
fn http() -> reqwest::Client {
    carrier::tls::install_default_provider();
    reqwest::Client::new()
}

const SID: &str = "ACfake0123";
const TOKEN: &str = "tok-xyz";
/// python3 -c 'import base64; print(base64.b64encode(b"ACfake0123:tok-xyz").decode())'
const BASIC_AUTH: &str = "Basic QUNmYWtlMDEyMzp0b2steHl6";

#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    form: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
enum Mode {
    /// 201 with a Twilio message resource; then post these statuses, signed, to the
    /// request's StatusCallback.
    Create { callbacks: Vec<&'static str> },
    /// Answer `status` with `body` (and `Retry-After` if given).
    Fail {
        status: u16,
        body: String,
        retry_after: Option<&'static str>,
    },
    /// Sleep this long before answering 201.
    Stall(Duration),
}

#[derive(Clone)]
struct FakeState {
    requests: Arc<Mutex<Vec<Recorded>>>,
    mode: Arc<Mutex<Mode>>,
    counter: Arc<Mutex<u32>>,
    http: reqwest::Client,
}

struct Fake {
    addr: SocketAddr,
    state: FakeState,
}

impl Fake {
    async fn start(mode: Mode) -> Fake {
        let state = FakeState {
            requests: Arc::default(),
            mode: Arc::new(Mutex::new(mode)),
            counter: Arc::default(),
            http: http(),
        };
        let app = Router::new()
            .fallback(fake_carrier)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Fake { addr, state }
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    fn carrier(&self, timeout: Duration) -> TwilioCarrier {
        TwilioCarrier::new(TwilioConfig {
            base_url: self.base_url(),
            account_sid: SID.into(),
            auth_token: TOKEN.into(),
            request_timeout: timeout,
            extra_roots_pem: None,
        })
        .unwrap()
    }
}

async fn fake_carrier(
    State(state): State<FakeState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header =
        |name: header::HeaderName| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    let form = parse_form(&body);
    state.requests.lock().unwrap().push(Recorded {
        method,
        path: uri.path().to_owned(),
        authorization: header(header::AUTHORIZATION),
        content_type: header(header::CONTENT_TYPE),
        form: form.clone(),
    });
    let mode = state.mode.lock().unwrap().clone();
    match mode {
        Mode::Fail {
            status,
            body,
            retry_after,
        } => {
            let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, seconds.parse().unwrap());
            }
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
            response
        }
        Mode::Stall(delay) => {
            tokio::time::sleep(delay).await;
            created(&state, &form).1
        }
        Mode::Create { callbacks } => {
            let (sid, response) = created(&state, &form);
            let callback = form
                .iter()
                .find(|(k, _)| k == "StatusCallback")
                .map(|(_, v)| v.clone());
            if let Some(url) = callback {
                let http = state.http.clone();
                let sid = sid.clone();
                tokio::spawn(async move {
                    for status in callbacks {
                        let mut params = vec![
                            ("MessageSid".to_owned(), sid.clone()),
                            ("MessageStatus".to_owned(), status.to_owned()),
                            ("AccountSid".to_owned(), SID.to_owned()),
                        ];
                        if status == "undelivered" {
                            params.push(("ErrorCode".to_owned(), "30003".to_owned()));
                        }
                        let signature = compute_signature(TOKEN, &url, &params);
                        let body = form_body(&params);
                        http.post(&url)
                            .header(SIGNATURE_HEADER, signature)
                            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                            .body(body)
                            .send()
                            .await
                            .unwrap();
                    }
                });
            }
            response
        }
    }
}

fn form_body(params: &[(String, String)]) -> String {
    let mut s = String::new();
    for (k, v) in params {
        if !s.is_empty() {
            s.push('&');
        }
        s.push_str(k);
        s.push('=');
        for b in v.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                s.push(b as char);
            } else {
                s.push_str(&format!("%{b:02X}"));
            }
        }
    }
    s
}

/// A Twilio-like 201 answer for a created message, and its sid.
fn created(state: &FakeState, form: &[(String, String)]) -> (String, Response) {
    let n = {
        let mut c = state.counter.lock().unwrap();
        *c += 1;
        *c
    };
    let sid = format!("SM{n:032x}");
    let get = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let json = serde_json::json!({
        "sid": sid,
        "account_sid": SID,
        "to": get("To"),
        "from": get("From"),
        "body": get("Body"),
        "status": "queued",
        "num_media": form.iter().filter(|(k, _)| k == "MediaUrl").count().to_string(),
        "error_code": null,
        "error_message": null,
        "direction": "outbound-api",
    });
    let response = (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/json")],
        json.to_string(),
    )
        .into_response();
    (sid, response)
}

fn sms(key: &str) -> OutboundSms {
    OutboundSms {
        idempotency_key: key.into(),
        from: "+15551230000".into(),
        to: "+15557654321".into(),
        body: "Hello ☕ & welcome = 100%".into(),
        media: vec![],
        status_callback: None,
    }
}

#[tokio::test]
async fn posts_form_fields_with_basic_auth_to_account_path() {
    let fake = Fake::start(Mode::Create { callbacks: vec![] }).await;
    let carrier = fake.carrier(Duration::from_secs(5));
    let mut message = sms("m1:+15557654321");
    message.media = vec![
        OutboundMedia {
            url: "http://media.example/b/1.jpg".into(),
            content_type: "image/jpeg".into(),
        },
        OutboundMedia {
            url: "http://media.example/b/2.png?sig=a&b=c".into(),
            content_type: "image/png".into(),
        },
    ];
    message.status_callback = Some("http://sb.example/webhooks/twilio/status".into());
    let accepted = carrier.send(message).await.unwrap();
    assert_eq!(accepted.carrier_message_id, format!("SM{:032x}", 1));
    assert_eq!(accepted.status, CarrierStatus::Queued);

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path, "/2010-04-01/Accounts/ACfake0123/Messages.json");
    assert_eq!(r.authorization.as_deref(), Some(BASIC_AUTH));
    assert_eq!(
        r.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let expected: Vec<(String, String)> = [
        ("To", "+15557654321"),
        ("From", "+15551230000"),
        ("Body", "Hello ☕ & welcome = 100%"),
        ("MediaUrl", "http://media.example/b/1.jpg"),
        ("MediaUrl", "http://media.example/b/2.png?sig=a&b=c"),
        ("StatusCallback", "http://sb.example/webhooks/twilio/status"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(r.form, expected);
}

#[tokio::test]
async fn picture_only_mms_omits_body_and_no_callback_means_none() {
    let fake = Fake::start(Mode::Create { callbacks: vec![] }).await;
    let carrier: Arc<dyn Carrier> = Arc::new(fake.carrier(Duration::from_secs(5)));
    assert_eq!(carrier.name(), "twilio");
    let mut message = sms("m2");
    message.body.clear();
    message.media = vec![OutboundMedia {
        url: "http://media.example/x.gif".into(),
        content_type: "image/gif".into(),
    }];
    carrier.send(message).await.unwrap();
    let form = &fake.requests()[0].form;
    let keys: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["To", "From", "MediaUrl"]);
}

#[tokio::test]
async fn server_errors_are_retryable_with_carrier_code() {
    let fake = Fake::start(Mode::Fail {
        status: 500,
        body: r#"{"code": 20500, "message": "Internal Server Error", "more_info": "https://www.twilio.com/docs/errors/20500", "status": 500}"#.into(),
        retry_after: None,
    })
    .await;
    let carrier = fake.carrier(Duration::from_secs(5));
    let err = carrier.send(sms("k")).await.unwrap_err();
    assert_eq!(
        err,
        SendError::Retryable {
            code: "20500".into(),
            message: "Internal Server Error".into(),
            retry_after: None
        }
    );
    assert_eq!(err.code(), "carrier_unavailable");

    // A 503 from a proxy in front, with a plain-text body and a Retry-After.
    fake.set_mode(Mode::Fail {
        status: 503,
        body: "upstream unavailable".into(),
        retry_after: Some("12"),
    });
    let err = carrier.send(sms("k")).await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.carrier_code(), "http_503");
    assert!(err.message().contains("upstream unavailable"), "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(12)));
    assert_eq!(
        fake.requests().len(),
        2,
        "one request per send, no hidden retries"
    );
}

#[tokio::test]
async fn rate_limit_is_retryable_with_retry_after() {
    let fake = Fake::start(Mode::Fail {
        status: 429,
        body: r#"{"code": 20429, "message": "Too Many Requests", "status": 429}"#.into(),
        retry_after: Some("7"),
    })
    .await;
    let err = fake
        .carrier(Duration::from_secs(5))
        .send(sms("k"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SendError::Retryable {
            code: "20429".into(),
            message: "Too Many Requests".into(),
            retry_after: Some(Duration::from_secs(7))
        }
    );
}

#[tokio::test]
async fn client_errors_are_permanent_with_carrier_code() {
    let fake = Fake::start(Mode::Fail {
        status: 400,
        body: r#"{"code": 21211, "message": "The 'To' number +1555 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#.into(),
        retry_after: None,
    })
    .await;
    let carrier = fake.carrier(Duration::from_secs(5));
    let err = carrier.send(sms("k")).await.unwrap_err();
    assert_eq!(
        err,
        SendError::Permanent {
            code: "21211".into(),
            message: "The 'To' number +1555 is not a valid phone number.".into(),
        }
    );
    assert_eq!(err.code(), "carrier_rejected");

    fake.set_mode(Mode::Fail {
        status: 401,
        body: r#"{"code": 20003, "message": "Authenticate", "status": 401}"#.into(),
        retry_after: None,
    });
    let err = carrier.send(sms("k")).await.unwrap_err();
    assert!(!err.is_retryable());
    assert_eq!(err.carrier_code(), "20003");

    fake.set_mode(Mode::Fail {
        status: 404,
        body: String::new(),
        retry_after: None,
    });
    let err = carrier.send(sms("k")).await.unwrap_err();
    assert_eq!(
        err,
        SendError::Permanent {
            code: "http_404".into(),
            message: "HTTP 404 Not Found".into()
        }
    );
}

#[tokio::test]
async fn success_without_sid_is_not_retried_blindly() {
    let fake = Fake::start(Mode::Fail {
        status: 201,
        body: "<html>oops</html>".into(),
        retry_after: None,
    })
    .await;
    let err = fake
        .carrier(Duration::from_secs(5))
        .send(sms("k"))
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    assert_eq!(err.carrier_code(), "invalid_carrier_response");
    assert!(err.message().contains("oops"));
}

#[tokio::test]
async fn stall_past_timeout_is_retryable() {
    let fake = Fake::start(Mode::Stall(Duration::from_secs(10))).await;
    let carrier = fake.carrier(Duration::from_millis(300));
    let started = Instant::now();
    let err = carrier.send(sms("k")).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(err.carrier_code(), "timeout");
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert_eq!(
        fake.requests().len(),
        1,
        "the request did reach the carrier"
    );
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let carrier = TwilioCarrier::new(TwilioConfig {
        base_url: format!("http://{addr}"),
        account_sid: SID.into(),
        auth_token: TOKEN.into(),
        request_timeout: Duration::from_secs(2),
        extra_roots_pem: None,
    })
    .unwrap();
    let err = carrier.send(sms("k")).await.unwrap_err();
    assert_eq!(err.carrier_code(), "connection_failed", "{err:?}");
    assert!(err.is_retryable());
}

/// A receiver for the fake's signed status callbacks, validating signatures the way the
/// gateway will: raw body → params → signature over the full URL → parse.
async fn start_callback_receiver() -> (
    String,
    mpsc::UnboundedReceiver<Result<StatusReport, StatusCode>>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/webhooks/twilio/status",
        listener.local_addr().unwrap()
    );
    let full_url = url.clone();
    let app = Router::new().route(
        "/webhooks/twilio/status",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            let full_url = full_url.clone();
            async move {
                let params = parse_form(&body);
                let signature = headers
                    .get(SIGNATURE_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !carrier::twilio::validate_signature(TOKEN, &full_url, &params, signature) {
                    let _ = tx.send(Err(StatusCode::FORBIDDEN));
                    return StatusCode::FORBIDDEN;
                }
                let _ = tx.send(Ok(parse_status(&params).unwrap()));
                StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

#[tokio::test]
async fn signed_status_callbacks_round_trip() {
    let (callback_url, mut reports) = start_callback_receiver().await;
    let fake = Fake::start(Mode::Create {
        callbacks: vec!["sent", "undelivered"],
    })
    .await;
    let mut message = sms("cb");
    message.status_callback = Some(callback_url.clone());
    let accepted = fake
        .carrier(Duration::from_secs(5))
        .send(message)
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        let report = tokio::time::timeout(Duration::from_secs(5), reports.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(report.carrier_message_id, accepted.carrier_message_id);
        got.push(report.status);
    }
    assert_eq!(
        got,
        vec![
            CarrierStatus::Sent,
            CarrierStatus::Undelivered {
                error_code: Some("30003".into())
            }
        ]
    );

    // A forged callback (signed with the wrong token) is refused.
    let params = vec![
        ("MessageSid".to_owned(), accepted.carrier_message_id.clone()),
        ("MessageStatus".to_owned(), "delivered".to_owned()),
    ];
    let forged = compute_signature("not-the-token", &callback_url, &params);
    let status = http()
        .post(&callback_url)
        .header(SIGNATURE_HEADER, forged)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form_body(&params))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 403);
    assert_eq!(reports.recv().await.unwrap(), Err(StatusCode::FORBIDDEN));
}

// ---- inbound media ----

/// (path, Authorization header) per request.
type SeenAuth = Arc<Mutex<Vec<(String, Option<String>)>>>;

#[derive(Clone)]
struct MediaState {
    seen_auth: SeenAuth,
    redirect_to: Arc<Mutex<Option<String>>>,
}

async fn media_server() -> (SocketAddr, MediaState) {
    let state = MediaState {
        seen_auth: Arc::default(),
        redirect_to: Arc::default(),
    };
    let app = Router::new()
        .fallback(media_handler)
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, state)
}

async fn media_handler(State(state): State<MediaState>, uri: Uri, headers: HeaderMap) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap().to_owned());
    state
        .seen_auth
        .lock()
        .unwrap()
        .push((uri.path().to_owned(), auth.clone()));
    match uri.path() {
        "/private.png" => {
            if auth.as_deref() != Some(BASIC_AUTH) {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            (
                [(header::CONTENT_TYPE, "image/png")],
                b"\x89PNG\r\n\x1a\nfake".to_vec(),
            )
                .into_response()
        }
        "/public.jpg" => (
            [(header::CONTENT_TYPE, "image/jpeg")],
            vec![0xFFu8, 0xD8, 0xFF],
        )
            .into_response(),
        "/big" => vec![0u8; 64 * 1024].into_response(),
        "/endless" => {
            let chunks = futures_util::stream::repeat_with(|| {
                Ok::<_, Infallible>(Bytes::from(vec![1u8; 16 * 1024]))
            });
            Body::from_stream(chunks).into_response()
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            StatusCode::OK.into_response()
        }
        "/redirect" => {
            let to = state.redirect_to.lock().unwrap().clone().unwrap();
            (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, to)]).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

#[tokio::test]
async fn fetch_media_with_basic_auth() {
    let (addr, _) = media_server().await;
    let client = http();
    let url = format!("http://{addr}/private.png");
    let (bytes, content_type) = fetch_media(
        &client,
        &url,
        Some((SID, TOKEN)),
        1024,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(bytes, b"\x89PNG\r\n\x1a\nfake");
    assert_eq!(content_type.as_deref(), Some("image/png"));
    let err = fetch_media(&client, &url, None, 1024, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(err, MediaFetchError::Status(401));
    assert_eq!(err.code(), "media_fetch_status");
    assert!(!err.is_retryable());
    let err = fetch_media(
        &client,
        &format!("http://{addr}/gone"),
        None,
        1024,
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert_eq!(err, MediaFetchError::Status(404));
}

#[tokio::test]
async fn fetch_media_refuses_oversized_bodies() {
    let (addr, _) = media_server().await;
    let client = http();
    // Declared by Content-Length.
    let err = fetch_media(
        &client,
        &format!("http://{addr}/big"),
        None,
        1000,
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert_eq!(err, MediaFetchError::TooLarge { max_bytes: 1000 });
    assert_eq!(err.code(), "media_too_large");
    // Exactly at the limit is fine.
    let (bytes, _) = fetch_media(
        &client,
        &format!("http://{addr}/big"),
        None,
        64 * 1024,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(bytes.len(), 64 * 1024);
    // Chunked and endless: must stop while streaming (a hang would end as a timeout).
    let started = Instant::now();
    let err = fetch_media(
        &client,
        &format!("http://{addr}/endless"),
        None,
        200 * 1024,
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        MediaFetchError::TooLarge {
            max_bytes: 200 * 1024
        }
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn fetch_media_timeout_and_bad_url() {
    let (addr, _) = media_server().await;
    let client = http();
    let started = Instant::now();
    let err = fetch_media(
        &client,
        &format!("http://{addr}/slow"),
        None,
        1024,
        Duration::from_millis(200),
    )
    .await
    .unwrap_err();
    assert_eq!(err, MediaFetchError::Timeout);
    assert!(err.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(3));
    for bad in ["file:///etc/passwd", "ftp://x/y", "not a url", ""] {
        let err = fetch_media(&client, bad, None, 1024, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "media_url_invalid", "{bad}");
    }
}

#[tokio::test]
async fn credentials_never_leave_the_carrier_host() {
    let (carrier_addr, carrier_media) = media_server().await;
    let (other_addr, other_media) = media_server().await;
    let carrier = TwilioCarrier::new(TwilioConfig {
        base_url: format!("http://{carrier_addr}"),
        account_sid: SID.into(),
        auth_token: TOKEN.into(),
        request_timeout: Duration::from_secs(5),
        extra_roots_pem: None,
    })
    .unwrap();
    // Under the base URL: credentials sent.
    let (bytes, _) = carrier
        .fetch_inbound_media(&format!("http://{carrier_addr}/private.png"), 1024)
        .await
        .unwrap();
    assert!(bytes.starts_with(b"\x89PNG"));
    // Another host: no credentials.
    carrier
        .fetch_inbound_media(&format!("http://{other_addr}/public.jpg"), 1024)
        .await
        .unwrap();
    assert_eq!(
        other_media.seen_auth.lock().unwrap().clone(),
        vec![("/public.jpg".to_owned(), None)]
    );
    // A redirect from the carrier to another host (as Twilio does to its CDN) drops them.
    *carrier_media.redirect_to.lock().unwrap() = Some(format!("http://{other_addr}/public.jpg"));
    let (bytes, content_type) = carrier
        .fetch_inbound_media(&format!("http://{carrier_addr}/redirect"), 1024)
        .await
        .unwrap();
    assert_eq!(bytes, [0xFF, 0xD8, 0xFF]);
    assert_eq!(content_type.as_deref(), Some("image/jpeg"));
    let carrier_seen = carrier_media.seen_auth.lock().unwrap().clone();
    assert_eq!(carrier_seen.last().unwrap().1.as_deref(), Some(BASIC_AUTH));
    let other_seen = other_media.seen_auth.lock().unwrap().clone();
    assert_eq!(other_seen.len(), 2);
    assert_eq!(other_seen[1], ("/public.jpg".to_owned(), None));
}
