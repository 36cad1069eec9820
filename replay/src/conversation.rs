//! `replay conversation <id>`: every event of one conversation, decoded (old schema
//! versions upcast), with names resolved from the organization's directory as it was at
//! the end of the printed range.

use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use actors::event_codec;
use anyhow::Context;
use domain::conversation::{ConversationKind, DeliveryStatus, InboxStatus, SystemNote};
use domain::{
    Actor, Aggregate, Conversation, ConversationEvent, ConversationId, Directory, DirectoryEvent,
    PhoneNumber, UserId,
};
use eventlog::{Direction, EventStore, RecordedEvent, StreamName};

/// How to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Jsonl,
}

const PAGE: usize = 4096;

/// Prints conversation `id`'s history up to `as_of_us` (log time, microseconds since the
/// epoch; all of it when `None`) and, in text, the state it was in then. Returns the
/// number of events printed.
///
/// # Errors
/// When the log cannot be read, an event cannot be decoded, or `out` fails.
pub fn print(
    log: &dyn EventStore,
    id: ConversationId,
    format: Format,
    as_of_us: Option<u64>,
    out: &mut dyn Write,
) -> anyhow::Result<usize> {
    let stream = StreamName::from_parts("conversation", id)?;
    let sealer = actors::sealing::Sealer::of(log);
    let mut events: Vec<(RecordedEvent, ConversationEvent)> = Vec::new();
    let mut from = 0;
    'read: loop {
        let page = log.read_stream_blocking(&stream, from, Direction::Forward, PAGE)?;
        let Some(last) = page.last() else { break };
        from = last.version + 1;
        for r in page {
            if as_of_us.is_some_and(|t| r.timestamp_us > t) {
                break 'read;
            }
            let e = event_codec::decode_opened_blocking::<ConversationEvent>(&r, &sealer)
                .map_err(|e| anyhow::anyhow!("{} at position {}: {e}", r.event_type, r.position))?;
            events.push((r, e));
        }
    }
    anyhow::ensure!(
        !events.is_empty(),
        "no conversation {id} in this log (as of then)"
    );
    let org = match &events[0].1 {
        ConversationEvent::ConversationStarted(s) => s.org,
        _ => anyhow::bail!("conversation {id} does not begin with ConversationStarted"),
    };
    let directory = directory_of(log, org, as_of_us).context("reading the directory")?;
    let names = Names { d: &directory };
    let mut w = std::io::BufWriter::with_capacity(1 << 16, out);
    for (r, e) in &events {
        match format {
            Format::Text => writeln!(
                w,
                "{} #{:<5} pos {:<8} {}",
                time_of(r.timestamp_us),
                r.version,
                r.position,
                describe(e, &names)
            )?,
            Format::Jsonl => {
                let line = serde_json::json!({
                    "stream": r.stream.as_str(),
                    "version": r.version,
                    "position": r.position,
                    "time": time_of(r.timestamp_us),
                    "timestamp_us": r.timestamp_us,
                    "event_id": r.event_id.to_string(),
                    "event_type": r.event_type,
                    "stored_schema_version": r.schema_version,
                    "acting_user": r.metadata.acting_user,
                    "hash": eventlog::hex::encode(&r.hash),
                    "event": readable(e),
                });
                serde_json::to_writer(&mut w, &line)?;
                w.write_all(b"\n")?;
            }
        }
    }
    if format == Format::Text {
        let state = Conversation::replay(events.iter().map(|(_, e)| e));
        let at = as_of_us.map_or_else(|| "the end of the log".to_owned(), time_of);
        writeln!(w, "-- state at {at} --")?;
        summary(&state, &names, &mut w)?;
    }
    w.flush()?;
    Ok(events.len())
}

/// The organization's directory folded from its events up to `as_of_us`.
fn directory_of(
    log: &dyn EventStore,
    org: domain::OrgId,
    as_of_us: Option<u64>,
) -> anyhow::Result<Directory> {
    let stream = StreamName::from_parts("directory", org)?;
    let mut events = Vec::new();
    let mut from = 0;
    'read: loop {
        let page = log.read_stream_blocking(&stream, from, Direction::Forward, PAGE)?;
        let Some(last) = page.last() else { break };
        from = last.version + 1;
        for r in page {
            if as_of_us.is_some_and(|t| r.timestamp_us > t) {
                break 'read;
            }
            events.push(event_codec::decode::<DirectoryEvent>(&r).map_err(|e| {
                anyhow::anyhow!("{} at position {}: {e}", r.event_type, r.position)
            })?);
        }
    }
    Ok(Directory::replay(&events))
}

struct Names<'a> {
    d: &'a Directory,
}

impl Names<'_> {
    fn user(&self, u: &UserId) -> String {
        self.d
            .user(u)
            .map_or_else(|| format!("user {u}"), |x| x.name.clone())
    }

    fn number(&self, n: &PhoneNumber) -> String {
        // Organization contacts and users only: an auditor is nobody's personal phonebook.
        match self.d.resolve_name(n, UserId::from_uuid(uuid_nil())) {
            Some(name) => format!("{name} ({n})"),
            None => n.to_string(),
        }
    }

    fn actor(&self, a: &Actor) -> String {
        match a {
            Actor::User { id, .. } => self.user(id),
            Actor::System => "the system".into(),
        }
    }

    fn maybe_user(&self, u: &Option<UserId>) -> String {
        u.as_ref()
            .map_or_else(|| "the system".into(), |u| self.user(u))
    }
}

fn uuid_nil() -> uuid::Uuid {
    uuid::Uuid::nil()
}

/// Log time as RFC 3339 with milliseconds.
pub fn time_of(us: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_micros(us)).to_string()
}

fn status_text(s: &DeliveryStatus) -> String {
    match s {
        DeliveryStatus::Requested => "requested".into(),
        DeliveryStatus::Queued => "queued".into(),
        DeliveryStatus::Sent => "sent".into(),
        DeliveryStatus::Delivered => "delivered".into(),
        DeliveryStatus::Failed { reason } => format!("failed ({reason})"),
        DeliveryStatus::Undelivered { reason } => format!("undelivered ({reason})"),
    }
}

fn describe(e: &ConversationEvent, n: &Names<'_>) -> String {
    use ConversationEvent as E;
    match e {
        E::ConversationStarted(s) => {
            let kind = match &s.kind {
                ConversationKind::External { our, their } => {
                    format!("external SMS between {our} and {}", n.number(their))
                }
                ConversationKind::Direct { a, b } => {
                    format!("direct between {} and {}", n.user(a), n.user(b))
                }
                ConversationKind::Channel { name, members } => format!(
                    "channel \"{name}\" with {}",
                    members
                        .iter()
                        .map(|u| n.user(u))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                ConversationKind::Group {
                    our,
                    users,
                    externals,
                } => format!(
                    "group on {our} with {}",
                    users
                        .iter()
                        .map(|u| n.user(u))
                        .chain(externals.iter().map(|x| n.number(x)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            format!("started by {}: {kind}", n.actor(&s.by))
        }
        E::MessagePosted(m) => format!(
            "message {} by {}: {}{}",
            m.seq,
            n.user(&m.author),
            words(&m.text),
            attachments(m.attachments.len())
        ),
        E::InboundReceived(m) => format!(
            "message {} from {}: {}{}",
            m.seq,
            n.number(&m.from),
            words(&m.text),
            attachments(m.media.len())
        ),
        E::SmsRequested(s) => format!(
            "SMS of message {} requested to {} from {}",
            s.message_id,
            n.number(&s.to),
            s.from
        ),
        E::SmsWithheld(s) => format!(
            "SMS of message {} withheld: {} opted out",
            s.message_id,
            n.number(&s.to)
        ),
        E::DeliveryUpdated(d) => format!(
            "delivery of message {} to {}: {}{}{}",
            d.message_id,
            n.number(&d.to),
            status_text(&d.status),
            d.carrier_message_id
                .as_ref()
                .map_or_else(String::new, |c| format!(", carrier id {c}")),
            d.error_code
                .as_ref()
                .map_or_else(String::new, |c| format!(", carrier error {c}")),
        ),
        E::MessagesRead(r) => format!("{} read up to message {}", n.user(&r.user), r.up_to),
        E::CallStarted(c) => format!("{:?} call {} started by {}", c.media, c.call, n.user(&c.by)),
        E::CallEnded(c) => format!("call {} ended by {}", c.call, n.user(&c.by)),
        E::ChannelMemberJoined(j) => format!("{} joined", n.user(&j.user)),
        E::ChannelMembersAdded(a) => format!(
            "{} added {}",
            n.user(&a.by),
            a.users
                .iter()
                .map(|u| n.user(u))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        E::ChannelMemberLeft(l) => format!("{} left", n.user(&l.user)),
        E::ChannelRenamed(r) => format!("{} renamed the channel to {:?}", n.user(&r.by), r.name),
        E::InboxAttached(i) => format!("landed in inbox {}", i.inbox),
        E::InboxDetached(i) => format!("left inbox {}", i.inbox),
        E::ConversationAssigned(a) => match a.taken_from {
            Some(from) => format!(
                "assigned to {} (taken from {})",
                n.user(&a.to),
                n.user(&from)
            ),
            None => format!("assigned to {}", n.user(&a.to)),
        },
        E::ConversationTransferred(t) => format!(
            "transferred from {} to {} by {}",
            n.maybe_user(&t.from),
            n.user(&t.to),
            n.actor(&t.by)
        ),
        E::ReturnedToInbox(r) => format!("returned to the inbox by {}", n.actor(&r.by)),
        E::MarkedDone(d) => format!("marked done by {}", n.actor(&d.by)),
        E::ReopenedByInboundText(r) => format!("reopened by inbound message {}", r.message_id),
        E::OptedOut(o) => format!("{} opted out", n.number(&o.number)),
        E::OptedIn(o) => format!("{} opted back in", n.number(&o.number)),
        E::SystemMessageRecorded(s) => format!("system: {}", system_note(&s.note, n)),
        E::AutoReplyPosted(m) => format!(
            "message {} from {} (automatic reply): {}",
            m.seq,
            n.number(&m.from),
            words(&m.text)
        ),
    }
}

/// An event as JSON, its text (if any) as words: `"text": "..."`, or `"[erased]"` with
/// `"erased": true`, and the key it is sealed under as `"text_key"`.
fn readable(e: &ConversationEvent) -> serde_json::Value {
    let mut value = serde_json::to_value(e).unwrap_or(serde_json::Value::Null);
    let text = match e {
        ConversationEvent::MessagePosted(m) => &m.text,
        ConversationEvent::InboundReceived(m) => &m.text,
        ConversationEvent::AutoReplyPosted(m) => &m.text,
        _ => return value,
    };
    if let Some(fields) = value
        .as_object_mut()
        .and_then(|v| v.values_mut().next())
        .and_then(serde_json::Value::as_object_mut)
    {
        fields.insert("text".into(), text.shown().into());
        if text.is_erased() {
            fields.insert("erased".into(), true.into());
        }
        if let Some(key) = text.key() {
            fields.insert(
                "text_key".into(),
                serde_json::to_value(key).unwrap_or_default(),
            );
        }
    }
    value
}

/// A text as auditors read it: quoted words, `[erased]` once its key is gone, or
/// `[sealed]` without the keyring.
fn words(text: &domain::Text) -> String {
    match text.as_plain() {
        Some(words) => format!("{words:?}"),
        None => text.shown().to_owned(),
    }
}

fn attachments(count: usize) -> String {
    match count {
        0 => String::new(),
        1 => " [1 attachment]".into(),
        c => format!(" [{c} attachments]"),
    }
}

fn system_note(note: &SystemNote, n: &Names<'_>) -> String {
    match note {
        SystemNote::Queued { queue } => format!("waiting in queue {queue}"),
        SystemNote::ClaimedBy { agent, .. } => format!("claimed by {}", n.user(agent)),
        SystemNote::TransferredTo { from, to, .. } => {
            format!("transferred from {} to {}", n.user(from), n.user(to))
        }
        SystemNote::Released { by, .. } => format!("released to the queue by {}", n.maybe_user(by)),
        SystemNote::Closed { by, reason, .. } => {
            format!("closed by {} ({reason:?})", n.maybe_user(by))
        }
        SystemNote::TimedOut { kind, .. } => format!("timed out ({kind:?})"),
    }
}

fn summary(c: &Conversation, n: &Names<'_>, w: &mut dyn Write) -> std::io::Result<()> {
    if let Some(inbox) = c.inbox() {
        let status = match inbox.status {
            InboxStatus::Unassigned => "unassigned".to_owned(),
            InboxStatus::Assigned(u) => format!("assigned to {}", n.user(&u)),
            InboxStatus::Done => "done".to_owned(),
        };
        writeln!(w, "inbox {}: {status}", inbox.inbox)?;
    }
    if let Some(ConversationKind::Channel { members, .. }) = c.kind() {
        let names: Vec<String> = members.iter().map(|u| n.user(u)).collect();
        writeln!(w, "members: {}", names.join(", "))?;
    }
    writeln!(w, "messages: {}", c.last_seq())?;
    for (user, up_to) in c.read_markers() {
        writeln!(w, "{} has read up to message {up_to}", n.user(user))?;
    }
    Ok(())
}
