//! The web client in a real browser: a server with the simulated carrier on `127.0.0.1:0`,
//! and `node tests/web/e2e.mjs` driving Debian's chromium (headless, through
//! playwright-core) against it — two users chatting with typing and read receipts, an inbox
//! conversation assigned / transferred / done while a teammate's open view follows live, a
//! queue claim leaving the other agent's waiting list live and agents logging in and out,
//! channels created, joined by link, their members listed and left, a customer's text
//! arriving live; no screen polls (none sets an interval timer). The scenarios set up their
//! own organizations through the API. Screenshots go to `<target>/screenshots/`.
//!
//! Needs `node`, `/usr/bin/chromium` (`apt-get install chromium`) and
//! `npm ci --prefix tests/web`; without them the test fails and says so, unless
//! `SWITCHBOARD_SKIP_BROWSER_TESTS=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gateway::carriers::CarrierKind;
use testkit::server::TestServer;

const CHROMIUM: &str = "/usr/bin/chromium";
/// The whole browser run; the scenarios take well under a minute.
const TIMEOUT: Duration = Duration::from_secs(240);

fn web_dir() -> PathBuf {
    // `cargo test` names the package's directory when it runs the test; the path baked in
    // at compile time may be another checkout's (a target directory shared between clones).
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from)
        .join("web")
}

/// `<target>/screenshots` (integration tests get `<target>/tmp`).
fn screenshots_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("screenshots")
}

/// What is missing to run the browser tests, if anything.
fn missing_prerequisites() -> Vec<String> {
    let mut missing = Vec::new();
    for package in ["playwright-core", "axe-core"] {
        if !web_dir().join("node_modules").join(package).is_dir() {
            missing.push(format!("{package}: run `npm ci --prefix tests/web`"));
        }
    }
    if !Path::new(CHROMIUM).exists() {
        missing.push(format!(
            "{CHROMIUM}: install Debian's chromium (`apt-get install chromium`)"
        ));
    }
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        missing.push("node (Node.js 20 or later) on the PATH".to_owned());
    }
    missing
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_web_client_passes_its_browser_tests() {
    if std::env::var("SWITCHBOARD_SKIP_BROWSER_TESTS").as_deref() == Ok("1") {
        eprintln!("browser tests skipped (SWITCHBOARD_SKIP_BROWSER_TESTS=1)");
        return;
    }
    let missing = missing_prerequisites();
    assert!(
        missing.is_empty(),
        "the browser tests cannot run; missing:\n  - {}\n(set SWITCHBOARD_SKIP_BROWSER_TESTS=1 to skip them)",
        missing.join("\n  - ")
    );

    let s = TestServer::start_with_carrier(
        CarrierKind::Simulator(carrier::simulator::Simulator::new()),
        |_| {},
    )
    .await;
    let shots = screenshots_dir();
    let out = tempfile::NamedTempFile::new().expect("a file for node's output");
    let log = out.reopen().expect("reopened");
    let err_log = log.try_clone().expect("cloned");
    let mut child = Command::new("node")
        .arg(web_dir().join("e2e.mjs"))
        .current_dir(web_dir())
        .env("SWITCHBOARD_URL", &s.base)
        .env("SWITCHBOARD_SCREENSHOTS", &shots)
        .env("CHROMIUM", CHROMIUM)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log)
        .spawn()
        .expect("node starts");
    // The server runs on this runtime: wait for node off its worker threads.
    let status = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("waiting for node") {
                return Some(status);
            }
            if started.elapsed() > TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .expect("the waiting thread");
    let output = std::fs::read_to_string(out.path()).unwrap_or_default();
    println!("{output}");
    match status {
        Some(status) => assert!(
            status.success(),
            "the browser tests failed ({status}):\n{output}\nscreenshots in {}",
            shots.display()
        ),
        None => panic!(
            "the browser tests did not finish within {TIMEOUT:?}:\n{output}\nscreenshots in {}",
            shots.display()
        ),
    }
}
