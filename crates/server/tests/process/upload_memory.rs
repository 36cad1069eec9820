//! Uploads are bounded in memory: the real `switchboard serve` process takes twelve
//! concurrent ~20 MiB uploads while its peak resident set grows by far less than the
//! uploads' size, and stores each one whole, under its hash.
//!
//! The bound, [`MAX_GROWTH`]: an upload streams to disk in batches of 256 KiB behind a
//! parser that reads at most 256 KiB ahead, so each holds about 1–2 MiB at worst (the
//! connection's read buffer, the parser's, one batch, the 64 KiB sniffed head): under
//! 25 MiB for twelve, plus the blocking threads that write them and the allocator's slack.
//! 120 MiB leaves room for that on a busy machine, and is half of what holding the twelve
//! files alone would take (240 MiB): before uploads were streamed, this run grew the
//! server by ~400 MiB.

use crate::common::{bootstrap, start, upload};
use serde_json::json;

/// Largest accepted growth of the server's peak resident set over the uploads.
const MAX_GROWTH: u64 = 120 * 1024 * 1024;
const UPLOADS: usize = 12;
const UPLOAD_BYTES: usize = 20 * 1024 * 1024 + 4321;

/// A field of `/proc/<pid>/status`, in bytes (`VmHWM`, `VmRSS`: the kernel says kB).
fn status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    kb * 1024
}

/// `len` bytes that compress to nothing and repeat nowhere (BLAKE3's extendable output
/// from `seed`).
fn noise(seed: usize, len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_concurrent_large_uploads_do_not_grow_the_server_by_their_size() {
    carrier::tls::install_default_provider();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(&data).await;
    let base = server.base.clone();
    let c = reqwest::Client::new();
    let token = bootstrap(&c, &base, "ada@uploads.example").await;
    // One upload first, so that what every request sets up once is not counted.
    upload(
        &c,
        &base,
        &token,
        "warmup".into(),
        &noise(UPLOADS, 1024 * 1024),
    )
    .await;

    let files: Vec<Vec<u8>> = (0..UPLOADS).map(|i| noise(i, UPLOAD_BYTES)).collect();
    // The peak is reset to the current resident set (Linux: `5` in clear_refs), so the
    // growth measured is the uploads' own, not hidden under the start-up's peak.
    std::fs::write(format!("/proc/{}/clear_refs", server.pid()), "5").unwrap();
    let before = status_bytes(server.pid(), "VmHWM");
    let answers = futures_util::future::join_all(
        files
            .iter()
            .enumerate()
            .map(|(i, f)| upload(&c, &base, &token, format!("file{i}"), f)),
    )
    .await;
    let after = status_bytes(server.pid(), "VmHWM");

    for (file, answer) in files.iter().zip(&answers) {
        let hash = blake3::hash(file).to_hex().to_string();
        assert_eq!(answer["attachment_id"], json!(hash), "{answer}");
        assert_eq!(answer["size"], json!(file.len()), "{answer}");
        assert_eq!(answer["mime"], "application/octet-stream");
        let stored = std::fs::read(data.join("blobs").join(&hash[..2]).join(&hash)).unwrap();
        assert!(stored == *file, "the blob of {hash} is its bytes");
    }
    let growth = after.saturating_sub(before);
    #[allow(
        clippy::cast_precision_loss,
        reason = "sizes printed in MiB, to a tenth"
    )]
    let (upload_mib, growth_mib) = (
        UPLOAD_BYTES as f64 / f64::from(1 << 20),
        growth as f64 / f64::from(1 << 20),
    );
    eprintln!(
        "peak RSS {} MiB before, {} MiB after {UPLOADS} concurrent uploads of {:.1} MiB: grew {:.1} MiB",
        before >> 20,
        after >> 20,
        upload_mib,
        growth_mib,
    );
    assert!(
        growth < MAX_GROWTH,
        "the server's peak resident set grew by {} MiB (bound {} MiB)",
        growth >> 20,
        MAX_GROWTH >> 20
    );
}
