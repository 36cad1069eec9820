//! Applying events to a [`SearchIndex`]: documents are added to tantivy's writer and
//! committed with the checkpoint in the commit payload, once per batch.

use std::collections::HashMap;
use std::sync::Arc;

use domain::conversation::{ConversationStarted, InboundReceived, MessagePosted};
use domain::{ConversationEvent, ConversationId, OrgId};
use eventlog::RecordedEvent;
use tantivy::{IndexWriter, TantivyDocument};

use super::{payload, schema, Author, SearchIndex};
use crate::error::ProjectionError;
use crate::runner::ReadModel;

/// Indexing threads of a writer by default (the server runs beside it).
pub const DEFAULT_THREADS: usize = 1;
/// Memory budget of a writer by default, in bytes (tantivy needs at least 15 MB a thread).
pub const DEFAULT_MEMORY_BUDGET: usize = 32 * 1024 * 1024;
/// A batch that adds no document is committed anyway (to move the stored checkpoint) once
/// this many events have passed since the last commit.
pub const COMMIT_EVERY_EVENTS: u64 = 100_000;
/// Memory budget of a rebuild's writer, in bytes, shared by its threads (8 × the server's:
/// fewer segments to write and merge; measured with `cargo bench --bench replay`, larger
/// budgets do not go faster, they only move serialization to the end of the rebuild).
pub const REBUILD_MEMORY_BUDGET: usize = 256 * 1024 * 1024;
/// Indexing threads of a rebuild's writer at most (one per core up to this).
pub const REBUILD_THREADS: usize = 4;
/// A rebuild commits (storing its checkpoint) once this many events have passed, not
/// once per batch: nobody queries a generation being built, and each commit costs a
/// segment flush and more merging.
pub const REBUILD_COMMIT_EVERY_EVENTS: u64 = 2_000_000;
/// Organizations of conversations kept in memory before the cache is dropped.
const CACHE_LIMIT: usize = 200_000;

/// The only events the model reads (their payloads are decoded; everything else is
/// skipped by type name, which keeps a rebuild fast).
const INDEXED_TYPES: [&str; 3] = ["ConversationStarted", "MessagePosted", "InboundReceived"];

/// Writes a [`SearchIndex`]. One per index (tantivy holds a lock on the directory).
pub struct SearchWriter {
    index: Arc<SearchIndex>,
    /// `None` only while being dropped.
    writer: Option<IndexWriter>,
    checkpoint: Option<u64>,
    /// Conversation → organization, for conversations whose start is committed.
    orgs: HashMap<ConversationId, OrgId>,
    /// Conversations started in the batch being applied (not committed yet).
    pending: HashMap<ConversationId, OrgId>,
    since_commit: u64,
    /// The checkpoint of the last commit (what a failed batch falls back to).
    committed: Option<u64>,
    /// `None`: commit every batch that adds a document (a server's writer). `Some(n)`:
    /// commit once `n` events have passed (a rebuild's).
    commit_every: Option<u64>,
}

impl SearchWriter {
    /// A writer with [`DEFAULT_THREADS`] and [`DEFAULT_MEMORY_BUDGET`].
    ///
    /// # Errors
    /// When the index is locked by another writer or its checkpoint cannot be read.
    pub fn new(index: Arc<SearchIndex>) -> Result<Self, ProjectionError> {
        Self::with_resources(index, DEFAULT_THREADS, DEFAULT_MEMORY_BUDGET)
    }

    /// A writer with `threads` indexing threads sharing `memory_budget` bytes (a rebuild
    /// may use more than the server does).
    ///
    /// # Errors
    /// As [`Self::new`], or a budget below tantivy's minimum.
    pub fn with_resources(
        index: Arc<SearchIndex>,
        threads: usize,
        memory_budget: usize,
    ) -> Result<Self, ProjectionError> {
        let writer = index
            .index()
            .writer_with_num_threads(threads.max(1), memory_budget)?;
        let checkpoint = index.checkpoint()?;
        Ok(Self {
            index,
            writer: Some(writer),
            checkpoint,
            orgs: HashMap::new(),
            pending: HashMap::new(),
            since_commit: 0,
            committed: checkpoint,
            commit_every: None,
        })
    }

    /// The writer of a rebuild: one indexing thread per core (up to [`REBUILD_THREADS`])
    /// sharing [`REBUILD_MEMORY_BUDGET`], committing every
    /// [`REBUILD_COMMIT_EVERY_EVENTS`] events and when dropped (so the generation's stored
    /// checkpoint is its end once the writer is closed).
    ///
    /// # Errors
    /// As [`Self::new`].
    pub fn for_rebuild(index: Arc<SearchIndex>) -> Result<Self, ProjectionError> {
        let threads = std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .min(REBUILD_THREADS);
        let mut w = Self::with_resources(index, threads, REBUILD_MEMORY_BUDGET)?;
        w.commit_every = Some(REBUILD_COMMIT_EVERY_EVENTS);
        Ok(w)
    }

    fn writer(&mut self) -> Result<&mut IndexWriter, ProjectionError> {
        self.writer
            .as_mut()
            .ok_or_else(|| ProjectionError::Search("the writer is closed".into()))
    }

    fn org_of(&mut self, conv: &ConversationId) -> Result<Option<OrgId>, ProjectionError> {
        if let Some(org) = self.pending.get(conv).or_else(|| self.orgs.get(conv)) {
            return Ok(Some(*org));
        }
        let org = self.index.org_of(conv)?;
        if let Some(org) = org {
            self.orgs.insert(*conv, org);
        }
        Ok(org)
    }

    /// Adds the documents of one event; how many.
    fn apply_one(&mut self, record: &RecordedEvent) -> Result<usize, ProjectionError> {
        if record.stream.category() != "conversation"
            || !INDEXED_TYPES.contains(&record.event_type.as_str())
        {
            return Ok(0);
        }
        let Ok(conv) = record.stream.id().parse::<ConversationId>() else {
            return Ok(0);
        };
        let event: ConversationEvent = actors::event_codec::decode(record).map_err(|e| {
            ProjectionError::Corrupt(format!(
                "{} at position {}: {e}",
                record.event_type, record.position
            ))
        })?;
        let f = *self.index.fields();
        let doc = match &event {
            ConversationEvent::ConversationStarted(ConversationStarted { org, .. }) => {
                self.pending.insert(conv, *org);
                let mut d = TantivyDocument::new();
                d.add_text(f.kind, schema::KIND_CONVERSATION);
                d.add_text(f.org, org.to_string());
                d.add_text(f.conv, conv.to_string());
                d.add_u64(f.position, record.position);
                d
            }
            ConversationEvent::MessagePosted(MessagePosted {
                message_id,
                seq,
                author,
                text,
                at_ms,
                ..
            }) => {
                let Some(org) = self.org_of(&conv)? else {
                    return Ok(0);
                };
                message_doc(
                    &f,
                    org,
                    conv,
                    &message_id.to_string(),
                    *seq,
                    &Author::User(*author),
                    text,
                    *at_ms,
                    record.position,
                )
            }
            ConversationEvent::InboundReceived(InboundReceived {
                message_id,
                seq,
                from,
                text,
                at_ms,
                ..
            }) => {
                let Some(org) = self.org_of(&conv)? else {
                    return Ok(0);
                };
                message_doc(
                    &f,
                    org,
                    conv,
                    &message_id.to_string(),
                    *seq,
                    &Author::External(from.clone()),
                    text,
                    *at_ms,
                    record.position,
                )
            }
            _ => return Ok(0),
        };
        self.writer()?.add_document(doc)?;
        Ok(1)
    }

    /// Commits everything added with `checkpoint` in the payload, atomically, and makes it
    /// searchable.
    fn commit(&mut self, checkpoint: u64) -> Result<(), ProjectionError> {
        let writer = self.writer()?;
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&payload(checkpoint));
        prepared.commit()?;
        self.index.reload()?;
        self.since_commit = 0;
        self.committed = Some(checkpoint);
        if self.orgs.len() + self.pending.len() > CACHE_LIMIT {
            self.orgs.clear();
        }
        self.orgs.extend(self.pending.drain());
        Ok(())
    }

    /// Forgets everything added since the last commit (nothing of it is stored) and goes
    /// back to that commit's checkpoint.
    fn abort(&mut self) {
        self.pending.clear();
        self.checkpoint = self.committed;
        self.since_commit = 0;
        if let Some(w) = self.writer.as_mut() {
            if let Err(e) = w.rollback() {
                tracing::warn!(error = %e, "search writer rollback failed");
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn message_doc(
    f: &schema::Fields,
    org: OrgId,
    conv: ConversationId,
    message_id: &str,
    seq: u64,
    author: &Author,
    text: &str,
    at_ms: u64,
    position: u64,
) -> TantivyDocument {
    let mut d = TantivyDocument::new();
    d.add_text(f.org, org.to_string());
    d.add_text(f.conv, conv.to_string());
    d.add_text(f.message_id, message_id);
    d.add_text(f.author, author.encode());
    d.add_text(f.text, text);
    d.add_u64(f.seq, seq);
    d.add_u64(f.at_ms, at_ms);
    d.add_u64(f.position, position);
    d
}

impl ReadModel for SearchWriter {
    fn name(&self) -> &'static str {
        super::NAME
    }

    fn checkpoint(&self) -> Option<u64> {
        self.checkpoint
    }

    fn apply_batch(&mut self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let Some(last) = events.last() else {
            return Ok(());
        };
        let mut added = 0usize;
        let mut applied = 0u64;
        for e in events {
            if self.checkpoint.is_some_and(|c| e.position <= c) {
                continue;
            }
            applied += 1;
            match self.apply_one(e) {
                Ok(n) => added += n,
                Err(err) => {
                    self.abort();
                    return Err(err);
                }
            }
        }
        if applied == 0 {
            return Ok(());
        }
        let checkpoint = self
            .checkpoint
            .map_or(last.position, |c| c.max(last.position));
        self.since_commit += applied;
        let due = match self.commit_every {
            None => added > 0 || self.since_commit >= COMMIT_EVERY_EVENTS,
            Some(every) => self.since_commit >= every,
        };
        if due {
            if let Err(err) = self.commit(checkpoint) {
                self.abort();
                return Err(err);
            }
        }
        self.checkpoint = Some(checkpoint);
        Ok(())
    }
}

impl SearchWriter {
    /// Commits what was applied since the last commit (documents of a rebuild, or a
    /// checkpoint that moved over events indexing nothing), lets merges finish and
    /// releases the directory lock, reporting errors (dropping does the same, logging
    /// them).
    ///
    /// # Errors
    /// Index errors; the last commit then stands.
    pub fn close(mut self) -> Result<(), ProjectionError> {
        if let (true, Some(checkpoint)) = (self.since_commit > 0, self.checkpoint) {
            self.commit(checkpoint)?;
        }
        if let Some(w) = self.writer.take() {
            w.wait_merging_threads()?;
        }
        Ok(())
    }
}

impl Drop for SearchWriter {
    /// As [`SearchWriter::close`], logging errors: the directory lock is released before
    /// the index is reopened or its generation deleted.
    fn drop(&mut self) {
        if let (true, Some(checkpoint)) = (self.since_commit > 0, self.checkpoint) {
            if let Err(e) = self.commit(checkpoint) {
                tracing::warn!(error = %e, "search checkpoint not stored on close");
            }
        }
        if let Some(w) = self.writer.take() {
            if let Err(e) = w.wait_merging_threads() {
                tracing::warn!(error = %e, "search writer did not close cleanly");
            }
        }
    }
}
