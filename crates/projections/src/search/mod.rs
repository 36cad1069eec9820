//! The search read model: full-text search over message history, on tantivy.
//!
//! Every `MessagePosted`, `InboundReceived` and `AutoReplyPosted` (our number's answer to
//! a HELP) of the `conversation` category is one document (organization, conversation,
//! message id, seq, author, text, time, log position). The index lives in its own directory per generation
//! (`<data>/readmodels/search/gen-N/`, see [`crate::home`]), never in the log.
//!
//! **Checkpoint.** The position of the last event applied is written in the commit payload
//! of the tantivy commit that holds the documents up to it (`prepare_commit` +
//! `set_payload`), so data and checkpoint become durable together: a restart resumes from
//! the payload, neither skipping nor repeating an event, and uncommitted documents of a
//! crashed batch are discarded by tantivy. A batch that adds no document is not committed
//! (nothing changed) until [`writer::COMMIT_EVERY_EVENTS`] such events have passed, so the
//! stored checkpoint may lag the one in memory by events that index nothing. A server's
//! writer commits documents at most every [`writer::COMMIT_INTERVAL`] while it is searched,
//! and less often while nobody searches ([`demand`]: when the log goes quiet, or before a
//! search that would miss documents waiting longer than the interval), or at most
//! [`writer::WANTED_COMMIT_FLOOR`] after the last commit when a query waits for them
//! ([`crate::runner::Wanted`]), and publishes as its position the last one whose
//! documents are committed (what read-your-writes waits for).
//! A rebuild's
//! writer ([`SearchWriter::for_rebuild`]) commits only every
//! [`writer::REBUILD_COMMIT_EVERY_EVENTS`] events and when closed.
//!
//! **Queries.** [`SearchIndex::search`] answers within one organization AND a set of
//! conversations the caller may see (the gateway computes it from the interactions model:
//! [`crate::interactions::InteractionsDb::visible_conversations`]). Hits come **newest
//! first** (by log position), not by score: a message search is read like a history, and a
//! position cursor pages through it with no duplicates or gaps while new messages arrive
//! (`before` = the previous page's `next_before`). The query language is described in
//! [`query`].
//!
//! - [`demand`]: whether anyone searches, and when the writer commits for them.
//! - [`directory`]: the files, written without fsync (and what that means after a crash).
//! - [`schema`]: the fields and the text analyzer.
//! - [`query`]: what a caller may type ([`InvalidQuery`]).
//! - [`writer`]: [`SearchWriter`], the [`crate::ReadModel`].

pub mod demand;
pub mod directory;
pub mod query;
pub mod schema;
pub mod writer;

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use domain::{ConversationId, MessageId, OrgId, PhoneNumber, UserId};
use tantivy::collector::{DocSetCollector, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, RangeQuery, TermQuery, TermSetQuery};
use tantivy::schema::{Document, IndexRecordOption, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::{Index, IndexReader, IndexSettings, Order, ReloadPolicy, TantivyDocument, Term};

use directory::UnsyncedDirectory;
pub use query::{InvalidQuery, MAX_QUERY_CHARS};
pub use schema::Fields;
pub use writer::{SearchProjector, SearchWriter};

use crate::error::ProjectionError;
use crate::live::ModelKind;

/// The read model's name (its directory and `replay rebuild` argument).
pub const NAME: &str = "search";
/// Layout version, written in every commit payload with the checkpoint; bump it when the
/// schema or the meaning of a field changes (old generations are then refused and rebuilt).
pub const LAYOUT: &str = "search/5";

/// Bytes of stored documents compressed together. Larger blocks than tantivy's 16 KiB
/// compress better and cost fewer block switches when writing; a hit reads one block.
const DOCSTORE_BLOCK_BYTES: usize = 65_536;

/// How a new index stores its documents: [`DOCSTORE_BLOCK_BYTES`] blocks, compressed on
/// the indexing thread (a dedicated compression thread per segment costs more in
/// hand-offs than it saves on this workload: `cargo bench --bench replay`).
fn index_settings() -> IndexSettings {
    IndexSettings {
        docstore_blocksize: DOCSTORE_BLOCK_BYTES,
        docstore_compress_dedicated_thread: false,
        ..IndexSettings::default()
    }
}

/// Most hits one page returns.
pub const MAX_LIMIT: usize = 100;
/// Longest snippet, in characters.
pub const SNIPPET_CHARS: usize = 160;

/// Who wrote a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Author {
    User(UserId),
    External(PhoneNumber),
    /// Our business number's automatic answer to a customer's HELP.
    AutoReply(PhoneNumber),
}

impl Author {
    fn decode(s: &str) -> Option<Self> {
        match s.split_once(':')? {
            ("u", u) => u.parse().ok().map(Author::User),
            ("n", n) => PhoneNumber::parse(n).ok().map(Author::External),
            ("a", n) => PhoneNumber::parse(n).ok().map(Author::AutoReply),
            _ => None,
        }
    }
}

/// An author as an event names it, for writing the stored form without a copy.
#[derive(Clone, Copy)]
enum AuthorRef<'a> {
    User(&'a UserId),
    External(&'a PhoneNumber),
    AutoReply(&'a PhoneNumber),
}

impl AuthorRef<'_> {
    /// Appends the stored form ([`Author::decode`] reads it back) to `out`.
    fn encode_into(self, out: &mut String) {
        match self {
            AuthorRef::User(u) => {
                out.push_str("u:");
                out.push_str(writer::id_str(u.as_uuid(), &mut [0; 36]));
            }
            AuthorRef::External(n) => {
                out.push_str("n:");
                out.push_str(n.as_str());
            }
            AuthorRef::AutoReply(n) => {
                out.push_str("a:");
                out.push_str(n.as_str());
            }
        }
    }
}

/// The part of a message that matched: `text` is a fragment of the message (at most
/// [`SNIPPET_CHARS`]), `highlights` the byte ranges of `text` holding matched words, and
/// `html` the same with `<b>` around them and everything else HTML-escaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snippet {
    pub text: String,
    pub highlights: Vec<(usize, usize)>,
    pub html: String,
}

/// One message found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub conversation: ConversationId,
    pub message_id: MessageId,
    pub seq: u64,
    pub author: Author,
    pub snippet: Snippet,
    pub at_ms: u64,
    /// The message's log position: the order of hits and the pagination cursor.
    pub position: u64,
}

/// A page of hits, newest first; pass `next_before` back as `before` for the next one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchPage {
    pub hits: Vec<Hit>,
    pub next_before: Option<u64>,
}

/// Why a search was not answered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// The caller's query is refused.
    #[error(transparent)]
    Invalid(#[from] InvalidQuery),
    #[error(transparent)]
    Storage(#[from] ProjectionError),
}

impl From<tantivy::TantivyError> for SearchError {
    fn from(e: tantivy::TantivyError) -> Self {
        SearchError::Storage(e.into())
    }
}

/// One generation of the index: read by queries, written by one [`SearchWriter`].
pub struct SearchIndex {
    index: Index,
    /// Reloaded by the writer after each commit (manual policy), so a position the runner
    /// has published is searchable (read your writes).
    reader: IndexReader,
    fields: Fields,
    /// Whether anyone searches, told to the writer ([`demand`]).
    demand: demand::Demand,
}

/// `layout;checkpoint`, the commit payload.
fn payload(checkpoint: u64) -> String {
    format!("{LAYOUT};{checkpoint}")
}

impl SearchIndex {
    /// Opens (creating if missing) the index at `path`. An index written with another
    /// layout or schema is refused rather than misread (rebuild it instead).
    ///
    /// # Errors
    /// File or index errors, or [`ProjectionError::Layout`].
    pub fn open(path: &Path) -> Result<Self, ProjectionError> {
        let (schema, fields) = schema::build();
        std::fs::create_dir_all(path)?;
        let dir =
            UnsyncedDirectory::open(path).map_err(|e| ProjectionError::Search(e.to_string()))?;
        let exists = Index::exists(&dir).map_err(|e| ProjectionError::Search(e.to_string()))?;
        // Files left half-written by an operating-system crash (they are not fsynced) make
        // the index unreadable: answered as a layout change, so a fresh generation is built.
        let unreadable = |e: tantivy::TantivyError| ProjectionError::Layout {
            found: format!("an unreadable search index ({e})"),
            expected: LAYOUT.into(),
        };
        let index = if exists {
            Index::open(dir).map_err(unreadable)?
        } else {
            Index::create(dir, schema.clone(), index_settings())?
        };
        if index.schema() != schema {
            return Err(ProjectionError::Layout {
                found: "a search index with another schema".into(),
                expected: LAYOUT.into(),
            });
        }
        schema::register_analyzer(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(unreadable)?;
        let this = Self {
            index,
            reader,
            fields,
            demand: demand::Demand::default(),
        };
        this.checkpoint()?;
        Ok(this)
    }

    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    /// What searches tell the writer, and the writer searches ([`demand`]).
    pub fn demand(&self) -> &demand::Demand {
        &self.demand
    }

    /// The position of the last event whose documents are committed (from the payload of
    /// the last commit; `None` before the first).
    ///
    /// # Errors
    /// Index errors, a payload of another layout, or a malformed payload.
    pub fn checkpoint(&self) -> Result<Option<u64>, ProjectionError> {
        let Some(payload) = self.index.load_metas()?.payload else {
            return Ok(None);
        };
        let (layout, checkpoint) = payload
            .split_once(';')
            .ok_or_else(|| ProjectionError::Corrupt(format!("search payload {payload:?}")))?;
        if layout != LAYOUT {
            return Err(ProjectionError::Layout {
                found: layout.to_owned(),
                expected: LAYOUT.into(),
            });
        }
        checkpoint
            .parse()
            .map(Some)
            .map_err(|_| ProjectionError::Corrupt(format!("search payload {payload:?}")))
    }

    /// Messages of `org` in the `visible` conversations matching `text`, newest first,
    /// older than position `before` when given, at most `limit` (capped at
    /// [`MAX_LIMIT`]).
    ///
    /// # Errors
    /// [`SearchError::Invalid`] for a query the caller must fix; index errors.
    pub fn search(
        &self,
        org: OrgId,
        text: &str,
        visible: &[ConversationId],
        before: Option<u64>,
        limit: usize,
    ) -> Result<SearchPage, SearchError> {
        let f = self.fields;
        let user_query = query::parse(&self.index, f.text, text)?;
        let limit = limit.min(MAX_LIMIT);
        if visible.is_empty() || limit == 0 || before == Some(0) {
            return Ok(SearchPage::default());
        }
        let term = |field, s: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, s),
                IndexRecordOption::Basic,
            ))
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
            (Occur::Must, user_query.box_clone()),
            // Message documents carry no `kind` (one term less per message).
            (Occur::MustNot, term(f.kind, schema::KIND_CONVERSATION)),
            (Occur::Must, term(f.org, &org.to_string())),
            (
                Occur::Must,
                Box::new(TermSetQuery::new(
                    visible
                        .iter()
                        .map(|c| Term::from_field_text(f.conv, &c.to_string())),
                )),
            ),
        ];
        if let Some(before) = before {
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Unbounded,
                    Bound::Excluded(Term::from_field_u64(f.position, before)),
                )),
            ));
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let top = searcher.search(
            &query,
            &TopDocs::with_limit(limit).order_by_fast_field::<u64>("position", Order::Desc),
        )?;
        let mut snippets = SnippetGenerator::create(&searcher, &*user_query, f.text)?;
        snippets.set_max_num_chars(SNIPPET_CHARS);
        let mut hits = Vec::with_capacity(top.len());
        for (_, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            let s = snippets.snippet_from_doc(&doc);
            let mut snippet = Snippet {
                text: s.fragment().to_owned(),
                highlights: s.highlighted().iter().map(|r| (r.start, r.end)).collect(),
                html: s.to_html(),
            };
            if snippet.text.is_empty() {
                // Matched through a phrase the generator does not highlight: show the start.
                let text: String = str_of(&doc, f.text)
                    .unwrap_or_default()
                    .chars()
                    .take(SNIPPET_CHARS)
                    .collect();
                snippet = Snippet {
                    html: escape_html(&text),
                    text,
                    highlights: Vec::new(),
                };
            }
            hits.push(hit_of(&doc, &f, snippet)?);
        }
        let next_before = (hits.len() == limit)
            .then(|| hits.last().map(|h| h.position))
            .flatten();
        Ok(SearchPage { hits, next_before })
    }

    /// Every document, as canonical JSON, sorted: for comparing two builds in tests and for
    /// diagnostics. Reads the whole index.
    ///
    /// # Errors
    /// Index errors.
    pub fn dump(&self) -> Result<Vec<String>, ProjectionError> {
        let searcher = self.reader.searcher();
        let schema = self.index.schema();
        let mut out = Vec::new();
        for address in searcher.search(&AllQuery, &DocSetCollector)? {
            let doc: TantivyDocument = searcher.doc(address)?;
            out.push(doc.to_json(&schema));
        }
        out.sort();
        Ok(out)
    }

    /// Makes the last commit visible to queries.
    fn reload(&self) -> Result<(), ProjectionError> {
        self.reader.reload()?;
        Ok(())
    }

    /// The organization of conversation `conv`, from its committed `conversation` document.
    fn org_of(&self, conv: &ConversationId) -> Result<Option<OrgId>, ProjectionError> {
        let f = self.fields;
        let query = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.kind, schema::KIND_CONVERSATION),
                    IndexRecordOption::Basic,
                )) as Box<dyn Query>,
            ),
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.conv, &conv.to_string()),
                    IndexRecordOption::Basic,
                )),
            ),
        ]);
        let searcher = self.reader.searcher();
        let Some((_, address)) = searcher
            .search(&query, &TopDocs::with_limit(1).order_by_score())?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let doc: TantivyDocument = searcher.doc(address)?;
        Ok(str_of(&doc, f.org).and_then(|s| s.parse().ok()))
    }
}

fn str_of(doc: &TantivyDocument, field: tantivy::schema::Field) -> Option<String> {
    doc.get_first(field)
        .and_then(|v| v.as_str().map(str::to_owned))
}

fn u64_of(doc: &TantivyDocument, field: tantivy::schema::Field) -> Option<u64> {
    doc.get_first(field).and_then(|v| v.as_u64())
}

fn hit_of(doc: &TantivyDocument, f: &Fields, snippet: Snippet) -> Result<Hit, ProjectionError> {
    let bad = |what: &str| ProjectionError::Corrupt(format!("search document without {what}"));
    Ok(Hit {
        conversation: str_of(doc, f.conv)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("conversation"))?,
        message_id: str_of(doc, f.message_id)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("message id"))?,
        seq: u64_of(doc, f.seq).ok_or_else(|| bad("seq"))?,
        author: str_of(doc, f.author)
            .and_then(|s| Author::decode(&s))
            .ok_or_else(|| bad("author"))?,
        snippet,
        at_ms: u64_of(doc, f.at_ms).ok_or_else(|| bad("time"))?,
        position: u64_of(doc, f.position).ok_or_else(|| bad("position"))?,
    })
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The search model as [`crate::live::Live`] runs it.
pub struct SearchModel;

impl ModelKind for SearchModel {
    const NAME: &'static str = NAME;
    type Db = SearchIndex;
    type Writer = SearchWriter;

    fn open(path: &Path) -> Result<Arc<SearchIndex>, ProjectionError> {
        Ok(Arc::new(SearchIndex::open(path)?))
    }

    fn writer(db: Arc<SearchIndex>) -> Result<SearchWriter, ProjectionError> {
        SearchWriter::new(db)
    }

    fn rebuild_writer(db: Arc<SearchIndex>) -> Result<SearchWriter, ProjectionError> {
        SearchWriter::for_rebuild(db)
    }

    fn finish(db: &SearchIndex, writer: SearchWriter) -> Result<Option<u64>, ProjectionError> {
        writer.close()?;
        db.checkpoint()
    }
}
