//! Applying events to a [`SearchIndex`]: documents are added to tantivy's writer and
//! committed with the checkpoint in the commit payload: a server's writer at most every
//! [`COMMIT_INTERVAL`] (each commit flushes a segment per indexing thread, and segments
//! cost merging), a rebuild's every [`REBUILD_COMMIT_EVERY_EVENTS`] events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::conversation::{AutoReplyPosted, ConversationStarted, InboundReceived, MessagePosted};
use domain::{ConversationEvent, ConversationId, OrgId};
use tantivy::indexer::UserOperation;
use tantivy::{IndexWriter, TantivyDocument};

use super::demand::{commit_at, IDLE_COMMIT_INTERVALS};
use super::{payload, schema, AuthorRef, SearchIndex};
use crate::batch::{BatchWriter, FxHashMap, Projector, Stored, CACHE_LIMIT};
use crate::error::ProjectionError;
use crate::event::{category, Decoded, Event};

/// Indexing threads of a writer by default (the server runs beside it).
pub const DEFAULT_THREADS: usize = 1;
/// Memory budget of a writer by default, in bytes (tantivy needs at least 15 MB a thread).
pub const DEFAULT_MEMORY_BUDGET: usize = 32 * 1024 * 1024;
/// A server's writer commits documents at most this often when no search waits for them:
/// the first batch after a quiet spell is committed at once, and under load the documents
/// of every batch in the interval go into one commit (while it is searched; a search-idle
/// writer commits less often, [`super::demand`]). Searches see a document once it is
/// committed. A search that waits for a position (`after=`, read-your-writes) has it
/// committed sooner: at most [`WANTED_COMMIT_FLOOR`] after the last commit
/// ([`crate::runner::Wanted`]). Each commit costs about the same whatever it holds (a
/// segment written, then merged), so under load a longer interval is CPU saved.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(COMMIT_INTERVAL_MS);
/// [`COMMIT_INTERVAL`] in milliseconds.
pub const COMMIT_INTERVAL_MS: u64 = 1_000;
/// How soon after the last commit a search waiting for documents has them committed: at
/// most this many commits a second however many searches wait.
pub const WANTED_COMMIT_FLOOR: Duration = Duration::from_millis(100);

/// The server's commit interval in milliseconds ([`set_server_commit_interval`]).
static SERVER_COMMIT_INTERVAL_MS: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(COMMIT_INTERVAL_MS);

/// Sets the interval the writers made from now on by [`SearchWriter::new`] commit at most
/// once in (default [`COMMIT_INTERVAL`]): how long a new message may take to be found, and
/// how many segments a busy index writes and merges. Process-wide: a server sets it once
/// from its `--search-refresh-ms`, before its read models start.
pub fn set_server_commit_interval(interval: Duration) {
    let ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
    SERVER_COMMIT_INTERVAL_MS.store(ms, std::sync::atomic::Ordering::Relaxed);
}

fn server_commit_interval() -> Duration {
    Duration::from_millis(SERVER_COMMIT_INTERVAL_MS.load(std::sync::atomic::Ordering::Relaxed))
}
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
/// The only events the model reads (their payloads are decoded; everything else is
/// skipped by type name, which keeps a rebuild fast).
const INDEXED_TYPES: [&str; 4] = [
    "ConversationStarted",
    "MessagePosted",
    "InboundReceived",
    "AutoReplyPosted",
];

/// The writer of a [`SearchIndex`] (what a runner or a rebuild drives). One per index
/// (tantivy holds a lock on the directory).
pub type SearchWriter = BatchWriter<SearchProjector>;

impl SearchWriter {
    /// A writer with [`DEFAULT_THREADS`] and [`DEFAULT_MEMORY_BUDGET`], committing at most
    /// once per the server's interval ([`set_server_commit_interval`]).
    ///
    /// # Errors
    /// When the index is locked by another writer or its checkpoint cannot be read.
    pub fn new(index: Arc<SearchIndex>) -> Result<Self, ProjectionError> {
        Self::with_commit_interval(index, server_commit_interval())
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
        index.demand().settled();
        index.demand().set_fresh_within(COMMIT_INTERVAL);
        let projector = SearchProjector {
            index,
            writer: Some(writer),
            orgs: FxHashMap::default(),
            pending: FxHashMap::default(),
            since_commit: 0,
            uncommitted_docs: 0,
            applied: checkpoint,
            committed: checkpoint,
            visible: checkpoint,
            last_commit: None,
            last_stored: None,
            deleting: false,
            commit_interval: COMMIT_INTERVAL,
            commit_every: None,
            scratch: String::new(),
            batch: Vec::new(),
            sealer: actors::sealing::Sealer::clear(),
        };
        Ok(Self::resume(projector, checkpoint))
    }

    /// As [`Self::new`], committing documents at most every `interval` instead of the
    /// server's interval.
    ///
    /// # Errors
    /// As [`Self::new`].
    pub fn with_commit_interval(
        index: Arc<SearchIndex>,
        interval: Duration,
    ) -> Result<Self, ProjectionError> {
        let mut projector =
            Self::with_resources(index, DEFAULT_THREADS, DEFAULT_MEMORY_BUDGET)?.into_projector();
        projector.commit_interval = interval;
        projector.index.demand().set_fresh_within(interval);
        let checkpoint = projector.committed;
        Ok(Self::resume(projector, checkpoint))
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
        let mut projector =
            Self::with_resources(index, threads, REBUILD_MEMORY_BUDGET)?.into_projector();
        projector.commit_every = Some(REBUILD_COMMIT_EVERY_EVENTS);
        let checkpoint = projector.committed;
        Ok(Self::resume(projector, checkpoint))
    }

    /// Commits what was applied since the last commit (documents of a rebuild, or a
    /// checkpoint that moved over events indexing nothing), lets merges finish and
    /// releases the directory lock, reporting errors (dropping does the same, logging
    /// them).
    ///
    /// # Errors
    /// Index errors; the last commit then stands.
    pub fn close(self) -> Result<(), ProjectionError> {
        self.into_projector().close()
    }
}

/// Bytes of a document besides its text (ids, author, numbers, tantivy's framing).
const DOC_BYTES: usize = 224;

/// `id` as the index holds ids (hyphenated, lowercase: as `Display` writes it), written
/// into `buf`.
pub(super) fn id_str<'b>(id: &uuid::Uuid, buf: &'b mut [u8; 36]) -> &'b str {
    id.hyphenated().encode_lower(buf)
}

/// The text of an event that [`SearchProjector::document`] indexes.
fn text_of(event: &ConversationEvent) -> Option<&domain::text::Text> {
    match event {
        ConversationEvent::MessagePosted(MessagePosted { text, .. })
        | ConversationEvent::InboundReceived(InboundReceived { text, .. })
        | ConversationEvent::AutoReplyPosted(AutoReplyPosted { text, .. }) => Some(text),
        _ => None,
    }
}

/// Adds the documents of events to tantivy's writer and commits them with the checkpoint
/// in the commit payload.
pub struct SearchProjector {
    index: Arc<SearchIndex>,
    /// `None` only while being dropped.
    writer: Option<IndexWriter>,
    /// Conversation → organization, for conversations whose start is committed.
    orgs: FxHashMap<ConversationId, OrgId>,
    /// Conversations started since the last commit.
    pending: FxHashMap<ConversationId, OrgId>,
    /// Events applied since the last commit.
    since_commit: u64,
    /// Documents added since the last commit.
    uncommitted_docs: u64,
    /// The checkpoint of the last batch stored (committed or deferred).
    applied: Option<u64>,
    /// The checkpoint of the last commit (what a failed batch falls back to).
    committed: Option<u64>,
    /// The last position whose effect searches see: the last commit's checkpoint, or a
    /// later batch's that left no document uncommitted.
    visible: Option<u64>,
    /// When the last commit was made (`None`: not since the writer opened).
    last_commit: Option<Instant>,
    /// When the last batch was stored (`None`: not since the writer opened): the log is
    /// quiet once this is a refresh interval ago.
    last_stored: Option<Instant>,
    /// A deletion (an erasure) waits uncommitted: committed as promptly as when searched.
    deleting: bool,
    /// How often a server's writer commits documents at most ([`COMMIT_INTERVAL`]).
    commit_interval: Duration,
    /// `None`: commit every batch that adds a document (a server's writer). `Some(n)`:
    /// commit once `n` events have passed (a rebuild's).
    commit_every: Option<u64>,
    /// Reused for the author field of every document.
    scratch: String,
    /// The documents of the batch being applied, handed to tantivy when it is stored.
    batch: Vec<UserOperation>,
    /// Opens the sealed texts it indexes.
    sealer: actors::sealing::Sealer,
}

impl SearchProjector {
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

    /// The document of one event, if it has one.
    fn document(&mut self, event: &Event<'_>) -> Result<Option<TantivyDocument>, ProjectionError> {
        if !event.is_in(category::CONVERSATION)
            || !INDEXED_TYPES.contains(&event.event_type.as_str())
        {
            return Ok(None);
        }
        let Decoded::Conversation(conv, decoded) = event.decoded()? else {
            return Ok(None);
        };
        let (f, conv, position) = (*self.index.fields(), *conv, event.position);
        let message = match decoded {
            ConversationEvent::ConversationStarted(ConversationStarted { org, .. }) => {
                let org = *org;
                self.pending.insert(conv, org);
                let mut d = TantivyDocument::with_capacity(DOC_BYTES);
                d.add_text(f.kind, schema::KIND_CONVERSATION);
                d.add_text(f.org, id_str(org.as_uuid(), &mut [0; 36]));
                d.add_text(f.conv, id_str(conv.as_uuid(), &mut [0; 36]));
                d.add_u64(f.position, position);
                return Ok(Some(d));
            }
            ConversationEvent::MessagePosted(MessagePosted {
                message_id,
                seq,
                author,
                text,
                at_ms,
                ..
            }) => (message_id, seq, AuthorRef::User(author), text, at_ms),
            ConversationEvent::InboundReceived(InboundReceived {
                message_id,
                seq,
                from,
                text,
                at_ms,
                ..
            }) => (message_id, seq, AuthorRef::External(from), text, at_ms),
            ConversationEvent::AutoReplyPosted(AutoReplyPosted {
                message_id,
                seq,
                from,
                text,
                at_ms,
                ..
            }) => (message_id, seq, AuthorRef::AutoReply(from), text, at_ms),
            _ => return Ok(None),
        };
        let Some(org) = self.org_of(&conv)? else {
            return Ok(None);
        };
        let (message_id, seq, author, text, at_ms) = message;
        // Only what can be read is indexed: an erased text (its key destroyed before the
        // index got to it) leaves no document.
        let mut own = None;
        let opened = match event.opened(&self.sealer).and_then(text_of) {
            Some(shared) => shared,
            None => own.insert({
                let mut copy = text.clone();
                self.sealer.open_blocking(&mut copy);
                copy
            }),
        };
        let Some(words) = opened.as_plain() else {
            return Ok(None);
        };
        // Sized for the document (tantivy's default is 1 KB), and ids written from stack
        // buffers: no allocation per document but the document itself.
        let mut d = TantivyDocument::with_capacity(DOC_BYTES + words.len());
        if let Some(key) = text.key() {
            for customer in &key.customers {
                d.add_text(f.customer, customer.as_str());
            }
            d.add_u64(f.day, u64::from(key.day));
        }
        d.add_text(f.org, id_str(org.as_uuid(), &mut [0; 36]));
        d.add_text(f.conv, id_str(conv.as_uuid(), &mut [0; 36]));
        d.add_text(f.message_id, id_str(message_id.as_uuid(), &mut [0; 36]));
        self.scratch.clear();
        author.encode_into(&mut self.scratch);
        d.add_text(f.author, &self.scratch);
        d.add_text(f.text, words);
        d.add_u64(f.seq, *seq);
        d.add_u64(f.at_ms, *at_ms);
        d.add_u64(f.position, position);
        Ok(Some(d))
    }

    /// Deletes the documents of erased texts: one customer's (an erasure) or an
    /// organization's before a day (retention). The batch so far goes to tantivy first,
    /// so the deletion follows every document added before it.
    fn erase(&mut self, event: &Event<'_>) -> Result<(), ProjectionError> {
        use domain::erasure::ErasureEvent;
        use std::ops::Bound;
        use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery, TermQuery};
        use tantivy::schema::IndexRecordOption;
        use tantivy::Term;
        let Decoded::Erasure(erasure) = event.decoded()? else {
            return Ok(());
        };
        let f = *self.index.fields();
        let (org, which): (OrgId, Box<dyn Query>) = match erasure {
            ErasureEvent::CustomerErased(e) => (
                e.org,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.customer, e.customer.as_str()),
                    IndexRecordOption::Basic,
                )),
            ),
            ErasureEvent::RetentionApplied(e) => (
                e.org,
                Box::new(RangeQuery::new(
                    Bound::Unbounded,
                    Bound::Excluded(Term::from_field_u64(f.day, u64::from(e.before_day))),
                )),
            ),
            ErasureEvent::RetentionSet(_) => return Ok(()),
        };
        let org_term = TermQuery::new(
            Term::from_field_text(f.org, id_str(org.as_uuid(), &mut [0; 36])),
            IndexRecordOption::Basic,
        );
        let query = BooleanQuery::new(vec![
            (Occur::Must, Box::new(org_term)),
            (Occur::Must, which),
        ]);
        if !self.batch.is_empty() {
            self.uncommitted_docs += self.batch.len() as u64;
            let mut batch = std::mem::take(&mut self.batch);
            self.writer()?.run(batch.drain(..))?;
            self.batch = batch;
        }
        self.writer()?.delete_query(Box::new(query))?;
        // A deletion is a change queries must see: committed like a document, and as
        // promptly whether or not anyone searches.
        self.uncommitted_docs += 1;
        self.deleting = true;
        self.index.demand().pending();
        Ok(())
    }

    /// When a server's writer may commit documents next.
    fn commit_due(&self) -> Option<Instant> {
        self.last_commit.map(|t| t + self.commit_interval)
    }

    /// When a server's writer commits the documents it holds ([`super::demand`]): every
    /// refresh interval while searched or while a deletion waits; search-idle, once the
    /// log goes quiet or [`IDLE_COMMIT_INTERVALS`] intervals after the last commit. A writer that has not
    /// committed or stored since it opened commits at once.
    fn documents_due(&self) -> Instant {
        let now = Instant::now();
        commit_at(
            self.commit_due().unwrap_or(now),
            self.last_stored.map_or(now, |t| t + self.commit_interval),
            self.last_commit
                .map_or(now, |t| t + self.commit_interval * IDLE_COMMIT_INTERVALS),
            self.index.demand().searched_lately(),
            self.deleting,
        )
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
        self.uncommitted_docs = 0;
        self.deleting = false;
        self.index.demand().settled();
        self.committed = Some(checkpoint);
        self.visible = Some(checkpoint);
        self.last_commit = Some(Instant::now());
        if self.orgs.len() + self.pending.len() > CACHE_LIMIT {
            self.orgs.clear();
        }
        self.orgs.extend(self.pending.drain());
        Ok(())
    }

    /// As [`SearchWriter::close`].
    fn close(mut self) -> Result<(), ProjectionError> {
        if let (true, Some(checkpoint)) = (self.since_commit > 0, self.applied) {
            self.commit(checkpoint)?;
        }
        if let Some(w) = self.writer.take() {
            w.wait_merging_threads()?;
        }
        Ok(())
    }
}

impl Projector for SearchProjector {
    const NAME: &'static str = super::NAME;

    fn visible(&self, _checkpoint: Option<u64>) -> Option<u64> {
        self.visible
    }

    fn flush_at(&self) -> Option<Instant> {
        if self.uncommitted_docs == 0 || self.commit_every.is_some() {
            return None;
        }
        Some(self.documents_due())
    }

    fn flush_when_wanted(&self) -> Option<Instant> {
        if self.uncommitted_docs == 0 || self.commit_every.is_some() {
            return None;
        }
        Some(
            self.last_commit
                .map_or_else(Instant::now, |t| t + WANTED_COMMIT_FLOOR),
        )
    }

    fn flush(&mut self) -> Result<(), ProjectionError> {
        match self.applied {
            Some(checkpoint) if self.since_commit > 0 => self.commit(checkpoint),
            _ => Ok(()),
        }
    }

    fn apply(&mut self, event: &Event<'_>) -> Result<(), ProjectionError> {
        if event.is_in(category::ERASURE) {
            return self.erase(event);
        }
        if let Some(doc) = self.document(event)? {
            self.batch.push(UserOperation::Add(doc));
        }
        Ok(())
    }

    fn open_texts_with(&mut self, sealer: actors::sealing::Sealer) {
        self.sealer = sealer;
    }

    fn store(&mut self, checkpoint: u64, events: u64) -> Result<Stored, ProjectionError> {
        if !self.batch.is_empty() {
            self.uncommitted_docs += self.batch.len() as u64;
            self.index.demand().pending();
            let mut batch = std::mem::take(&mut self.batch);
            // One hand-over to an indexing thread for the whole batch (one wake-up, not one
            // a document).
            self.writer()?.run(batch.drain(..))?;
            self.batch = batch;
        }
        self.since_commit += events;
        self.applied = Some(checkpoint);
        // Judged against the batch before this one: the first batch after a quiet spell
        // is committed at once.
        let due = match self.commit_every {
            None => {
                (self.uncommitted_docs > 0 && self.documents_due() <= Instant::now())
                    || self.since_commit >= COMMIT_EVERY_EVENTS
            }
            Some(every) => self.since_commit >= every,
        };
        self.last_stored = Some(Instant::now());
        if !due {
            if self.uncommitted_docs == 0 {
                // Nothing searchable is held back.
                self.visible = Some(checkpoint);
            }
            return Ok(Stored::Deferred);
        }
        self.commit(checkpoint)?;
        Ok(Stored::Durable)
    }

    /// Forgets everything added since the last commit (nothing of it is stored) and goes
    /// back to that commit's checkpoint.
    fn discard(&mut self) {
        self.batch.clear();
        self.pending.clear();
        self.since_commit = 0;
        self.uncommitted_docs = 0;
        self.deleting = false;
        self.index.demand().settled();
        self.applied = self.committed;
        self.visible = self.committed;
        if let Some(w) = self.writer.as_mut() {
            if let Err(e) = w.rollback() {
                tracing::warn!(error = %e, "search writer rollback failed");
            }
        }
    }
}

impl Drop for SearchProjector {
    /// As [`SearchWriter::close`], logging errors: the directory lock is released before
    /// the index is reopened or its generation deleted.
    fn drop(&mut self) {
        if let (true, Some(checkpoint)) = (self.since_commit > 0, self.applied) {
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
