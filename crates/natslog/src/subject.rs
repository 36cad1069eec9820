//! Subjects: one per Switchboard stream, `<prefix>.<category>.<id>`.
//!
//! A category is ASCII letters, digits and `_` (see `eventlog::StreamName`), a safe
//! subject token as it is. An id may hold anything but whitespace and control characters
//! (e-mail addresses, keys), so every byte outside `[A-Za-z0-9_-]` — among them the token
//! separator `.`, the wildcards `*` and `>`, and `%` itself — is written `%XX`: the mapping
//! is injective and the result is always one literal token.

use eventlog::StreamName;

/// The subject of `stream` under `prefix`.
pub fn of(prefix: &str, stream: &StreamName) -> String {
    let id = stream.id();
    let mut out = String::with_capacity(prefix.len() + stream.as_str().len() + 8);
    out.push_str(prefix);
    out.push('.');
    out.push_str(stream.category());
    out.push('.');
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push_str(&format!("{b:02X}"));
        }
    }
    out
}

/// The wildcard of every subject under `prefix`.
pub fn all(prefix: &str) -> String {
    format!("{prefix}.>")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(name: &str) -> StreamName {
        StreamName::new(name).unwrap()
    }

    #[test]
    fn ids_become_one_literal_token() {
        assert_eq!(
            of("sb.ev", &s("conversation-6f1c-ab")),
            "sb.ev.conversation.6f1c-ab"
        );
        assert_eq!(
            of("sb.ev", &s("credential-ada@acme.example")),
            "sb.ev.credential.ada%40acme%2Eexample"
        );
        assert_eq!(of("p", &s("x-a*b>c%")), "p.x.a%2Ab%3Ec%25");
        // Injective: a literal `%2E` is not a `.`.
        assert_ne!(of("p", &s("x-%2E")), of("p", &s("x-.")));
        let token = of("p", &s("x-é.ü"));
        assert!(
            token.is_ascii() && token.matches('.').count() == 2,
            "{token}"
        );
    }
}
