//! Online backup and restore on real processes: `switchboard backup` while the server takes
//! HTTP posts, `switchboard restore` into a new data directory, and a server started on it.
//!
//! Every message acknowledged before the backup began is in the restored history exactly
//! once, the restored history is the original's up to the backup, attachments come back
//! byte for byte, the restored log verifies (every chain, and the backup's signed
//! checkpoint against the server's public key), and the server writes signed checkpoints
//! of its log on its own. A backup without a running server, into a non-empty directory,
//! and a restore over existing data are covered too.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{bootstrap, post, start, start_with, upload, PASSWORD};
use serde_json::{json, Value};

fn switchboard(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run switchboard");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every item of a conversation's history, oldest first.
async fn history(c: &reqwest::Client, base: &str, token: &str, conv: &str) -> Vec<Value> {
    let mut items: Vec<Value> = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let mut url = format!("http://{base}/v1/conversations/{conv}/messages?limit=200");
        if let Some(b) = before {
            url.push_str(&format!("&before={b}"));
        }
        // The senders spend the same user's request budget: a 429 is waited out as its
        // Retry-After says, as a client would.
        let mut tries = 0;
        let r = loop {
            let r = c.get(&url).bearer_auth(token).send().await.unwrap();
            tries += 1;
            if r.status() != reqwest::StatusCode::TOO_MANY_REQUESTS || tries == 30 {
                break r;
            }
            let wait = r
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(1);
            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
        };
        assert!(r.status().is_success(), "{}", r.status());
        let page: Value = r.json().await.unwrap();
        let mut got = page["items"].as_array().unwrap().clone();
        got.extend(items);
        items = got;
        match page["next_before"].as_u64() {
            Some(b) => before = Some(b),
            None => return items,
        }
    }
}

fn message_ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter(|i| i["type"] == "message")
        .map(|i| i["message_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_under_load_restores_everything_acknowledged_before_it() {
    carrier::tls::install_default_provider();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_with(&data, &["--checkpoint-every-s", "1"]).await;
    let base = server.base.clone();
    let c = reqwest::Client::new();
    let admin = bootstrap(&c, &base, "ada@backup.example").await;
    let user = post(
        &c,
        format!("http://{base}/v1/users"),
        Some(&admin),
        json!({ "name": "Bo", "extension": "101", "role": "member",
                "email": "bo@backup.example", "password": PASSWORD }),
    )
    .await;
    let conv = post(
        &c,
        format!("http://{base}/v1/conversations/direct"),
        Some(&admin),
        json!({ "with": user["user_id"] }),
    )
    .await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let picture: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let attached = upload(&c, &base, &admin, "picture.bin".into(), &picture).await;
    post(
        &c,
        format!("http://{base}/v1/conversations/{conv}/messages"),
        Some(&admin),
        json!({ "text": "see attached", "attachments": [attached["attachment_id"]] }),
    )
    .await;

    // Three senders post until told to stop; each acknowledged id is recorded.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..3)
        .map(|s| {
            let (c, base, admin, conv) = (c.clone(), base.clone(), admin.clone(), conv.clone());
            let (acked, stop) = (acked.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Acquire) {
                    let key = uuid::Uuid::new_v4().to_string();
                    // Rate-limited: wait as told and send the same post again.
                    let v: Value = loop {
                        let r = c
                            .post(format!("http://{base}/v1/conversations/{conv}/messages"))
                            .bearer_auth(&admin)
                            .header("idempotency-key", &key)
                            .json(&json!({ "text": format!("load {s}/{i}") }))
                            .send()
                            .await
                            .unwrap();
                        if r.status() != reqwest::StatusCode::TOO_MANY_REQUESTS {
                            assert!(r.status().is_success(), "{}", r.status());
                            break r.json().await.unwrap();
                        }
                        let wait = r
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                            .unwrap_or(1);
                        tokio::time::sleep(Duration::from_secs(wait)).await;
                    };
                    acked
                        .lock()
                        .unwrap()
                        .push(v["message_id"].as_str().unwrap().to_owned());
                    i += 1;
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.lock().unwrap().len() < 30 {
        assert!(
            senders.iter().all(|s| !s.is_finished()) && Instant::now() < deadline,
            "the senders stopped early"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Everything acknowledged so far must be in the backup; the senders go on meanwhile.
    let before_backup: Vec<String> = acked.lock().unwrap().clone();
    let backup = dir.path().join("backup");
    let (ok, out, err) = {
        let args = ["backup", "--data-dir", path(&data), "--to", path(&backup)];
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            switchboard(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .await
        .unwrap()
    };
    assert!(ok, "backup failed: {out}\n{err}");
    assert!(out.contains("backup written"), "{out}");
    assert!(
        err.contains("log:") && err.contains("verify:") && err.contains("blobs:"),
        "progress is reported: {err}"
    );
    // The senders ran on through the backup and every post of theirs was answered 2xx
    // (each sender asserts it): the backup never stopped the server. How many landed while
    // it ran depends on how long it took, so it is not counted here (a timed assertion).
    stop.store(true, Ordering::Release);
    for s in senders {
        s.await.unwrap();
    }
    let original = history(&c, &base, &admin, &conv).await;

    // The server signs checkpoints of its log by itself (every second here).
    let checkpoints = data.join("checkpoints");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(&checkpoints).map_or(0, |d| d.count()) == 0 {
        assert!(Instant::now() < deadline, "no periodic checkpoint written");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);

    // A backup needs a new directory.
    let (ok, _, err) = switchboard(&["backup", "--data-dir", path(&data), "--to", path(&backup)]);
    assert!(!ok && err.contains("not empty"), "{err}");

    let restored = dir.path().join("restored");
    let public_key = data.join("checkpoint.pub");
    let (ok, out, err) = switchboard(&[
        "restore",
        "--from",
        path(&backup),
        "--data-dir",
        path(&restored),
        "--public-key",
        path(&public_key),
    ]);
    assert!(ok, "restore failed: {out}\n{err}");
    // Never over existing data.
    let (ok, _, err) = switchboard(&[
        "restore",
        "--from",
        path(&backup),
        "--data-dir",
        path(&data),
    ]);
    assert!(!ok && err.contains("not empty"), "{err}");
    {
        use eventlog::EventStore;
        let log = eventlog::RocksLog::open_read_only(restored.join("log")).unwrap();
        let report = log.verify_all_blocking().unwrap();
        assert!(report.is_ok(), "{:?}", report.first_break);
        // The backup's checkpoint, signed by the original server's key, covers exactly
        // what was restored.
        let cp = eventlog::checkpoint::Checkpoint::read(&backup.join("checkpoint.json")).unwrap();
        let trusted = eventlog::checkpoint::parse_public_key(path(&public_key)).unwrap();
        let vouched = cp.verify_signature(Some(&trusted)).unwrap();
        assert_eq!(vouched.position, log.next_position());
    }

    let server = start(&restored).await;
    let rbase = server.base.clone();
    let admin = server.login(&c, "ada@backup.example").await;
    let items = history(&c, &rbase, &admin, &conv).await;
    let ids = message_ids(&items);
    for id in &before_backup {
        assert_eq!(
            ids.iter().filter(|i| *i == id).count(),
            1,
            "{id}, acknowledged before the backup began, is restored once"
        );
    }
    assert!(
        items.len() <= original.len() && items[..] == original[..items.len()],
        "the restored history is the original's up to the backup"
    );
    let r = c
        .get(format!(
            "http://{rbase}/v1/attachments/{}?conversation={conv}",
            attached["attachment_id"].as_str().unwrap()
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert!(
        r.bytes().await.unwrap()[..] == picture[..],
        "the attachment is restored byte for byte"
    );
    drop(server);

    // Without a running server the command backs up directly (its socket is gone, its
    // lock free), from the data directory the SIGKILLed server left.
    let offline = dir.path().join("offline");
    let (ok, out, err) =
        switchboard(&["backup", "--data-dir", path(&data), "--to", path(&offline)]);
    assert!(ok, "{out}\n{err}");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(offline.join("backup.json")).unwrap())
            .unwrap();
    assert!(manifest["events"].as_u64().unwrap() > 30, "{manifest}");
    assert_eq!(manifest["blobs"], 1, "{manifest}");
}
