//! `X-Twilio-Signature`: HMAC-SHA1, keyed by the account's auth token, over the full
//! request URL followed by every POST parameter's name and value, sorted by name (and by
//! value for a repeated name), base64-encoded.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// The request header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

fn mac_over(auth_token: &str, url: &str, params: &[(String, String)]) -> HmacSha1 {
    let mut mac =
        HmacSha1::new_from_slice(auth_token.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(url.as_bytes());
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    sorted.sort_unstable();
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    mac
}

/// The signature Twilio would send for a POST to `url` (exactly as Twilio requested it,
/// query string included) with form `params`.
pub fn compute_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac_over(auth_token, url, params).finalize().into_bytes())
}

/// Whether `signature` (the header's value) is valid for a POST to `url` with `params`.
///
/// The comparison is constant-time. Like Twilio's own helper libraries, the URL is also
/// tried with the default port added or removed (`https://h/x` ⇔ `https://h:443/x`),
/// because proxies differ on whether the port is part of the URL Twilio signed.
pub fn validate_signature(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature: &str,
) -> bool {
    let Ok(expected) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    if expected.len() != 20 {
        return false;
    }
    let mut valid = false;
    for candidate in url_variants(url) {
        // Evaluate every variant; `verify_slice` compares in constant time.
        valid |= mac_over(auth_token, &candidate, params)
            .verify_slice(&expected)
            .is_ok();
    }
    valid
}

/// `url` as given, plus the same URL with its scheme's default port toggled.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return out;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return out,
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if authority.is_empty() || authority.contains('@') {
        return out;
    }
    // The port separator is the last ':' after any IPv6 literal.
    let host_end = authority.rfind(']').map_or(0, |i| i + 1);
    match authority[host_end..].rfind(':') {
        Some(i) => {
            let (host, port) = authority.split_at(host_end + i);
            if &port[1..] == default_port {
                out.push(format!("{scheme}://{host}{tail}"));
            }
        }
        None => out.push(format!("{scheme}://{authority}:{default_port}{tail}")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    // Every expected signature below was computed with Python's standard library, not with
    // this code:
    //
    // python3 -c 'import hmac,hashlib,base64,sys
    // def sig(tok,url,params):
    //     s=url+"".join(k+v for k,v in sorted(params))
    //     return base64.b64encode(hmac.new(tok.encode(),s.encode("utf-8"),hashlib.sha1).digest()).decode()
    // print(sig(TOKEN, URL, PARAMS))'

    /// Twilio's documented example (Security docs): token `12345`, this URL and these
    /// parameters give `0/KCTR6DLpKmkAf8muzZqo1nDgQ=`; the Python above agrees.
    fn twilio_doc_example() -> (&'static str, &'static str, Vec<(String, String)>) {
        (
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            p(&[
                ("CallSid", "CA1234567890ABCDE"),
                ("Caller", "+12349013030"),
                ("Digits", "1234"),
                ("From", "+12349013030"),
                ("To", "+18005551212"),
            ]),
        )
    }

    #[test]
    fn twilio_documented_example() {
        let (token, url, params) = twilio_doc_example();
        assert_eq!(
            compute_signature(token, url, &params),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
        assert!(validate_signature(
            token,
            url,
            &params,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        // Parameter order on the wire does not matter.
        let mut reversed = params.clone();
        reversed.reverse();
        assert!(validate_signature(
            token,
            url,
            &reversed,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
    }

    #[test]
    fn other_host_same_params() {
        // sig("12345", "https://example.com/myapp.php?foo=1&bar=2", <doc params>)
        let (token, _, params) = twilio_doc_example();
        assert_eq!(
            compute_signature(token, "https://example.com/myapp.php?foo=1&bar=2", &params),
            "vNe7KK2kJwCsxc9K3OLkkKB3qqI="
        );
    }

    #[test]
    fn repeated_keys_sorted_by_value() {
        // sig("tok_abc", "https://sb.example.com/webhooks/twilio/sms",
        //     [("To","+15551230000"),("From","+15557654321"),("Body","pic"),
        //      ("MediaUrl","https://m.example/b.png"),("MediaUrl","https://m.example/a.png"),
        //      ("NumMedia","2")])
        let params = p(&[
            ("To", "+15551230000"),
            ("From", "+15557654321"),
            ("Body", "pic"),
            ("MediaUrl", "https://m.example/b.png"),
            ("MediaUrl", "https://m.example/a.png"),
            ("NumMedia", "2"),
        ]);
        let url = "https://sb.example.com/webhooks/twilio/sms";
        assert_eq!(
            compute_signature("tok_abc", url, &params),
            "CjqFmGn8NHnbolIObIB4/uxtR3g="
        );
        let mut swapped = params.clone();
        swapped.swap(3, 4);
        assert_eq!(
            compute_signature("tok_abc", url, &swapped),
            "CjqFmGn8NHnbolIObIB4/uxtR3g="
        );
        // Dropping one of the repeated values breaks it.
        let fewer: Vec<_> = params.iter().take(4).cloned().collect();
        assert!(!validate_signature(
            "tok_abc",
            url,
            &fewer,
            "CjqFmGn8NHnbolIObIB4/uxtR3g="
        ));
    }

    #[test]
    fn unicode_body() {
        // sig("s3cr3t", "https://sb.example.com/webhooks/twilio/sms",
        //     [("Body","Café ☕ 你好 👋"),("From","+4915112345678"),
        //      ("MessageSid","SM0123456789abcdef0123456789abcdef"),("To","+15550001111")])
        let params = p(&[
            ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
            ("Body", "Café ☕ 你好 👋"),
            ("To", "+15550001111"),
            ("From", "+4915112345678"),
        ]);
        let url = "https://sb.example.com/webhooks/twilio/sms";
        assert_eq!(
            compute_signature("s3cr3t", url, &params),
            "WkYDn5mEyQe5MUmPOu3h3Fsj1wc="
        );
        assert!(validate_signature(
            "s3cr3t",
            url,
            &params,
            "WkYDn5mEyQe5MUmPOu3h3Fsj1wc="
        ));
    }

    #[test]
    fn no_params() {
        // sig("tok", "https://sb.example.com/hook", [])
        assert_eq!(
            compute_signature("tok", "https://sb.example.com/hook", &[]),
            "GLLAePxYDduJKAo4mvJtRXiJW+k="
        );
    }

    #[test]
    fn negatives() {
        let (token, url, params) = twilio_doc_example();
        let good = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";
        // Wrong token.
        assert!(!validate_signature("12346", url, &params, good));
        // Wrong URL (host, path, query).
        assert!(!validate_signature(
            token,
            "https://example.com/myapp.php?foo=1&bar=2",
            &params,
            good
        ));
        assert!(!validate_signature(
            token,
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &params,
            good
        ));
        assert!(!validate_signature(
            token,
            "http://mycompany.com/myapp.php?foo=1&bar=2",
            &params,
            good
        ));
        // Tampered parameter.
        let mut tampered = params.clone();
        tampered[2].1 = "1235".into();
        assert!(!validate_signature(token, url, &tampered, good));
        // Extra parameter.
        let mut extra = params.clone();
        extra.push(("Body".into(), "hi".into()));
        assert!(!validate_signature(token, url, &extra, good));
        // Bad signatures: another valid one, flipped bit, truncated, not base64, empty.
        assert!(!validate_signature(
            token,
            url,
            &params,
            "vNe7KK2kJwCsxc9K3OLkkKB3qqI="
        ));
        assert!(!validate_signature(
            token,
            url,
            &params,
            "1/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        assert!(!validate_signature(token, url, &params, "0/KCTR6DLpKmkAf8"));
        assert!(!validate_signature(token, url, &params, "not base64!!"));
        assert!(!validate_signature(token, url, &params, ""));
    }

    #[test]
    fn default_port_variants() {
        let (token, _, params) = twilio_doc_example();
        let good = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";
        assert!(validate_signature(
            token,
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            &params,
            good
        ));
        // A non-default port is part of the URL.
        assert!(!validate_signature(
            token,
            "https://mycompany.com:8443/myapp.php?foo=1&bar=2",
            &params,
            good
        ));
        assert_eq!(
            url_variants("https://h.example/x?y=1"),
            vec!["https://h.example/x?y=1", "https://h.example:443/x?y=1"]
        );
        assert_eq!(
            url_variants("http://h.example:80/x"),
            vec!["http://h.example:80/x", "http://h.example/x"]
        );
        assert_eq!(
            url_variants("http://[::1]:8080/x"),
            vec!["http://[::1]:8080/x"]
        );
        assert_eq!(
            url_variants("https://[::1]/x"),
            vec!["https://[::1]/x", "https://[::1]:443/x"]
        );
        assert_eq!(url_variants("garbage"), vec!["garbage"]);
    }
}
