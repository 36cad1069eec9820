//! Carrier error codes in words: what a person reading a failed text should see instead of
//! `30008`. The codes are Twilio's (the API the adapter speaks); unknown codes have no
//! description and callers fall back to the carrier's own reason.

/// A short, human-readable description of a carrier error code, if it is a known one.
pub fn describe(code: &str) -> Option<&'static str> {
    Some(match code.trim() {
        "30001" => "The carrier's queue overflowed",
        "30002" => "The carrier account was suspended",
        "30003" => "The handset is unreachable (off or out of coverage)",
        "30004" => "The recipient blocked the message",
        "30005" => "Unknown destination handset",
        "30006" => "The number is a landline or its carrier is unreachable",
        "30007" => "The carrier filtered the message as spam",
        "30008" => "Unknown error from the carrier",
        "30009" => "A part of the message is missing",
        "30010" => "The message price exceeds the maximum allowed",
        "30019" => "The message is too long for the recipient's carrier",
        "30032" => "The toll-free number is not verified",
        "30034" => "The number is not registered for A2P 10DLC messaging",
        "21211" => "The phone number is not valid",
        "21408" => "Texting this region is not enabled",
        "21610" => "The recipient has opted out (texted STOP)",
        "21612" => "The carrier cannot route between these numbers",
        "21614" => "The number cannot receive texts (not a mobile number)",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_codes_have_words_and_others_none() {
        assert_eq!(
            super::describe("30008"),
            Some("Unknown error from the carrier")
        );
        assert!(super::describe(" 30003 ").is_some());
        assert_eq!(super::describe("99999"), None);
    }
}
