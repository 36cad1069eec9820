//! The interactions read model: each user's conversation list (All / External / Direct /
//! Channels, most recent activity first, last-message preview, unread count), each
//! inbox's views (Open > Unassigned, Assigned, Assigned to Me, Done) with the per-viewer
//! badges, and each organization's channels (members or not: what anyone in it may join).
//!
//! Column families: `sorted` (audience ‖ !position ‖ conversation → ()), `members`
//! (user ‖ conversation → (): direct, channel and group memberships), `last`
//! (conversation → position of its last activity), `convs` (conversation → [`ConvMeta`]),
//! `markers` (user ‖ conversation → seq read up to), `users` (user → their numbers),
//! `deliveries` (conversation ‖ message ‖ recipient → [`DeliveryView`]: how far each SMS
//! of a message got, for the history), `meta` (checkpoint). A message writes the same few keys however many members its
//! conversation has; a user's memberships are sorted by `last` when their list is read.
//! Names are not stored: the gateway resolves numbers and users against the directory
//! when it answers, so a renamed contact shows at once.

pub mod keys;
pub mod model;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::path::Path;
use std::sync::Arc;

use domain::{ConversationId, InboxId, OrgId, PhoneNumber, UserId};
use eventlog::codec;
use rocksdb::{Direction, IteratorMode, ReadOptions};
use serde::Serialize;

pub use keys::{Audience, InboxBucket};
pub use model::{
    ConvMeta, DeliveryState, DeliveryView, InboxStatus, InteractionsProjector, InteractionsWriter,
    KindView, Preview, PreviewAuthor, UserView,
};

use crate::db::ModelDb;
use crate::error::ProjectionError;
use crate::live::ModelKind;

/// The read model's name (its directory and `replay rebuild` argument).
pub const NAME: &str = "interactions";
/// Key layout version; bump it when the stored shape changes (old generations are then
/// refused and rebuilt).
pub const LAYOUT: &str = "interactions/6";

const SORTED: &str = "sorted";
const CONVS: &str = "convs";
const MARKERS: &str = "markers";
const USERS: &str = "users";
const MEMBERS: &str = "members";
const LAST: &str = "last";
const DELIVERIES: &str = "deliveries";
/// A `sorted` key's audience kind and id: a new entry goes next to the audience's
/// previous one (its newest activity first).
const SORTED_HINT_PREFIX: usize = 17;
const ALL_CFS: [&str; 7] = [SORTED, CONVS, MARKERS, USERS, MEMBERS, LAST, DELIVERIES];
/// The families rewritten in place (see `ModelDb::open`): read by key only, never iterated
/// while the model writes.
const IN_PLACE: [&str; 4] = [CONVS, MARKERS, USERS, LAST];

/// Most list entries one query looks at; past it the page ends early with a cursor.
pub const SCAN_LIMIT: usize = 5_000;

/// Most conversations [`InteractionsDb::visible_conversations`] returns: a search covers
/// the 10,000 most recently active conversations a user may see.
pub const VISIBLE_LIMIT: usize = 10_000;
/// Most inboxes whose conversations one visibility query merges.
pub const VISIBLE_INBOXES: usize = 256;

/// The list filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KindFilter {
    #[default]
    All,
    External,
    Direct,
    /// Channels and mixed groups.
    Channels,
}

impl KindFilter {
    fn admits(self, kind: &KindView) -> bool {
        match self {
            KindFilter::All => true,
            KindFilter::External => matches!(kind, KindView::External { .. }),
            KindFilter::Direct => matches!(kind, KindView::Direct { .. }),
            KindFilter::Channels => {
                matches!(kind, KindView::Channel { .. } | KindView::Group { .. })
            }
        }
    }
}

/// The inbox views.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboxView {
    /// Unassigned and assigned.
    Open,
    Unassigned,
    Assigned,
    /// Assigned to the viewer.
    Mine,
    Done,
}

/// One line of a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Row {
    pub conversation: ConversationId,
    pub last_position: u64,
    pub last_at_ms: u64,
    pub unread: u64,
    #[serde(skip)]
    pub meta: ConvMeta,
}

/// The per-viewer indicators of an inbox conversation.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Badges {
    /// New activity on an unassigned conversation.
    pub blue_badge: bool,
    /// Assigned to the viewer.
    pub green_flag: bool,
    /// New activity on one assigned to the viewer.
    pub green_badge: bool,
    /// Assigned to someone else.
    pub grey_flag: bool,
}

impl Badges {
    pub fn of(status: InboxStatus, viewer: UserId, unread: u64) -> Self {
        match status {
            InboxStatus::Unassigned => Badges {
                blue_badge: unread > 0,
                ..Badges::default()
            },
            InboxStatus::Assigned(u) if u == viewer => Badges {
                green_flag: true,
                green_badge: unread > 0,
                ..Badges::default()
            },
            InboxStatus::Assigned(_) => Badges {
                grey_flag: true,
                ..Badges::default()
            },
            InboxStatus::Done => Badges::default(),
        }
    }
}

/// A page of a list; pass `next_before` back as `before` for the next one.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub rows: Vec<Row>,
    pub next_before: Option<u64>,
}

/// One channel of the organization's channel list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelRow {
    pub conversation: ConversationId,
    /// Its name now (renames included).
    pub name: String,
    /// How many members it has.
    pub members: usize,
    /// Whether the viewer is one of them.
    pub joined: bool,
    pub last_position: u64,
    pub last_at_ms: u64,
}

/// A page of an organization's channels; pass `next_before` back as `before` for the
/// next one.
#[derive(Clone, Debug, Default)]
pub struct ChannelPage {
    pub rows: Vec<ChannelRow>,
    pub next_before: Option<u64>,
}

/// The stored model, read by queries and written by one [`InteractionsWriter`].
pub struct InteractionsDb {
    db: ModelDb,
}

impl InteractionsDb {
    /// # Errors
    /// RocksDB errors or a layout mismatch.
    pub fn open(path: &Path) -> Result<Self, ProjectionError> {
        Ok(Self {
            db: ModelDb::open(
                path,
                &ALL_CFS,
                &[(SORTED, SORTED_HINT_PREFIX)],
                &IN_PLACE,
                LAYOUT,
            )?,
        })
    }

    /// Everything stored, for comparing builds.
    ///
    /// # Errors
    /// Storage errors.
    pub fn dump(&self) -> Result<crate::db::Dump, ProjectionError> {
        self.db.dump(&ALL_CFS)
    }

    pub fn store(&self) -> &ModelDb {
        &self.db
    }

    /// # Errors
    /// Storage errors.
    pub fn checkpoint(&self) -> Result<Option<u64>, ProjectionError> {
        self.db.checkpoint()
    }

    /// # Errors
    /// Storage errors.
    pub fn conversation(&self, id: &ConversationId) -> Result<Option<ConvMeta>, ProjectionError> {
        match self
            .db
            .raw()
            .get_cf(self.db.cf(CONVS)?, keys::conv_key(id))?
        {
            Some(v) => Ok(Some(codec::decode(&v)?)),
            None => Ok(None),
        }
    }

    /// How far each SMS of `message` in `conv` got, by recipient.
    ///
    /// # Errors
    /// RocksDB errors or an undecodable entry.
    pub fn deliveries(
        &self,
        conv: &ConversationId,
        message: &domain::MessageId,
    ) -> Result<Vec<(PhoneNumber, DeliveryView)>, ProjectionError> {
        let prefix = keys::delivery_prefix(conv, message);
        let mut ro = ReadOptions::default();
        ro.set_iterate_range(rocksdb::PrefixRange(&prefix[..]));
        let mut out = Vec::new();
        let it = self.db.raw().iterator_cf_opt(
            self.db.cf(DELIVERIES)?,
            ro,
            IteratorMode::From(&prefix, Direction::Forward),
        );
        for entry in it {
            let (k, v) = entry?;
            let to = std::str::from_utf8(&k[prefix.len()..])
                .ok()
                .and_then(|s| PhoneNumber::parse(s).ok())
                .ok_or_else(|| ProjectionError::Corrupt("delivery key".into()))?;
            out.push((to, codec::decode(&v)?));
        }
        Ok(out)
    }

    /// The seq `user` has read `conv` up to (0: nothing).
    ///
    /// # Errors
    /// Storage errors.
    pub fn marker(&self, user: &UserId, conv: &ConversationId) -> Result<u64, ProjectionError> {
        match self
            .db
            .raw()
            .get_cf(self.db.cf(MARKERS)?, keys::marker_key(user, conv))?
        {
            Some(v) => Ok(u64::from_be_bytes(v.as_slice().try_into().map_err(
                |_| ProjectionError::Corrupt("marker is not 8 bytes".into()),
            )?)),
            None => Ok(0),
        }
    }

    /// # Errors
    /// Storage errors.
    pub fn user(&self, user: &UserId) -> Result<Option<UserView>, ProjectionError> {
        match self
            .db
            .raw()
            .get_cf(self.db.cf(USERS)?, keys::user_key(user))?
        {
            Some(v) => Ok(Some(codec::decode(&v)?)),
            None => Ok(None),
        }
    }

    /// Messages in `conv` that `user` has not read.
    ///
    /// # Errors
    /// Storage errors.
    pub fn unread(&self, user: &UserId, conv: &ConvMeta) -> Result<u64, ProjectionError> {
        Ok(conv.last_seq.saturating_sub(self.marker(user, &conv.id)?))
    }

    /// `user`'s conversation list (not inbox conversations: see [`Self::inbox_view`]).
    ///
    /// # Errors
    /// Storage errors.
    pub fn list(
        &self,
        org: OrgId,
        user: UserId,
        filter: KindFilter,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page, ProjectionError> {
        let mut audiences = vec![Audience::User(user)];
        if let Some(view) = self.user(&user)? {
            audiences.extend(view.numbers.into_iter().map(|n| Audience::Number(org, n)));
        }
        let sources = self.sources(&audiences, Some(user), before)?;
        self.merged(sources, org, Some(user), limit, |m| filter.admits(&m.kind))
    }

    /// Every channel of `org`, member or not, most recent activity first, with whether
    /// `viewer` is a member (anyone in the organization may join: the caller checks that
    /// `viewer` belongs to `org`).
    ///
    /// # Errors
    /// Storage errors.
    pub fn channels(
        &self,
        org: OrgId,
        viewer: UserId,
        before: Option<u64>,
        limit: usize,
    ) -> Result<ChannelPage, ProjectionError> {
        let sources = self.sources(&[Audience::Channels(org)], None, before)?;
        let page = self.merged(sources, org, None, limit, |m| {
            matches!(m.kind, KindView::Channel { .. })
        })?;
        let rows = page
            .rows
            .into_iter()
            .filter_map(|r| {
                let KindView::Channel { name } = r.meta.kind else {
                    return None;
                };
                Some(ChannelRow {
                    conversation: r.conversation,
                    name,
                    members: r.meta.members.len(),
                    joined: r.meta.members.contains(&viewer),
                    last_position: r.last_position,
                    last_at_ms: r.last_at_ms,
                })
            })
            .collect();
        Ok(ChannelPage {
            rows,
            next_before: page.next_before,
        })
    }

    /// One of an inbox's views as `viewer` sees it (membership is the caller's check).
    ///
    /// # Errors
    /// Storage errors.
    pub fn inbox_view(
        &self,
        org: OrgId,
        inbox: InboxId,
        viewer: UserId,
        view: InboxView,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page, ProjectionError> {
        let audiences = match view {
            InboxView::Open => vec![
                Audience::Inbox(inbox, InboxBucket::Unassigned),
                Audience::Inbox(inbox, InboxBucket::Assigned),
            ],
            InboxView::Unassigned => vec![Audience::Inbox(inbox, InboxBucket::Unassigned)],
            InboxView::Assigned => vec![Audience::Inbox(inbox, InboxBucket::Assigned)],
            InboxView::Mine => vec![Audience::InboxAssignee(inbox, viewer)],
            InboxView::Done => vec![Audience::Inbox(inbox, InboxBucket::Done)],
        };
        let sources = self.sources(&audiences, None, before)?;
        self.merged(sources, org, Some(viewer), limit, |_| true)
    }

    /// The entries of `audiences`, and the memberships of `members_of`, older than
    /// `before`, each newest first.
    fn sources(
        &self,
        audiences: &[Audience],
        members_of: Option<UserId>,
        before: Option<u64>,
    ) -> Result<Sources<'_>, ProjectionError> {
        let sorted = self.db.cf(SORTED)?;
        let mut sources = Vec::with_capacity(audiences.len() + 1);
        if before == Some(0) {
            return Ok(Sources(sources));
        }
        for a in audiences {
            let prefix = a.prefix();
            let mut ro = ReadOptions::default();
            ro.set_iterate_upper_bound(keys::upper_bound(&prefix));
            let start = match before {
                // Entries at `before` and newer sort before this key.
                Some(b) => keys::sorted_key(
                    &prefix,
                    b - 1,
                    &ConversationId::from_uuid(uuid::Uuid::nil()),
                ),
                None => prefix.clone(),
            };
            let it = self.db.raw().iterator_cf_opt(
                sorted,
                ro,
                IteratorMode::From(&start, Direction::Forward),
            );
            sources.push(Source::Sorted(prefix.len(), it));
        }
        if let Some(user) = members_of {
            let mut rows = self.memberships(&user)?;
            rows.retain(|(pos, _)| before.is_none_or(|b| *pos < b));
            rows.sort_unstable_by(|a, b| b.cmp(a));
            sources.push(Source::Fixed(rows.into_iter()));
        }
        Ok(Sources(sources))
    }

    /// Every conversation `user` is a member of, with the position of its last activity.
    fn memberships(&self, user: &UserId) -> Result<Vec<(u64, ConversationId)>, ProjectionError> {
        let prefix = keys::user_key(user);
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(keys::upper_bound(&prefix));
        let mut convs = Vec::new();
        for item in self.db.raw().iterator_cf_opt(
            self.db.cf(MEMBERS)?,
            ro,
            IteratorMode::From(&prefix, Direction::Forward),
        ) {
            let (k, _) = item?;
            convs.push(
                keys::parse_member_conv(&k)
                    .ok_or_else(|| ProjectionError::Corrupt("bad member key".into()))?,
            );
        }
        let last = self.db.cf(LAST)?;
        let keys: Vec<[u8; 16]> = convs.iter().map(keys::conv_key).collect();
        let found = self.db.raw().batched_multi_get_cf(last, keys.iter(), false);
        let mut out = Vec::with_capacity(convs.len());
        for (conv, v) in convs.into_iter().zip(found) {
            // A member entry's conversation always has a `last` entry, written in the same
            // batch; one without is skipped rather than failing the whole list.
            if let Some(v) = v? {
                let pos: [u8; 8] = v
                    .as_ref()
                    .try_into()
                    .map_err(|_| ProjectionError::Corrupt("last is not 8 bytes".into()))?;
                out.push((u64::from_be_bytes(pos), conv));
            }
        }
        Ok(out)
    }

    /// Merges `sources` newest first, skipping duplicates and rows of other
    /// organizations, until `limit` rows pass `admit` or [`SCAN_LIMIT`] entries were
    /// looked at. Unread counts are `viewer`'s (0 without one).
    fn merged(
        &self,
        mut sources: Sources<'_>,
        org: OrgId,
        viewer: Option<UserId>,
        limit: usize,
        admit: impl Fn(&ConvMeta) -> bool,
    ) -> Result<Page, ProjectionError> {
        // Heap of (position, conversation, source index), largest position first.
        let mut heap = BinaryHeap::new();
        for i in 0..sources.0.len() {
            if let Some((pos, id)) = sources.pull(i)? {
                heap.push((pos, Reverse(id), i));
            }
        }
        let mut page = Page::default();
        let mut seen = HashSet::new();
        let mut scanned = 0usize;
        while let Some((pos, Reverse(id), i)) = heap.pop() {
            if let Some(next) = sources.pull(i)? {
                heap.push((next.0, Reverse(next.1), i));
            }
            scanned += 1;
            if seen.insert(id) {
                if let Some(meta) = self.conversation(&id)? {
                    if meta.org == org && admit(&meta) {
                        let unread = match &viewer {
                            Some(v) => self.unread(v, &meta)?,
                            None => 0,
                        };
                        page.rows.push(Row {
                            conversation: id,
                            last_position: pos,
                            last_at_ms: meta.last_at_ms,
                            unread,
                            meta,
                        });
                    }
                }
            }
            if page.rows.len() >= limit || scanned >= SCAN_LIMIT {
                // More may follow: hand out a cursor unless this was the very last entry.
                if !heap.is_empty() {
                    page.next_before = Some(pos);
                }
                break;
            }
        }
        Ok(page)
    }
}

impl InteractionsDb {
    /// Every conversation `user` may see, most recent activity first: their own list
    /// (`User` audience: direct, channel and group memberships, queue conversations they
    /// hold; `Number` audiences: External conversations on the business numbers they
    /// hold) and every status bucket of `inboxes`, the inboxes whose team they are on
    /// (the caller's check: the gateway asks the inbox actors).
    ///
    /// Bounded: at most `limit` conversations (capped at [`VISIBLE_LIMIT`]), from at most
    /// [`VISIBLE_INBOXES`] inboxes; older conversations past the bound are left out.
    /// Conversations of other organizations cannot appear (every audience belongs to one
    /// user or number of `org`, or an inbox of it), and a search filters by organization
    /// as well.
    ///
    /// # Errors
    /// Storage errors.
    pub fn visible_conversations(
        &self,
        org: OrgId,
        user: UserId,
        inboxes: &[InboxId],
        limit: usize,
    ) -> Result<Vec<ConversationId>, ProjectionError> {
        let mut out = Vec::new();
        let audiences = self.visible_audiences(org, user, inboxes)?;
        self.newest_first(&audiences, Some(user), limit.min(VISIBLE_LIMIT), |id| {
            out.push(id);
            Ok(())
        })?;
        Ok(out)
    }

    /// The external numbers of the `max_conversations` most recently active conversations
    /// `user` may see (as [`Self::visible_conversations`]), most recent first, each once:
    /// the "recently seen numbers" of contact search.
    ///
    /// # Errors
    /// Storage errors.
    pub fn recent_external_numbers(
        &self,
        org: OrgId,
        user: UserId,
        inboxes: &[InboxId],
        max_conversations: usize,
    ) -> Result<Vec<PhoneNumber>, ProjectionError> {
        let audiences = self.visible_audiences(org, user, inboxes)?;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        self.newest_first(
            &audiences,
            Some(user),
            max_conversations.min(VISIBLE_LIMIT),
            |id| {
                let Some(meta) = self.conversation(&id)? else {
                    return Ok(());
                };
                if meta.org != org {
                    return Ok(());
                }
                let numbers: Vec<PhoneNumber> = match meta.kind {
                    KindView::External { their, .. } => vec![their],
                    KindView::Group { externals, .. } => externals.into_iter().collect(),
                    KindView::Direct { .. } | KindView::Channel { .. } => Vec::new(),
                };
                for n in numbers {
                    if seen.insert(n.clone()) {
                        out.push(n);
                    }
                }
                Ok(())
            },
        )?;
        Ok(out)
    }

    fn visible_audiences(
        &self,
        org: OrgId,
        user: UserId,
        inboxes: &[InboxId],
    ) -> Result<Vec<Audience>, ProjectionError> {
        let mut audiences = vec![Audience::User(user)];
        if let Some(view) = self.user(&user)? {
            audiences.extend(view.numbers.into_iter().map(|n| Audience::Number(org, n)));
        }
        for inbox in inboxes.iter().take(VISIBLE_INBOXES) {
            for bucket in [
                InboxBucket::Unassigned,
                InboxBucket::Assigned,
                InboxBucket::Done,
            ] {
                audiences.push(Audience::Inbox(*inbox, bucket));
            }
        }
        Ok(audiences)
    }

    /// Visits the distinct conversations listed under `audiences`, most recent activity
    /// first, until `limit` were visited.
    fn newest_first(
        &self,
        audiences: &[Audience],
        members_of: Option<UserId>,
        limit: usize,
        mut visit: impl FnMut(ConversationId) -> Result<(), ProjectionError>,
    ) -> Result<(), ProjectionError> {
        if limit == 0 {
            return Ok(());
        }
        let mut sources = self.sources(audiences, members_of, None)?;
        let mut heap = BinaryHeap::new();
        for i in 0..sources.0.len() {
            if let Some((pos, id)) = sources.pull(i)? {
                heap.push((pos, Reverse(id), i));
            }
        }
        let mut seen = HashSet::new();
        while let Some((_, Reverse(id), i)) = heap.pop() {
            if let Some((pos, next)) = sources.pull(i)? {
                heap.push((pos, Reverse(next), i));
            }
            if seen.insert(id) {
                visit(id)?;
                if seen.len() >= limit {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// Where a merge takes its entries from, each newest first.
enum Source<'a> {
    /// A `sorted` prefix scan (the prefix's length, the iterator).
    Sorted(usize, rocksdb::DBIteratorWithThreadMode<'a, rocksdb::DB>),
    /// Memberships, sorted when read.
    Fixed(std::vec::IntoIter<(u64, ConversationId)>),
}

struct Sources<'a>(Vec<Source<'a>>);

impl Sources<'_> {
    fn pull(&mut self, i: usize) -> Result<Option<(u64, ConversationId)>, ProjectionError> {
        match &mut self.0[i] {
            Source::Sorted(plen, it) => match it.next() {
                None => Ok(None),
                Some(item) => {
                    let (k, _) = item?;
                    keys::parse_sorted_suffix(&k[*plen..])
                        .map(Some)
                        .ok_or_else(|| ProjectionError::Corrupt("bad list key".into()))
                }
            },
            Source::Fixed(rows) => Ok(rows.next()),
        }
    }
}

/// The interactions model as [`crate::live::Live`] runs it.
pub struct InteractionsModel;

impl ModelKind for InteractionsModel {
    const NAME: &'static str = NAME;
    type Db = InteractionsDb;
    type Writer = InteractionsWriter;

    fn open(path: &Path) -> Result<Arc<InteractionsDb>, ProjectionError> {
        Ok(Arc::new(InteractionsDb::open(path)?))
    }

    fn writer(db: Arc<InteractionsDb>) -> Result<InteractionsWriter, ProjectionError> {
        InteractionsWriter::new(db)
    }

    fn finish(
        db: &InteractionsDb,
        writer: InteractionsWriter,
    ) -> Result<Option<u64>, ProjectionError> {
        drop(writer);
        db.store().flush()?;
        db.checkpoint()
    }
}
