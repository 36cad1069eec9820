//! Parsing Twilio's inbound-message and status-callback webhooks from their form
//! parameters. Validate the signature first (see [`super::validate_signature`]); these
//! functions only check shape.

use crate::{CarrierStatus, InboundMedia, InboundSms, StatusReport};

/// Most media items Twilio attaches to one inbound message.
pub const MAX_MEDIA: usize = 10;

/// Why a webhook payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// A required parameter is absent or empty.
    #[error("missing webhook parameter {0}")]
    MissingField(&'static str),
    /// A parameter that must appear once appears several times.
    #[error("webhook parameter {0} appears more than once")]
    DuplicateField(String),
    /// A parameter has an unusable value.
    #[error("invalid webhook parameter {field}: {reason}")]
    InvalidField {
        /// The parameter name.
        field: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `NumMedia` is above [`MAX_MEDIA`].
    #[error("NumMedia is {0}; at most {MAX_MEDIA} media items are accepted")]
    TooManyMedia(u64),
}

impl WebhookError {
    /// Stable machine-readable code: `missing_field`, `duplicate_field`, `invalid_field`,
    /// `too_many_media`.
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::MissingField(_) => "missing_field",
            WebhookError::DuplicateField(_) => "duplicate_field",
            WebhookError::InvalidField { .. } => "invalid_field",
            WebhookError::TooManyMedia(_) => "too_many_media",
        }
    }
}

/// Decodes an `application/x-www-form-urlencoded` body into its parameters, keeping order
/// and repeated names (as signature validation needs).
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// The single value of `name`, if present; a repeated name is an error.
fn one<'a>(params: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, WebhookError> {
    let mut found = None;
    for (k, v) in params {
        if k == name {
            if found.is_some() {
                return Err(WebhookError::DuplicateField(name.to_owned()));
            }
            found = Some(v.as_str());
        }
    }
    Ok(found)
}

fn required<'a>(
    params: &'a [(String, String)],
    name: &'static str,
) -> Result<&'a str, WebhookError> {
    match one(params, name)? {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(WebhookError::MissingField(name)),
    }
}

fn message_sid(params: &[(String, String)]) -> Result<String, WebhookError> {
    let sid = required(params, "MessageSid")?;
    if sid.len() > 64 || !sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(WebhookError::InvalidField {
            field: "MessageSid".into(),
            reason: "must be at most 64 ASCII letters and digits",
        });
    }
    Ok(sid.to_owned())
}

fn is_http_url(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && !s.chars().any(char::is_whitespace)
}

/// Parses an inbound-message webhook: `MessageSid`, `From`, `To`, `Body` (may be empty),
/// `NumMedia` (absent means 0; at most [`MAX_MEDIA`]), and for each media item `i`
/// `MediaUrl{i}` (required, http/https) and `MediaContentType{i}` (optional).
pub fn parse_inbound(params: &[(String, String)]) -> Result<InboundSms, WebhookError> {
    let carrier_message_id = message_sid(params)?;
    let from = required(params, "From")?.to_owned();
    let to = required(params, "To")?.to_owned();
    let body = one(params, "Body")?.unwrap_or_default().to_owned();
    let num_media = match one(params, "NumMedia")?.map(str::trim) {
        None | Some("") => 0,
        Some(n) => n.parse::<u64>().map_err(|_| WebhookError::InvalidField {
            field: "NumMedia".into(),
            reason: "must be a non-negative integer",
        })?,
    };
    if num_media > MAX_MEDIA as u64 {
        return Err(WebhookError::TooManyMedia(num_media));
    }
    // At most MAX_MEDIA (checked above), so it fits.
    let mut media = Vec::with_capacity(usize::try_from(num_media).unwrap_or(MAX_MEDIA));
    for i in 0..num_media {
        let url_field = format!("MediaUrl{i}");
        let url = match one(params, &url_field)? {
            Some(u) if !u.trim().is_empty() => u.trim(),
            _ => {
                return Err(WebhookError::InvalidField {
                    field: url_field,
                    reason: "missing media URL for NumMedia",
                })
            }
        };
        if !is_http_url(url) {
            return Err(WebhookError::InvalidField {
                field: url_field,
                reason: "must be an http(s) URL",
            });
        }
        let content_type = one(params, &format!("MediaContentType{i}"))?
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        media.push(InboundMedia {
            url: url.to_owned(),
            content_type,
        });
    }
    Ok(InboundSms {
        carrier_message_id,
        from,
        to,
        body,
        media,
    })
}

/// Parses a status-callback webhook: `MessageSid`, `MessageStatus` (or the older
/// `SmsStatus`) and optional `ErrorCode`. A status string this crate does not know is
/// returned as [`CarrierStatus::Unknown`] (acknowledge it, it moves nothing).
pub fn parse_status(params: &[(String, String)]) -> Result<StatusReport, WebhookError> {
    let carrier_message_id = message_sid(params)?;
    let status = match one(params, "MessageStatus")?.filter(|s| !s.trim().is_empty()) {
        Some(s) => s,
        None => one(params, "SmsStatus")?
            .filter(|s| !s.trim().is_empty())
            .ok_or(WebhookError::MissingField("MessageStatus"))?,
    };
    let error_code = one(params, "ErrorCode")?
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    Ok(StatusReport {
        carrier_message_id,
        status: CarrierStatus::from_twilio(status, error_code.as_deref()),
        error_code,
    })
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

    const SID: &str = "SM0123456789abcdef0123456789abcdef";

    fn base() -> Vec<(String, String)> {
        p(&[
            ("ToCountry", "US"),
            ("MessageSid", SID),
            ("AccountSid", "AC0123"),
            ("From", "+15557654321"),
            ("To", "+15551230000"),
            ("Body", "Hi there ☕"),
            ("NumSegments", "1"),
        ])
    }

    #[test]
    fn form_decoding_keeps_order_and_repeats() {
        let params = parse_form(b"Body=Hello+world%21&MediaUrl=a&MediaUrl=b&Empty=&E=%E2%98%95");
        assert_eq!(
            params,
            p(&[
                ("Body", "Hello world!"),
                ("MediaUrl", "a"),
                ("MediaUrl", "b"),
                ("Empty", ""),
                ("E", "☕"),
            ])
        );
    }

    #[test]
    fn inbound_sms_without_media() {
        let sms = parse_inbound(&base()).unwrap();
        assert_eq!(sms.carrier_message_id, SID);
        assert_eq!(sms.from, "+15557654321");
        assert_eq!(sms.to, "+15551230000");
        assert_eq!(sms.body, "Hi there ☕");
        assert!(sms.media.is_empty());
        let mut zero = base();
        zero.push(("NumMedia".into(), "0".into()));
        assert_eq!(parse_inbound(&zero).unwrap().media.len(), 0);
    }

    #[test]
    fn inbound_mms_with_media() {
        let mut params = base();
        params.extend(p(&[
            ("NumMedia", "2"),
            (
                "MediaUrl1",
                "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/SM1/Media/ME2",
            ),
            ("MediaContentType1", "image/png"),
            (
                "MediaUrl0",
                "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/SM1/Media/ME1",
            ),
            ("MediaContentType0", "image/jpeg"),
        ]));
        params.retain(|(k, _)| k != "Body");
        let sms = parse_inbound(&params).unwrap();
        assert_eq!(sms.body, "", "picture-only MMS");
        assert_eq!(sms.media.len(), 2);
        assert!(sms.media[0].url.ends_with("/ME1"));
        assert_eq!(sms.media[0].content_type.as_deref(), Some("image/jpeg"));
        assert!(sms.media[1].url.ends_with("/ME2"));
        assert_eq!(sms.media[1].content_type.as_deref(), Some("image/png"));
    }

    #[test]
    fn inbound_media_errors() {
        let with = |extra: &[(&str, &str)]| {
            let mut params = base();
            params.extend(p(extra));
            parse_inbound(&params)
        };
        assert_eq!(
            with(&[("NumMedia", "11")]).unwrap_err(),
            WebhookError::TooManyMedia(11)
        );
        assert_eq!(
            with(&[("NumMedia", "99999999999999999999")])
                .unwrap_err()
                .code(),
            "invalid_field"
        );
        assert_eq!(
            with(&[("NumMedia", "-1")]).unwrap_err().code(),
            "invalid_field"
        );
        assert_eq!(
            with(&[("NumMedia", "two")]).unwrap_err().code(),
            "invalid_field"
        );
        let e = with(&[("NumMedia", "2"), ("MediaUrl0", "https://x/0")]).unwrap_err();
        assert_eq!(
            e,
            WebhookError::InvalidField {
                field: "MediaUrl1".into(),
                reason: "missing media URL for NumMedia"
            }
        );
        let e = with(&[("NumMedia", "1"), ("MediaUrl0", "file:///etc/passwd")]).unwrap_err();
        assert_eq!(e.code(), "invalid_field");
        let e = with(&[("NumMedia", "1"), ("MediaUrl0", "")]).unwrap_err();
        assert_eq!(e.code(), "invalid_field");
        // Exactly the maximum is fine.
        let mut ten: Vec<(String, String)> = vec![("NumMedia".into(), "10".into())];
        for i in 0..10 {
            ten.push((format!("MediaUrl{i}"), format!("https://m.example/{i}")));
        }
        let mut params = base();
        params.extend(ten);
        assert_eq!(parse_inbound(&params).unwrap().media.len(), 10);
    }

    #[test]
    fn inbound_required_fields() {
        for field in ["MessageSid", "From", "To"] {
            let mut params = base();
            params.retain(|(k, _)| k != field);
            assert_eq!(
                parse_inbound(&params).unwrap_err(),
                WebhookError::MissingField(match field {
                    "MessageSid" => "MessageSid",
                    "From" => "From",
                    _ => "To",
                })
            );
            let mut blank = base();
            for (k, v) in &mut blank {
                if k == field {
                    *v = "  ".into();
                }
            }
            assert_eq!(parse_inbound(&blank).unwrap_err().code(), "missing_field");
        }
        let mut dup = base();
        dup.push(("From".into(), "+15550000000".into()));
        assert_eq!(
            parse_inbound(&dup).unwrap_err(),
            WebhookError::DuplicateField("From".into())
        );
        let mut bad_sid = base();
        bad_sid[1].1 = "SM../../x".into();
        assert_eq!(parse_inbound(&bad_sid).unwrap_err().code(), "invalid_field");
    }

    #[test]
    fn status_callbacks() {
        let r = parse_status(&p(&[
            ("MessageSid", SID),
            ("MessageStatus", "delivered"),
            ("SmsStatus", "delivered"),
        ]))
        .unwrap();
        assert_eq!(r.carrier_message_id, SID);
        assert_eq!(r.status, CarrierStatus::Delivered);
        assert_eq!(r.error_code, None);

        let r = parse_status(&p(&[
            ("MessageSid", SID),
            ("MessageStatus", "undelivered"),
            ("ErrorCode", "30003"),
        ]))
        .unwrap();
        assert_eq!(
            r.status,
            CarrierStatus::Undelivered {
                error_code: Some("30003".into())
            }
        );
        assert_eq!(r.error_code.as_deref(), Some("30003"));

        // Older callbacks carry only SmsStatus.
        let r = parse_status(&p(&[("MessageSid", SID), ("SmsStatus", "sent")])).unwrap();
        assert_eq!(r.status, CarrierStatus::Sent);

        let r = parse_status(&p(&[("MessageSid", SID), ("MessageStatus", "weird")])).unwrap();
        assert_eq!(
            r.status,
            CarrierStatus::Unknown {
                status: "weird".into()
            }
        );

        assert_eq!(
            parse_status(&p(&[("MessageSid", SID)])).unwrap_err(),
            WebhookError::MissingField("MessageStatus")
        );
        assert_eq!(
            parse_status(&p(&[("MessageStatus", "sent")])).unwrap_err(),
            WebhookError::MissingField("MessageSid")
        );
        assert_eq!(
            parse_status(&p(&[
                ("MessageSid", SID),
                ("MessageStatus", "sent"),
                ("MessageStatus", "failed")
            ]))
            .unwrap_err()
            .code(),
            "duplicate_field"
        );
    }
}
