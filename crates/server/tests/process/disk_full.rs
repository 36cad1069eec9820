//! A full disk under the real `switchboard serve` process (issue 18, item 5): the data
//! directory lives on a small tmpfs that the test fills up. While it is full, writes
//! (posts, logins) answer 503 `storage_unavailable`, not 500, and `/healthz` answers 503
//! with the reason; once space is freed the process takes writes again by itself (no
//! restart), its read models catch up, and every message acknowledged before is in the
//! history exactly once, also after a restart.
//!
//! Needs root (it mounts a tmpfs). Where mounting is not permitted the test fails, saying
//! so, unless `SWITCHBOARD_SKIP_DISK_FULL=1`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery staple";
const EMAIL: &str = "ada@disk-full.example";
/// Room for the log and the read models (a few MiB each, with their write-ahead logs),
/// and, once the filler is gone, well over the 8 MiB the log wants free before it
/// reopens (`LogOptions::reopen_min_free_bytes`).
const TMPFS_SIZE: &str = "size=64m";
/// How long the process may take to come back once there is room (its writer retries
/// about every second).
const RECOVERY: Duration = Duration::from_secs(30);

/// A tmpfs mounted on a directory, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path) -> Result<Self, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", TMPFS_SIZE, "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if out.status.success() {
            Ok(Self {
                dir: dir.to_owned(),
            })
        } else {
            Err(format!(
                "mount -t tmpfs failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (a process not yet reaped): detach it; the kernel frees it later.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Writes zeros to `path` until the file system refuses (ENOSPC); the bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).expect("create the filler");
    let mut written = 0u64;
    // Large chunks first, then smaller ones for what is left of the last pages.
    for chunk in [1 << 20, 4096, 1] {
        let zeros = vec![0u8; chunk];
        loop {
            match file.write(&zeros) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    let _ = file.sync_all();
    written
}

/// A `switchboard serve` child process; killed on drop.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Server {
    /// Starts the server on `data` (its log appended to `log`) and waits until it is
    /// healthy.
    async fn start(data: &Path, log: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        // The server logs to stdout; both go to the log file.
        let stdout = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("server log file");
        let stderr = stdout.try_clone().expect("server log file");
        let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("start switchboard serve");
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log: log.to_owned(),
        };
        let c = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = c.get(server.url("/healthz")).send().await {
                if r.status().is_success() {
                    return server;
                }
            }
            assert!(
                Instant::now() < deadline,
                "server not healthy within 60 s\n{}",
                server.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The end of the server's log, for failure messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(80);
        format!(
            "--- server log (last {} lines) ---\n{}",
            lines.len() - from,
            lines[from..].join("\n")
        )
    }

    /// Sends SIGTERM and waits (at most 30 s) for a clean exit.
    async fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "no exit within 30 s of SIGTERM\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(
            status.success(),
            "exit status {status}\n{}",
            self.log_tail()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn call(r: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = r.send().await.expect("request sent");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn login(c: &reqwest::Client, s: &Server) -> (StatusCode, Value) {
    call(
        c.post(s.url("/v1/sessions"))
            .json(&json!({ "email": EMAIL, "password": PASSWORD })),
    )
    .await
}

/// Posts `text` into conversation `id` with `key` as its Idempotency-Key.
async fn post(
    c: &reqwest::Client,
    s: &Server,
    token: &str,
    id: &str,
    text: &str,
    key: &str,
) -> (StatusCode, Value) {
    call(
        c.post(s.url(&format!("/v1/conversations/{id}/messages")))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({ "text": text })),
    )
    .await
}

/// The texts of the messages in conversation `id`, oldest first.
async fn texts(c: &reqwest::Client, s: &Server, token: &str, id: &str) -> Vec<String> {
    let (status, h) = call(
        c.get(s.url(&format!("/v1/conversations/{id}/messages?limit=200")))
            .bearer_auth(token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{h}\n{}", s.log_tail());
    assert!(h["next_before"].is_null(), "one page holds them all: {h}");
    h["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message")
        .map(|i| i["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Every acknowledged text is there exactly once; a refused one at most once (a write
/// whose outcome was unknown may have landed).
fn check_history(got: &[String], acknowledged: &[String], refused: &[String], when: &str) {
    for t in acknowledged {
        let n = got.iter().filter(|g| *g == t).count();
        assert_eq!(
            n, 1,
            "{when}: acknowledged {t:?} is there {n} times: {got:?}"
        );
    }
    for t in refused {
        let n = got.iter().filter(|g| *g == t).count();
        assert!(n <= 1, "{when}: refused {t:?} is there {n} times: {got:?}");
    }
    for g in got {
        assert!(
            acknowledged.contains(g) || refused.contains(g),
            "{when}: {g:?} was never posted"
        );
    }
}

/// A fresh Idempotency-Key (a UUID) for each logical post.
fn key() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "5d1e0f00-0000-4000-8000-{:012x}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_and_the_process_recovers_by_itself_losing_nothing() {
    carrier::tls::install_default_provider();
    let root = tempfile::tempdir().unwrap();
    let mount_point = root.path().join("fs");
    std::fs::create_dir(&mount_point).unwrap();
    let _tmpfs = match Tmpfs::mount(&mount_point) {
        Ok(m) => m,
        Err(e) if std::env::var("SWITCHBOARD_SKIP_DISK_FULL").as_deref() == Ok("1") => {
            eprintln!("skipped (SWITCHBOARD_SKIP_DISK_FULL=1): {e}");
            return;
        }
        Err(e) => panic!(
            "this test mounts a small tmpfs to fill it up and needs root (CAP_SYS_ADMIN) for \
             it: {e}. Set SWITCHBOARD_SKIP_DISK_FULL=1 to skip it where mounting is not \
             permitted."
        ),
    };
    let data = mount_point.join("data");
    let filler = mount_point.join("filler");
    // The server's log stays off the small file system.
    let log = root.path().join("server.log");
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let s = Server::start(&data, &log).await;

    let (status, boot) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Acme", "name": "Ada", "extension": "100", "email": EMAIL, "password": PASSWORD,
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{boot}");
    let token = boot["token"].as_str().unwrap().to_owned();
    let (status, channel) = call(
        c.post(s.url("/v1/conversations/channel"))
            .bearer_auth(&token)
            .json(&json!({ "name": "general", "members": [] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    let id = channel["conversation_id"].as_str().unwrap().to_owned();
    let mut acknowledged = Vec::new();
    let mut refused = Vec::new();
    let (status, v) = post(&c, &s, &token, &id, "before the disk filled", &key()).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    acknowledged.push("before the disk filled".to_owned());
    // The read model has it (so nothing of it is pending when the disk fills).
    let (status, v) = call(
        c.get(s.url(&format!("/v1/interactions?after={}", v["position"])))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");

    // The disk fills up.
    let filled = fill(&filler);
    assert!(filled > 0, "the filler took the free space");
    // Writes are refused with 503 storage_unavailable. (One that still fits in space the
    // store had already reserved is acknowledged, and must then be kept.)
    let mut first_refusal = None;
    for i in 0..50 {
        let text = format!("while full {i}");
        let (status, v) = post(&c, &s, &token, &id, &text, &key()).await;
        if status.is_success() {
            acknowledged.push(text);
            continue;
        }
        refused.push(text);
        first_refusal = Some((status, v));
        break;
    }
    let (status, v) = first_refusal.unwrap_or_else(|| {
        panic!(
            "50 posts acknowledged on a full disk ({} written to the filler)\n{}",
            filled,
            s.log_tail()
        )
    });
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("storage_unavailable")),
        "a post on a full disk: {v}\n{}",
        s.log_tail()
    );
    let (status, v) = post(&c, &s, &token, &id, "still full", &key()).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("storage_unavailable")),
        "{v}"
    );
    refused.push("still full".to_owned());
    let (status, v) = login(&c, &s).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("storage_unavailable")),
        "a login on a full disk: {v}\n{}",
        s.log_tail()
    );
    let (status, v) = call(c.get(s.url("/healthz"))).await;
    assert_eq!(
        (status, v["status"].as_str(), v["reason"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("unavailable"),
            Some("storage_unavailable")
        ),
        "health on a full disk: {v}"
    );
    let message = v["message"].as_str().unwrap_or_default();
    assert!(
        !message.contains(&*mount_point.to_string_lossy()),
        "health names no paths: {v}"
    );

    // Space comes back: without a restart, writes are taken again within a bounded wait
    // (the same key each try: one message however many attempts).
    std::fs::remove_file(&filler).unwrap();
    let recovered_key = key();
    let deadline = Instant::now() + RECOVERY;
    let after = loop {
        let (status, v) = post(&c, &s, &token, &id, "after the disk freed", &recovered_key).await;
        if status == StatusCode::CREATED {
            break v["position"].as_u64().expect("written");
        }
        assert_eq!(
            (status, v["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("storage_unavailable")),
            "while recovering: {v}\n{}",
            s.log_tail()
        );
        assert!(
            Instant::now() < deadline,
            "no write taken within {RECOVERY:?} of freeing space\n{}",
            s.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    acknowledged.push("after the disk freed".to_owned());
    let (status, v) = call(c.get(s.url("/healthz"))).await;
    assert_eq!(status, StatusCode::OK, "health after recovery: {v}");
    assert_eq!(v["status"], "ok", "{v}");
    let (status, v) = login(&c, &s).await;
    assert_eq!(status, StatusCode::CREATED, "a login after recovery: {v}");
    check_history(
        &texts(&c, &s, &token, &id).await,
        &acknowledged,
        &refused,
        "after recovery",
    );

    // The read models follow again: the conversation list reaches the last post.
    let deadline = Instant::now() + RECOVERY;
    loop {
        let (status, v) = call(
            c.get(s.url(&format!("/v1/interactions?after={after}")))
                .bearer_auth(&token),
        )
        .await;
        if status == StatusCode::OK {
            let row = v["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["conversation_id"] == id.as_str())
                .cloned()
                .unwrap_or_else(|| panic!("the channel is not listed: {v}"));
            assert_eq!(row["preview"]["text"], "after the disk freed", "{row}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the conversation list never caught up with position {after} after the disk \
             was freed (last answer {status} {v})\n{}",
            s.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Stopped and started again: everything acknowledged is there, once.
    s.stop().await;
    let s = Server::start(&data, &log).await;
    let (status, v) = login(&c, &s).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let token = v["token"].as_str().unwrap().to_owned();
    check_history(
        &texts(&c, &s, &token, &id).await,
        &acknowledged,
        &refused,
        "after a restart",
    );
    s.stop().await;
}
