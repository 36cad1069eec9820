//! `POST /v1/attachments` refuses what is too large before reading it: a request whose
//! `Content-Length` is over the limit gets its complete 413 `attachment_too_large` while
//! the client has sent nothing but headers — through the handler, and through the
//! `Idempotency-Key` middleware in front of it alike. (That the server's memory stays
//! bounded under concurrent large uploads is `crates/server/tests/upload_memory.rs`, on
//! the real process.)

use std::time::Duration;

use carrier::simulator::Simulator;
use gateway::carriers::CarrierKind;
use serde_json::{json, Value};
use testkit::server::{call, TestServer, PASSWORD};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the answer may take (it does not wait for a body that never comes).
const WAIT: Duration = Duration::from_secs(10);

/// An HTTP/1.1 answer read off a raw socket.
struct Answer {
    status: u16,
    body: Value,
}

/// Sends `head` (request line and headers, no body) on a fresh connection and reads the
/// whole answer: its head, then as many bytes as its `Content-Length` says.
async fn send_head_only(s: &TestServer, head: &str) -> Answer {
    let addr = s.base.trim_start_matches("http://");
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    let read = async {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let head_end = loop {
            if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "the connection closed before an answer");
            got.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8(got[..head_end].to_vec()).unwrap();
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().unwrap())
            })
            .unwrap_or_else(|| panic!("an answer with a length: {head}"));
        while got.len() < head_end + length {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "the connection closed mid-answer");
            got.extend_from_slice(&buf[..n]);
        }
        Answer {
            status,
            body: serde_json::from_slice(&got[head_end..head_end + length]).unwrap(),
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("a complete answer, though no byte of the body was sent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_declared_over_the_limit_is_refused_before_its_body_is_sent() {
    let s = TestServer::start_with_carrier(CarrierKind::Simulator(Simulator::new()), |_| {}).await;
    let c = testkit::http();
    let (_, boot) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Acme", "name": "Ada", "extension": "100", "email": "ada@uploads.example", "password": PASSWORD,
    })))
    .await;
    let token = boot["token"].as_str().unwrap();
    let key = uuid::Uuid::new_v4();
    for (through, extra) in [
        ("the handler", String::new()),
        (
            "the idempotency middleware",
            format!("Idempotency-Key: {key}\r\n"),
        ),
    ] {
        let before = s.ws.store.next_position();
        let answer = send_head_only(
            &s,
            &format!(
                "POST /v1/attachments HTTP/1.1\r\nHost: switchboard\r\nAuthorization: Bearer {token}\r\n\
                 Content-Type: multipart/form-data; boundary=never7d1f\r\nContent-Length: 50000000\r\n{extra}\r\n"
            ),
        )
        .await;
        assert_eq!(
            (answer.status, answer.body["code"].as_str()),
            (413, Some("attachment_too_large")),
            "through {through}: {}",
            answer.body
        );
        assert_eq!(s.ws.store.next_position(), before, "through {through}");
    }
    // The refused key was not taken: an upload of the right size with it is stored.
    let boundary = "fits7d1f";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nsmall enough\r\n--{boundary}--\r\n"
    );
    let (status, up) = call(
        c.post(s.url("/v1/attachments"))
            .bearer_auth(token)
            .header("Idempotency-Key", key.to_string())
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{up}");
    assert_eq!(
        up["attachment_id"],
        json!(blake3::hash(b"small enough").to_hex().to_string())
    );
}
