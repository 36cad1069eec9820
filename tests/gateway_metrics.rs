//! `GET /metrics` over real HTTP: the operator's admins (the first organization on the
//! server) and scrapers with the token only; request counts by route template; read-model and follower lag; open WebSockets.

use reqwest::StatusCode;
use serde_json::json;
use testkit::server::{add_user, call, TestServer, PASSWORD};

/// A new organization; its admin's token.
async fn bootstrap(c: &reqwest::Client, s: &TestServer, email: &str) -> String {
    let (status, boot) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Acme", "name": "Ada", "extension": "100", "email": email, "password": PASSWORD,
    })))
    .await;
    assert!(status.is_success(), "{boot}");
    boot["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_and_need_an_operator_admin() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let admin = bootstrap(&c, &s, "ada@metrics.example").await;
    let (_, member) = add_user(&c, &s, &admin, "bob@metrics.example", "101").await;
    for _ in 0..3 {
        let (status, _) = call(c.get(s.url("/v1/me")).bearer_auth(&member)).await;
        assert_eq!(status, StatusCode::OK);
    }
    let ws_url = format!(
        "{}/v1/stream?token={member}",
        s.base.replace("http://", "ws://")
    );
    let (_ws, _) = tokio_tungstenite::connect_async(ws_url)
        .await
        .expect("websocket");

    let r = c.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (status, v) = call(c.get(s.url("/metrics")).bearer_auth(&member)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["code"], "admin_only");
    // The figures are the whole server's: another organization's admin is refused.
    let tenant = bootstrap(&c, &s, "oz@tenant.example").await;
    let (status, v) = call(c.get(s.url("/metrics")).bearer_auth(&tenant)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["code"], "operator_only");

    let r = c
        .get(s.url("/metrics"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let body = r.text().await.unwrap();
    let line = body
        .lines()
        .find(|l| {
            l.starts_with("http_requests_total")
                && l.contains("route=\"/v1/me\"")
                && l.contains("status=\"200\"")
        })
        .unwrap_or_else(|| panic!("no /v1/me counter in\n{body}"));
    assert!(line.ends_with(" 3"), "{line}");
    assert!(
        body.contains("http_request_duration_seconds_bucket"),
        "{body}"
    );
    assert!(
        body.lines().any(|l| l == "websocket_connections 1"),
        "{body}"
    );
    // Every read model reports position and lag against the same next position.
    let next = gauge(&body, "eventlog_next_position").unwrap_or_else(|| panic!("{body}"));
    assert!(next > 0, "{body}");
    for model in ["interactions", "queues", "search"] {
        let position = gauge(&body, &format!("readmodel_position{{model=\"{model}\"}}"))
            .unwrap_or_else(|| panic!("no position of {model} in\n{body}"));
        let lag = gauge(&body, &format!("readmodel_lag_events{{model=\"{model}\"}}"))
            .unwrap_or_else(|| panic!("no lag of {model} in\n{body}"));
        assert_eq!(position + lag, next, "{model}: {body}");
    }
    // Raw ids never become labels: the route template does.
    let (status, _) = call(
        c.get(s.url(&format!(
            "/v1/conversations/{}/messages",
            uuid::Uuid::new_v4()
        )))
        .bearer_auth(&member),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let body = scrape(&c, &s, &admin).await;
    assert!(
        body.contains("route=\"/v1/conversations/{id}/messages\""),
        "{body}"
    );
}

/// The metrics page as `token` gets it.
async fn scrape(c: &reqwest::Client, s: &TestServer, token: &str) -> String {
    let r = c
        .get(s.url("/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

/// The value of the sample named exactly `series` (name and labels), if there is one.
fn gauge(body: &str, series: &str) -> Option<u64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_model_and_follower_catches_up_to_the_log_in_the_metrics() {
    // With a carrier, the server runs its followers too.
    let s = TestServer::start_with_carrier(
        gateway::carriers::CarrierKind::Simulator(carrier::simulator::Simulator::new()),
        |_| {},
    )
    .await;
    let c = testkit::http();
    let admin = bootstrap(&c, &s, "ada@lag.example").await;
    let (bob, _) = add_user(&c, &s, &admin, "bob@lag.example", "101").await;
    let (status, conv) = call(
        c.post(s.url("/v1/conversations/direct"))
            .bearer_auth(&admin)
            .json(&json!({ "with": bob })),
    )
    .await;
    assert!(status.is_success(), "{conv}");
    let id = conv["conversation_id"].as_str().unwrap();
    let (status, posted) = call(
        c.post(s.url(&format!("/v1/conversations/{id}/messages")))
            .bearer_auth(&admin)
            .json(&json!({ "text": "lag check" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{posted}");
    let written = posted["position"].as_u64().unwrap();

    // The log is quiet now: every model and follower reaches its end, and says so with a
    // lag of 0.
    let followers = [
        workers::attachment_refs::CHECKPOINT,
        workers::inbound_router::CHECKPOINT,
        workers::webhooks::FOLLOWERS[0],
    ];
    let series = |kind: &str, name: &str| match kind {
        "model" => format!("readmodel_lag_events{{model=\"{name}\"}}"),
        _ => format!("follower_lag_events{{follower=\"{name}\"}}"),
    };
    let lags: Vec<String> = ["interactions", "queues", "search"]
        .iter()
        .map(|m| series("model", m))
        .chain(followers.iter().map(|f| series("follower", f)))
        .collect();
    let mut body = String::new();
    for _ in 0..200 {
        body = scrape(&c, &s, &admin).await;
        if lags.iter().all(|l| gauge(&body, l) == Some(0)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let next = gauge(&body, "eventlog_next_position").unwrap();
    assert!(next > written, "{body}");
    for model in ["interactions", "queues", "search"] {
        assert_eq!(
            gauge(&body, &format!("readmodel_lag_events{{model=\"{model}\"}}")),
            Some(0),
            "{model} never caught up:\n{body}"
        );
        assert_eq!(
            gauge(&body, &format!("readmodel_position{{model=\"{model}\"}}")),
            Some(next),
            "{body}"
        );
    }
    for follower in followers {
        assert_eq!(
            gauge(&body, &series("follower", follower)),
            Some(0),
            "{follower} never caught up:\n{body}"
        );
        assert_eq!(
            gauge(
                &body,
                &format!("follower_position{{follower=\"{follower}\"}}")
            ),
            Some(next),
            "{body}"
        );
    }
}

/// The request id a `request` span was opened with.
struct RequestId(String);

/// Records, for every event logged inside a `request` span, that span's request id.
#[derive(Clone, Default)]
struct EventsByRequest(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl<S> tracing_subscriber::Layer<S> for EventsByRequest
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct Find(Option<String>);
        impl tracing::field::Visit for Find {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if f.name() == "request_id" {
                    self.0 = Some(format!("{v:?}"));
                }
            }
        }
        if attrs.metadata().name() != "request" {
            return;
        }
        let mut find = Find(None);
        attrs.record(&mut find);
        if let (Some(v), Some(span)) = (find.0, ctx.span(id)) {
            span.extensions_mut().insert(RequestId(v));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        for span in scope.from_root() {
            if let Some(RequestId(v)) = span.extensions().get::<RequestId>() {
                self.0.lock().unwrap().push(v.clone());
            }
        }
    }
}

/// What is logged while a request is served carries its request id (the caller's
/// `x-request-id`, or the one assigned), through the request's span.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_logged_for_a_request_carries_its_request_id() {
    use tracing_subscriber::layer::SubscriberExt;
    let seen = EventsByRequest::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(seen.clone()))
        .expect("the only subscriber of this test binary");
    let s = TestServer::start().await;
    let c = testkit::http();
    let r = c
        .get(s.url("/v1/me"))
        .header("x-request-id", "trace-me-43")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c.get(s.url("/healthz")).send().await.unwrap();
    let assigned = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    // The response is sent before the span's last event; wait for it briefly.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let got = seen.0.lock().unwrap().clone();
        if got.iter().any(|v| v == "trace-me-43") && got.contains(&assigned) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "events of the requests without their ids: {got:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
