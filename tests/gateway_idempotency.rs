//! `Idempotency-Key` on the POSTs whose handlers do not derive their writes from the key
//! (creating users, inboxes and queues, inbox actions, uploads…): the first successful
//! answer is recorded in the log and a retry gets it again, writing nothing. (The
//! handlers that take the key themselves — messages, calls, groups, channels, contacts —
//! are tested in `gateway_conversations` and `contacts`.)

use carrier::simulator::Simulator;
use gateway::carriers::CarrierKind;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::server::{add_user, call, TestServer, PASSWORD};

struct Org {
    admin: String,
    admin_id: String,
}

async fn bootstrap(c: &reqwest::Client, s: &TestServer, email: &str) -> Org {
    let (status, v) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Acme", "name": "Ada", "extension": "100", "email": email, "password": PASSWORD,
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    Org {
        admin: v["token"].as_str().unwrap().to_owned(),
        admin_id: v["user_id"].as_str().unwrap().to_owned(),
    }
}

/// Sends `body` to `path` as `token` with `key`: status, the replay header, the body.
async fn keyed(
    c: &reqwest::Client,
    s: &TestServer,
    token: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> (StatusCode, Option<String>, Value) {
    let r = c
        .request(Method::POST, s.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let replayed = r
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, replayed, r.json().await.unwrap_or(Value::Null))
}

fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_creations_and_actions_answer_the_first_result_and_write_nothing() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let org = bootstrap(&c, &s, "ada@idem.example").await;
    let user = json!({
        "name": "Bob", "extension": "101", "role": "member", "email": "bob@idem.example", "password": PASSWORD,
    });
    // Each creation, retried with its key: the same answer, marked replayed, and the log
    // does not move. (Without a record, a retried user or inbox creation answers 409:
    // the e-mail or the number is taken by the first attempt.)
    let mut created = Vec::new();
    for (path, body) in [
        ("/v1/users", user.clone()),
        (
            "/v1/inboxes",
            json!({ "name": "Desk", "number": "+15550401000" }),
        ),
        (
            "/v1/queues",
            json!({ "name": "Line", "number": "+15550402000" }),
        ),
        (
            "/v1/numbers",
            json!({ "number": "+15550403000", "user": org.admin_id }),
        ),
    ] {
        let k = key();
        let (status, replayed, first) = keyed(&c, &s, &org.admin, path, &k, &body).await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {first}");
        assert_eq!(replayed, None, "{path}");
        let head = s.ws.store.next_position();
        for _ in 0..2 {
            let (status, replayed, again) = keyed(&c, &s, &org.admin, path, &k, &body).await;
            assert_eq!(
                (status, replayed.as_deref(), &again),
                (StatusCode::CREATED, Some("true"), &first),
                "{path}"
            );
        }
        assert_eq!(s.ws.store.next_position(), head, "{path}: a retry wrote");
        // A new key is a new request: it runs, and the handler refuses the duplicate.
        let (status, replayed, e) = keyed(&c, &s, &org.admin, path, &key(), &body).await;
        assert_eq!(
            (status, replayed, e["code"].is_string()),
            (StatusCode::CONFLICT, None, true),
            "{path}: {e}"
        );
        created.push(first);
    }
    let bob = created[0]["user_id"].as_str().unwrap().to_owned();
    let (_, users) = call(c.get(s.url("/v1/users")).bearer_auth(&org.admin)).await;
    assert_eq!(
        users["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["user_id"] == json!(bob))
            .count(),
        1,
        "{users}"
    );

    // An action with a key: adding Bob to the inbox team, retried.
    let inbox = created[1]["inbox_id"].as_str().unwrap();
    let path = format!("/v1/inboxes/{inbox}/members");
    let k = key();
    let (status, _, first) = keyed(&c, &s, &org.admin, &path, &k, &json!({ "user": bob })).await;
    assert!(status.is_success(), "{status} {first}");
    let head = s.ws.store.next_position();
    let (status2, replayed, again) =
        keyed(&c, &s, &org.admin, &path, &k, &json!({ "user": bob })).await;
    assert_eq!(
        (status2, replayed.as_deref(), again),
        (status, Some("true"), first)
    );
    assert_eq!(s.ws.store.next_position(), head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_the_callers_own_and_names_one_request() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let org = bootstrap(&c, &s, "ada@idem2.example").await;
    let (_, second_admin) = {
        let (status, v) = call(c.post(s.url("/v1/users")).bearer_auth(&org.admin).json(&json!({
            "name": "Eve", "extension": "102", "role": "admin", "email": "eve@idem2.example", "password": PASSWORD,
        })))
        .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        let (_, login) = call(
            c.post(s.url("/v1/sessions"))
                .json(&json!({ "email": "eve@idem2.example", "password": PASSWORD })),
        )
        .await;
        (v, login["token"].as_str().unwrap().to_owned())
    };
    let k = key();
    let inbox = json!({ "name": "Desk", "number": "+15550411000" });
    let (status, _, first) = keyed(&c, &s, &org.admin, "/v1/inboxes", &k, &inbox).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");

    // The same key with another body: refused, nothing written.
    let head = s.ws.store.next_position();
    let other = json!({ "name": "Other desk", "number": "+15550412000" });
    let (status, replayed, e) = keyed(&c, &s, &org.admin, "/v1/inboxes", &k, &other).await;
    assert_eq!(
        (status, replayed, e["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some("idempotency_key_reused")
        ),
        "{e}"
    );
    assert_eq!(s.ws.store.next_position(), head);

    // Another admin with the same key and body is not answered Ada's result: the request
    // runs as Eve's, and the number is taken.
    let (status, replayed, e) = keyed(&c, &s, &second_admin, "/v1/inboxes", &k, &inbox).await;
    assert_eq!(
        (status, replayed, e["code"].as_str()),
        (StatusCode::CONFLICT, None, Some("number_already_added")),
        "{e}"
    );
    // The same key on another path is another request too.
    let (status, replayed, v) = keyed(&c, &s, &org.admin, "/v1/queues", &k, &other).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, None), "{v}");

    // Not a UUID: 400, nothing written.
    let head = s.ws.store.next_position();
    let (status, _, e) = keyed(
        &c,
        &s,
        &org.admin,
        "/v1/inboxes",
        "not-a-uuid",
        &json!({ "name": "X", "number": "+15550413000" }),
    )
    .await;
    assert_eq!(
        (status, e["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_idempotency_key")),
        "{e}"
    );
    assert_eq!(s.ws.store.next_position(), head);

    // A refused first attempt is not recorded: once the cause is gone, the same key runs.
    let k = key();
    let bad = json!({ "name": "", "number": "+15550414000" });
    let (status, _, e) = keyed(&c, &s, &org.admin, "/v1/queues", &k, &bad).await;
    assert!(status.is_client_error(), "{status} {e}");
    let (status, replayed, e) = keyed(&c, &s, &org.admin, "/v1/queues", &k, &bad).await;
    assert_eq!((status.is_client_error(), replayed), (true, None), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_run_once_and_the_record_outlives_the_process_state() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let org = bootstrap(&c, &s, "ada@idem3.example").await;
    let k = key();
    let user = json!({
        "name": "Bob", "extension": "101", "role": "member", "email": "bob@idem3.example", "password": PASSWORD,
    });
    let attempts = futures_util::future::join_all(
        (0..8).map(|_| keyed(&c, &s, &org.admin, "/v1/users", &k, &user)),
    )
    .await;
    let mut first = None;
    for (status, replayed, v) in &attempts {
        match (status.as_u16(), v["code"].as_str()) {
            (201, _) => {
                let id = v["user_id"].as_str().unwrap().to_owned();
                assert_eq!(first.get_or_insert(id.clone()), &id, "{replayed:?}");
            }
            (409, Some("idempotency_key_in_use")) => {}
            other => panic!("unexpected answer {other:?}: {v}"),
        }
    }
    let first = first.expect("one attempt succeeded");
    let (_, users) = call(c.get(s.url("/v1/users")).bearer_auth(&org.admin)).await;
    let bobs = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["extension"] == json!("101"))
        .count();
    assert_eq!(bobs, 1, "{users}");

    // A second gateway over the same log (fresh in-memory state, as after a restart)
    // replays the recorded answer.
    let state = gateway::AppState::new(s.ws.clone(), s.queues.clone(), s.interactions.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, gateway::router(state)).await;
    });
    let head = s.ws.store.next_position();
    let r = c
        .post(format!("{base}/v1/users"))
        .bearer_auth(&org.admin)
        .header("Idempotency-Key", &k)
        .json(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["user_id"], json!(first));
    assert_eq!(s.ws.store.next_position(), head);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_upload_is_replayed_though_its_multipart_boundary_changed() {
    let s = TestServer::start_with_carrier(CarrierKind::Simulator(Simulator::new()), |_| {}).await;
    let c = testkit::http();
    let org = bootstrap(&c, &s, "ada@idem4.example").await;
    let (_, member) = add_user(&c, &s, &org.admin, "bob@idem4.example", "101").await;
    let k = key();
    let upload = |token: String, boundary: &'static str, bytes: &'static [u8]| {
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"note.txt\"\r\nContent-Type: text/plain\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        c.post(s.url("/v1/attachments"))
            .bearer_auth(token)
            .header("Idempotency-Key", &k)
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
    };
    let r = upload(member.clone(), "first7d1f", b"hello there")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(r.headers().get("idempotent-replayed").is_none());
    let first: Value = r.json().await.unwrap();
    let head = s.ws.store.next_position();
    let r = upload(member.clone(), "second9e2a", b"hello there")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    assert_eq!(r.json::<Value>().await.unwrap(), first);
    // Other bytes under the same key: refused.
    let r = upload(member, "third3c4b", b"other bytes").await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(s.ws.store.next_position(), head);
}

/// Authentication is judged before the `Idempotency-Key` (issue 18, item 10): a request
/// without a valid token is 401 `unauthenticated` whatever its key (it used to be 400,
/// telling an anonymous caller about the key before asking who they are); with a valid
/// token the malformed key is 400 `invalid_idempotency_key`. Nothing is written either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_is_judged_before_the_idempotency_key() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let org = bootstrap(&c, &s, "ada@idem-auth.example").await;
    let user = json!({
        "name": "Bob", "extension": "101", "role": "member", "email": "bob@idem-auth.example", "password": PASSWORD,
    });
    let head = s.ws.store.next_position();
    for token in [None, Some("not-a-session-token")] {
        let mut r = c
            .post(s.url("/v1/users"))
            .header("Idempotency-Key", "not-a-uuid")
            .json(&user);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let (status, e) = call(r).await;
        assert_eq!(
            (status, e["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthenticated")),
            "token {token:?}: {e}"
        );
    }
    let (status, _, e) = keyed(&c, &s, &org.admin, "/v1/users", "not-a-uuid", &user).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_idempotency_key")),
        "{e}"
    );
    assert_eq!(s.ws.store.next_position(), head, "nothing written");
    // A good key with a good token creates the user.
    let (status, _, v) = keyed(&c, &s, &org.admin, "/v1/users", &key(), &user).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
}
