//! `GET /metrics` over real HTTP: admins (and scrapers with the token) only; request
//! counts by route template; read-model lag; open WebSockets.

use reqwest::StatusCode;
use serde_json::json;
use testkit::server::{add_user, call, TestServer, PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_and_need_an_admin() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let (_, boot) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Acme", "name": "Ada", "extension": "100", "email": "ada@metrics.example", "password": PASSWORD,
    })))
    .await;
    let admin = boot["token"].as_str().unwrap().to_owned();
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
    assert!(
        body.contains("readmodel_lag_events{model=\"interactions\"}"),
        "{body}"
    );
    assert!(body.contains("eventlog_next_position"), "{body}");
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
    let body = c
        .get(s.url("/metrics"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("route=\"/v1/conversations/{id}/messages\""),
        "{body}"
    );
}
