//! Erasure of one customer's data on real processes: texts in and out through the
//! simulator, an admin erases the customer and sets a retention, the server is killed
//! (SIGKILL) and started again — the erased texts stay erased (history, search), the other
//! customer's are untouched (the retention set keeps today's texts), and the
//! stopped data directory still verifies with `replay verify` while `replay conversation`
//! shows `[erased]`.

use std::process::Command;

use crate::common::{bootstrap, get, post, start_with, until};
use serde_json::json;

const LINE: &str = "+15550801000";
const ANN: &str = "+15556660801";
const BOB: &str = "+15556660802";

/// The search hits for `q`: (conversation, text).
async fn search(c: &reqwest::Client, base: &str, token: &str, q: &str) -> Vec<(String, String)> {
    let v = get(c, format!("http://{base}/v1/search?q={q}"), token).await;
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["conversation_id"].as_str().unwrap().to_owned(),
                h["snippet"]["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// (text, erased) of every message of a conversation, oldest first.
async fn texts(c: &reqwest::Client, base: &str, token: &str, conv: &str) -> Vec<(String, bool)> {
    let v = get(
        c,
        format!("http://{base}/v1/conversations/{conv}/messages?limit=100"),
        token,
    )
    .await;
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message" || i["type"] == "inbound")
        .map(|i| {
            (
                i["text"].as_str().unwrap().to_owned(),
                i["erased"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

fn replay(data: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    // The workspace's `replay` binary, built beside `switchboard`.
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_switchboard")).with_file_name("replay");
    assert!(
        bin.exists(),
        "{} missing: build the whole workspace",
        bin.display()
    );
    let out = Command::new(bin)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .expect("run replay");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_survives_a_kill_and_the_log_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_with(&data, &[]).await;
    let c = testkit::http();
    let base = server.base.clone();
    let ada = bootstrap(&c, &base, "ada@erasure.example").await;
    let me = get(&c, format!("http://{base}/v1/me"), &ada).await;
    post(
        &c,
        format!("http://{base}/v1/numbers"),
        Some(&ada),
        json!({ "number": LINE, "user": me["user_id"] }),
    )
    .await;
    for (from, text) in [(ANN, "my secret order A1"), (BOB, "bob order B2")] {
        post(
            &c,
            format!("http://{base}/v1/simulator/inbound"),
            Some(&ada),
            json!({ "from": from, "to": LINE, "text": text }),
        )
        .await;
    }
    let hits = until(
        "both texts found",
        || search(&c, &base, &ada, "order"),
        |h| h.len() == 2,
    )
    .await;
    let conv_of = |words: &str| {
        hits.iter()
            .find(|(_, t)| t.contains(words))
            .map(|(c, _)| c.clone())
            .unwrap()
    };
    let (ann_conv, bob_conv) = (conv_of("secret"), conv_of("bob"));
    post(
        &c,
        format!("http://{base}/v1/conversations/{ann_conv}/messages"),
        Some(&ada),
        json!({ "text": "your order A1 ships today" }),
    )
    .await;

    let erased = post(
        &c,
        format!("http://{base}/v1/erasures"),
        Some(&ada),
        json!({ "number": ANN }),
    )
    .await;
    assert!(erased["keys_destroyed"].as_u64().unwrap() >= 1, "{erased}");
    // A retention of 30 days: today's texts are kept by it.
    let r = c
        .put(format!("http://{base}/v1/retention"))
        .bearer_auth(&ada)
        .json(&json!({ "message_days": 30 }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());

    // Killed at once, and started again.
    drop(server);
    let server = start_with(&data, &[]).await;
    let base = server.base.clone();
    let ada = server.login(&c, "ada@erasure.example").await;

    let ann = texts(&c, &base, &ada, &ann_conv).await;
    assert_eq!(ann.len(), 2, "{ann:?}");
    assert!(
        ann.iter().all(|(t, erased)| t == "[erased]" && *erased),
        "{ann:?}"
    );
    assert_eq!(
        texts(&c, &base, &ada, &bob_conv).await,
        [("bob order B2".to_owned(), false)]
    );
    // The read models were rebuilt or resumed by the new process: search has only Bob's.
    until(
        "search without the erased texts",
        || search(&c, &base, &ada, "order"),
        |h| h.len() == 1 && h[0].0 == bob_conv,
    )
    .await;
    let list = get(&c, format!("http://{base}/v1/erasures"), &ada).await;
    assert_eq!(list["items"][0]["number"], ANN, "{list}");
    // The retention survived the kill (and applying it, when set, left today's texts alone:
    // Bob's above).
    let retention = get(&c, format!("http://{base}/v1/retention"), &ada).await;
    assert_eq!(retention["message_days"], 30, "{retention}");

    // Ann writes again: new data, readable.
    post(
        &c,
        format!("http://{base}/v1/simulator/inbound"),
        Some(&ada),
        json!({ "from": ANN, "to": LINE, "text": "hello again" }),
    )
    .await;
    until(
        "her new text readable",
        || texts(&c, &base, &ada, &ann_conv),
        |t| t.iter().any(|(w, e)| w == "hello again" && !e),
    )
    .await;

    // Stopped: the log's chains verify, and the auditor's view shows what was erased.
    let mut server = server;
    server.terminate();
    server.exits_cleanly().await;
    let (ok, out, err) = replay(&data, &["verify"]);
    assert!(ok, "replay verify: {out}\n{err}");
    let (ok, out, err) = replay(&data, &["conversation", &ann_conv]);
    assert!(ok, "{err}");
    assert!(out.contains("[erased]"), "{out}");
    assert!(out.contains("\"hello again\""), "{out}");
    assert!(
        !out.contains("secret") && !out.contains("ships today"),
        "{out}"
    );
    let (ok, out, err) = replay(&data, &["conversation", &bob_conv]);
    assert!(ok, "{err}");
    assert!(out.contains("\"bob order B2\""), "{out}");
}
