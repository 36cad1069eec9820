//! `/v1/stream` clients for end-to-end tests.

use std::time::Duration;

use futures_util::StreamExt;
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
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).ok(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
        }
    }
}
