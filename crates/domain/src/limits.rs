//! Every size limit of the domain, in one place so the gateway can publish them.
//!
//! Text lengths count Unicode scalar values (`char`s), not bytes: an emoji is one
//! character of a message like any letter.

/// Longest text of a message in an internal conversation (Direct, Channel).
pub const MAX_INTERNAL_TEXT_CHARS: usize = 4000;
/// Longest text of a message that goes out by SMS (External, Group), and of an inbound
/// SMS: carriers concatenate segments up to this length and no further.
pub const MAX_SMS_TEXT_CHARS: usize = 1600;
/// Most attachments (or inbound MMS media) on one message.
pub const MAX_ATTACHMENTS_PER_MESSAGE: usize = 10;
/// Largest file attached to an internal message.
pub const MAX_ATTACHMENT_BYTES: u64 = MAX_ATTACHMENT_LEN as u64;
/// [`MAX_ATTACHMENT_BYTES`] as a length in memory (25 MiB fits a `usize` everywhere).
pub const MAX_ATTACHMENT_LEN: usize = 25 * 1024 * 1024;
/// Largest image sent by MMS. The attachment store resizes images to about 600 KB before
/// they are referenced by a message, so anything above this was not resized.
pub const MAX_MMS_IMAGE_BYTES: u64 = 600 * 1024;
/// Image types carriers deliver as MMS.
pub const MMS_IMAGE_TYPES: [&str; 3] = ["image/jpeg", "image/png", "image/gif"];
/// Longest MIME type accepted on an attachment (RFC 6838 allows 127 + 1 + 127).
pub const MAX_MIME_TYPE_CHARS: usize = 255;

/// Longest channel name.
pub const MAX_CHANNEL_NAME_CHARS: usize = 80;
/// Most internal members of one channel or group (a company-wide channel of a
/// 1,000-person organization fits; events naming them all stay far below the log's limit).
pub const MAX_CONVERSATION_MEMBERS: usize = 1_000;
/// Most external numbers in one mixed group; group MMS is not delivered reliably to more.
pub const MAX_GROUP_EXTERNALS: usize = 10;

/// Longest organization name.
pub const MAX_ORGANIZATION_NAME_CHARS: usize = 200;
/// Longest user name.
pub const MAX_USER_NAME_CHARS: usize = 200;
/// Fewest and most digits of an extension number.
pub const MIN_EXTENSION_DIGITS: usize = 2;
pub const MAX_EXTENSION_DIGITS: usize = 8;
/// Longest contact name, and longest company name.
pub const MAX_CONTACT_NAME_CHARS: usize = 200;
pub const MAX_COMPANY_NAME_CHARS: usize = 200;
/// Most phone numbers on one contact.
pub const MAX_CONTACT_NUMBERS: usize = 10;

/// Longest inbox name.
pub const MAX_INBOX_NAME_CHARS: usize = 80;
/// Most team members of one inbox.
pub const MAX_INBOX_MEMBERS: usize = 500;

/// Fewest and most digits of an E.164 phone number (after the `+`).
pub const MIN_PHONE_DIGITS: usize = 8;
pub const MAX_PHONE_DIGITS: usize = 15;

/// Longest carrier failure reason kept on a delivery status.
pub const MAX_DELIVERY_REASON_CHARS: usize = 500;
/// Longest carrier message id kept on a delivery report. Carriers' ids are far shorter
/// (Twilio's are 34 characters); this only bounds what a faulty adapter could write.
pub const MAX_CARRIER_MESSAGE_ID_CHARS: usize = 128;
/// Longest carrier error code kept on a delivery report (codes are a few characters).
pub const MAX_CARRIER_ERROR_CODE_CHARS: usize = 64;

/// How many of a conversation's newest messages (by seq) its state keeps, for the
/// decisions that look at single messages: a retried post or webhook reusing a message id,
/// read receipts of recent messages. Older messages live in the log and the read models;
/// see `conversation::window` for what that means for duplicate ids and late callbacks.
pub const RECENT_MESSAGES: usize = 256;
/// How long an older message whose SMS has no final delivery status yet is kept for the
/// carrier's callback, counted from the message's `at_ms`: carriers report within minutes,
/// and some never report a final status at all, so after this the state lets it go.
pub const PENDING_DELIVERY_MAX_AGE_MS: u64 = 7 * 24 * 60 * 60 * 1000;
/// Most older messages kept for their pending deliveries, so a busy conversation on a
/// carrier that never reports a final status still has a bounded state; beyond it the
/// oldest are let go first.
pub const MAX_PENDING_DELIVERY_MESSAGES: usize = 1024;
