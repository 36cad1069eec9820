//! The search index's fields and its text analyzer.
//!
//! Two kinds of documents share one index:
//! - messages: one per `MessagePosted` / `InboundReceived` / `AutoReplyPosted`, with its
//!   text (and no `kind`);
//! - `kind` = `conversation`: one per `ConversationStarted`, only so the writer can find a
//!   conversation's organization for the messages that follow (message events do not
//!   carry it) from the committed index after a restart.

use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, STORED,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
};
use tantivy::Index;

/// The analyzer of message text: split on anything not alphanumeric, drop tokens longer
/// than [`MAX_TOKEN_BYTES`], lowercase, fold accents ("Café" finds "cafe"). Digits stay
/// tokens, so "555-0101" is the phrase "555 0101".
pub const TEXT_ANALYZER: &str = "switchboard_text";

/// Longer tokens (pasted blobs, long URLs) are not indexed.
pub const MAX_TOKEN_BYTES: usize = 40;

pub const KIND_CONVERSATION: &str = "conversation";

/// The fields of the index, resolved once.
#[derive(Clone, Copy, Debug)]
pub struct Fields {
    /// `conversation` on conversation documents, absent on messages (raw token).
    pub kind: Field,
    /// Organization id (raw token, stored).
    pub org: Field,
    /// Conversation id (raw token, stored): the visibility filter.
    pub conv: Field,
    /// Message id (stored only).
    pub message_id: Field,
    /// `u:<user id>`, `n:<E.164 number>` or `a:<our E.164 number>` for an automatic reply
    /// (stored only).
    pub author: Field,
    /// The message text (analyzed with positions, stored for snippets).
    pub text: Field,
    pub seq: Field,
    pub at_ms: Field,
    /// Log position (fast and stored): the sort order and the pagination cursor.
    pub position: Field,
    /// The customers (E.164) whose data the text is (raw tokens, indexed only): an
    /// erasure deletes their documents.
    pub customer: Field,
    /// The day the text was written, days since the epoch (indexed only): retention
    /// deletes the documents before a day.
    pub day: Field,
}

/// The schema every generation is created with.
pub fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    // No field norms anywhere: hits are ordered by position, never scored.
    let raw = || {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("raw")
                .set_fieldnorms(false)
                .set_index_option(IndexRecordOption::Basic),
        )
    };
    let kind = b.add_text_field("kind", raw());
    let org = b.add_text_field("org", raw().set_stored());
    let conv = b.add_text_field("conv", raw().set_stored());
    // Stored only: never searched by, and a unique term per message would make the term
    // dictionary (an FST built at every segment flush and merge) the bulk of indexing.
    let message_id = b.add_text_field("message_id", STORED);
    let author = b.add_text_field("author", STORED);
    let text = b.add_text_field(
        "text",
        TextOptions::default()
            .set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(TEXT_ANALYZER)
                    .set_fieldnorms(false)
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            )
            .set_stored(),
    );
    let seq = b.add_u64_field("seq", STORED);
    let at_ms = b.add_u64_field("at_ms", STORED);
    // Fast (a column), not indexed: sorting and the `before` cursor's range query read the
    // column, and an indexed position would be one more unique term per message.
    let position = b.add_u64_field(
        "position",
        NumericOptions::default().set_stored().set_fast(),
    );
    let customer = b.add_text_field("customer", raw());
    let day = b.add_u64_field("day", tantivy::schema::INDEXED);
    (
        b.build(),
        Fields {
            customer,
            day,
            kind,
            org,
            conv,
            message_id,
            author,
            text,
            seq,
            at_ms,
            position,
        },
    )
}

/// Registers [`TEXT_ANALYZER`] on `index` (tokenizers are not stored with an index: every
/// open must register them before indexing, parsing or snippets).
pub fn register_analyzer(index: &Index) {
    index.tokenizers().register(
        TEXT_ANALYZER,
        TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
            .filter(LowerCaser)
            .filter(AsciiFoldingFilter)
            .build(),
    );
}
