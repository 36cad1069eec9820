//! Opt-out, opt-in and help keywords in inbound texts.
//!
//! Only a text that *is* the keyword counts: surrounding whitespace, letter case and
//! trailing punctuation are ignored (`"  Stop."`, `"stop!"`), but a keyword inside a
//! sentence (`"please stop calling"`) is not one.

use serde::{Deserialize, Serialize};

/// What an inbound keyword asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Keyword {
    /// Stop texting this number from this business number.
    OptOut,
    /// Resume texting (after an opt-out).
    OptIn,
    /// Reply with the configured help text.
    Help,
}

impl Keyword {
    /// The snake_case name: `opt_out`, `opt_in`, `help`.
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::OptOut => "opt_out",
            Keyword::OptIn => "opt_in",
            Keyword::Help => "help",
        }
    }
}

/// Opt-out keywords (carrier / CTIA standard set).
pub const OPT_OUT: &[&str] = &["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"];
/// Opt-in keywords. `YES` is included because carriers treat it as an opt-in.
pub const OPT_IN: &[&str] = &["START", "UNSTOP", "YES"];
/// Help keywords.
pub const HELP: &[&str] = &["HELP", "INFO"];

/// Classifies a whole inbound text as a keyword, or `None` for an ordinary text.
pub fn classify(body: &str) -> Option<Keyword> {
    let word = body
        .trim()
        .trim_end_matches(|c: char| c.is_whitespace() || is_trailing_punct(c))
        .trim();
    if word.is_empty() || word.len() > 16 {
        return None;
    }
    let word = word.to_ascii_uppercase();
    let word = word.as_str();
    if OPT_OUT.contains(&word) {
        Some(Keyword::OptOut)
    } else if OPT_IN.contains(&word) {
        Some(Keyword::OptIn)
    } else if HELP.contains(&word) {
        Some(Keyword::Help)
    } else {
        None
    }
}

fn is_trailing_punct(c: char) -> bool {
    matches!(
        c,
        '.' | '!' | '?' | ',' | ';' | ':' | '…' | '。' | '！' | '？' | '"' | '\'' | ')'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&str, Option<Keyword>)] = &[
            ("STOP", Some(Keyword::OptOut)),
            ("stop", Some(Keyword::OptOut)),
            ("Stop.", Some(Keyword::OptOut)),
            ("  stop!!  ", Some(Keyword::OptOut)),
            ("Stop\n", Some(Keyword::OptOut)),
            ("STOPALL", Some(Keyword::OptOut)),
            ("StopAll", Some(Keyword::OptOut)),
            ("unsubscribe", Some(Keyword::OptOut)),
            ("Cancel", Some(Keyword::OptOut)),
            ("end", Some(Keyword::OptOut)),
            ("QUIT?", Some(Keyword::OptOut)),
            ("START", Some(Keyword::OptIn)),
            ("start", Some(Keyword::OptIn)),
            ("Unstop", Some(Keyword::OptIn)),
            ("yes", Some(Keyword::OptIn)),
            ("Yes!", Some(Keyword::OptIn)),
            ("HELP", Some(Keyword::Help)),
            ("help?", Some(Keyword::Help)),
            ("Info", Some(Keyword::Help)),
            ("please stop calling", None),
            ("stop it", None),
            ("STOP ALL", None),
            ("stopp", None),
            ("nonstop", None),
            ("help me", None),
            ("yes please", None),
            ("", None),
            ("   ", None),
            ("...", None),
            (".stop", None),
            ("🛑", None),
            ("Hello, is this the store?", None),
        ];
        for (body, expected) in cases {
            assert_eq!(classify(body), *expected, "body {body:?}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(Keyword::OptOut.as_str(), "opt_out");
        assert_eq!(Keyword::OptIn.as_str(), "opt_in");
        assert_eq!(Keyword::Help.as_str(), "help");
        assert_eq!(
            serde_json::to_string(&Keyword::OptOut).unwrap(),
            "\"opt_out\""
        );
    }
}
