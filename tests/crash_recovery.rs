//! Crash recovery: a child process appends from many concurrent writers and is killed with
//! SIGKILL at random moments. After every kill the log is reopened and checked: every
//! acknowledged event is present and byte-identical, no append is torn (all of its events or
//! none), `$all` and every stream are contiguous, and every hash chain verifies.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use eventlog::{Direction, EventStore, LogOptions, Metadata, RocksLog};
use testkit::{payload_for, stream};
use uuid::Uuid;

const CYCLES: u64 = 24;
const WRITERS: &str = "8";

struct Acked {
    stream: String,
    version: u64,
    position: u64,
    seed: u64,
    len: usize,
}

/// xorshift64*: enough randomness for kill timing, reproducible from the printed seed.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn parse_ack(line: &str, acked: &mut HashMap<Uuid, Acked>) {
    let mut parts = line.split(' ').skip(1);
    let (Some(name), Some(v), Some(p), Some(list)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        panic!("malformed ACK line {line:?}");
    };
    let (first_version, first_position): (u64, u64) = (v.parse().unwrap(), p.parse().unwrap());
    for (i, item) in list.split(',').enumerate() {
        let mut f = item.split(':');
        let id: Uuid = f.next().unwrap().parse().unwrap();
        let seed: u64 = f.next().unwrap().parse().unwrap();
        let len: usize = f.next().unwrap().parse().unwrap();
        acked.insert(
            id,
            Acked {
                stream: name.to_string(),
                version: first_version + i as u64,
                position: first_position + i as u64,
                seed,
                len,
            },
        );
    }
}

#[test]
fn acknowledged_events_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("log");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    // The clock's low 64 bits: a seed, not a time.
    let seed = u64::try_from(nanos & u128::from(u64::MAX)).unwrap() | 1;
    println!("kill-timing seed {seed}");
    let mut rng = Rng(seed);
    let mut acked: HashMap<Uuid, Acked> = HashMap::new();
    let mut begun: Vec<Vec<Uuid>> = Vec::new();
    let mut kills_during_load = 0;

    for cycle in 0..CYCLES {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash-child"))
            .args([log_dir.to_str().unwrap(), WRITERS, &cycle.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut r = BufReader::new(stdout);
            let mut buf = String::new();
            // Only complete lines count: the child may die mid-line.
            while r.read_line(&mut buf).map(|n| n > 0).unwrap_or(false) {
                if buf.ends_with('\n') {
                    let line = buf.trim_end().to_string();
                    if line == "READY" {
                        let _ = ready_tx.send(());
                    }
                    lines.push(line);
                }
                buf.clear();
            }
            lines
        });
        // Every fourth cycle kills at a random moment of start-up (possibly while RocksDB
        // recovers); the others once writers are running.
        if cycle % 4 == 3 {
            std::thread::sleep(Duration::from_millis(rng.below(40)));
        } else {
            ready_rx
                .recv_timeout(Duration::from_secs(60))
                .expect("child became ready");
            std::thread::sleep(Duration::from_millis(30 + rng.below(300)));
            kills_during_load += 1;
        }
        child.kill().expect("SIGKILL child");
        child.wait().unwrap();
        for line in reader.join().unwrap() {
            if line.starts_with("ACK ") {
                parse_ack(&line, &mut acked);
            } else if let Some(ids) = line.strip_prefix("BEGIN ") {
                begun.push(ids.split(',').map(|s| s.parse().unwrap()).collect());
            }
        }
        check(&log_dir, &acked, &begun, cycle);
    }
    assert!(kills_during_load >= 18, "most kills must land during load");
    assert!(
        acked.len() > 500,
        "children acknowledged only {} events",
        acked.len()
    );
    println!(
        "{} acknowledged events survived {CYCLES} SIGKILLs",
        acked.len()
    );
}

fn check(log_dir: &std::path::Path, acked: &HashMap<Uuid, Acked>, begun: &[Vec<Uuid>], cycle: u64) {
    let started = Instant::now();
    let log = RocksLog::open(log_dir, LogOptions::default()).expect("reopen after kill");
    for (id, a) in acked {
        let e = log
            .find_event_blocking(*id)
            .unwrap()
            .unwrap_or_else(|| panic!("cycle {cycle}: acknowledged event {id} lost"));
        assert_eq!(e.stream.as_str(), a.stream, "cycle {cycle}: stream of {id}");
        assert_eq!(e.version, a.version, "cycle {cycle}: version of {id}");
        assert_eq!(e.position, a.position, "cycle {cycle}: position of {id}");
        assert_eq!(
            e.payload,
            payload_for(a.seed, a.len),
            "cycle {cycle}: payload of {id}"
        );
        assert_eq!(e.event_type, "CrashTested");
        assert!(matches!(
            e.metadata,
            Metadata {
                acting_user: Some(_),
                ..
            }
        ));
    }
    // No torn append: all of its events or none, contiguous in one stream.
    for ids in begun {
        let found: Vec<_> = ids
            .iter()
            .map(|id| log.find_event_blocking(*id).unwrap())
            .collect();
        let present = found.iter().filter(|e| e.is_some()).count();
        assert!(
            present == 0 || present == ids.len(),
            "cycle {cycle}: torn append {ids:?}"
        );
        if present == ids.len() {
            let evs: Vec<_> = found.into_iter().flatten().collect();
            for w in evs.windows(2) {
                assert_eq!(w[0].stream, w[1].stream);
                assert_eq!(w[0].version + 1, w[1].version);
                assert_eq!(w[0].position + 1, w[1].position);
            }
        }
    }
    // $all and every stream are contiguous.
    let mut versions: HashMap<String, u64> = HashMap::new();
    let mut from = 0;
    loop {
        let page = log.read_all_blocking(from, 4096).unwrap();
        let Some(last) = page.last() else { break };
        for (i, e) in page.iter().enumerate() {
            assert_eq!(e.position, from + i as u64, "cycle {cycle}: $all gap");
            let next = versions.entry(e.stream.to_string()).or_insert(0);
            assert_eq!(e.version, *next, "cycle {cycle}: gap in {}", e.stream);
            *next += 1;
        }
        from = last.position + 1;
    }
    assert_eq!(log.next_position(), from);
    let unique: HashSet<_> = acked.keys().collect();
    assert!(from >= unique.len() as u64);
    for (name, count) in &versions {
        let s = stream(name);
        assert_eq!(log.stream_version_blocking(&s).unwrap(), Some(count - 1));
        let tail = log
            .read_stream_blocking(&s, u64::MAX, Direction::Backward, 1)
            .unwrap();
        assert_eq!(tail[0].version, count - 1);
    }
    let report = log.verify_all_blocking().unwrap();
    assert!(report.is_ok(), "cycle {cycle}: {:?}", report.first_break);
    assert_eq!(report.events_checked, from);
    log.shutdown();
    drop(log);
    println!(
        "cycle {cycle}: {} events, {} acknowledged, checked in {:?}",
        from,
        acked.len(),
        started.elapsed()
    );
}
