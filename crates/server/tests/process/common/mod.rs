//! The real `switchboard serve` process for the server's tests: started on a free port
//! over a data directory, waited for until healthy, killed when dropped.

// Each test binary uses its own part of these helpers.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const PASSWORD: &str = "correct horse battery staple";

pub struct Server {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub base: String,
}

impl Server {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
    }

    /// Waits (at most 30 s) for the process to exit, and checks it exited with 0.
    pub async fn exits_cleanly(&mut self) {
        let exit = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < exit,
                "the server did not exit within 30 s of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(status.success(), "exit status {status}");
    }

    /// Logs `email` in: the token.
    pub async fn login(&self, c: &reqwest::Client, email: &str) -> String {
        let login = post(
            c,
            format!("http://{}/v1/sessions", self.base),
            None,
            json!({ "email": email, "password": PASSWORD }),
        )
        .await;
        login["token"].as_str().unwrap().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `switchboard serve` over `data` and waits (at most 60 s) until it is healthy.
pub async fn start(data: &std::path::Path) -> Server {
    start_with(data, &[]).await
}

/// As [`start`], with more arguments for `serve`.
pub async fn start_with(data: &std::path::Path, extra: &[&str]) -> Server {
    // The clients below and the tests' own need a TLS provider chosen.
    carrier::tls::install_default_provider();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start switchboard serve");
    let server = Server {
        child,
        base: format!("127.0.0.1:{port}"),
    };
    let c = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = c
            .get(format!("http://{}/healthz", server.base))
            .send()
            .await
        {
            if r.status().is_success() {
                return server;
            }
        }
        assert!(Instant::now() < deadline, "server not healthy within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates the server's first organization ("Acme", its admin Ada with `email`): the
/// admin's token.
pub async fn bootstrap(c: &reqwest::Client, base: &str, email: &str) -> String {
    let boot = post(
        c,
        format!("http://{base}/v1/bootstrap"),
        None,
        json!({ "organization": "Acme", "name": "Ada", "extension": "100",
                "email": email, "password": PASSWORD }),
    )
    .await;
    boot["token"].as_str().unwrap().to_owned()
}

/// POSTs `body` (as `token`), which must succeed: the answer.
pub async fn post(c: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Value {
    let mut r = c.post(url).json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.unwrap()
}

/// `bytes` as a multipart upload: (content type, body).
pub fn multipart(name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = format!("memoryboundary{name}");
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Uploads `bytes` as an attachment named `name` (as `token`): the answer.
pub async fn upload(
    c: &reqwest::Client,
    base: &str,
    token: &str,
    name: String,
    bytes: &[u8],
) -> Value {
    let (content_type, body) = multipart(&name, bytes);
    let r = c
        .post(format!("http://{base}/v1/attachments"))
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    r.json().await.unwrap()
}

/// Waits (at most 60 s) until `want` holds for what `read` returns: that value.
pub async fn until<T: std::fmt::Debug, F: std::future::Future<Output = T>>(
    what: &str,
    read: impl Fn() -> F,
    want: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = read().await;
        if want(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "never {what}: {v:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET url` with a bearer token, expecting 2xx: the JSON answer.
pub async fn get(c: &reqwest::Client, url: String, token: &str) -> Value {
    let r = c.get(url).bearer_auth(token).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.unwrap()
}
