//! Child process of `tests/crash_recovery.rs`: appends from many concurrent writers until it
//! is killed with SIGKILL.
//!
//! Usage: `crash-child <log-dir> <writers> <run-id>`. Protocol on stdout, one line each,
//! flushed immediately:
//! - `READY` once the log is open;
//! - `BEGIN <id>,<id>…` before an append is submitted (the ids of its events);
//! - `ACK <stream> <first_version> <first_position> <id>:<seed>:<len>,…` after the append
//!   was acknowledged (durable). The payload of each event is `payload_for(seed, len)`.

use std::io::Write;
use std::sync::Arc;

use eventlog::{
    AppendError, EventData, EventStore, ExpectedVersion, LogOptions, Metadata, RocksLog,
};
use testkit::{payload_for, stream};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, writers, run_id] = &args[..] else {
        eprintln!("usage: crash-child <log-dir> <writers> <run-id>");
        std::process::exit(2);
    };
    let writers: u64 = writers.parse().expect("writers");
    let run_id: u64 = run_id.parse().expect("run id");
    let log: Arc<dyn EventStore> =
        Arc::new(RocksLog::open(dir, LogOptions::default()).expect("open log"));
    say("READY".into());
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let log = log.clone();
            std::thread::spawn(move || write_forever(&*log, w, run_id))
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn write_forever(log: &dyn EventStore, w: u64, run_id: u64) {
    let mut counter = 0u64;
    loop {
        counter += 1;
        // Owned streams use exact expected versions; one stream is shared by all writers.
        let (name, owned) = match counter % 4 {
            0 => ("crashshared-all".to_string(), false),
            k => (format!("crash-w{w}s{k}"), true),
        };
        let stream = stream(&name);
        let expected = if owned {
            let v = log
                .stream_version_blocking(&stream)
                .expect("stream version");
            ExpectedVersion::after(v)
        } else {
            ExpectedVersion::Any
        };
        let n = 1 + (counter % 3) as usize;
        let mut events = Vec::with_capacity(n);
        let mut described = Vec::with_capacity(n);
        for i in 0..n as u64 {
            let seed = (run_id << 40) | (w << 32) | (counter << 2) | i;
            let len = 20 + (seed % 180) as usize;
            let e =
                EventData::new("CrashTested", 1, payload_for(seed, len)).with_metadata(Metadata {
                    acting_user: Some(format!("writer-{w}")),
                    ..Metadata::default()
                });
            described.push(format!("{}:{seed}:{len}", e.event_id));
            events.push(e);
        }
        let ids: Vec<String> = events.iter().map(|e| e.event_id.to_string()).collect();
        say(format!("BEGIN {}", ids.join(",")));
        match log.append_blocking(stream, expected, events) {
            Ok(r) => say(format!(
                "ACK {name} {} {} {}",
                r.first_version,
                r.first_position,
                described.join(",")
            )),
            Err(AppendError::WrongExpectedVersion { .. }) => {}
            Err(e) => panic!("append failed: {e}"),
        }
    }
}
