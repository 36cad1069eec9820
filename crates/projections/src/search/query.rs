//! What a caller may type into search, checked before anything is searched.
//!
//! The language is tantivy's query grammar restricted to message text: words (all must
//! match), `"quoted phrases"`, `-excluded` words, `OR`, parentheses. Colons and
//! apostrophes inside words are read as spaces (`normalise`), so "Re: 5:30" and
//! "don't" are plain words and no query can name one of the index's internal fields;
//! range, set, regex, exists and match-all queries are refused, so none lists everything.
//! Unbalanced quotes or parentheses are a [`InvalidQuery::Syntax`] error.

use tantivy::query::{Query, QueryParser};
use tantivy::query_grammar::{self, UserInputAst, UserInputLeaf};
use tantivy::schema::Field;
use tantivy::Index;

/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 256;

/// Why a query was refused (the caller's mistake: the gateway answers 400
/// `invalid_search`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidQuery {
    #[error("the query is empty")]
    Empty,
    #[error("the query is longer than {max} characters")]
    TooLong { max: usize },
    #[error("the query is not valid search syntax (unbalanced quotes or parentheses?)")]
    Syntax,
    #[error("only message text can be searched (found the field {field:?}; quote the text to search for it)")]
    Field { field: String },
    #[error("{0} queries are not supported")]
    Unsupported(&'static str),
    #[error("the query cannot be searched: {0}")]
    Rejected(String),
    #[error("the query has no word to look for")]
    NoWords,
}

/// Checks `input` and turns it into a query over `text` (every word required).
///
/// # Errors
/// [`InvalidQuery`] naming what is wrong.
pub fn parse(index: &Index, text: Field, input: &str) -> Result<Box<dyn Query>, InvalidQuery> {
    let input = input.trim();
    if input.is_empty() {
        return Err(InvalidQuery::Empty);
    }
    if input.chars().count() > MAX_QUERY_CHARS {
        return Err(InvalidQuery::TooLong {
            max: MAX_QUERY_CHARS,
        });
    }
    let input = &normalise(input);
    let ast = query_grammar::parse_query(input).map_err(|_| InvalidQuery::Syntax)?;
    check(&ast)?;
    let mut parser = QueryParser::for_index(index, vec![text]);
    parser.set_conjunction_by_default();
    let query = parser
        .parse_query(input)
        .map_err(|e| InvalidQuery::Rejected(e.to_string()))?;
    let mut words = 0usize;
    query.query_terms(&mut |term, _| {
        if term.field() == text {
            words += 1;
        }
    });
    if words == 0 {
        return Err(InvalidQuery::NoWords);
    }
    Ok(query)
}

/// What people type, made grammatical: an apostrophe inside a word ("don't", "o’clock")
/// would open a quoted phrase, and a colon ("Re: invoice", "5:30") would name a field, so
/// both become spaces, as the text analyzer treats them anyway. Without colons no query
/// can name a field.
fn normalise(input: &str) -> String {
    let chars: Vec<char> = input.chars().collect();
    let mut out = String::with_capacity(input.len());
    for (i, &c) in chars.iter().enumerate() {
        let inside_word = i > 0
            && chars[i - 1].is_alphanumeric()
            && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
        match c {
            ':' => out.push(' '),
            '\'' | '\u{2019}' if inside_word => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Only unqualified literals (words and phrases), combined in any way.
fn check(ast: &UserInputAst) -> Result<(), InvalidQuery> {
    match ast {
        UserInputAst::Clause(clauses) => clauses.iter().try_for_each(|(_, a)| check(a)),
        UserInputAst::Boost(inner, _) => check(inner),
        UserInputAst::Leaf(leaf) => match leaf.as_ref() {
            UserInputLeaf::Literal(l) => match &l.field_name {
                Some(field) => Err(InvalidQuery::Field {
                    field: field.clone(),
                }),
                None => Ok(()),
            },
            UserInputLeaf::All => Err(InvalidQuery::Unsupported("match-all")),
            UserInputLeaf::Range { .. } => Err(InvalidQuery::Unsupported("range")),
            UserInputLeaf::Set { .. } => Err(InvalidQuery::Unsupported("set")),
            UserInputLeaf::Exists { .. } => Err(InvalidQuery::Unsupported("exists")),
            UserInputLeaf::Regex { .. } => Err(InvalidQuery::Unsupported("regex")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> (Index, Field) {
        let (schema, fields) = crate::search::schema::build();
        let index = Index::create_in_ram(schema);
        crate::search::schema::register_analyzer(&index);
        (index, fields.text)
    }

    #[test]
    fn words_phrases_exclusions_and_or_are_accepted() {
        let (index, text) = index();
        for q in [
            "zebra",
            "zebra crossing",
            "\"zebra crossing\"",
            "zebra -noon",
            "zebra OR lion",
            "(zebra OR lion) main",
            "café 555-0101",
            "where's my parcel?",
            "where's my parcel",
            "parcel?",
            "don't",
            "it's 5 o'clock",
            "it’s 5 o’clock",
            "Re: invoice",
            "meet at 5:30",
            "org:anything",
            "'single quoted phrase'",
            "bob@example.com",
            "50% off",
            "a/b",
            "what?!",
            "hello!",
            "+1 555 0101",
            "#4411",
            "$20",
            "U.S.A.",
            "foo-bar",
            "C++",
        ] {
            let r = parse(&index, text, q);
            assert!(r.is_ok(), "{q}: {r:?}");
        }
    }

    #[test]
    fn fields_ranges_match_all_and_bad_syntax_are_refused() {
        let (index, text) = index();
        let refused = |q: &str| parse(&index, text, q).unwrap_err();
        assert_eq!(refused(""), InvalidQuery::Empty);
        assert_eq!(refused("   "), InvalidQuery::Empty);
        assert_eq!(
            refused(&"a".repeat(MAX_QUERY_CHARS + 1)),
            InvalidQuery::TooLong {
                max: MAX_QUERY_CHARS
            }
        );
        assert_eq!(refused("*"), InvalidQuery::Unsupported("match-all"));
        assert!(matches!(
            refused("position:[0 TO 10]"),
            InvalidQuery::Unsupported(_) | InvalidQuery::Syntax
        ));
        assert_eq!(refused("\"unbalanced"), InvalidQuery::Syntax);
        assert_eq!(refused("(zebra"), InvalidQuery::Syntax);
        assert!(matches!(
            refused("!!!"),
            InvalidQuery::NoWords | InvalidQuery::Syntax
        ));
    }
}
