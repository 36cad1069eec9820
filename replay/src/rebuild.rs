//! `replay rebuild <read-model>`: builds a new generation of a read model from the log
//! beside the live one (the server keeps serving the old generation meanwhile), closes it,
//! then makes it live by replacing `CURRENT` atomically. A running server notices, lets the
//! new generation catch up from its checkpoint with what was written since, swaps it in
//! for queries and deletes the old one.
//!
//! Every read model is rebuilt the same way, through its [`ModelKind`] (its rebuild writer
//! and how to close a generation durably). [`rebuild_models`] rebuilds any set of models
//! in one pass over the log: this thread reads `$all` in pages of [`PAGE`] events and
//! hands each page to every model's own thread, which applies it as one batch (with its
//! checkpoint). So `replay rebuild all` reads the log once and decodes each event once
//! (the models share each [`Page`]), and the models apply in parallel, the slowest
//! setting the pace. [`rebuild`] is the one-model case.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use eventlog::EventStore;
use projections::interactions::InteractionsModel;
use projections::queues::QueuesModel;
use projections::search::SearchModel;
use projections::{ModelHome, ModelKind, Page, ReadModel};

/// The read models `rebuild` knows, by name.
pub const MODELS: &[&str] = &[
    projections::interactions::NAME,
    projections::search::NAME,
    projections::queues::NAME,
];

/// The name that rebuilds every model in [`MODELS`].
pub const ALL: &str = "all";

/// Events read from the log per page; each model applies a page as one batch.
pub const PAGE: usize = projections::runner::MAX_BATCH;

/// Pages read ahead of the slowest model at most.
const READ_AHEAD_PAGES: usize = 4;

/// What the rebuild of one model did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The model rebuilt.
    pub model: &'static str,
    pub generation: String,
    /// Events applied (every event of the log: each model skips what it ignores).
    pub events: u64,
    /// From the start of the rebuild until this model's generation was complete.
    pub elapsed: Duration,
    /// The position the new generation has applied (stored with its data).
    pub checkpoint: Option<u64>,
    /// Of `elapsed`, closing the generation after its last batch (a search index commits
    /// and serializes what its writer holds in memory).
    pub closing: Duration,
}

impl Report {
    #[allow(clippy::cast_precision_loss, reason = "a rate, printed rounded")]
    pub fn events_per_s(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// What [`rebuild_models`] did: one report per model, and the wall-clock time of the
/// whole.
#[derive(Debug, Clone)]
pub struct AllReport {
    pub models: Vec<Report>,
    pub elapsed: Duration,
}

impl AllReport {
    /// Events in the log (each model applied all of them).
    pub fn events(&self) -> u64 {
        self.models.iter().map(|r| r.events).max().unwrap_or(0)
    }

    /// Log events per second of wall-clock time until every model was complete.
    #[allow(clippy::cast_precision_loss, reason = "a rate, printed rounded")]
    pub fn events_per_s(&self) -> f64 {
        self.events() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Rebuilds `model` (one of [`MODELS`]) under `readmodels` from `log` (read to its end as
/// it is when the rebuild starts: open it read-only while a server runs).
/// `progress(events, position)` is called after every batch. With `switch`, the new
/// generation becomes live at the end.
///
/// # Errors
/// Unknown model, storage errors, undecodable events.
pub fn rebuild(
    log: Arc<dyn EventStore>,
    readmodels: &Path,
    model: &str,
    switch: bool,
    progress: impl FnMut(u64, u64) + Send,
) -> anyhow::Result<Report> {
    let progress = Mutex::new(progress);
    let mut all = rebuild_models(log, readmodels, &[model], switch, |_, events, position| {
        (progress.lock().expect("not poisoned"))(events, position);
    })?;
    all.models.pop().context("no report")
}

/// Rebuilds every model in [`MODELS`] in one pass over the log (see [`rebuild_models`]).
///
/// # Errors
/// As [`rebuild_models`].
pub fn rebuild_all(
    log: Arc<dyn EventStore>,
    readmodels: &Path,
    switch: bool,
    progress: impl Fn(&'static str, u64, u64) + Sync,
) -> anyhow::Result<AllReport> {
    rebuild_models(log, readmodels, MODELS, switch, progress)
}

/// Rebuilds `models` (names from [`MODELS`]; [`ALL`] stands for every one) in one pass
/// over `log`: this thread reads `$all` page by page and each model applies every page on
/// a thread of its own, into a new generation. With `switch`, each generation becomes
/// live as soon as it is complete. `progress(model, events, position)` is called after
/// every batch of every model, from their threads.
///
/// A model that fails stops alone (its generation is removed) and the others finish; if
/// the log cannot be read to its end, no model switches.
///
/// # Errors
/// An unknown name (before anything is built), or the first failure.
pub fn rebuild_models(
    log: Arc<dyn EventStore>,
    readmodels: &Path,
    models: &[&str],
    switch: bool,
    progress: impl Fn(&'static str, u64, u64) + Sync,
) -> anyhow::Result<AllReport> {
    let mut names: Vec<&'static str> = Vec::new();
    for m in models {
        if *m == ALL {
            names.extend(MODELS);
        } else if let Some(known) = MODELS.iter().find(|k| *k == m) {
            names.push(known);
        } else {
            anyhow::bail!(
                "unknown read model {m:?}; known: {}, or {ALL}",
                MODELS.join(", ")
            );
        }
    }
    names.dedup();
    let started = Instant::now();
    let complete = AtomicBool::new(false);
    let (progress, complete) = (&progress, &complete);
    let results: Vec<anyhow::Result<Report>> = std::thread::scope(|s| {
        let mut senders: Vec<SyncSender<Arc<Page>>> = Vec::new();
        let mut handles = Vec::new();
        for name in &names {
            let name = *name;
            let (tx, rx) = mpsc::sync_channel(READ_AHEAD_PAGES);
            let build = Builder {
                sealer: actors::sealing::Sealer::of(&*log),
                readmodels,
                pages: rx,
                complete,
                switch,
                started,
                progress,
            };
            let handle = std::thread::Builder::new()
                .name(format!("rebuild-{name}"))
                .spawn_scoped(s, move || match name {
                    projections::interactions::NAME => build.run::<InteractionsModel>(),
                    projections::search::NAME => build.run::<SearchModel>(),
                    _ => build.run::<QueuesModel>(),
                });
            match handle {
                Ok(h) => {
                    senders.push(tx);
                    handles.push(h);
                }
                Err(e) => {
                    return vec![Err(
                        anyhow::Error::new(e).context("starting a rebuild thread")
                    )]
                }
            }
        }
        let read = read_pages(log.as_ref(), &mut senders);
        if read.is_ok() {
            complete.store(true, Ordering::Release);
        }
        drop(senders);
        let mut results: Vec<anyhow::Result<Report>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a rebuild thread panicked")))
            })
            .collect();
        if let Err(e) = read {
            results.insert(0, Err(e));
        }
        results
    });
    let models = results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    Ok(AllReport {
        models,
        elapsed: started.elapsed(),
    })
}

/// Reads `$all` to its end in pages, handing each to every sender still listening.
fn read_pages(
    log: &dyn EventStore,
    senders: &mut Vec<SyncSender<Arc<Page>>>,
) -> anyhow::Result<()> {
    let mut from = 0;
    // Pages handed out, oldest first. Each is dropped here once every model is done with
    // it, so its memory is freed by the thread that allocated it (a cheaper free, and
    // memory this thread reuses at once for the next pages).
    let mut in_flight: VecDeque<Arc<Page>> = VecDeque::new();
    while !senders.is_empty() {
        let page = log
            .read_all_blocking(from, PAGE)
            .with_context(|| format!("reading the log from position {from}"))?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        from = last.position + 1;
        // Shared by every model: each payload is decoded once, by the first model that
        // reads it.
        let page = Arc::new(Page::new(page));
        // A model that failed has dropped its receiver: it is left out from then on.
        senders.retain(|tx| tx.send(page.clone()).is_ok());
        in_flight.push_back(page);
        while in_flight.front().is_some_and(|p| Arc::strong_count(p) == 1) {
            in_flight.pop_front();
        }
    }
    Ok(())
}

/// One model's side of a rebuild.
struct Builder<'a, P> {
    readmodels: &'a Path,
    pages: Receiver<Arc<Page>>,
    complete: &'a AtomicBool,
    switch: bool,
    started: Instant,
    progress: &'a P,
    /// Opens the texts a model keeps readable (the search index).
    sealer: actors::sealing::Sealer,
}

impl<P: Fn(&'static str, u64, u64) + Sync> Builder<'_, P> {
    /// Builds a new generation of `K` from the pages, closes it durably and (with
    /// `switch`) makes it live; a failed build leaves no generation behind.
    fn run<K: ModelKind>(self) -> anyhow::Result<Report> {
        let home = ModelHome::new(self.readmodels, K::NAME);
        let generation = home
            .new_generation()
            .with_context(|| format!("creating a new generation of {}", K::NAME))?;
        let mut closing = Duration::ZERO;
        let built = (|| -> anyhow::Result<(u64, Option<u64>)> {
            let db = K::open(&home.path_of(&generation))?;
            let mut writer = K::rebuild_writer(db.clone())?;
            writer.open_texts_with(self.sealer.clone());
            let mut events = 0u64;
            for page in &self.pages {
                writer.apply_page(&page)?;
                events += page.records().len() as u64;
                if let Some(last) = page.records().last() {
                    (self.progress)(K::NAME, events, last.position);
                }
            }
            anyhow::ensure!(
                self.complete.load(Ordering::Acquire),
                "the log was not read to its end"
            );
            let close = Instant::now();
            let checkpoint = K::finish(&db, writer)?;
            closing = close.elapsed();
            Ok((events, checkpoint))
        })();
        let (events, checkpoint) = match built {
            Ok(b) => b,
            Err(e) => {
                // The generation's files are closed by now (writer and database dropped).
                let _ = home.remove(&generation);
                return Err(e.context(format!("rebuilding {} into {generation}", K::NAME)));
            }
        };
        if self.switch {
            home.switch_to(&generation)
                .with_context(|| format!("switching {} to {generation}", K::NAME))?;
        }
        Ok(Report {
            model: K::NAME,
            generation,
            events,
            elapsed: self.started.elapsed(),
            checkpoint,
            closing,
        })
    }
}
