//! The stored shape of the interactions read model and how events change it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use domain::conversation::{ConversationKind, SystemNote};
use domain::directory::DirectoryEvent;
use domain::queue::{QueueEvent, TimeoutKind};
use domain::{ConversationEvent, ConversationId, InboxId, OrgId, PhoneNumber, UserId};
use eventlog::{codec, RecordedEvent};
use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};

use super::keys::{self, Audience, InboxBucket};
use super::InteractionsDb;
use crate::error::ProjectionError;
use crate::runner::ReadModel;

/// Longest preview kept, in characters.
pub const PREVIEW_CHARS: usize = 140;

/// The kind of a conversation as the list shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KindView {
    External {
        our: PhoneNumber,
        their: PhoneNumber,
    },
    Direct {
        a: UserId,
        b: UserId,
    },
    Channel {
        name: String,
    },
    Group {
        our: PhoneNumber,
        externals: BTreeSet<PhoneNumber>,
    },
}

/// Where an inbox conversation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InboxStatus {
    Unassigned,
    Assigned(UserId),
    Done,
}

/// Who wrote the last item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PreviewAuthor {
    User(UserId),
    External(PhoneNumber),
    System,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    pub author: PreviewAuthor,
    pub text: String,
}

/// Everything the model keeps about one conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvMeta {
    pub id: ConversationId,
    pub org: OrgId,
    pub kind: KindView,
    /// Internal members (direct, channel, group).
    pub members: BTreeSet<UserId>,
    pub inbox: Option<(InboxId, InboxStatus)>,
    /// The agent holding it in an SMS queue.
    pub queue_holder: Option<UserId>,
    /// Seq of the last message (messages are numbered 1, 2, … per conversation).
    pub last_seq: u64,
    /// Log position and time of the last activity: the list's sort order.
    pub last_position: u64,
    pub last_at_ms: u64,
    pub preview: Option<Preview>,
    /// Where it is listed in storage right now: (position, audiences).
    pub listed: Option<(u64, Vec<Audience>)>,
}

impl ConvMeta {
    /// The audiences it should be listed under.
    pub fn audiences(&self) -> Vec<Audience> {
        match (&self.kind, self.inbox) {
            (KindView::External { .. }, Some((inbox, status))) => match status {
                InboxStatus::Unassigned => vec![Audience::Inbox(inbox, InboxBucket::Unassigned)],
                InboxStatus::Assigned(u) => vec![
                    Audience::Inbox(inbox, InboxBucket::Assigned),
                    Audience::InboxAssignee(inbox, u),
                ],
                InboxStatus::Done => vec![Audience::Inbox(inbox, InboxBucket::Done)],
            },
            (KindView::External { our, .. }, None) => {
                let mut v = vec![Audience::Number(self.org, our.clone())];
                v.extend(self.queue_holder.map(Audience::User));
                v
            }
            _ => self.members.iter().copied().map(Audience::User).collect(),
        }
    }
}

/// A user's numbers, for the `Number` audiences of their list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub org: Option<OrgId>,
    pub numbers: BTreeSet<PhoneNumber>,
}

/// Applies events to an [`InteractionsDb`], coalescing a batch in memory and writing it
/// with its checkpoint in one `WriteBatch`.
pub struct InteractionsWriter {
    db: Arc<InteractionsDb>,
    checkpoint: Option<u64>,
    convs: HashMap<ConversationId, ConvMeta>,
    dirty: HashSet<ConversationId>,
    markers: HashMap<(UserId, ConversationId), u64>,
    dirty_markers: HashSet<(UserId, ConversationId)>,
    users: HashMap<UserId, UserView>,
    dirty_users: HashSet<UserId>,
}

/// Clean cache entries kept between batches.
const CACHE_LIMIT: usize = 200_000;

impl InteractionsWriter {
    /// # Errors
    /// When the checkpoint cannot be read.
    pub fn new(db: Arc<InteractionsDb>) -> Result<Self, ProjectionError> {
        let checkpoint = db.db.checkpoint()?;
        Ok(Self {
            db,
            checkpoint,
            convs: HashMap::new(),
            dirty: HashSet::new(),
            markers: HashMap::new(),
            dirty_markers: HashSet::new(),
            users: HashMap::new(),
            dirty_users: HashSet::new(),
        })
    }

    fn conv(&mut self, id: ConversationId) -> Result<Option<&mut ConvMeta>, ProjectionError> {
        if !self.convs.contains_key(&id) {
            match self.db.conversation(&id)? {
                Some(meta) => {
                    self.convs.insert(id, meta);
                }
                None => return Ok(None),
            }
        }
        self.dirty.insert(id);
        Ok(self.convs.get_mut(&id))
    }

    fn raise_marker(
        &mut self,
        user: UserId,
        conv: ConversationId,
        seq: u64,
    ) -> Result<(), ProjectionError> {
        let key = (user, conv);
        let current = match self.markers.get(&key) {
            Some(v) => *v,
            None => self.db.marker(&user, &conv)?,
        };
        if seq > current {
            self.markers.insert(key, seq);
            self.dirty_markers.insert(key);
        } else {
            self.markers.insert(key, current);
        }
        Ok(())
    }

    fn user(&mut self, user: UserId) -> Result<&mut UserView, ProjectionError> {
        if !self.users.contains_key(&user) {
            let v = self.db.user(&user)?.unwrap_or_default();
            self.users.insert(user, v);
        }
        self.dirty_users.insert(user);
        Ok(self.users.get_mut(&user).expect("just inserted"))
    }

    fn apply_one(&mut self, record: &RecordedEvent) -> Result<(), ProjectionError> {
        match record.stream.category() {
            "conversation" => {
                let Ok(id) = record.stream.id().parse::<ConversationId>() else {
                    return Ok(());
                };
                let event: ConversationEvent = decode(record)?;
                self.apply_conversation(id, record.position, &event)
            }
            "directory" => {
                let Ok(org) = record.stream.id().parse::<OrgId>() else {
                    return Ok(());
                };
                match decode::<DirectoryEvent>(record)? {
                    DirectoryEvent::UserAdded(e) => self.user(e.user)?.org = Some(org),
                    DirectoryEvent::NumberAssigned(e) => {
                        let u = self.user(e.user)?;
                        u.org = Some(org);
                        u.numbers.insert(e.number);
                    }
                    DirectoryEvent::NumberUnassigned(e) => {
                        self.user(e.user)?.numbers.remove(&e.number);
                    }
                    _ => {}
                }
                Ok(())
            }
            "queue" => {
                let (conv, holder) = match decode::<QueueEvent>(record)? {
                    QueueEvent::InteractionClaimed(e) => (e.conversation, Some(e.agent)),
                    QueueEvent::InteractionTransferred(e) => (e.conversation, Some(e.to)),
                    QueueEvent::InteractionReleased(e) => (e.conversation, None),
                    QueueEvent::InteractionClosed(e) => (e.conversation, None),
                    QueueEvent::QueueTimedOut(e) if e.kind == TimeoutKind::Idle => {
                        (e.conversation, None)
                    }
                    _ => return Ok(()),
                };
                if let Some(meta) = self.conv(conv)? {
                    meta.queue_holder = holder;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn apply_conversation(
        &mut self,
        id: ConversationId,
        position: u64,
        event: &ConversationEvent,
    ) -> Result<(), ProjectionError> {
        use ConversationEvent as E;
        if let E::ConversationStarted(e) = event {
            let (kind, members) = match &e.kind {
                ConversationKind::External { our, their } => (
                    KindView::External {
                        our: our.clone(),
                        their: their.clone(),
                    },
                    BTreeSet::new(),
                ),
                ConversationKind::Direct { a, b } => {
                    (KindView::Direct { a: *a, b: *b }, [*a, *b].into())
                }
                ConversationKind::Channel { name, members } => {
                    (KindView::Channel { name: name.clone() }, members.clone())
                }
                ConversationKind::Group {
                    our,
                    users,
                    externals,
                } => (
                    KindView::Group {
                        our: our.clone(),
                        externals: externals.clone(),
                    },
                    users.clone(),
                ),
            };
            self.convs.insert(
                id,
                ConvMeta {
                    id,
                    org: e.org,
                    kind,
                    members,
                    inbox: None,
                    queue_holder: None,
                    last_seq: 0,
                    last_position: position,
                    last_at_ms: e.at_ms,
                    preview: None,
                    listed: None,
                },
            );
            self.dirty.insert(id);
            return Ok(());
        }
        let mut posted_by = None;
        {
            let Some(meta) = self.conv(id)? else {
                return Ok(());
            };
            let activity = |meta: &mut ConvMeta, at_ms: u64, preview: Option<Preview>| {
                meta.last_position = position;
                meta.last_at_ms = at_ms;
                if preview.is_some() {
                    meta.preview = preview;
                }
            };
            match event {
                E::MessagePosted(e) => {
                    meta.last_seq = meta.last_seq.max(e.seq);
                    let text = preview_text(&e.text, e.attachments.len());
                    activity(
                        meta,
                        e.at_ms,
                        Some(Preview {
                            author: PreviewAuthor::User(e.author),
                            text,
                        }),
                    );
                    posted_by = Some((e.author, e.seq));
                }
                E::InboundReceived(e) => {
                    meta.last_seq = meta.last_seq.max(e.seq);
                    let text = preview_text(&e.text, e.media.len());
                    activity(
                        meta,
                        e.at_ms,
                        Some(Preview {
                            author: PreviewAuthor::External(e.from.clone()),
                            text,
                        }),
                    );
                }
                E::CallStarted(e) => activity(
                    meta,
                    e.at_ms,
                    Some(Preview {
                        author: PreviewAuthor::User(e.by),
                        text: "Call started".into(),
                    }),
                ),
                E::SystemMessageRecorded(e) => activity(
                    meta,
                    e.at_ms,
                    Some(Preview {
                        author: PreviewAuthor::System,
                        text: system_text(&e.note),
                    }),
                ),
                E::ChannelMemberJoined(e) => {
                    meta.members.insert(e.user);
                }
                E::ChannelMembersAdded(e) => meta.members.extend(e.users.iter().copied()),
                E::ChannelMemberLeft(e) => {
                    meta.members.remove(&e.user);
                }
                E::ChannelRenamed(e) => {
                    if let KindView::Channel { name } = &mut meta.kind {
                        name.clone_from(&e.name);
                    }
                }
                E::InboxAttached(e) => meta.inbox = Some((e.inbox, InboxStatus::Unassigned)),
                E::InboxDetached(_) => meta.inbox = None,
                E::ConversationAssigned(e) => set_status(meta, InboxStatus::Assigned(e.to)),
                E::ConversationTransferred(e) => set_status(meta, InboxStatus::Assigned(e.to)),
                E::ReturnedToInbox(_) | E::ReopenedByInboundText(_) => {
                    set_status(meta, InboxStatus::Unassigned);
                }
                E::MarkedDone(_) => set_status(meta, InboxStatus::Done),
                _ => {}
            }
        }
        if let Some((author, seq)) = posted_by {
            // Writing a message means having seen everything before it.
            self.raise_marker(author, id, seq)?;
        }
        if let E::MessagesRead(e) = event {
            self.raise_marker(e.user, id, e.up_to)?;
        }
        Ok(())
    }

    /// Writes everything changed since the last flush with `checkpoint`, atomically.
    fn flush(&mut self, checkpoint: u64) -> Result<(), ProjectionError> {
        let db = &self.db.db;
        let (sorted, convs, markers, users) = (
            db.cf(super::SORTED)?,
            db.cf(super::CONVS)?,
            db.cf(super::MARKERS)?,
            db.cf(super::USERS)?,
        );
        let mut batch = WriteBatch::default();
        for id in self.dirty.drain() {
            let Some(meta) = self.convs.get_mut(&id) else {
                continue;
            };
            let wanted = (meta.last_position, meta.audiences());
            if meta.listed.as_ref() != Some(&wanted) {
                if let Some((pos, old)) = &meta.listed {
                    for a in old {
                        batch.delete_cf(sorted, keys::sorted_key(&a.prefix(), *pos, &id));
                    }
                }
                for a in &wanted.1 {
                    batch.put_cf(sorted, keys::sorted_key(&a.prefix(), wanted.0, &id), []);
                }
                meta.listed = Some(wanted);
            }
            batch.put_cf(convs, keys::conv_key(&id), codec::encode(&*meta)?);
        }
        for key in self.dirty_markers.drain() {
            if let Some(v) = self.markers.get(&key) {
                batch.put_cf(markers, keys::marker_key(&key.0, &key.1), v.to_be_bytes());
            }
        }
        for user in self.dirty_users.drain() {
            if let Some(v) = self.users.get(&user) {
                batch.put_cf(users, keys::user_key(&user), codec::encode(v)?);
            }
        }
        db.commit(batch, checkpoint)?;
        self.checkpoint = Some(checkpoint);
        if self.convs.len() > CACHE_LIMIT {
            self.convs.clear();
        }
        if self.markers.len() > CACHE_LIMIT {
            self.markers.clear();
        }
        if self.users.len() > CACHE_LIMIT {
            self.users.clear();
        }
        Ok(())
    }
}

fn set_status(meta: &mut ConvMeta, status: InboxStatus) {
    if let Some((_, s)) = &mut meta.inbox {
        *s = status;
    }
}

fn decode<E: domain::VersionedEvent>(record: &RecordedEvent) -> Result<E, ProjectionError> {
    actors::event_codec::decode::<E>(record).map_err(|e| {
        ProjectionError::Corrupt(format!(
            "{} at position {}: {e}",
            record.event_type, record.position
        ))
    })
}

fn preview_text(text: &str, attachments: usize) -> String {
    let mut s: String = text.chars().take(PREVIEW_CHARS).collect();
    if s.is_empty() && attachments > 0 {
        s = if attachments == 1 {
            "[attachment]".into()
        } else {
            format!("[{attachments} attachments]")
        };
    }
    s
}

/// The words a system message shows as.
pub fn system_text(note: &SystemNote) -> String {
    match note {
        SystemNote::Queued { .. } => "Waiting in queue".into(),
        SystemNote::ClaimedBy { .. } => "Claimed".into(),
        SystemNote::TransferredTo { .. } => "Transferred".into(),
        SystemNote::Released { .. } => "Released to queue".into(),
        SystemNote::Closed { .. } => "Closed".into(),
        SystemNote::TimedOut { .. } => "Timed out".into(),
    }
}

impl ReadModel for InteractionsWriter {
    fn name(&self) -> &'static str {
        super::NAME
    }

    fn checkpoint(&self) -> Option<u64> {
        self.checkpoint
    }

    fn apply_batch(&mut self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let Some(last) = events.last() else {
            return Ok(());
        };
        for e in events {
            if self.checkpoint.is_some_and(|c| e.position <= c) {
                continue;
            }
            self.apply_one(e)?;
        }
        self.flush(last.position)
    }
}
