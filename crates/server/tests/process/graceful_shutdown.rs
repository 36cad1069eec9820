//! Graceful shutdown of the real `switchboard serve` process: on SIGTERM an open stream
//! gets a close frame (1012 `restarting`, so its client resumes elsewhere), the process
//! exits cleanly, and everything acknowledged before is there when it starts again on the
//! same data directory; the followers saved how far they got, so the restart does not
//! handle it again.

use std::time::{Duration, Instant};

use crate::common::{bootstrap, post, start, until, PASSWORD};
use eventlog::EventStore;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

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
    // The followers of conversations (one every node runs, one the leader runs) have
    // handled the message; they save that at most once a second while they run.
    let position = posted["position"].as_u64().unwrap();
    for follower in FOLLOWERS {
        until(
            &format!("{follower} handled the message"),
            || follower_position(&c, &server.base, &token, follower),
            |handled| handled.is_some_and(|h| h > position),
        )
        .await;
    }

    server.terminate();
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
    server.exits_cleanly().await;
    drop(server);
    // Asked to stop, each follower saved what it had handled before it ended.
    {
        let log = eventlog::RocksLog::open_read_only(data.join("log")).unwrap();
        for follower in FOLLOWERS {
            let saved = log.read_checkpoint_blocking(follower).unwrap();
            assert!(
                saved.is_some_and(|s| s >= position),
                "{follower} saved {saved:?}, but had handled {position}"
            );
        }
    }

    // Started again on the same data: the message is there.
    let server = start(&data).await;
    let token = &server.login(&c, "ada@shutdown.example").await;
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

/// Followers of the conversation category: the attachment index (every node) and the
/// webhooks (the leader).
const FOLLOWERS: [&str; 2] = [
    workers::attachment_refs::CHECKPOINT,
    workers::webhooks::FOLLOWERS[0],
];

/// The positions `follower` has handled, from `/metrics` (the next one it will handle).
async fn follower_position(
    c: &reqwest::Client,
    base: &str,
    token: &str,
    follower: &str,
) -> Option<u64> {
    let body = c
        .get(format!("http://{base}/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let series = format!("follower_position{{follower=\"{follower}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&series)?.parse().ok())
}

/// Every message of the conversation's history, oldest first (all pages).
async fn history_texts(c: &reqwest::Client, base: &str, token: &str, id: &str) -> Vec<String> {
    let mut texts = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let mut url = format!("http://{base}/v1/conversations/{id}/messages?limit=100");
        if let Some(b) = before {
            url.push_str(&format!("&before={b}"));
        }
        let page: Value = c
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for item in page["items"].as_array().unwrap() {
            if let Some(t) = item["text"].as_str() {
                texts.push(t.to_owned());
            }
        }
        match page["next_before"].as_u64() {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    texts.reverse();
    texts
}

/// SIGTERM in the middle of a burst of posts: requests in flight are answered, none with
/// a server error; the process exits cleanly; after a restart every acknowledged message
/// is in the history, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_burst_keeps_every_acknowledged_message() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    carrier::tls::install_default_provider();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let c = reqwest::Client::new();
    let server = start(&data).await;
    let base = server.base.clone();
    let token = bootstrap(&c, &base, "ada@burst.example").await;
    let channel = post(
        &c,
        format!("http://{base}/v1/conversations/channel"),
        Some(&token),
        json!({ "name": "burst", "members": [] }),
    )
    .await;
    let id = channel["conversation_id"].as_str().unwrap().to_owned();

    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let server_errors: Arc<Mutex<Vec<u16>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..4)
        .map(|s| {
            let (c, base, token, id) = (c.clone(), base.clone(), token.clone(), id.clone());
            let (acked, server_errors, stop) = (acked.clone(), server_errors.clone(), stop.clone());
            tokio::spawn(async move {
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let text = format!("s{s}-{n}");
                    let sent = c
                        .post(format!("http://{base}/v1/conversations/{id}/messages"))
                        .bearer_auth(&token)
                        .json(&json!({ "text": text }))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == reqwest::StatusCode::CREATED => {
                            acked.lock().unwrap().push(text);
                        }
                        Ok(r) if r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        // The server is going away: refused, or shutting down (503).
                        Ok(r) if r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE => return,
                        Ok(r) => {
                            server_errors.lock().unwrap().push(r.status().as_u16());
                            return;
                        }
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    // Mid-burst: once some posts are acknowledged, SIGTERM while the senders go on.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 40 {
        assert!(Instant::now() < deadline, "the burst did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.terminate();
    let mut server = server;
    server.exits_cleanly().await;
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.await.unwrap();
    }
    assert_eq!(*server_errors.lock().unwrap(), Vec::<u16>::new());
    drop(server);

    let acked = acked.lock().unwrap().clone();
    let server = start(&data).await;
    let token = &server.login(&c, "ada@burst.example").await;
    let history = history_texts(&c, &server.base, token, &id).await;
    let mut seen = std::collections::HashSet::new();
    for t in &history {
        assert!(seen.insert(t.clone()), "{t} is in the history twice");
    }
    let lost: Vec<_> = acked.iter().filter(|t| !seen.contains(*t)).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert!(history.len() >= acked.len());
}
