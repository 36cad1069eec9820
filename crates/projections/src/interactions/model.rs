//! The stored shape of the interactions read model and how events change it.

use std::collections::hash_map::Entry;
use std::collections::BTreeSet;
use std::sync::Arc;

use domain::conversation::{ConversationKind, DeliveryStatus, SystemNote};
use domain::directory::DirectoryEvent;
use domain::queue::{QueueEvent, TimeoutKind};
use domain::{
    ConversationEvent, ConversationId, InboxId, MessageId, OrgId, PhoneNumber, Text, UserId,
};
use eventlog::codec;
use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};

use super::keys::{self, Audience, InboxBucket};
use super::InteractionsDb;
use crate::batch::{bound_cache, BatchWriter, FxHashMap, FxHashSet, Projector, Stored};
use crate::error::ProjectionError;
use crate::event::{category, Decoded, Event};

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
    /// Our business number's automatic answer to a customer's HELP (`AutoReplyPosted`).
    AutoReply(PhoneNumber),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    pub author: PreviewAuthor,
    /// The text as the log stores it — sealed: opened when a list is read
    /// ([`Preview::shown`]), so a text erased since reads as erased here too, without the
    /// model writing anything.
    pub text: Text,
    /// How many attachments the message has.
    pub attachments: usize,
}

impl Preview {
    /// The first [`PREVIEW_CHARS`] characters of the text, opened with `sealer`
    /// (`[erased]` once its key is gone), or what its attachments are.
    pub fn shown(&self, sealer: &actors::sealing::Sealer) -> String {
        let mut text = self.text.clone();
        sealer.open_blocking(&mut text);
        preview_text(text.shown(), self.attachments)
    }

    fn note(author: PreviewAuthor, text: String) -> Self {
        Preview {
            author,
            text: Text::unsealed(text),
            attachments: 0,
        }
    }
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
    /// Where it is listed in storage right now: (position, sorted audiences).
    pub listed: Option<(u64, Vec<Audience>)>,
}

impl ConvMeta {
    /// The sorted audiences it should be listed under. Its members' own lists are not
    /// among them: they read the `members` entries (see [`super::keys`]).
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
            // The organization's channels, which anyone in it browses.
            (KindView::Channel { .. }, _) => vec![Audience::Channels(self.org)],
            (KindView::Direct { .. } | KindView::Group { .. }, _) => Vec::new(),
        }
    }
}

/// How far one SMS of a message got, as the history shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryView {
    pub state: DeliveryState,
    /// The carrier's error code of a failed or undelivered text.
    pub error_code: Option<String>,
    /// The carrier's reason, for a failed or undelivered text.
    pub reason: Option<String>,
    /// When the state was reached.
    pub at_ms: u64,
}

/// The states of one SMS: those the domain records ([`domain::conversation::DeliveryStatus`])
/// and `Withheld` (never sent: the recipient opted out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryState {
    Requested,
    Queued,
    Sent,
    Delivered,
    Failed,
    Undelivered,
    Withheld,
}

impl DeliveryView {
    /// The delivery state an event records, for (message, recipient): `SmsRequested`,
    /// `SmsWithheld`, `DeliveryUpdated` (the domain moves states only forward, so each
    /// such event is the whole new state).
    pub fn from_event(event: &ConversationEvent) -> Option<(MessageId, PhoneNumber, Self)> {
        Some(match event {
            ConversationEvent::SmsRequested(e) => (
                e.message_id,
                e.to.clone(),
                Self::of(&DeliveryStatus::Requested, None, e.at_ms),
            ),
            ConversationEvent::SmsWithheld(e) => (
                e.message_id,
                e.to.clone(),
                Self {
                    state: DeliveryState::Withheld,
                    error_code: None,
                    reason: None,
                    at_ms: e.at_ms,
                },
            ),
            ConversationEvent::DeliveryUpdated(e) => (
                e.message_id,
                e.to.clone(),
                Self::of(&e.status, e.error_code.clone(), e.at_ms),
            ),
            _ => return None,
        })
    }

    /// How far along the way the state is (final states share the last stage), to merge
    /// two views of one SMS taken at different times.
    pub fn stage(&self) -> u8 {
        match self.state {
            DeliveryState::Requested => 0,
            DeliveryState::Queued => 1,
            DeliveryState::Sent => 2,
            DeliveryState::Delivered
            | DeliveryState::Failed
            | DeliveryState::Undelivered
            | DeliveryState::Withheld => 3,
        }
    }

    fn of(status: &DeliveryStatus, error_code: Option<String>, at_ms: u64) -> Self {
        let (state, reason) = match status {
            DeliveryStatus::Requested => (DeliveryState::Requested, None),
            DeliveryStatus::Queued => (DeliveryState::Queued, None),
            DeliveryStatus::Sent => (DeliveryState::Sent, None),
            DeliveryStatus::Delivered => (DeliveryState::Delivered, None),
            DeliveryStatus::Failed { reason } => (DeliveryState::Failed, Some(reason.clone())),
            DeliveryStatus::Undelivered { reason } => {
                (DeliveryState::Undelivered, Some(reason.clone()))
            }
        };
        Self {
            state,
            error_code,
            reason: reason.filter(|r| !r.is_empty()),
            at_ms,
        }
    }
}

/// A user's numbers, for the `Number` audiences of their list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub org: Option<OrgId>,
    pub numbers: BTreeSet<PhoneNumber>,
}

/// The writer of an [`InteractionsDb`] (what a runner or a rebuild drives).
pub type InteractionsWriter = BatchWriter<InteractionsProjector>;

impl InteractionsWriter {
    /// A writer resuming from the stored checkpoint.
    ///
    /// # Errors
    /// When the checkpoint cannot be read.
    pub fn new(db: Arc<InteractionsDb>) -> Result<Self, ProjectionError> {
        let checkpoint = db.db.checkpoint()?;
        Ok(Self::resume(InteractionsProjector::new(db), checkpoint))
    }
}

/// Applies events to an [`InteractionsDb`], coalescing a batch in memory and writing it
/// with its checkpoint in one `WriteBatch`.
pub struct InteractionsProjector {
    db: Arc<InteractionsDb>,
    convs: FxHashMap<ConversationId, ConvMeta>,
    dirty: FxHashSet<ConversationId>,
    markers: FxHashMap<(UserId, ConversationId), u64>,
    dirty_markers: FxHashSet<(UserId, ConversationId)>,
    users: FxHashMap<UserId, UserView>,
    dirty_users: FxHashSet<UserId>,
    /// Joins (`true`) and leaves of the batch, in log order.
    member_changes: Vec<(UserId, ConversationId, bool)>,
    /// SMS delivery states changed by the batch (each event says the whole new state,
    /// so nothing is read first).
    deliveries: FxHashMap<(ConversationId, MessageId, PhoneNumber), DeliveryView>,
}

impl InteractionsProjector {
    fn new(db: Arc<InteractionsDb>) -> Self {
        Self {
            db,
            convs: FxHashMap::default(),
            dirty: FxHashSet::default(),
            markers: FxHashMap::default(),
            dirty_markers: FxHashSet::default(),
            users: FxHashMap::default(),
            dirty_users: FxHashSet::default(),
            member_changes: Vec::new(),
            deliveries: FxHashMap::default(),
        }
    }

    fn conv(&mut self, id: ConversationId) -> Result<Option<&mut ConvMeta>, ProjectionError> {
        let meta = match self.convs.entry(id) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => match self.db.conversation(&id)? {
                Some(meta) => e.insert(meta),
                None => return Ok(None),
            },
        };
        self.dirty.insert(id);
        Ok(Some(meta))
    }

    fn raise_marker(
        &mut self,
        user: UserId,
        conv: ConversationId,
        seq: u64,
    ) -> Result<(), ProjectionError> {
        let key = (user, conv);
        let marker = match self.markers.entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(self.db.marker(&user, &conv)?),
        };
        if seq > *marker {
            *marker = seq;
            self.dirty_markers.insert(key);
        }
        Ok(())
    }

    fn user(&mut self, user: UserId) -> Result<&mut UserView, ProjectionError> {
        let view = match self.users.entry(user) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(self.db.user(&user)?.unwrap_or_default()),
        };
        self.dirty_users.insert(user);
        Ok(view)
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
            self.member_changes
                .extend(members.iter().map(|&user| (user, id, true)));
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
        if let Some((message, to, view)) = DeliveryView::from_event(event) {
            self.deliveries.insert((id, message, to), view);
            return Ok(());
        }
        let mut posted_by = None;
        let mut joined = Vec::new();
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
            // A message: numbered (unread counts), the last activity and the preview.
            let message = |meta: &mut ConvMeta,
                           seq: u64,
                           at_ms: u64,
                           author: PreviewAuthor,
                           text: &Text,
                           attachments: usize| {
                meta.last_seq = meta.last_seq.max(seq);
                let preview = Preview {
                    author,
                    text: text.clone(),
                    attachments,
                };
                activity(meta, at_ms, Some(preview));
            };
            match event {
                E::MessagePosted(e) => {
                    let author = PreviewAuthor::User(e.author);
                    message(meta, e.seq, e.at_ms, author, &e.text, e.attachments.len());
                    posted_by = Some((e.author, e.seq));
                }
                E::InboundReceived(e) => {
                    let author = PreviewAuthor::External(e.from.clone());
                    message(meta, e.seq, e.at_ms, author, &e.text, e.media.len());
                }
                E::AutoReplyPosted(e) => {
                    let author = PreviewAuthor::AutoReply(e.from.clone());
                    message(meta, e.seq, e.at_ms, author, &e.text, 0);
                }
                E::CallStarted(e) => activity(
                    meta,
                    e.at_ms,
                    Some(Preview::note(
                        PreviewAuthor::User(e.by),
                        "Call started".into(),
                    )),
                ),
                E::SystemMessageRecorded(e) => activity(
                    meta,
                    e.at_ms,
                    Some(Preview::note(PreviewAuthor::System, system_text(&e.note))),
                ),
                E::ChannelMemberJoined(e) => {
                    meta.members.insert(e.user);
                    joined.push((e.user, true));
                }
                E::ChannelMembersAdded(e) => {
                    meta.members.extend(e.users.iter().copied());
                    joined.extend(e.users.iter().map(|&u| (u, true)));
                }
                E::ChannelMemberLeft(e) => {
                    meta.members.remove(&e.user);
                    joined.push((e.user, false));
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
        self.member_changes
            .extend(joined.into_iter().map(|(user, member)| (user, id, member)));
        if let Some((author, seq)) = posted_by {
            // Writing a message means having seen everything before it.
            self.raise_marker(author, id, seq)?;
        }
        if let E::MessagesRead(e) = event {
            self.raise_marker(e.user, id, e.up_to)?;
        }
        Ok(())
    }
}

fn set_status(meta: &mut ConvMeta, status: InboxStatus) {
    if let Some((_, s)) = &mut meta.inbox {
        *s = status;
    }
}

fn preview_text(text: &str, attachments: usize) -> String {
    // The first PREVIEW_CHARS characters; a text of no more bytes has no more characters.
    let end = if text.len() <= PREVIEW_CHARS {
        text.len()
    } else {
        text.char_indices()
            .nth(PREVIEW_CHARS)
            .map_or(text.len(), |(at, _)| at)
    };
    match (end, attachments) {
        (0, 1) => "[attachment]".into(),
        (0, n) if n > 1 => format!("[{n} attachments]"),
        _ => text[..end].to_owned(),
    }
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

impl Projector for InteractionsProjector {
    const NAME: &'static str = super::NAME;

    fn apply(&mut self, event: &Event<'_>) -> Result<(), ProjectionError> {
        if ![category::CONVERSATION, category::DIRECTORY, category::QUEUE]
            .iter()
            .any(|c| event.is_in(c))
        {
            return Ok(());
        }
        match event.decoded()? {
            Decoded::Conversation(id, e) => self.apply_conversation(*id, event.position, e),
            Decoded::Directory(org, e) => {
                match e {
                    DirectoryEvent::UserAdded(e) => self.user(e.user)?.org = Some(*org),
                    DirectoryEvent::NumberAssigned(e) => {
                        let u = self.user(e.user)?;
                        u.org = Some(*org);
                        u.numbers.insert(e.number.clone());
                    }
                    DirectoryEvent::NumberUnassigned(e) => {
                        self.user(e.user)?.numbers.remove(&e.number);
                    }
                    _ => {}
                }
                Ok(())
            }
            Decoded::Queue(_, e) => {
                let (conv, holder) = match e {
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

    /// Writes everything changed since the last flush with `checkpoint`, atomically.
    fn store(&mut self, checkpoint: u64, _events: u64) -> Result<Stored, ProjectionError> {
        let db = &self.db.db;
        let (sorted, convs, markers, users) = (
            db.cf(super::SORTED)?,
            db.cf(super::CONVS)?,
            db.cf(super::MARKERS)?,
            db.cf(super::USERS)?,
        );
        let (members, last) = (db.cf(super::MEMBERS)?, db.cf(super::LAST)?);
        let deliveries = db.cf(super::DELIVERIES)?;
        let mut batch = WriteBatch::default();
        for ((conv, message, to), view) in self.deliveries.drain() {
            batch.put_cf(
                deliveries,
                keys::delivery_key(&conv, &message, &to),
                codec::encode(&view)?,
            );
        }
        for (user, conv, member) in self.member_changes.drain(..) {
            let key = keys::member_key(&user, &conv);
            if member {
                batch.put_cf(members, key, []);
            } else {
                batch.delete_cf(members, key);
            }
        }
        for id in self.dirty.drain() {
            let Some(meta) = self.convs.get_mut(&id) else {
                continue;
            };
            let wanted = (meta.last_position, meta.audiences());
            if meta.listed.as_ref().map(|l| l.0) != Some(wanted.0) {
                batch.put_cf(last, keys::conv_key(&id), wanted.0.to_be_bytes());
            }
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
        bound_cache(&mut self.convs);
        bound_cache(&mut self.markers);
        bound_cache(&mut self.users);
        Ok(Stored::Durable)
    }

    fn discard(&mut self) {
        // The caches may hold changes of the failed batch: read them again from storage.
        self.convs.clear();
        self.dirty.clear();
        self.markers.clear();
        self.dirty_markers.clear();
        self.users.clear();
        self.dirty_users.clear();
        self.member_changes.clear();
        self.deliveries.clear();
    }
}
