//! Graceful shutdown of the real `switchboard serve` process: on SIGTERM an open stream
//! gets a close frame (1012 `restarting`, so its client resumes elsewhere), the process
//! exits cleanly, and everything acknowledged before is there when it starts again on the
//! same data directory.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "correct horse battery staple";

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(data: &std::path::Path) -> Server {
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

async fn post(c: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Value {
    let mut r = c.post(url).json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_streams_with_restarting_and_keeps_what_was_acknowledged() {
    carrier::tls::install_default_provider();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let c = reqwest::Client::new();
    let server = start(&data).await;
    let url = |path: &str| format!("http://{}{path}", server.base);
    let boot = post(
        &c,
        url("/v1/bootstrap"),
        None,
        json!({ "organization": "Acme", "name": "Ada", "extension": "100",
                "email": "ada@shutdown.example", "password": PASSWORD }),
    )
    .await;
    let token = boot["token"].as_str().unwrap().to_owned();
    let channel = post(
        &c,
        url("/v1/conversations/channel"),
        Some(&token),
        json!({ "name": "general", "members": [] }),
    )
    .await;
    let id = channel["conversation_id"].as_str().unwrap().to_owned();
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/v1/stream?token={token}", server.base))
            .await
            .unwrap();
    let posted = post(
        &c,
        url(&format!("/v1/conversations/{id}/messages")),
        Some(&token),
        json!({ "text": "before the shutdown" }),
    )
    .await;
    let frame = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => break serde_json::from_str::<Value>(&t).unwrap(),
            Ok(Some(Ok(_))) => {}
            other => panic!("expected the message frame, got {other:?}"),
        }
    };
    assert_eq!(frame["item"]["text"], "before the shutdown");
    assert_eq!(frame["position"], posted["position"]);

    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let close = loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Close(close)))) => break close.expect("a close code"),
            Ok(Some(Ok(_))) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), 1012);
    assert_eq!(&*close.reason, "restarting");
    // The client answers the close; the process then exits cleanly.
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {}
    let mut server = server;
    let exit = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < exit,
            "the server did not exit within 30 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");
    drop(server);

    // Started again on the same data: the message is there.
    let server = start(&data).await;
    let login = post(
        &c,
        format!("http://{}/v1/sessions", server.base),
        None,
        json!({ "email": "ada@shutdown.example", "password": PASSWORD }),
    )
    .await;
    let token = login["token"].as_str().unwrap();
    let history: Value = c
        .get(format!(
            "http://{}/v1/conversations/{id}/messages",
            server.base
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        history["items"][0]["text"], "before the shutdown",
        "{history}"
    );
}
