//! `replay rebuild <read-model>`: builds a new generation of a read model from the log
//! beside the live one (the server keeps serving the old generation meanwhile), closes it,
//! then makes it live by replacing `CURRENT` atomically. A running server notices, lets the
//! new generation catch up from its checkpoint with what was written since, swaps it in
//! for queries and deletes the old one.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use eventlog::EventStore;
use projections::interactions::{InteractionsDb, InteractionsWriter, NAME};
use projections::{follow_blocking, ModelHome};

/// The read models `rebuild` knows.
pub const MODELS: &[&str] = &[NAME];

/// What a rebuild did.
#[derive(Debug, Clone)]
pub struct Report {
    pub generation: String,
    pub events: u64,
    pub elapsed: Duration,
    pub checkpoint: Option<u64>,
}

impl Report {
    pub fn events_per_s(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Rebuilds `model` under `readmodels` from `log` (which should be read-only, so the
/// follow ends at the log's end). `progress(events, position)` is called after every
/// batch. With `switch`, the new generation becomes live at the end.
///
/// # Errors
/// Unknown model, storage errors, undecodable events.
pub fn rebuild(
    log: Arc<dyn EventStore>,
    readmodels: &Path,
    model: &str,
    switch: bool,
    mut progress: impl FnMut(u64, u64),
) -> anyhow::Result<Report> {
    anyhow::ensure!(
        MODELS.contains(&model),
        "unknown read model {model:?}; known: {}",
        MODELS.join(", ")
    );
    let home = ModelHome::new(readmodels, model);
    let generation = home.new_generation().context("creating a new generation")?;
    let started = Instant::now();
    let mut events = 0u64;
    let checkpoint = {
        let db = Arc::new(InteractionsDb::open(&home.path_of(&generation))?);
        let mut writer = InteractionsWriter::new(db.clone())?;
        let (tx, _) = tokio::sync::watch::channel(None);
        follow_blocking(log, &mut writer, &tx, &AtomicBool::new(false), |n, pos| {
            events += n as u64;
            progress(events, pos);
        })?;
        db.store().flush()?;
        db.checkpoint()?
    };
    if switch {
        home.switch_to(&generation)
            .context("switching to the new generation")?;
    }
    Ok(Report {
        generation,
        events,
        elapsed: started.elapsed(),
        checkpoint,
    })
}
