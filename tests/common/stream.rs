//! `/v1/stream` clients for end-to-end tests. Every frame [`frame`] reads is checked
//! against the stream's AsyncAPI document ([`gateway::asyncapi::document`], served at
//! `/asyncapi.json`): a frame no message of it describes fails the test that got it.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::server::TestServer;

/// A client's end of `/v1/stream`.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A live stream of `token`, resuming after `since` (`None`: from now on).
pub async fn connect(s: &TestServer, token: &str, since: Option<u64>) -> Ws {
    let mut url = format!(
        "{}/v1/stream?token={token}",
        s.base.replace("http://", "ws://")
    );
    if let Some(p) = since {
        url.push_str(&format!("&since={p}"));
    }
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket")
        .0
}

/// The next data frame within `wait`, skipping pings.
pub async fn frame(ws: &mut Ws, wait: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(wait, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let f: Value = serde_json::from_str(&t).expect("a frame is JSON");
                if let Err(e) = FrameChecker::published().server_frame(&f) {
                    panic!("a frame the AsyncAPI document does not describe: {e}");
                }
                return Some(f);
            }
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
        }
    }
}

/// Returns once the server has handled every frame `ws` sent before: it handles a
/// socket's frames in order and answers a ping only when it reads on after them. A test
/// that must know a frame was dealt with (typing handed out, or refused) waits on this,
/// not on the clock.
pub async fn handled(ws: &mut Ws) {
    ws.send(Message::Ping(b"barrier".to_vec().into()))
        .await
        .expect("a ping");
    let answered = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(Ok(m)) = ws.next().await {
            if matches!(&m, Message::Pong(p) if p.as_ref() == b"barrier") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(answered, Ok(true), "the server answers the ping");
}

/// Which message of an AsyncAPI document a frame is, by the JSON Schemas of its payloads.
pub struct FrameChecker {
    /// The messages the server sends, by name.
    server: Vec<(String, jsonschema::Validator)>,
    /// What a client may send.
    client: Vec<(String, jsonschema::Validator)>,
}

impl FrameChecker {
    /// The checker of `doc`, an AsyncAPI 3.0 document whose operations list which
    /// messages the server sends (`receive`) and which a client may send (`send`).
    ///
    /// # Panics
    /// When a payload's schema does not compile (a `$ref` that resolves nowhere, say).
    pub fn new(doc: &Value) -> Self {
        let mut server = Vec::new();
        let mut client = Vec::new();
        let operations = doc["operations"].as_object().expect("operations");
        for op in operations.values() {
            for m in op["messages"].as_array().expect("an operation's messages") {
                // "#/channels/<channel>/messages/<name>" → the channel's message, itself a
                // "$ref" to "#/components/messages/<name>".
                let pointer = m["$ref"].as_str().expect("a message $ref");
                let in_channel = doc
                    .pointer(pointer.trim_start_matches('#'))
                    .unwrap_or_else(|| panic!("{pointer} resolves nowhere"));
                let message = match in_channel["$ref"].as_str() {
                    Some(r) => doc
                        .pointer(r.trim_start_matches('#'))
                        .unwrap_or_else(|| panic!("{r} resolves nowhere")),
                    None => in_channel,
                };
                let name = message["name"].as_str().expect("a message name").to_owned();
                // The payload, with the document's components beside it so that its
                // "#/components/schemas/…" references resolve.
                let schema = serde_json::json!({
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "allOf": [message["payload"].clone()],
                    "components": doc["components"].clone(),
                });
                let validator = jsonschema::draft7::new(&schema)
                    .unwrap_or_else(|e| panic!("message {name}: its schema: {e}"));
                match op["action"].as_str() {
                    Some("receive") => server.push((name, validator)),
                    Some("send") => client.push((name, validator)),
                    other => panic!("an operation's action: {other:?}"),
                }
            }
        }
        assert!(
            !server.is_empty() && !client.is_empty(),
            "messages both ways"
        );
        Self { server, client }
    }

    /// The checker of the document the server publishes.
    pub fn published() -> &'static Self {
        static CHECKER: std::sync::OnceLock<FrameChecker> = std::sync::OnceLock::new();
        CHECKER.get_or_init(|| Self::new(&gateway::asyncapi::document()))
    }

    /// The name of the one server message `frame` is.
    ///
    /// # Errors
    /// Why not: no message fits (with each one's objections), or more than one does.
    pub fn server_frame(&self, frame: &Value) -> Result<&str, String> {
        Self::one_of(&self.server, frame)
    }

    /// The name of the one client message `frame` is.
    ///
    /// # Errors
    /// As [`FrameChecker::server_frame`].
    pub fn client_frame(&self, frame: &Value) -> Result<&str, String> {
        Self::one_of(&self.client, frame)
    }

    fn one_of<'a>(
        messages: &'a [(String, jsonschema::Validator)],
        frame: &Value,
    ) -> Result<&'a str, String> {
        let fits: Vec<&str> = messages
            .iter()
            .filter(|(_, v)| v.is_valid(frame))
            .map(|(n, _)| n.as_str())
            .collect();
        match fits.as_slice() {
            [one] => Ok(one),
            [] => {
                let why: Vec<String> = messages
                    .iter()
                    .map(|(n, v)| {
                        let errors: Vec<String> = v
                            .iter_errors(frame)
                            .map(|e| format!("{} at {}", e, e.instance_path()))
                            .collect();
                        format!("not {n}: {}", errors.join("; "))
                    })
                    .collect();
                Err(format!("{frame}\n  {}", why.join("\n  ")))
            }
            many => Err(format!("{frame} fits {many:?}")),
        }
    }
}
