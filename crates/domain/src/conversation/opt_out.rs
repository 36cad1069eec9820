//! Opt-out keywords. A text that is exactly one of these words (any case, surrounding
//! spaces and a trailing full stop or exclamation mark ignored) changes whether we may
//! text that number; a sentence that merely contains "stop" does not.

/// A carrier keyword in an inbound text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptOutKeyword {
    /// STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT: no more texts to this number.
    Stop,
    /// START, UNSTOP, YES: texts may resume.
    Start,
    /// HELP, INFO: the carrier adapter answers with the organization's help text; the
    /// conversation records the text like any other.
    Help,
}

impl OptOutKeyword {
    pub fn parse(text: &str) -> Option<Self> {
        let word = text.trim().trim_end_matches(['.', '!']).trim();
        // No keyword is longer than this; longer texts need no upper-casing.
        if word.len() > "UNSUBSCRIBE".len() {
            return None;
        }
        match word.to_ascii_uppercase().as_str() {
            "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" => Some(Self::Stop),
            "START" | "UNSTOP" | "YES" => Some(Self::Start),
            "HELP" | "INFO" => Some(Self::Help),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_word_keywords_in_any_case() {
        assert_eq!(OptOutKeyword::parse("STOP"), Some(OptOutKeyword::Stop));
        assert_eq!(OptOutKeyword::parse("  stop. "), Some(OptOutKeyword::Stop));
        assert_eq!(
            OptOutKeyword::parse("Unsubscribe!"),
            Some(OptOutKeyword::Stop)
        );
        assert_eq!(OptOutKeyword::parse("start"), Some(OptOutKeyword::Start));
        assert_eq!(OptOutKeyword::parse("Help"), Some(OptOutKeyword::Help));
    }

    #[test]
    fn sentences_are_not_keywords() {
        assert_eq!(OptOutKeyword::parse("please stop by tomorrow"), None);
        assert_eq!(OptOutKeyword::parse("stopped"), None);
        assert_eq!(OptOutKeyword::parse(""), None);
        assert_eq!(OptOutKeyword::parse("ÉSTOP"), None);
    }
}
