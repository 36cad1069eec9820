//! The replay binary against a real data directory: verify passes, names the first broken
//! link after a byte is flipped (exit code 1), and prints a stream's history.

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
