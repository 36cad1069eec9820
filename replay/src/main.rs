//! `replay`: reads a Switchboard data directory read-only (safe while the server runs).
//!
//! - `replay verify [--stream S] [--checkpoint FILE [--public-key KEY]]`: checks hash
//!   chains, `$all` contiguity and every index; with a signed checkpoint, also that the log
//!   still holds every event up to it, unchanged (a removed tail or a rewritten stream);
//!   exits 1 and names the first broken link on tampering or corruption.
//! - `replay stream <name> [--format text|jsonl]`: prints one stream's full history.
//! - `replay stats`: streams, events and bytes per category and per column family.
//! - `replay conversation <id> [--format text|jsonl] [--as-of TIME]`: a conversation's
//!   full history, decoded and with names, and its state at the end (or at TIME).
//! - `replay rebuild <read-model>|all [--no-switch]`: rebuilds a read model (interactions,
//!   search, queues; `all`: every one at once) into a new generation beside the live one
//!   and switches to it atomically (blue/green), with progress and events/s.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use eventlog::{Direction, EventStore, RecordedEvent, RocksLog, StreamName};

/// The event log allocates a few small buffers per event read or written; glibc's malloc
/// spends more time on them than the log does (measured with `cargo bench --bench log_read`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "replay",
    version,
    about = "Audit and inspect a Switchboard event log"
)]
struct Cli {
    /// The server's data directory (a cluster node's: its replica of the log is read).
    #[arg(long, default_value = "./data", global = true)]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Jsonl,
}

#[derive(Subcommand)]
enum Command {
    /// Verify hash chains and indexes; exit code 1 names the first broken link.
    Verify {
        /// Verify only this stream.
        #[arg(long)]
        stream: Option<String>,
        /// A signed checkpoint (the server's `checkpoints/*.json`, a backup's
        /// `checkpoint.json`): prove the log still holds every event up to it, unchanged.
        #[arg(long, conflicts_with = "stream")]
        checkpoint: Option<PathBuf>,
        /// The public key the checkpoint must be signed with (64 hex digits, or a file
        /// holding them, e.g. the server's `checkpoint.pub` kept elsewhere).
        #[arg(long, requires = "checkpoint")]
        public_key: Option<String>,
    },
    /// Print a stream's full history.
    Stream {
        name: String,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Streams, events and sizes per category.
    Stats,
    /// A conversation's full history for an auditor: messages, state changes,
    /// assignments, system messages, delivery states, read receipts.
    Conversation {
        id: domain::ConversationId,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Stop at this moment (RFC 3339, e.g. 2026-11-21T10:00:00Z) and show the state
        /// then.
        #[arg(long, value_parser = parse_time)]
        as_of: Option<u64>,
    },
    /// Rebuild a read model beside the live one, then switch to it atomically.
    Rebuild {
        /// The read model: interactions, search, queues, or all (every model at once).
        model: String,
        /// Build the new generation but leave the live one in place.
        #[arg(long)]
        no_switch: bool,
    },
}

/// The log still holds every event the checkpoint in `file` covers, unchanged.
fn verify_checkpoint(
    log: &RocksLog,
    file: &std::path::Path,
    public_key: Option<&str>,
) -> anyhow::Result<ExitCode> {
    use eventlog::checkpoint::{self, AllDigest, Checkpoint};
    let trusted = public_key.map(checkpoint::parse_public_key).transpose()?;
    let cp = Checkpoint::read(file)?;
    let vouched = match cp.verify_signature(trusted.as_ref()) {
        Ok(v) => v,
        Err(e) => {
            println!("FAILED: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    if trusted.is_none() {
        println!(
            "note: checked against the key the checkpoint names ({}); pass --public-key to \
             check it against a key you trust",
            cp.public_key
        );
    }
    let mut digest = AllDigest::EMPTY;
    let folded = checkpoint::fold_log(log, &mut digest, vouched.position, |_| {});
    let held = log.next_position();
    let outcome = folded
        .map_err(|e| e.to_string())
        .and_then(|()| Checkpoint::check(&vouched, &digest, held).map_err(|e| e.to_string()));
    match outcome {
        Ok(()) => {
            println!(
                "OK: the log holds all {} events of the checkpoint signed at {} ms, unchanged \
                 ({held} events now)",
                vouched.position, cp.created_at_ms
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("FAILED: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// RFC 3339 → microseconds since the epoch.
fn parse_time(s: &str) -> Result<u64, String> {
    let t = humantime::parse_rfc3339_weak(s)
        .map_err(|e| format!("{e} (use RFC 3339, e.g. 2026-11-21T10:00:00Z)"))?;
    let d = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| "a time before 1970".to_owned())?;
    u64::try_from(d.as_micros()).map_err(|_| "a time too far ahead".to_owned())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("replay: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // A node of a cluster keeps its replica of the log in `replica/` (its chains link
    // without positions, which the replica's own metadata says); one machine's log is
    // `log/`.
    let replica = cli.data_dir.join("replica");
    let path = if !cli.data_dir.join("log").exists() && replica.exists() {
        replica
    } else {
        cli.data_dir.join("log")
    };
    let log = RocksLog::open_read_only(&path)
        .with_context(|| format!("opening {} read-only", path.display()))?;
    // Message texts are sealed under keys kept beside the log (`keys/`); a text whose key
    // was destroyed (erasure, retention) reads as erased.
    let keys = cli.data_dir.join("keys");
    let keyring = eventlog::keyring::Keyring::open_read_only(&keys)
        .with_context(|| format!("opening {} read-only", keys.display()))?;
    let log = log.with_keyring(Arc::new(keyring));
    match cli.command {
        Command::Verify {
            stream,
            checkpoint,
            public_key,
        } => {
            let report = match stream {
                Some(s) => log.verify_stream_blocking(&StreamName::new(s)?)?,
                None => log.verify_all_blocking()?,
            };
            println!(
                "checked {} events in {} streams",
                report.events_checked, report.streams_checked
            );
            if let Some(b) = report.first_break {
                println!("FAILED: {b}");
                return Ok(ExitCode::from(1));
            }
            println!("OK: every chain verifies");
            match checkpoint {
                Some(file) => verify_checkpoint(&log, &file, public_key.as_deref()),
                None => Ok(ExitCode::SUCCESS),
            }
        }
        Command::Stream { name, format } => {
            let stream = StreamName::new(name)?;
            let mut from = 0;
            loop {
                let page = log.read_stream_blocking(&stream, from, Direction::Forward, 1024)?;
                let Some(last) = page.last() else { break };
                from = last.version + 1;
                for e in &page {
                    match format {
                        Format::Text => println!("{}", text_line(e)),
                        Format::Jsonl => println!("{}", json_line(e)),
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Conversation { id, format, as_of } => {
            let format = match format {
                Format::Text => replay::conversation::Format::Text,
                Format::Jsonl => replay::conversation::Format::Jsonl,
            };
            replay::conversation::print(&log, id, format, as_of, &mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Rebuild { model, no_switch } => {
            rebuild(&log, &cli.data_dir.join("readmodels"), &model, !no_switch)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats => {
            let mut per_category: BTreeMap<String, (BTreeMap<String, ()>, u64, u64)> =
                BTreeMap::new();
            let mut from = 0;
            loop {
                let page = log.read_all_blocking(from, 4096)?;
                let Some(last) = page.last() else { break };
                from = last.position + 1;
                for e in &page {
                    let c = per_category
                        .entry(e.stream.category().to_owned())
                        .or_default();
                    c.0.insert(e.stream.to_string(), ());
                    c.1 += 1;
                    c.2 += e.payload.len() as u64;
                }
            }
            println!(
                "{:<24} {:>10} {:>12} {:>14}",
                "category", "streams", "events", "payload bytes"
            );
            for (cat, (streams, events, bytes)) in &per_category {
                println!("{cat:<24} {:>10} {events:>12} {bytes:>14}", streams.len());
            }
            println!();
            println!(
                "{:<24} {:>12} {:>14}",
                "column family", "~keys", "sst bytes"
            );
            for (cf, keys, bytes) in log.column_family_stats()? {
                println!("{cf:<24} {keys:>12} {bytes:>14}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `replay rebuild`: one model or all of them, with a progress line on stderr (redrawn at
/// most every 200 ms) and a summary line per model on stdout.
fn rebuild(
    log: &RocksLog,
    readmodels: &std::path::Path,
    model: &str,
    switch: bool,
) -> anyhow::Result<()> {
    use std::sync::Mutex;
    use std::time::Instant;

    let head = log.next_position().max(1);
    let started = Instant::now();
    // Per model: (events, position); and when the line was last drawn.
    let state = Mutex::new((BTreeMap::<&str, (u64, u64)>::new(), started));
    let draw = |name: &'static str, events: u64, position: u64| {
        let mut s = state.lock().expect("not poisoned");
        s.0.insert(name, (events, position));
        // Drawn at most every 200 ms, and whenever a model reaches the end of the log.
        if s.1.elapsed().as_millis() < 200 && position + 1 < head {
            return;
        }
        s.1 = Instant::now();
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a progress line: a percentage in [0, 100] and a rate, rounded for display"
        )]
        let line: Vec<String> =
            s.0.iter()
                .map(|(name, (events, position))| {
                    let pct = (position + 1) as f64 * 100.0 / head as f64;
                    let bar = "#".repeat((pct / 5.0) as usize);
                    format!(
                        "{name}: [{bar:<20}] {pct:5.1}% {events} events, {:.0} events/s",
                        *events as f64 / secs
                    )
                })
                .collect();
        eprint!("\r{} ", line.join(" | "));
    };
    let summary = |r: &replay::rebuild::Report| {
        println!(
            "rebuilt {} into {} from {} events in {:.2} s ({:.0} events/s){}",
            r.model,
            r.generation,
            r.events,
            r.elapsed.as_secs_f64(),
            r.events_per_s(),
            if switch {
                "; now live"
            } else {
                "; not switched"
            }
        );
    };
    let store: std::sync::Arc<dyn EventStore> = std::sync::Arc::new(log.clone());
    if model == replay::rebuild::ALL {
        let report = replay::rebuild::rebuild_all(store, readmodels, switch, draw)?;
        eprintln!();
        for r in &report.models {
            summary(r);
        }
        println!(
            "rebuilt {} read models from {} events in {:.2} s ({:.0} events/s)",
            report.models.len(),
            report.events(),
            report.elapsed.as_secs_f64(),
            report.events_per_s()
        );
    } else {
        let name = replay::rebuild::MODELS
            .iter()
            .copied()
            .find(|m| *m == model)
            .unwrap_or("?");
        let report =
            replay::rebuild::rebuild(store, readmodels, model, switch, |events, position| {
                draw(name, events, position);
            })?;
        eprintln!();
        summary(&report);
    }
    Ok(())
}

fn text_line(e: &RecordedEvent) -> String {
    let payload = match std::str::from_utf8(&e.payload) {
        Ok(s) => s.to_owned(),
        Err(_) => format!("<{} bytes>", e.payload.len()),
    };
    format!(
        "#{:<5} pos {:<8} t={}us {} v{} by {} {}",
        e.version,
        e.position,
        e.timestamp_us,
        e.event_type,
        e.schema_version,
        e.metadata.acting_user.as_deref().unwrap_or("system"),
        payload
    )
}

fn json_line(e: &RecordedEvent) -> serde_json::Value {
    serde_json::json!({
        "stream": e.stream.as_str(),
        "version": e.version,
        "position": e.position,
        "event_id": e.event_id.to_string(),
        "event_type": e.event_type,
        "schema_version": e.schema_version,
        "timestamp_us": e.timestamp_us,
        "causation_id": e.metadata.causation_id.map(|u| u.to_string()),
        "correlation_id": e.metadata.correlation_id.map(|u| u.to_string()),
        "acting_user": e.metadata.acting_user,
        "payload_utf8": std::str::from_utf8(&e.payload).ok(),
        "payload_len": e.payload.len(),
        "hash": eventlog::hex::encode(&e.hash),
        "prev_hash": eventlog::hex::encode(&e.prev_hash),
    })
}
