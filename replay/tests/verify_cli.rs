//! The replay binary against a real data directory: verify passes, names the first broken
//! link after a byte is flipped (exit code 1), and prints a stream's history; with a signed
//! checkpoint it shows a removed tail and a consistently rewritten log, which the chains
//! alone cannot.

use std::process::Command;

use eventlog::{EventData, EventStore, ExpectedVersion, LogOptions, RocksLog, StreamName};

fn replay(data_dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_replay"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("run replay");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn verify_detects_a_flipped_byte_and_stream_prints_history() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("log");
    {
        let log = RocksLog::open(&log_dir, LogOptions::default()).unwrap();
        for i in 0..6 {
            let s = StreamName::new(format!("conversation-{}", i % 2)).unwrap();
            let e = EventData::new("MessagePosted", 1, format!("hello {i}").into_bytes());
            log.append_blocking(s, ExpectedVersion::Any, vec![e])
                .unwrap();
        }
        // Read-only verification works while the writer holds the log open.
        let (code, out) = replay(dir.path(), &["verify"]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("checked 6 events in 2 streams"), "{out}");
        log.shutdown();
    }
    let (code, out) = replay(dir.path(), &["stream", "conversation-1"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 3);
    assert!(
        out.contains("MessagePosted") && out.contains("hello 5"),
        "{out}"
    );
    let (code, out) = replay(
        dir.path(),
        &["stream", "conversation-1", "--format", "jsonl"],
    );
    assert_eq!(code, 0);
    assert!(
        out.lines()
            .all(|l| l.starts_with('{') && l.contains("\"hash\"")),
        "{out}"
    );

    {
        let cfs = [
            "events",
            "stream_index",
            "category_index",
            "event_ids",
            "snapshots",
            "meta",
        ];
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), &log_dir, cfs).unwrap();
        let cf = db.cf_handle("events").unwrap();
        let key = 3u64.to_be_bytes();
        let mut v = db.get_cf(cf, key).unwrap().unwrap();
        let i = v.len() - 1; // the payload is stored last: "hello 3" → "hello 2"
        v[i] ^= 0x01;
        db.put_cf(cf, key, v).unwrap();
    }
    let (code, out) = replay(dir.path(), &["verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAILED")
            && out.contains("conversation-1")
            && out.contains("version 1")
            && out.contains("position 3"),
        "{out}"
    );
    let (code, out) = replay(dir.path(), &["verify", "--stream", "conversation-0"]);
    assert_eq!(code, 0, "the other stream still verifies: {out}");
}

fn append_texts(log: &RocksLog, texts: &[&str]) {
    for (i, text) in texts.iter().enumerate() {
        let s = StreamName::new(format!("conversation-{}", i % 2)).unwrap();
        let e = EventData::new("MessagePosted", 1, text.as_bytes().to_vec());
        log.append_blocking(s, ExpectedVersion::Any, vec![e])
            .unwrap();
    }
}

#[test]
fn a_signed_checkpoint_shows_a_removed_tail_and_a_rewritten_log() {
    use eventlog::checkpoint::{fold_log, AllDigest, Checkpoint};
    let dir = tempfile::tempdir().unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let public = eventlog::hex::encode(key.verifying_key().as_bytes());
    let cp_file = dir.path().join("checkpoint.json");
    let texts = ["a0", "a1", "a2", "a3", "a4", "a5"];
    {
        let log = RocksLog::open(dir.path().join("whole/log"), LogOptions::default()).unwrap();
        append_texts(&log, &texts[..4]);
        // What someone who deletes the newest events leaves: the log as it was before them.
        assert_eq!(
            log.checkpoint_to(&dir.path().join("truncated/log"))
                .unwrap(),
            4
        );
        append_texts(&log, &texts[4..]);
        let mut digest = AllDigest::EMPTY;
        fold_log(&log, &mut digest, u64::MAX, |_| {}).unwrap();
        assert_eq!(digest.position, 6);
        Checkpoint::sign(&key, &digest, 1).write(&cp_file).unwrap();
        log.shutdown();
    }
    {
        // The same history written again with one text changed: every chain is valid.
        let log = RocksLog::open(dir.path().join("rewritten/log"), LogOptions::default()).unwrap();
        let mut changed = texts;
        changed[2] = "A2";
        append_texts(&log, &changed);
        log.shutdown();
    }
    let cp = cp_file.to_str().unwrap();
    let (code, out) = replay(
        &dir.path().join("whole"),
        &["verify", "--checkpoint", cp, "--public-key", &public],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("holds all 6 events"), "{out}");

    for (copy, expected) in [
        ("truncated", "its tail was removed"),
        ("rewritten", "were changed"),
    ] {
        let data = dir.path().join(copy);
        let (code, out) = replay(&data, &["verify"]);
        assert_eq!(
            code, 0,
            "the chains alone find nothing wrong in {copy}: {out}"
        );
        let (code, out) = replay(
            &data,
            &["verify", "--checkpoint", cp, "--public-key", &public],
        );
        assert_eq!(code, 1, "{copy}: {out}");
        assert!(
            out.contains("FAILED") && out.contains(expected),
            "{copy}: {out}"
        );
    }

    // A checkpoint signed by another key is not the trusted one's.
    let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
    let mut digest = AllDigest::EMPTY;
    fold_log(
        &RocksLog::open_read_only(dir.path().join("rewritten/log")).unwrap(),
        &mut digest,
        u64::MAX,
        |_| {},
    )
    .unwrap();
    let forged = dir.path().join("forged.json");
    Checkpoint::sign(&other, &digest, 1).write(&forged).unwrap();
    let (code, out) = replay(
        &dir.path().join("rewritten"),
        &[
            "verify",
            "--checkpoint",
            forged.to_str().unwrap(),
            "--public-key",
            &public,
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not by the trusted key"), "{out}");
}
