//! What a message may hold: text (emoji included, counted in characters) and attachments
//! by reference. The bytes of an attachment live in the attachment store; the log only
//! records which one, its type and its size.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conversation::rejection::ConversationRejection;
use crate::ids::AttachmentId;
use crate::limits::{
    MAX_ATTACHMENTS_PER_MESSAGE, MAX_ATTACHMENT_BYTES, MAX_INTERNAL_TEXT_CHARS,
    MAX_MIME_TYPE_CHARS, MAX_MMS_IMAGE_BYTES, MAX_SMS_TEXT_CHARS, MMS_IMAGE_TYPES,
};
use crate::validation::{max_chars, max_count};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AttachmentRef {
    pub id: AttachmentId,
    /// Lower-case `type/subtype`, e.g. `image/png`.
    pub mime: String,
    pub size_bytes: u64,
}

/// Where a message's content is going, which decides its limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Medium {
    /// Seen only inside the workspace: long text, any file.
    Internal,
    /// Also sent by SMS/MMS: carrier text limit, resized images only.
    OutboundSms,
    /// Received from a carrier: carrier text limit, whatever media the phone sent.
    InboundSms,
}

/// Checks a message's content and returns its attachments normalised (lower-case MIME
/// types), ready to be recorded.
pub(super) fn checked_content(
    text: &str,
    attachments: &[AttachmentRef],
    medium: Medium,
) -> Result<Vec<AttachmentRef>, ConversationRejection> {
    if text.trim().is_empty() && attachments.is_empty() {
        return Err(ConversationRejection::EmptyMessage);
    }
    let max_text = match medium {
        Medium::Internal => MAX_INTERNAL_TEXT_CHARS,
        Medium::OutboundSms | Medium::InboundSms => MAX_SMS_TEXT_CHARS,
    };
    max_chars("text", text, max_text)?;
    max_count(
        "attachments",
        attachments.len(),
        MAX_ATTACHMENTS_PER_MESSAGE,
    )?;
    attachments
        .iter()
        .map(|attachment| checked_attachment(attachment, medium))
        .collect()
}

fn checked_attachment(
    attachment: &AttachmentRef,
    medium: Medium,
) -> Result<AttachmentRef, ConversationRejection> {
    let mime = attachment.mime.trim().to_ascii_lowercase();
    if !is_mime_type(&mime) {
        return Err(ConversationRejection::InvalidMimeType {
            mime: attachment.mime.clone(),
        });
    }
    let max_bytes = match medium {
        Medium::OutboundSms => {
            if !MMS_IMAGE_TYPES.contains(&mime.as_str()) {
                return Err(ConversationRejection::UnsupportedMmsType { mime });
            }
            MAX_MMS_IMAGE_BYTES
        }
        Medium::Internal | Medium::InboundSms => MAX_ATTACHMENT_BYTES,
    };
    if attachment.size_bytes > max_bytes {
        return Err(ConversationRejection::AttachmentTooLarge {
            attachment: attachment.id,
            size_bytes: attachment.size_bytes,
            max_bytes,
        });
    }
    Ok(AttachmentRef {
        id: attachment.id,
        mime,
        size_bytes: attachment.size_bytes,
    })
}

/// `type/subtype` made of RFC 6838 name characters (parameters such as `; charset=` are
/// not part of what we store).
fn is_mime_type(mime: &str) -> bool {
    let is_name = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    mime.len() <= MAX_MIME_TYPE_CHARS
        && mime
            .split_once('/')
            .is_some_and(|(kind, subtype)| is_name(kind) && is_name(subtype))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::InvalidInput;

    fn attachment(mime: &str, size_bytes: u64) -> AttachmentRef {
        AttachmentRef {
            id: AttachmentId::random(),
            mime: mime.into(),
            size_bytes,
        }
    }

    #[test]
    fn text_or_an_attachment_is_enough() {
        assert_eq!(checked_content("hi", &[], Medium::Internal), Ok(vec![]));
        let png = attachment("image/png", 10);
        assert_eq!(
            checked_content("", std::slice::from_ref(&png), Medium::Internal),
            Ok(vec![png])
        );
    }

    #[test]
    fn a_message_with_neither_is_empty() {
        assert_eq!(
            checked_content(" \n\t", &[], Medium::Internal),
            Err(ConversationRejection::EmptyMessage)
        );
    }

    #[test]
    fn text_limits_count_characters_and_depend_on_the_medium() {
        let emoji_4000 = "😀".repeat(MAX_INTERNAL_TEXT_CHARS);
        assert!(checked_content(&emoji_4000, &[], Medium::Internal).is_ok());
        assert_eq!(
            checked_content(&format!("{emoji_4000}!"), &[], Medium::Internal),
            Err(ConversationRejection::Invalid(InvalidInput::TooLong {
                field: "text",
                len: MAX_INTERNAL_TEXT_CHARS + 1,
                max: MAX_INTERNAL_TEXT_CHARS
            }))
        );
        let sms_max = "é".repeat(MAX_SMS_TEXT_CHARS);
        assert!(checked_content(&sms_max, &[], Medium::OutboundSms).is_ok());
        assert!(checked_content(&format!("{sms_max}x"), &[], Medium::OutboundSms).is_err());
        assert!(checked_content(&format!("{sms_max}x"), &[], Medium::InboundSms).is_err());
    }

    #[test]
    fn at_most_ten_attachments() {
        let ten: Vec<_> = (0..10).map(|_| attachment("text/plain", 1)).collect();
        assert!(checked_content("", &ten, Medium::Internal).is_ok());
        let eleven: Vec<_> = (0..11).map(|_| attachment("text/plain", 1)).collect();
        assert_eq!(
            checked_content("", &eleven, Medium::Internal).map_err(|e| e.to_string()),
            Err("attachments has 11 entries; at most 10 are allowed".into())
        );
    }

    #[test]
    fn mime_types_must_be_well_formed_and_are_lower_cased() {
        let upper = attachment(" Application/PDF ", 1);
        assert_eq!(
            checked_content("", &[upper], Medium::Internal).unwrap()[0].mime,
            "application/pdf"
        );
        for bad in ["", "pdf", "/pdf", "image/", "image/png; x=y", "a/b/c"] {
            assert!(
                matches!(
                    checked_content("", &[attachment(bad, 1)], Medium::Internal),
                    Err(ConversationRejection::InvalidMimeType { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn mms_carries_resized_jpeg_png_or_gif_only() {
        for ok in ["image/jpeg", "image/png", "image/gif"] {
            assert!(checked_content(
                "",
                &[attachment(ok, MAX_MMS_IMAGE_BYTES)],
                Medium::OutboundSms
            )
            .is_ok());
        }
        assert_eq!(
            checked_content("", &[attachment("application/pdf", 1)], Medium::OutboundSms),
            Err(ConversationRejection::UnsupportedMmsType {
                mime: "application/pdf".into()
            })
        );
        let big = attachment("image/png", MAX_MMS_IMAGE_BYTES + 1);
        assert_eq!(
            checked_content("", std::slice::from_ref(&big), Medium::OutboundSms),
            Err(ConversationRejection::AttachmentTooLarge {
                attachment: big.id,
                size_bytes: MAX_MMS_IMAGE_BYTES + 1,
                max_bytes: MAX_MMS_IMAGE_BYTES
            })
        );
        // The same image is fine as a file in an internal conversation.
        assert!(checked_content("", &[big], Medium::Internal).is_ok());
    }

    #[test]
    fn files_have_a_size_limit() {
        assert!(checked_content(
            "",
            &[attachment("video/mp4", MAX_ATTACHMENT_BYTES)],
            Medium::Internal
        )
        .is_ok());
        assert!(matches!(
            checked_content(
                "",
                &[attachment("video/mp4", MAX_ATTACHMENT_BYTES + 1)],
                Medium::InboundSms
            ),
            Err(ConversationRejection::AttachmentTooLarge { .. })
        ));
    }
}
