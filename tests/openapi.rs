//! The OpenAPI document and the router agree, both ways: every route registered in
//! `app.rs` is documented with its methods, and every documented operation is routed on a
//! running server (a documented method answers something other than 405, an undocumented
//! one 405, and a route of another carrier mode is not mounted).

use std::collections::BTreeSet;

use gateway::carriers::CarrierKind;
use gateway::openapi::{document, OPERATIONS};
use reqwest::{Client, Method, StatusCode};
use testkit::server::TestServer;

/// (method, path) of every `.route("path", method(..).other(..))` in the router's source.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let src = include_str!("../crates/gateway/src/app.rs");
    let mut out = BTreeSet::new();
    let mut rest = src;
    while let Some(i) = rest.find(".route(") {
        let body_start = i + ".route(".len();
        let bytes = rest.as_bytes();
        let (mut depth, mut end) = (1, body_start);
        while depth > 0 {
            match bytes[end] {
                b'(' => depth += 1,
                b')' => depth -= 1,
                _ => {}
            }
            end += 1;
        }
        let body = &rest[body_start..end - 1];
        let path = body.split('"').nth(1).expect("a path literal").to_owned();
        for m in ["get", "post", "put", "patch", "delete"] {
            let mut search = body;
            while let Some(j) = search.find(&format!("{m}(")) {
                let before = search[..j].chars().last();
                if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    out.insert((m.to_owned(), path.clone()));
                    break;
                }
                search = &search[j + 1..];
            }
        }
        rest = &rest[end..];
    }
    out
}

fn documented() -> BTreeSet<(String, String)> {
    OPERATIONS
        .iter()
        .map(|o| (o.method.to_owned(), o.path.to_owned()))
        .collect()
}

#[test]
fn every_route_in_the_router_is_documented_and_nothing_else() {
    let source = routes_in_source();
    assert!(source.len() > 40, "the scan found the routes: {source:?}");
    let docs = documented();
    let undocumented: Vec<_> = source.difference(&docs).collect();
    let unrouted: Vec<_> = docs.difference(&source).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi::OPERATIONS: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "documented but not in app.rs: {unrouted:?}"
    );
    assert_eq!(
        docs.len(),
        OPERATIONS.len(),
        "no operation documented twice"
    );
    // Excluded on purpose: the web client's static files (`/` and `/assets/{*path}`,
    // `gateway::routes::web`) are not API. They are merged into the router from their own
    // module, so the scan of app.rs above does not see them, and they are not documented.
    assert!(
        !docs
            .iter()
            .any(|(_, p)| p == "/" || p.starts_with("/assets")),
        "the web client's files are not API operations"
    );
}

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{number}" => "%2B15550001111".to_owned(),
            "{tab}" => "active".to_owned(),
            "{action}" => "claim".to_owned(),
            s if s.starts_with('{') => uuid::Uuid::new_v4().to_string(),
            s => s.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether axum routed the request: an unrouted path is a 404 `route_not_found`, an
/// unrouted method a 405 `method_not_allowed` (both in the API's error shape); handlers
/// answer their own codes.
async fn routed(c: &Client, url: &str, method: &Method) -> (StatusCode, bool) {
    let r = c
        .request(method.clone(), url)
        .send()
        .await
        .expect("request");
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    let unrouted = matches!(
        (status, body["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
            | (StatusCode::NOT_FOUND, Some("route_not_found"))
    );
    (status, !unrouted)
}

/// Unknown paths and methods answer in the API's error shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_answer_json_errors() {
    let s = TestServer::start().await;
    let c = testkit::http();
    for (method, path, status, code) in [
        (
            Method::GET,
            "/v1/nope",
            StatusCode::NOT_FOUND,
            "route_not_found",
        ),
        (
            Method::DELETE,
            "/healthz",
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ] {
        let r = c.request(method, s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        let body: serde_json::Value = r.json().await.expect("a JSON body");
        assert_eq!(body["code"], code, "{path}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_served_and_the_document_is_published() {
    let s = TestServer::start_with_carrier(
        CarrierKind::Simulator(carrier::simulator::Simulator::new()),
        |_| {},
    )
    .await;
    let c = testkit::http();
    let all_methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    let docs = documented();
    let paths: BTreeSet<&str> = OPERATIONS.iter().map(|o| o.path).collect();
    for path in paths {
        let url = s.url(&concrete(path));
        let mounted = OPERATIONS
            .iter()
            .filter(|o| o.path == path)
            .all(|o| o.only_with.is_none_or(|w| w == "any" || w == "simulator"));
        for m in &all_methods {
            let is_doc = docs.contains(&(m.as_str().to_lowercase(), path.to_owned()));
            let (status, ok) = routed(&c, &url, m).await;
            if is_doc && mounted {
                assert!(ok, "{m} {path} is documented but not routed ({status})");
            } else if mounted {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{m} {path} is routed but not documented"
                );
            } else {
                assert!(
                    !ok,
                    "{m} {path} belongs to another carrier mode but is mounted ({status})"
                );
            }
        }
    }
    let served: serde_json::Value = c
        .get(s.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served, document());
    assert_eq!(served["openapi"], "3.1.0");
    for o in OPERATIONS {
        let op = &served["paths"][o.path][o.method];
        assert!(
            op.is_object(),
            "{} {} missing from the document",
            o.method,
            o.path
        );
        assert_eq!(
            op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "path")
                .count(),
            o.path.matches('{').count()
        );
    }
}
