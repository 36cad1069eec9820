//! Authentication over real HTTP: first-run bootstrap, login, logout, and the error shape
//! of every refusal (stable code, right status, nothing written).

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use testkit::server::TestServer;

async fn body(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn bootstrap_body(email: &str) -> Value {
    json!({
        "organization": "Acme Dental",
        "name": "Ada Admin",
        "extension": "100",
        "email": email,
        "password": "correct horse battery staple",
    })
}

async fn bootstrap(c: &Client, s: &TestServer, email: &str) -> Value {
    let (status, v) = body(
        c.post(s.url("/v1/bootstrap"))
            .json(&bootstrap_body(email))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_then_login_logout_and_me() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let created = bootstrap(&c, &s, "Ada@Acme.example").await;
    let token = created["token"].as_str().unwrap().to_owned();

    let (status, me) = body(
        c.get(s.url("/v1/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["role"], "admin");
    assert_eq!(me["organization"], "Acme Dental");
    assert_eq!(me["user_id"], created["user_id"]);

    // Login is case-insensitive on the email; a second session is independent.
    let login = json!({ "email": "ada@acme.example", "password": "correct horse battery staple" });
    let (status, second) = body(
        c.post(s.url("/v1/sessions"))
            .json(&login)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let second = second["token"].as_str().unwrap().to_owned();

    let r = c
        .delete(s.url("/v1/sessions/current"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (status, err) = body(
        c.get(s.url("/v1/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated")),
        "revoked"
    );
    let r = c
        .get(s.url("/v1/me"))
        .bearer_auth(&second)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the other session lives on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_email_look_the_same() {
    let s = TestServer::start().await;
    let c = testkit::http();
    bootstrap(&c, &s, "bob@clinic.example").await;
    for (email, password) in [
        ("bob@clinic.example", "not the right password"),
        ("nobody@clinic.example", "correct horse battery staple"),
        ("not an email", "correct horse battery staple"),
    ] {
        let login = json!({ "email": email, "password": password });
        let (status, err) = body(
            c.post(s.url("/v1/sessions"))
                .json(&login)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(err["code"], "invalid_credentials");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_forged_tokens_are_refused_with_a_json_code() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let created = bootstrap(&c, &s, "carol@shop.example").await;
    let token = created["token"].as_str().unwrap();
    let (id, _) = token.split_once('.').unwrap();
    let forged = format!("{id}.{}", "0".repeat(64));
    let requests = [
        c.get(s.url("/v1/me")),
        c.get(s.url("/v1/me")).header("Authorization", "Basic abc"),
        c.get(s.url("/v1/me")).bearer_auth("garbage"),
        c.get(s.url("/v1/me")).bearer_auth(&forged),
        c.delete(s.url("/v1/sessions/current")),
    ];
    for r in requests {
        let (status, err) = body(r.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(err["code"], "unauthenticated");
        assert!(err["message"].is_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_error_and_writes_nothing() {
    let s = TestServer::start().await;
    let c = testkit::http();
    bootstrap(&c, &s, "dan@taken.example").await;
    let before = s.ws.store.next_position();
    let mut weak = bootstrap_body("eve@new.example");
    weak["password"] = json!("short");
    let mut bad_ext = bootstrap_body("eve@new.example");
    bad_ext["extension"] = json!("12ab");
    let mut blank_org = bootstrap_body("eve@new.example");
    blank_org["organization"] = json!("   ");
    let mut extra = bootstrap_body("eve@new.example");
    extra["admin"] = json!(true);
    let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            c.post(s.url("/v1/bootstrap")).json(&weak),
            StatusCode::UNPROCESSABLE_ENTITY,
            "weak_password",
        ),
        (
            c.post(s.url("/v1/bootstrap")).json(&bad_ext),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_extension",
        ),
        (
            c.post(s.url("/v1/bootstrap")).json(&blank_org),
            StatusCode::UNPROCESSABLE_ENTITY,
            "blank",
        ),
        (
            c.post(s.url("/v1/bootstrap")).json(&extra),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            c.post(s.url("/v1/bootstrap"))
                .json(&bootstrap_body("dan@taken.example")),
            StatusCode::CONFLICT,
            "email_taken",
        ),
        (
            c.post(s.url("/v1/bootstrap"))
                .header("content-type", "application/json")
                .body("{not json"),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            c.post(s.url("/v1/bootstrap")).body("x"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            c.post(s.url("/v1/bootstrap"))
                .header("content-type", "application/json")
                .body(vec![b' '; 200 * 1024]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
    ];
    for (request, status, code) in cases {
        let (got, err) = body(request.send().await.unwrap()).await;
        assert_eq!((got, err["code"].as_str()), (status, Some(code)), "{err}");
    }
    assert_eq!(
        s.ws.store.next_position(),
        before,
        "refused requests wrote nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guessing_is_rate_limited_with_retry_after() {
    let s = TestServer::start().await;
    let c = testkit::http();
    bootstrap(&c, &s, "frank@limits.example").await;
    let guess = json!({ "email": "frank@limits.example", "password": "not the password!" });
    let mut limited = None;
    for _ in 0..20 {
        let r = c
            .post(s.url("/v1/sessions"))
            .json(&guess)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = limited.expect("guesses are limited");
    // The login bucket refills one guess per 5 s: Retry-After says so.
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((2..=5).contains(&retry_after), "Retry-After {retry_after}");
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["code"], "rate_limited");
    // From the guesser's address even the right password waits: the limit is on the
    // email and the address, not the answer.
    let right =
        json!({ "email": "frank@limits.example", "password": "correct horse battery staple" });
    let r = c
        .post(s.url("/v1/sessions"))
        .json(&right)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // The owner, elsewhere, is not locked out by someone else's guesses.
    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let r = elsewhere
        .post(s.url("/v1/sessions"))
        .json(&right)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "the owner logs in from their own address"
    );
    // One address trying many emails is limited too (credential stuffing), whatever the
    // email.
    let mut stuffed = false;
    for i in 0..40 {
        let guess =
            json!({ "email": format!("user{i}@limits.example"), "password": "not the password!" });
        let r = elsewhere
            .post(s.url("/v1/sessions"))
            .json(&guess)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            stuffed = true;
            break;
        }
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    assert!(stuffed, "one address cannot try emails without limit");
}

/// Each user has their own request budget: one who floods gets 429 `rate_limited` with a
/// `Retry-After`, and another user of the same organization is served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_floods_is_rate_limited_alone() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let admin = bootstrap(&c, &s, "flood@limits.example").await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = body(
        c.post(s.url("/v1/users"))
            .bearer_auth(&admin)
            .json(&json!({
                "name": "Calm", "extension": "101", "role": "member",
                "email": "calm@limits.example", "password": "correct horse battery staple",
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, login) = body(
        c.post(s.url("/v1/sessions"))
            .json(&json!({ "email": "calm@limits.example", "password": "correct horse battery staple" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let calm = login["token"].as_str().unwrap().to_owned();
    // More requests at once than the burst and a few seconds of refill allow.
    let flood = (0..400).map(|_| c.get(s.url("/v1/me")).bearer_auth(&admin).send());
    let answers = futures_util::future::join_all(flood).await;
    let limited = answers
        .into_iter()
        .map(Result::unwrap)
        .find(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .expect("a flood is limited");
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let (_, err) = body(limited).await;
    assert_eq!(err["code"], "rate_limited");
    let (status, me) = body(
        c.get(s.url("/v1/me"))
            .bearer_auth(&calm)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "another user is served: {me}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_request_id() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let r = c.get(s.url("/healthz")).send().await.unwrap();
    let id = r.headers().get("x-request-id").expect("an id is assigned");
    assert!(uuid::Uuid::try_parse(id.to_str().unwrap()).is_ok());
    let r = c
        .get(s.url("/v1/me"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers().get("x-request-id").unwrap(),
        "trace-me-42",
        "a caller's id is kept"
    );
}

/// Creating organizations is the operator's decision: without `--allow-signups` only the
/// server's first organization can be created anonymously (two first runs at once create
/// one), `GET /v1/bootstrap` says whether it is open, and the operator token always works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_first_organization_is_created_without_the_operator() {
    let s = TestServer::start_with_state(|state| {
        state.with_signups(gateway::routes::bootstrap::Signups {
            open: false,
            operator_token: Some("operator-secret-token".into()),
        })
    })
    .await;
    let c = testkit::http();
    let status_of = || async {
        let (status, v) = body(c.get(s.url("/v1/bootstrap")).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v["open"].as_bool().expect("open is a boolean")
    };
    assert!(status_of().await, "a server without organizations is open");
    // Two first runs race: exactly one organization is created.
    let runs: Vec<_> = (0..2)
        .map(|i| {
            let (c, url) = (c.clone(), s.url("/v1/bootstrap"));
            tokio::spawn(async move {
                body(
                    c.post(url)
                        .json(&bootstrap_body(&format!("first{i}@race.example")))
                        .send()
                        .await
                        .unwrap(),
                )
                .await
            })
        })
        .collect();
    let mut created = 0;
    for run in runs {
        match run.await.unwrap() {
            (StatusCode::CREATED, _) => created += 1,
            (StatusCode::FORBIDDEN, v) => assert_eq!(v["code"], "signups_closed", "{v}"),
            (status, v) => panic!("{status} {v}"),
        }
    }
    assert_eq!(created, 1, "one first organization");
    assert!(!status_of().await, "closed once there is one");
    let before = s.ws.store.next_position();
    let (status, v) = body(
        c.post(s.url("/v1/bootstrap"))
            .json(&bootstrap_body("mallory@signup.example"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["code"], "signups_closed");
    assert_eq!(
        s.ws.store.next_position(),
        before,
        "a refused sign-up writes nothing"
    );
    // A wrong operator token is no better than none.
    let (status, _) = body(
        c.post(s.url("/v1/bootstrap"))
            .bearer_auth("operator-secret-tokeN")
            .json(&bootstrap_body("mallory@signup.example"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The operator creates the next one.
    let (status, v) = body(
        c.post(s.url("/v1/bootstrap"))
            .bearer_auth("operator-secret-token")
            .json(&bootstrap_body("second@operator.example"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
}

/// Logs in; the token, or the refusal's status and code.
async fn log_in(
    c: &Client,
    s: &TestServer,
    email: &str,
    password: &str,
) -> Result<String, (StatusCode, String)> {
    let (status, v) = body(
        c.post(s.url("/v1/sessions"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    if status == StatusCode::CREATED {
        Ok(v["token"].as_str().unwrap().to_owned())
    } else {
        Err((status, v["code"].as_str().unwrap_or_default().to_owned()))
    }
}

async fn change_password(
    c: &Client,
    s: &TestServer,
    token: &str,
    change: Value,
) -> (StatusCode, Value) {
    body(
        c.put(s.url("/v1/me/password"))
            .bearer_auth(token)
            .json(&change)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_password_needs_the_current_one_and_signs_out_the_other_sessions() {
    const OLD: &str = "correct horse battery staple";
    const NEW: &str = "a much newer passphrase";
    let s = TestServer::start().await;
    let c = testkit::http();
    let first = bootstrap(&c, &s, "ada@pw.example").await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, bob) = body(
        c.post(s.url("/v1/users"))
            .bearer_auth(&first)
            .json(&json!({ "name": "Bob", "extension": "101", "role": "member", "email": "bob@pw.example", "password": OLD }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{bob}");
    let bob = log_in(&c, &s, "bob@pw.example", OLD).await.unwrap();
    let second = log_in(&c, &s, "ada@pw.example", OLD).await.unwrap();
    let ended = log_in(&c, &s, "ada@pw.example", OLD).await.unwrap();
    let r = c
        .delete(s.url("/v1/sessions/current"))
        .bearer_auth(&ended)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // Refusals, each writing nothing: Ada's password still opens her login afterwards.
    let refusals = [
        // Bob knows Ada's login and password, but it is not his.
        (
            &bob,
            json!({ "email": "ada@pw.example", "current_password": OLD, "new_password": NEW }),
            StatusCode::FORBIDDEN,
            "wrong_password",
        ),
        (
            &second,
            json!({ "email": "ada@pw.example", "current_password": "not the password!", "new_password": NEW }),
            StatusCode::FORBIDDEN,
            "wrong_password",
        ),
        (
            &second,
            json!({ "email": "bob@pw.example", "current_password": OLD, "new_password": NEW }),
            StatusCode::FORBIDDEN,
            "wrong_password",
        ),
        (
            &second,
            json!({ "email": "ada@pw.example", "current_password": OLD, "new_password": "short" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "weak_password",
        ),
    ];
    for (token, change, want_status, want_code) in refusals {
        let (status, err) = change_password(&c, &s, token, change.clone()).await;
        assert_eq!(
            (status, err["code"].as_str()),
            (want_status, Some(want_code)),
            "{change}"
        );
    }
    let (status, err) = change_password(&c, &s, &second, json!({ "email": "ada@pw.example", "current_password": OLD, "new_password": NEW, "admin": true })).await;
    assert!(
        status.is_client_error(),
        "unknown fields are refused: {status} {err}"
    );
    assert!(
        log_in(&c, &s, "ada@pw.example", OLD).await.is_ok(),
        "nothing was changed"
    );
    let probe = log_in(&c, &s, "ada@pw.example", OLD).await.unwrap();

    // The change itself, from the second session (the email in any case).
    let (status, changed) = change_password(
        &c,
        &s,
        &second,
        json!({ "email": "Ada@PW.example", "current_password": OLD, "new_password": NEW }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    // `first` and the two probes' sessions; `ended` was signed out already.
    assert_eq!(changed["signed_out_sessions"], 3, "{changed}");
    for (token, alive) in [
        (&first, false),
        (&probe, false),
        (&ended, false),
        (&second, true),
        (&bob, true),
    ] {
        let r = c
            .get(s.url("/v1/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let want = if alive {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(r.status(), want, "alive: {alive}");
    }
    assert_eq!(
        log_in(&c, &s, "ada@pw.example", OLD).await,
        Err((StatusCode::UNAUTHORIZED, "invalid_credentials".to_owned()))
    );
    assert!(log_in(&c, &s, "ada@pw.example", NEW).await.is_ok());
    assert!(
        log_in(&c, &s, "bob@pw.example", OLD).await.is_ok(),
        "Bob's login is his own"
    );
}
