//! The OpenAPI document and the router agree, both ways. Both come from one table
//! (`gateway::openapi::OPERATIONS`: the router mounts each row's handler), and a running
//! server shows it: a documented method answers something other than 405, an undocumented
//! one 405, and a route of another carrier mode is not mounted.

use std::collections::BTreeSet;

use gateway::carriers::CarrierKind;
use gateway::openapi::{document, OPERATIONS};
use reqwest::{Client, Method, StatusCode};
use testkit::server::TestServer;

fn documented() -> BTreeSet<(String, String)> {
    OPERATIONS
        .iter()
        .map(|o| (o.method.to_owned(), o.path.to_owned()))
        .collect()
}

/// The router is built from `OPERATIONS` (`gateway::app::router`), so a route exists only
/// as a row; each row is one operation, and the web client's files are not API.
#[test]
fn every_operation_is_one_row_and_the_web_files_are_not_api() {
    let docs = documented();
    assert!(docs.len() > 40, "the table lists the API: {docs:?}");
    assert_eq!(
        docs.len(),
        OPERATIONS.len(),
        "no operation documented twice"
    );
    // Excluded on purpose: the web client's static files (`/` and `/assets/{*path}`,
    // `gateway::routes::web`) are not API. They are merged into the router from their own
    // module and are not documented.
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
    // The document of the running configuration: a simulator server lists the simulator's
    // routes and not Twilio's webhooks (which it answers 404), a server without a carrier
    // neither, and the full table has both.
    assert_eq!(
        served,
        gateway::openapi::document_for_carrier(Some("simulator"))
    );
    assert!(served["paths"]["/v1/simulator/inbound"].is_object());
    assert!(served["paths"].get("/v1/carriers/twilio/inbound").is_none());
    let twilio = gateway::openapi::document_for_carrier(Some("twilio"));
    assert!(twilio["paths"]["/v1/carriers/twilio/inbound"].is_object());
    assert!(twilio["paths"].get("/v1/simulator/inbound").is_none());
    let bare = gateway::openapi::document_for_carrier(None);
    assert!(bare["paths"].get("/v1/attachments").is_none());
    let full = document();
    assert!(full["paths"]["/v1/carriers/twilio/inbound"].is_object());
    assert!(full["paths"]["/v1/simulator/inbound"].is_object());
    assert_eq!(served["openapi"], "3.1.0");
    for o in OPERATIONS {
        let op = &full["paths"][o.path][o.method];
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

// Body schemas, generated from the handlers' Rust types.

use serde_json::{json, Value};

/// The schema of `o`'s request body in `doc`, if it has one.
fn request_schema<'a>(doc: &'a Value, o: &gateway::openapi::Operation) -> Option<&'a Value> {
    let content = doc["paths"][o.path][o.method]["requestBody"]["content"].as_object()?;
    content.values().next().map(|m| &m["schema"])
}

/// The schema of `o`'s success answer in `doc`, if it answers JSON.
fn response_schema<'a>(doc: &'a Value, o: &gateway::openapi::Operation) -> Option<&'a Value> {
    let s = &doc["paths"][o.path][o.method]["responses"][o.ok.to_string()]["content"]
        ["application/json"]["schema"];
    (!s.is_null()).then_some(s)
}

/// A schema names a generated type (a `$ref`, or an array of them) or describes one
/// (properties, variants): not the generic `{"type": "object"}` of an undescribed body.
fn is_described(schema: &Value) -> bool {
    schema.get("$ref").is_some()
        || schema["items"].get("$ref").is_some()
        || schema.get("properties").is_some()
        || schema.get("oneOf").is_some()
}

#[test]
fn every_body_and_every_json_answer_has_a_schema_from_its_type() {
    let doc = document();
    let (mut requests, mut responses, mut wrong) = (0, 0, Vec::new());
    for o in OPERATIONS {
        let name = format!("{} {}", o.method, o.path);
        let mut fail = |what: String| wrong.push(format!("{name}: {what}"));
        if !o.body.is_empty() {
            match request_schema(&doc, o) {
                _ if o.request.is_none() => {
                    fail(format!("a {} body without a schema (req::<T>)", o.body));
                }
                Some(schema) if is_described(schema) => requests += 1,
                other => fail(format!("request schema {other:?}")),
            }
        } else if o.request.is_some() {
            fail("a schema for a body it does not take".into());
        }
        if (o.ok == 204 || o.ok == 101) && !o.answers.is_empty() {
            fail(format!("{} has no body", o.ok));
        }
        let answer = &doc["paths"][o.path][o.method]["responses"][o.ok.to_string()];
        if !answer.is_object() {
            fail(format!("no {} answer documented", o.ok));
        }
        if o.answers == "application/json" {
            match response_schema(&doc, o) {
                _ if o.response.is_none() => {
                    fail("a JSON answer without a schema (res::<T>)".into());
                }
                Some(schema) if is_described(schema) => responses += 1,
                other => fail(format!("response schema {other:?}")),
            }
        } else if o.response.is_some() {
            fail("a JSON schema for an answer that is not JSON".into());
        } else if o.answers.is_empty() && answer.get("content").is_some() {
            fail(format!("content for an answer without a body: {answer}"));
        } else if !o.answers.is_empty() && !answer["content"][o.answers].is_object() {
            fail(format!("{answer} is not {}", o.answers));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    println!(
        "{requests} request and {responses} response schemas for {} operations",
        OPERATIONS.len()
    );
    assert!(requests >= 35 && responses >= 60, "{requests} {responses}");
}

/// Every `$ref` (under `value`) with where it is.
fn refs(value: &Value, at: String, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                match v {
                    Value::String(r) if k == "$ref" => out.push((at.clone(), r.clone())),
                    _ => refs(v, format!("{at}/{k}"), out),
                }
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                refs(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_ref_resolves_and_every_definition_is_used() {
    let doc = document();
    let schemas = doc["components"]["schemas"]
        .as_object()
        .expect("components.schemas");
    assert!(schemas.contains_key("Error"));
    let mut found = Vec::new();
    refs(&doc, String::new(), &mut found);
    assert!(found.len() > 100, "{}", found.len());
    let mut used = BTreeSet::new();
    for (at, r) in &found {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{at}: {r} is not a components.schemas reference"));
        assert!(schemas.contains_key(name), "{at}: {r} does not resolve");
        used.insert(name);
    }
    let unused: Vec<_> = schemas
        .keys()
        .filter(|k| !used.contains(k.as_str()))
        .collect();
    assert!(
        unused.is_empty(),
        "definitions nothing refers to: {unused:?}"
    );
}

/// What `schema` says of `value`, following `$ref`s into `doc`: wrong types, missing
/// required properties, properties the schema does not list (a struct's schema lists all
/// its fields), unknown variants. `[]` when it fits.
fn misfits(value: &Value, schema: &Value, doc: &Value, at: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bad = |out: &mut Vec<String>, what: String| out.push(format!("{at}: {what}"));
    match schema {
        Value::Bool(true) => return out,
        Value::Bool(false) => {
            bad(&mut out, format!("nothing is allowed here, got {value}"));
            return out;
        }
        _ => {}
    }
    if let Some(r) = schema["$ref"].as_str() {
        let name = r
            .strip_prefix("#/components/schemas/")
            .expect("a local ref");
        out.extend(misfits(
            value,
            &doc["components"]["schemas"][name],
            doc,
            &format!("{at}<{name}>"),
        ));
    }
    for (key, need) in [("anyOf", 1..usize::MAX), ("oneOf", 1..2)] {
        if let Some(branches) = schema[key].as_array() {
            let fits = branches
                .iter()
                .filter(|b| misfits(value, b, doc, at).is_empty())
                .count();
            if !need.contains(&fits) {
                let why: Vec<_> = branches
                    .iter()
                    .map(|b| misfits(value, b, doc, at))
                    .collect();
                bad(
                    &mut out,
                    format!("{fits} branches of {key} fit {value}: {why:?}"),
                );
            }
        }
    }
    for b in schema["allOf"].as_array().into_iter().flatten() {
        out.extend(misfits(value, b, doc, at));
    }
    if let Some(c) = schema.get("const") {
        if c != value {
            bad(&mut out, format!("{value} is not {c}"));
        }
    }
    if let Some(e) = schema["enum"].as_array() {
        if !e.contains(value) {
            bad(&mut out, format!("{value} is not one of {e:?}"));
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let is = |t: &str| match t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    };
    if !types.is_empty() && !types.iter().any(|t| is(t)) {
        bad(&mut out, format!("{value} is not {types:?}"));
        return out;
    }
    if let (Some(min), Some(n)) = (schema["minimum"].as_f64(), value.as_f64()) {
        if n < min {
            bad(&mut out, format!("{n} < {min}"));
        }
    }
    if schema["format"] == "uuid" {
        if let Some(s) = value.as_str() {
            if uuid::Uuid::parse_str(s).is_err() {
                bad(&mut out, format!("{s} is not a UUID"));
            }
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema["properties"].as_object();
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().expect("a property name");
            if !object.contains_key(name) {
                bad(
                    &mut out,
                    format!("required property {name} missing from {value}"),
                );
            }
        }
        if let Some(properties) = properties {
            let open = schema
                .get("additionalProperties")
                .is_some_and(|a| a != &Value::Bool(false));
            for (k, v) in object {
                match properties.get(k) {
                    Some(p) => out.extend(misfits(v, p, doc, &format!("{at}.{k}"))),
                    None if open => {}
                    None => bad(&mut out, format!("property {k} is not in the schema")),
                }
            }
        }
    }
    if let Some(items) = value.as_array() {
        let prefix = schema["prefixItems"]
            .as_array()
            .map_or(&[][..], Vec::as_slice);
        for (i, v) in items.iter().enumerate() {
            let s = prefix.get(i).or_else(|| schema.get("items"));
            if let Some(s) = s {
                out.extend(misfits(v, s, doc, &format!("{at}[{i}]")));
            }
        }
    }
    out
}

#[test]
fn the_checker_catches_drift() {
    let doc = json!({ "components": { "schemas": {
        "T": { "type": "object", "required": ["a"], "properties": {
            "a": { "type": "integer", "minimum": 0 },
            "b": { "anyOf": [{ "$ref": "#/components/schemas/U" }, { "type": "null" }] },
        } },
        "U": { "oneOf": [
            { "type": "object", "required": ["type"], "properties": { "type": { "const": "x" } } },
            { "type": "object", "required": ["type", "n"], "properties": { "type": { "const": "y" }, "n": { "type": "string" } } },
        ] },
    } } });
    let t = json!({ "$ref": "#/components/schemas/T" });
    let fits = |v: Value| misfits(&v, &t, &doc, "").is_empty();
    assert!(fits(json!({ "a": 1 })));
    assert!(fits(json!({ "a": 1, "b": null })));
    assert!(fits(json!({ "a": 1, "b": { "type": "y", "n": "z" } })));
    assert!(!fits(json!({})), "missing required");
    assert!(!fits(json!({ "a": 1, "c": 2 })), "unknown property");
    assert!(!fits(json!({ "a": -1 })), "below the minimum");
    assert!(!fits(json!({ "a": "1" })), "wrong type");
    assert!(
        !fits(json!({ "a": 1, "b": { "type": "z" } })),
        "unknown variant"
    );
    assert!(
        !fits(json!({ "a": 1, "b": { "type": "y" } })),
        "variant missing a field"
    );
}

/// Calls the API and holds what it said to the document: the request body against the
/// operation's request schema, the status against its success status, the answer against
/// its response schema.
struct Checked<'a> {
    c: &'a Client,
    s: &'a TestServer,
    doc: Value,
    covered: BTreeSet<(&'static str, &'static str)>,
}

impl Checked<'_> {
    async fn call(
        &mut self,
        method: &str,
        template: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let o = OPERATIONS
            .iter()
            .find(|o| o.method == method && o.path == template)
            .unwrap_or_else(|| panic!("{method} {template} is not documented"));
        let name = format!("{method} {path}");
        let mut r = self
            .c
            .request(method.to_uppercase().parse().unwrap(), self.s.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(body) = &body {
            let schema = request_schema(&self.doc, o).expect("a request schema");
            let wrong = misfits(body, schema, &self.doc, "request");
            assert!(
                wrong.is_empty(),
                "{name}: the request does not fit its schema: {wrong:#?}"
            );
            r = r.json(body);
        }
        let answer = r.send().await.expect("request sent");
        let status = answer.status().as_u16();
        let value: Value = answer.json().await.unwrap_or(Value::Null);
        // "Start (or find)": an existing conversation is answered with 200.
        let found = o.ok == 201 && status == 200 && o.summary.starts_with("Start (or find)");
        assert!(
            status == o.ok || found,
            "{name}: {status}, documented {}: {value}",
            o.ok
        );
        let schema = response_schema(&self.doc, o).expect("a response schema");
        let wrong = misfits(&value, schema, &self.doc, "response");
        assert!(
            wrong.is_empty(),
            "{name}: the answer does not fit its schema: {wrong:#?}\n{value:#}"
        );
        self.covered.insert((o.method, o.path));
        value
    }
}

/// Real answers of a running server (with the simulator carrier) fit the document's
/// schemas exactly: each has every property its schema requires and none it does not
/// list, with the right types, down to nested items and enum variants; and the request
/// bodies sent fit the request schemas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_requests_and_answers_fit_the_documented_schemas() {
    let s = TestServer::start_with_carrier(
        CarrierKind::Simulator(carrier::simulator::Simulator::new()),
        |_| {},
    )
    .await;
    let c = testkit::http();
    let mut api = Checked {
        c: &c,
        s: &s,
        doc: document(),
        covered: BTreeSet::new(),
    };
    let (ours, theirs, inbox_number, queue_number) = (
        "+15550001111",
        "+15557654321",
        "+15550002222",
        "+15550003333",
    );
    api.call("get", "/healthz", "/healthz", None, None).await;
    api.call("get", "/openapi.json", "/openapi.json", None, None)
        .await;
    let boot = api
        .call(
            "post",
            "/v1/bootstrap",
            "/v1/bootstrap",
            None,
            Some(json!({
                "organization": "Acme", "name": "Ada", "extension": "100",
                "email": "ada@acme.test", "password": testkit::server::PASSWORD,
            })),
        )
        .await;
    let (ada, t) = (
        boot["user_id"].clone(),
        boot["token"].as_str().unwrap().to_owned(),
    );
    let t = Some(t.as_str());
    api.call("get", "/v1/me", "/v1/me", t, None).await;
    api.call("get", "/v1/me/settings", "/v1/me/settings", t, None)
        .await;
    api.call(
        "put",
        "/v1/me/settings",
        "/v1/me/settings",
        t,
        Some(json!({ "text_messages_to_desk_phone": true })),
    )
    .await;
    let bob = api
        .call(
            "post",
            "/v1/users",
            "/v1/users",
            t,
            Some(json!({
                "name": "Bob", "extension": "101", "role": "member",
                "email": "bob@acme.test", "password": testkit::server::PASSWORD,
            })),
        )
        .await["user_id"]
        .clone();
    api.call(
        "post",
        "/v1/sessions",
        "/v1/sessions",
        None,
        Some(json!({
            "email": "bob@acme.test", "password": testkit::server::PASSWORD,
        })),
    )
    .await;
    api.call("get", "/v1/users", "/v1/users", t, None).await;
    api.call(
        "post",
        "/v1/numbers",
        "/v1/numbers",
        t,
        Some(json!({ "number": ours, "user": ada })),
    )
    .await;
    api.call("get", "/v1/numbers", "/v1/numbers", t, None).await;
    api.call(
        "get",
        "/v1/numbers/{number}/name",
        "/v1/numbers/%2B15550001111/name",
        t,
        None,
    )
    .await;

    // A direct conversation: a message, a call, the history with every kind of item.
    let direct = api
        .call(
            "post",
            "/v1/conversations/direct",
            "/v1/conversations/direct",
            t,
            Some(json!({ "with": bob })),
        )
        .await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let messages = format!("/v1/conversations/{direct}/messages");
    api.call(
        "post",
        "/v1/conversations/{id}/messages",
        &messages,
        t,
        Some(json!({ "text": "hello there" })),
    )
    .await;
    let call = api
        .call(
            "post",
            "/v1/conversations/{id}/calls",
            &format!("/v1/conversations/{direct}/calls"),
            t,
            Some(json!({ "media": "video" })),
        )
        .await["call_id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.call(
        "post",
        "/v1/conversations/{id}/calls/{call}/end",
        &format!("/v1/conversations/{direct}/calls/{call}/end"),
        t,
        None,
    )
    .await;
    api.call(
        "post",
        "/v1/conversations/{id}/read",
        &format!("/v1/conversations/{direct}/read"),
        t,
        Some(json!({ "up_to": 1 })),
    )
    .await;
    let history = api
        .call("get", "/v1/conversations/{id}/messages", &messages, t, None)
        .await;
    let kinds: BTreeSet<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["type"].as_str())
        .collect();
    assert!(
        kinds.is_superset(&BTreeSet::from([
            "message",
            "call_started",
            "call_ended",
            "read"
        ])),
        "{history}"
    );
    api.call(
        "get",
        "/v1/conversations/{id}/members",
        &format!("/v1/conversations/{direct}/members"),
        t,
        None,
    )
    .await;

    let channel = api
        .call(
            "post",
            "/v1/conversations/channel",
            "/v1/conversations/channel",
            t,
            Some(json!({ "name": "general", "members": [bob] })),
        )
        .await;
    let pos = channel["position"].as_u64().unwrap();
    api.call(
        "get",
        "/v1/channels",
        &format!("/v1/channels?after={pos}"),
        t,
        None,
    )
    .await;

    // The phonebook.
    let contact = api
        .call("post", "/v1/contacts", "/v1/contacts", t, Some(json!({
            "name": "Carol", "company": "Carol's Cakes", "numbers": [theirs], "scope": "organization",
        })))
        .await["contact_id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.call("get", "/v1/contacts", "/v1/contacts", t, None)
        .await;
    api.call(
        "get",
        "/v1/contacts/{id}",
        &format!("/v1/contacts/{contact}"),
        t,
        None,
    )
    .await;
    api.call(
        "patch",
        "/v1/contacts/{id}",
        &format!("/v1/contacts/{contact}"),
        t,
        Some(json!({ "company": "Cakes Inc" })),
    )
    .await;
    let found = api
        .call(
            "get",
            "/v1/contacts/search",
            "/v1/contacts/search?q=555",
            t,
            None,
        )
        .await;
    assert!(!found["items"].as_array().unwrap().is_empty(), "{found}");

    // An inbox and a queue.
    let inbox = api
        .call(
            "post",
            "/v1/inboxes",
            "/v1/inboxes",
            t,
            Some(json!({ "name": "Support", "number": inbox_number })),
        )
        .await["inbox_id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.call(
        "post",
        "/v1/inboxes/{id}/members",
        &format!("/v1/inboxes/{inbox}/members"),
        t,
        Some(json!({ "user": ada })),
    )
    .await;
    api.call("get", "/v1/inboxes", "/v1/inboxes", t, None).await;
    let queue = api
        .call("post", "/v1/queues", "/v1/queues", t, Some(json!({
            "name": "Sales", "number": queue_number,
            "policy": { "wait_timeout_ms": 60000, "on_wait_timeout": { "type": "close_with_reply", "text": "later" },
                        "idle_timeout_ms": null, "on_idle_timeout": "return_to_queue", "max_pending_visible": 5 },
        })))
        .await["queue_id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.call(
        "post",
        "/v1/queues/{id}/members",
        &format!("/v1/queues/{queue}/members"),
        t,
        Some(json!({ "user": ada })),
    )
    .await;
    api.call(
        "post",
        "/v1/queues/{id}/login",
        &format!("/v1/queues/{queue}/login"),
        t,
        None,
    )
    .await;

    // A webhook nobody answers: the texts below are queued to it and retried.
    let hook = api
        .call(
            "post",
            "/v1/webhooks",
            "/v1/webhooks",
            t,
            Some(json!({ "url": "http://127.0.0.1:9/hook", "events": ["message.inbound", "queue.queued"] })),
        )
        .await;
    let hook = hook["webhook_id"].as_str().unwrap().to_owned();
    api.call("get", "/v1/webhooks", "/v1/webhooks", t, None)
        .await;

    // Customers text the three numbers; the External conversations appear in the lists.
    for to in [ours, inbox_number, queue_number] {
        api.call(
            "post",
            "/v1/simulator/inbound",
            "/v1/simulator/inbound",
            t,
            Some(json!({ "from": theirs, "to": to, "text": "hello, anyone?" })),
        )
        .await;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let list = loop {
        let list = api
            .call("get", "/v1/interactions", "/v1/interactions", t, None)
            .await;
        let texted = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["kind"] == "external" && i["preview"].is_object());
        if texted || std::time::Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["kind"] == "external" && i["preview"].is_object()),
        "{list}"
    );
    // One of them on its own, as the list shows it.
    let first = list["items"][0]["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let one = api
        .call(
            "get",
            "/v1/conversations/{id}",
            &format!("/v1/conversations/{first}"),
            t,
            None,
        )
        .await;
    for field in [
        "conversation_id",
        "kind",
        "title",
        "our_number",
        "their_number",
    ] {
        assert_eq!(one[field], list["items"][0][field], "{field}: {one}");
    }
    let external = api
        .call(
            "post",
            "/v1/conversations/external",
            "/v1/conversations/external",
            t,
            Some(json!({ "our": ours, "their": theirs })),
        )
        .await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let posted = api
        .call(
            "post",
            "/v1/conversations/{id}/messages",
            &format!("/v1/conversations/{external}/messages"),
            t,
            Some(json!({ "text": "we are here" })),
        )
        .await;
    assert_eq!(posted["deduplicated"], false);
    api.call(
        "get",
        "/v1/conversations/{id}/messages",
        &format!("/v1/conversations/{external}/messages"),
        t,
        None,
    )
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let view = loop {
        let view = api
            .call(
                "get",
                "/v1/inboxes/{id}/conversations",
                &format!("/v1/inboxes/{inbox}/conversations?view=open"),
                t,
                None,
            )
            .await;
        if !view["items"].as_array().unwrap().is_empty() || std::time::Instant::now() > deadline {
            break view;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let items = view["items"].as_array().unwrap();
    assert!(
        !items.is_empty() && items.iter().all(|i| i["badges"].is_object()),
        "{view}"
    );
    api.call("get", "/v1/queues", "/v1/queues", t, None).await;
    api.call(
        "get",
        "/v1/queues/{id}/waiting",
        &format!("/v1/queues/{queue}/waiting"),
        t,
        None,
    )
    .await;
    api.call(
        "get",
        "/v1/queue-views/{tab}",
        "/v1/queue-views/active",
        t,
        None,
    )
    .await;
    let pos = posted["position"].as_u64().unwrap();
    let hits = api
        .call(
            "get",
            "/v1/search",
            &format!("/v1/search?q=hello&after={pos}"),
            t,
            None,
        )
        .await;
    assert!(!hits["items"].as_array().unwrap().is_empty(), "{hits}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let out = api
            .call(
                "get",
                "/v1/simulator/outbound",
                "/v1/simulator/outbound",
                t,
                None,
            )
            .await;
        if !out["texts"].as_array().unwrap().is_empty() || std::time::Instant::now() > deadline {
            assert!(
                !out["texts"].as_array().unwrap().is_empty(),
                "the reply was texted: {out}"
            );
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The webhook's delivery log, one delivery's detail, a redelivery.
    let deliveries_path = format!("/v1/webhooks/{hook}/deliveries");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let delivery = loop {
        let log = api
            .call(
                "get",
                "/v1/webhooks/{id}/deliveries",
                &deliveries_path,
                t,
                None,
            )
            .await;
        let attempted = log["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["attempts"].as_u64().is_some_and(|a| a > 0))
            .cloned();
        if let Some(d) = attempted {
            break d["delivery_id"].as_str().unwrap().to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no delivery attempted: {log}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    api.call(
        "get",
        "/v1/webhooks/{id}/deliveries",
        &format!("{deliveries_path}?limit=1"),
        t,
        None,
    )
    .await;
    let detail = api
        .call(
            "get",
            "/v1/webhooks/{id}/deliveries/{delivery_id}",
            &format!("{deliveries_path}/{delivery}"),
            t,
            None,
        )
        .await;
    assert!(
        !detail["attempt_log"].as_array().unwrap().is_empty(),
        "{detail}"
    );
    api.call(
        "post",
        "/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
        &format!("{deliveries_path}/{delivery}/redeliver"),
        t,
        None,
    )
    .await;

    println!(
        "{} operations checked against their schemas",
        api.covered.len()
    );
    for must in [
        ("post", "/v1/bootstrap"),
        ("post", "/v1/conversations/direct"),
        ("get", "/v1/users"),
        ("post", "/v1/conversations/{id}/messages"),
        ("get", "/v1/interactions"),
    ] {
        assert!(api.covered.contains(&must), "{must:?}");
    }
}
