//! The relay: the least any server has to do for `gateway_load`'s send phase, measured in
//! the same run as a floor to read the gateway's figures against (as the log benches read
//! theirs against raw RocksDB group commits).
//!
//! It is the load generator's own binary started again as a separate process, with
//! [`SPEC_ENV`] naming a JSON file of the users' tokens and the channels' members. It
//! speaks just the gateway's calls that the send phase makes, on the same stack (axum,
//! hyper, tungstenite, tokio, mimalloc) and with the same socket options:
//! - `POST /v1/conversations/{id}/messages` with a bearer token: the token is looked up,
//!   the caller must be a member (403), the JSON body must have a `text` (400); the body
//!   is written durably through [`benchkit::RawGroupCommit`] (one synced RocksDB
//!   `WriteBatch` per drain, the raw baseline of the log benches), then one frame is
//!   queued to every open socket of every member and the answer is `201`;
//! - `GET /v1/stream?token=`: a WebSocket that gets those frames, written in batches of
//!   what is queued when one is sent (as the gateway does);
//! - `GET /healthz`.
//!
//! No log records, no actors, no read models, no authorization beyond membership, no
//! per-user frame (the gateway adds each user's unread count), no rate limits, no resume:
//! what is left is HTTP, a durable write and the fan-out to sockets, which any server of
//! this traffic pays on this machine.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use futures_util::SinkExt;
use serde_json::{json, Value};

/// The spec file (`{"tokens": [..], "channels": {"<id>": [user index, ..]}}`): set, the
/// binary runs as the relay.
pub const SPEC_ENV: &str = "GATEWAY_LOAD_RELAY_SPEC";
/// Where the relay listens (`127.0.0.1:<port>`).
pub const LISTEN_ENV: &str = "GATEWAY_LOAD_RELAY_LISTEN";
/// The directory of the relay's RocksDB.
pub const DATA_ENV: &str = "GATEWAY_LOAD_RELAY_DATA";

/// Frames a socket writes together at most (the gateway's `WRITE_BATCH`).
const WRITE_BATCH: usize = 64;

type Outbox = tokio::sync::mpsc::UnboundedSender<Utf8Bytes>;

struct Relay {
    /// Token → user index.
    users: HashMap<String, usize>,
    /// Channel id → member user indexes.
    channels: HashMap<String, Vec<usize>>,
    /// Per user: the queues of their open sockets.
    sockets: Vec<Mutex<Vec<Outbox>>>,
    log: benchkit::RawGroupCommit,
    position: AtomicU64,
}

/// Writes the spec the relay reads: every user's token, and each channel's members.
pub fn write_spec(path: &std::path::Path, tokens: &[&str], channels: &[(&str, Vec<usize>)]) {
    let channels: serde_json::Map<String, Value> = channels
        .iter()
        .map(|(id, members)| ((*id).to_owned(), json!(members)))
        .collect();
    let spec = json!({ "tokens": tokens, "channels": channels });
    std::fs::write(path, spec.to_string()).expect("relay spec written");
}

/// Runs the relay when [`SPEC_ENV`] is set (and never returns); else returns.
pub fn serve_if_asked() {
    let Ok(spec) = std::env::var(SPEC_ENV) else {
        return;
    };
    let listen = std::env::var(LISTEN_ENV).expect("relay listen address");
    let data = PathBuf::from(std::env::var(DATA_ENV).expect("relay data dir"));
    let spec: Value =
        serde_json::from_slice(&std::fs::read(spec).expect("relay spec")).expect("spec json");
    let tokens = spec["tokens"].as_array().expect("tokens");
    let users: HashMap<String, usize> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str().expect("token").to_owned(), i))
        .collect();
    let channels = spec["channels"]
        .as_object()
        .expect("channels")
        .iter()
        .map(|(id, m)| {
            let members = m
                .as_array()
                .expect("members")
                .iter()
                .map(|u| usize::try_from(u.as_u64().expect("member")).expect("an index"))
                .collect();
            (id.clone(), members)
        })
        .collect();
    let relay = Arc::new(Relay {
        sockets: (0..users.len()).map(|_| Mutex::new(Vec::new())).collect(),
        users,
        channels,
        log: benchkit::RawGroupCommit::open(&data, &["default"]),
        position: AtomicU64::new(0),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("relay runtime");
    runtime.block_on(async move {
        let app = axum::Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/v1/stream", get(stream))
            .route("/v1/conversations/{id}/messages", post(message))
            .with_state(relay);
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .expect("relay listens")
            .tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
        axum::serve(listener, app).await.expect("relay serves");
    });
    std::process::exit(0);
}

fn refuse(status: StatusCode, code: &str) -> Response {
    (status, json!({ "code": code }).to_string()).into_response()
}

async fn message(
    State(r): State<Arc<Relay>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let user = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| r.users.get(t).copied());
    let Some(user) = user else {
        return refuse(StatusCode::UNAUTHORIZED, "unauthenticated");
    };
    let Some(members) = r.channels.get(&id) else {
        return refuse(StatusCode::NOT_FOUND, "not_found");
    };
    if !members.contains(&user) {
        return refuse(StatusCode::FORBIDDEN, "forbidden");
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "invalid_json");
    };
    let Some(text) = v["text"].as_str() else {
        return refuse(StatusCode::BAD_REQUEST, "invalid_text");
    };
    let position = r.position.fetch_add(1, Ordering::Relaxed) + 1;
    r.log
        .put(vec![(0, position.to_be_bytes().to_vec(), body.to_vec())])
        .await;
    let frame: Utf8Bytes = json!({
        "position": position,
        "conversation_id": id,
        "version": position,
        "item": { "type": "message", "seq": position, "author": user, "text": text },
    })
    .to_string()
    .into();
    for &m in members {
        for outbox in r.sockets[m].lock().unwrap().iter() {
            let _ = outbox.send(frame.clone());
        }
    }
    (
        StatusCode::CREATED,
        json!({ "position": position, "conversation_id": id }).to_string(),
    )
        .into_response()
}

async fn stream(
    State(r): State<Arc<Relay>>,
    Query(q): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(user) = q.get("token").and_then(|t| r.users.get(t).copied()) else {
        return refuse(StatusCode::UNAUTHORIZED, "unauthenticated");
    };
    upgrade
        .read_buffer_size(4 * 1024)
        .on_upgrade(move |socket| serve(r, user, socket))
}

async fn serve(r: Arc<Relay>, user: usize, mut socket: WebSocket) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    r.sockets[user].lock().unwrap().push(tx);
    loop {
        tokio::select! {
            next = rx.recv() => {
                let Some(first) = next else { return };
                let mut batch = vec![first];
                while batch.len() < WRITE_BATCH {
                    let Ok(more) = rx.try_recv() else { break };
                    batch.push(more);
                }
                for frame in batch {
                    if socket.feed(Message::Text(frame)).await.is_err() {
                        return;
                    }
                }
                if socket.flush().await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
