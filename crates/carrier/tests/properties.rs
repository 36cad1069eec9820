//! Property tests over the pure parts: signatures, keywords, backoff, blobs.

use std::time::Duration;

use carrier::blobs::BlobStore;
use carrier::keywords::classify;
use carrier::twilio::{compute_signature, parse_form, validate_signature};
use carrier::Backoff;
use proptest::prelude::*;

fn params() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("[A-Za-z][A-Za-z0-9]{0,8}", "\\PC{0,12}"), 0..8)
}

proptest! {
    #[test]
    fn signature_validates_in_any_parameter_order(
        token in "[a-z0-9]{1,32}",
        path in "[a-z/]{0,20}",
        params in params(),
        rotate in 0usize..8,
    ) {
        let url = format!("https://sb.example.com/{path}");
        let signature = compute_signature(&token, &url, &params);
        let mut shuffled = params.clone();
        if !shuffled.is_empty() {
            let n = rotate % shuffled.len();
            shuffled.rotate_left(n);
            shuffled.reverse();
        }
        prop_assert!(validate_signature(&token, &url, &shuffled, &signature));
        // Same URL with the default port also validates.
        let with_port = format!("https://sb.example.com:443/{path}");
        prop_assert!(validate_signature(&token, &with_port, &shuffled, &signature));
        // Any change to a value, the token or the URL breaks it.
        if let Some((_, v)) = shuffled.first_mut() {
            v.push('x');
            prop_assert!(!validate_signature(&token, &url, &shuffled, &signature));
        }
        let other_token = format!("{token}!");
        prop_assert!(!validate_signature(&other_token, &url, &params, &signature));
        let other_url = format!("{url}x");
        prop_assert!(!validate_signature(&token, &other_url, &params, &signature));
    }

    #[test]
    fn form_round_trip(params in params()) {
        let mut body = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &params {
            body.append_pair(k, v);
        }
        prop_assert_eq!(parse_form(body.finish().as_bytes()), params);
    }

    #[test]
    fn keyword_needs_the_whole_message(
        word in prop::sample::select(vec!["stop", "stopall", "unsubscribe", "start", "unstop", "help", "quit"]),
        case_mask in any::<u16>(),
        tail in "[a-z]{1,8}",
    ) {
        // Random ASCII letter case.
        let word: String = word
            .chars()
            .enumerate()
            .map(|(i, c)| if case_mask >> (i % 16) & 1 == 1 { c.to_ascii_uppercase() } else { c })
            .collect();
        prop_assert!(classify(&word).is_some());
        let punctuated = format!(" {word}. ");
        prop_assert_eq!(classify(&punctuated), classify(&word));
        let sentence = format!("{word} {tail}");
        prop_assert_eq!(classify(&sentence), None);
        let prefixed = format!("{tail} {word}");
        prop_assert_eq!(classify(&prefixed), None);
    }

    #[test]
    fn classify_never_panics(body in "\\PC{0,40}") {
        let _ = classify(&body);
    }

    #[test]
    fn backoff_stays_within_bounds(
        base_ms in 1u64..10_000,
        cap_ms in 1u64..1_000_000,
        attempt in 0u32..200,
        jitter in 0.0f64..=1.0,
        seed in any::<u64>(),
    ) {
        let b = Backoff {
            base: Duration::from_millis(base_ms),
            cap: Duration::from_millis(cap_ms),
            max_attempts: 10,
            jitter,
            seed,
        };
        let d = b.delay_for(attempt);
        prop_assert!(d <= Duration::from_millis(cap_ms));
        if attempt > 0 {
            let undisturbed = Backoff { jitter: 0.0, ..b }.delay_for(attempt);
            prop_assert!(d <= undisturbed);
            prop_assert!(d.as_secs_f64() >= undisturbed.as_secs_f64() * (1.0 - jitter) - 1e-6);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn blob_round_trip(data in prop::collection::vec(any::<u8>(), 0..4096)) {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let blob = store.put(&data).unwrap();
        prop_assert_eq!(blob.size, data.len() as u64);
        prop_assert_eq!(store.put(&data).unwrap(), blob.clone());
        prop_assert_eq!(store.get(&blob.hash).unwrap(), Some(data));
    }
}
