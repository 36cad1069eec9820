//! The queue views read model: each SMS queue's waiting list (oldest first, with when each
//! interaction started waiting) and the contact-center tabs of an agent — **Active** (what
//! they hold, oldest claim first), **Pending** (what waits in the queues they are logged
//! into, oldest first, as many per queue as its policy shows) and **History** (closed
//! interactions of their queues, newest first). Each tab's search covers only that tab and
//! matches the customer's number (by digits) or the queue's name.
//!
//! Column families of its own RocksDB instance (`<data>/readmodels/queues/gen-N/`):
//!
//! | family | key | value |
//! |---|---|---|
//! | `queues` | queue | [`QueueView`]: organization, name, policy, members, logged in |
//! | `members` | user ‖ queue | () — the queues a user is a member of |
//! | `items` | queue ‖ conversation | [`Item`]: the open interaction, waiting or held |
//! | `waiting` | queue ‖ since ‖ interaction ‖ conversation | () — oldest first |
//! | `active` | agent ‖ since ‖ queue ‖ conversation | () — oldest claim first |
//! | `history` | queue ‖ !position | [`Closed`] — newest first |
//! | `customers` | conversation | the customer's number (External conversations) |
//! | `meta` | checkpoint, layout | |
//!
//! Times and positions are big-endian, so key order is the order the views show. The
//! writer ([`QueuesWriter`]) keeps `items` and `queues` as the state and derives the
//! `waiting` / `active` / `members` entries from them, so the indexes always agree with
//! the state; each batch and its checkpoint are one `WriteBatch`.

pub mod writer;

use std::path::Path;
use std::sync::Arc;

use domain::queue::{CloseReason, QueuePolicy};
use domain::{ConversationId, OrgId, PhoneNumber, QueueId, UserId};
use eventlog::codec;
use rocksdb::{Direction, IteratorMode, ReadOptions};
use serde::{Deserialize, Serialize};

pub use writer::{QueuesProjector, QueuesWriter};

use crate::db::ModelDb;
use crate::error::ProjectionError;
use crate::interactions::keys::upper_bound;
use crate::live::ModelKind;

/// The read model's name (its directory and `replay rebuild` argument).
pub const NAME: &str = "queues";
/// Key layout version; bump it when the stored shape changes (old generations are then
/// refused and rebuilt).
pub const LAYOUT: &str = "queues/1";

const QUEUES: &str = "queues";
const MEMBERS: &str = "members";
const ITEMS: &str = "items";
const WAITING: &str = "waiting";
const ACTIVE: &str = "active";
const HISTORY: &str = "history";
const CUSTOMERS: &str = "customers";
const FAMILIES: [&str; 7] = [QUEUES, MEMBERS, ITEMS, WAITING, ACTIVE, HISTORY, CUSTOMERS];

/// Most history entries of one queue a History query looks at (a search matching little
/// stops there rather than reading a queue's whole past).
pub const HISTORY_SCAN_LIMIT: usize = 10_000;

/// A queue as the views need it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueView {
    pub org: Option<OrgId>,
    pub name: String,
    pub policy: QueuePolicy,
    pub members: std::collections::BTreeSet<UserId>,
    pub logged_in: std::collections::BTreeSet<UserId>,
}

/// Where an open interaction stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemState {
    /// In the waiting list since `since_ms` (queued, or released back).
    Waiting { since_ms: u64 },
    /// Held by `agent`, claimed at `since_ms` (a transfer keeps the claim time).
    Active { agent: UserId, since_ms: u64 },
}

/// An open interaction of a queue (one per conversation at most).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub interaction: u64,
    pub state: ItemState,
    /// Who held it last in this interaction (shown in History once closed).
    pub last_agent: Option<UserId>,
}

/// A closed interaction, as History lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    pub conversation: ConversationId,
    pub interaction: u64,
    pub agent: Option<UserId>,
    pub at_ms: u64,
    pub reason: CloseReason,
}

/// One entry of a queue's waiting list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub conversation: ConversationId,
    pub interaction: u64,
    /// When it started waiting.
    pub since_ms: u64,
}

/// One line of a view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InteractionRow {
    pub queue: QueueId,
    pub queue_name: String,
    pub conversation: ConversationId,
    pub interaction: u64,
    pub customer: Option<PhoneNumber>,
    /// Who holds (Active), held last (History), or nobody (Pending).
    pub agent: Option<UserId>,
    /// Since when it waits (Pending), was claimed (Active), or when it closed (History).
    pub at_ms: u64,
    pub close_reason: Option<CloseReason>,
    /// History: the log position of the close (the order of the list).
    pub position: Option<u64>,
}

/// Whether `row` matches a tab's search: the digits typed appear in the customer's number,
/// or the words typed in the queue's name. A blank search matches everything.
pub fn matches(row: &InteractionRow, search: Option<&str>) -> bool {
    let Some(q) = search.map(str::trim).filter(|q| !q.is_empty()) else {
        return true;
    };
    let digits: String = q.chars().filter(char::is_ascii_digit).collect();
    let customer = row.customer.as_ref().map(PhoneNumber::as_str).unwrap_or("");
    (!digits.is_empty() && customer.contains(&digits))
        || row.queue_name.to_lowercase().contains(&q.to_lowercase())
}

pub(crate) mod keys {
    use domain::{ConversationId, QueueId, UserId};

    fn id(k: &mut Vec<u8>, bytes: &[u8; 16]) {
        k.extend_from_slice(bytes);
    }

    pub fn queue(q: &QueueId) -> [u8; 16] {
        *q.as_uuid().as_bytes()
    }

    pub fn member(user: &UserId, q: &QueueId) -> Vec<u8> {
        let mut k = Vec::with_capacity(32);
        id(&mut k, user.as_uuid().as_bytes());
        id(&mut k, q.as_uuid().as_bytes());
        k
    }

    pub fn item(q: &QueueId, c: &ConversationId) -> Vec<u8> {
        let mut k = Vec::with_capacity(32);
        id(&mut k, q.as_uuid().as_bytes());
        id(&mut k, c.as_uuid().as_bytes());
        k
    }

    pub fn waiting(q: &QueueId, since_ms: u64, interaction: u64, c: &ConversationId) -> Vec<u8> {
        let mut k = Vec::with_capacity(48);
        id(&mut k, q.as_uuid().as_bytes());
        k.extend_from_slice(&since_ms.to_be_bytes());
        k.extend_from_slice(&interaction.to_be_bytes());
        id(&mut k, c.as_uuid().as_bytes());
        k
    }

    pub fn active(agent: &UserId, since_ms: u64, q: &QueueId, c: &ConversationId) -> Vec<u8> {
        let mut k = Vec::with_capacity(56);
        id(&mut k, agent.as_uuid().as_bytes());
        k.extend_from_slice(&since_ms.to_be_bytes());
        id(&mut k, q.as_uuid().as_bytes());
        id(&mut k, c.as_uuid().as_bytes());
        k
    }

    pub fn history(q: &QueueId, position: u64) -> Vec<u8> {
        let mut k = Vec::with_capacity(24);
        id(&mut k, q.as_uuid().as_bytes());
        k.extend_from_slice(&(!position).to_be_bytes());
        k
    }

    pub fn customer(c: &ConversationId) -> [u8; 16] {
        *c.as_uuid().as_bytes()
    }

    pub fn uuid_at(k: &[u8], at: usize) -> Option<uuid::Uuid> {
        let b: [u8; 16] = k.get(at..at + 16)?.try_into().ok()?;
        Some(uuid::Uuid::from_bytes(b))
    }

    pub fn u64_at(k: &[u8], at: usize) -> Option<u64> {
        let b: [u8; 8] = k.get(at..at + 8)?.try_into().ok()?;
        Some(u64::from_be_bytes(b))
    }
}

/// The stored model, read by queries and written by one [`QueuesWriter`].
pub struct QueuesDb {
    db: ModelDb,
}

fn bad_key(family: &str) -> ProjectionError {
    ProjectionError::Corrupt(format!("malformed key in {family}"))
}

impl QueuesDb {
    /// # Errors
    /// RocksDB errors or a layout mismatch.
    pub fn open(path: &Path) -> Result<Self, ProjectionError> {
        Ok(Self {
            db: ModelDb::open(path, &FAMILIES, &[], &[], LAYOUT)?,
        })
    }

    /// Everything stored, for comparing builds.
    ///
    /// # Errors
    /// Storage errors.
    pub fn dump(&self) -> Result<crate::db::Dump, ProjectionError> {
        self.db.dump(&FAMILIES)
    }

    pub fn store(&self) -> &ModelDb {
        &self.db
    }

    /// # Errors
    /// Storage errors.
    pub fn checkpoint(&self) -> Result<Option<u64>, ProjectionError> {
        self.db.checkpoint()
    }

    fn get<T: serde::de::DeserializeOwned>(
        &self,
        family: &str,
        key: &[u8],
    ) -> Result<Option<T>, ProjectionError> {
        match self.db.raw().get_cf(self.db.cf(family)?, key)? {
            Some(v) => Ok(Some(codec::decode(&v)?)),
            None => Ok(None),
        }
    }

    /// # Errors
    /// Storage errors.
    pub fn queue(&self, queue: &QueueId) -> Result<Option<QueueView>, ProjectionError> {
        self.get(QUEUES, &keys::queue(queue))
    }

    /// The open interaction of `conversation` in `queue`, if any.
    ///
    /// # Errors
    /// Storage errors.
    pub fn item(
        &self,
        queue: &QueueId,
        conversation: &ConversationId,
    ) -> Result<Option<Item>, ProjectionError> {
        self.get(ITEMS, &keys::item(queue, conversation))
    }

    /// The customer's number of an External conversation.
    ///
    /// # Errors
    /// Storage errors.
    pub fn customer(
        &self,
        conversation: &ConversationId,
    ) -> Result<Option<PhoneNumber>, ProjectionError> {
        self.get(CUSTOMERS, &keys::customer(conversation))
    }

    /// Visits the keys (and values) of `family` starting with `prefix`, in order, until
    /// `visit` returns `false`.
    fn scan(
        &self,
        family: &str,
        prefix: &[u8],
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<bool, ProjectionError>,
    ) -> Result<(), ProjectionError> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(upper_bound(prefix));
        for item in self.db.raw().iterator_cf_opt(
            self.db.cf(family)?,
            ro,
            IteratorMode::From(prefix, Direction::Forward),
        ) {
            let (k, v) = item?;
            if !visit(&k, &v)? {
                break;
            }
        }
        Ok(())
    }

    /// `queue`'s waiting list, oldest first, at most `limit`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn waiting(&self, queue: &QueueId, limit: usize) -> Result<Vec<Waiting>, ProjectionError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        self.scan(WAITING, &keys::queue(queue), |k, _| {
            let (Some(since_ms), Some(interaction), Some(c)) = (
                keys::u64_at(k, 16),
                keys::u64_at(k, 24),
                keys::uuid_at(k, 32),
            ) else {
                return Err(bad_key(WAITING));
            };
            out.push(Waiting {
                conversation: ConversationId::from_uuid(c),
                interaction,
                since_ms,
            });
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    /// The queues `user` is a member of.
    ///
    /// # Errors
    /// Storage errors.
    pub fn queues_of(&self, user: &UserId) -> Result<Vec<QueueId>, ProjectionError> {
        let mut out = Vec::new();
        self.scan(MEMBERS, user.as_uuid().as_bytes(), |k, _| {
            out.push(QueueId::from_uuid(
                keys::uuid_at(k, 16).ok_or_else(|| bad_key(MEMBERS))?,
            ));
            Ok(true)
        })?;
        Ok(out)
    }

    fn row(
        &self,
        queue: QueueId,
        queue_name: &str,
        conversation: ConversationId,
        interaction: u64,
        agent: Option<UserId>,
        at_ms: u64,
    ) -> Result<InteractionRow, ProjectionError> {
        Ok(InteractionRow {
            queue,
            queue_name: queue_name.to_owned(),
            conversation,
            interaction,
            customer: self.customer(&conversation)?,
            agent,
            at_ms,
            close_reason: None,
            position: None,
        })
    }

    /// Active: what `agent` holds, oldest claim first, at most `limit` that match `search`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn active(
        &self,
        agent: UserId,
        search: Option<&str>,
        limit: usize,
    ) -> Result<Vec<InteractionRow>, ProjectionError> {
        let mut entries = Vec::new();
        self.scan(ACTIVE, agent.as_uuid().as_bytes(), |k, _| {
            let (Some(since_ms), Some(q), Some(c)) = (
                keys::u64_at(k, 16),
                keys::uuid_at(k, 24),
                keys::uuid_at(k, 40),
            ) else {
                return Err(bad_key(ACTIVE));
            };
            entries.push((
                since_ms,
                QueueId::from_uuid(q),
                ConversationId::from_uuid(c),
            ));
            Ok(true)
        })?;
        let mut rows = Vec::new();
        let mut names = std::collections::HashMap::new();
        for (since_ms, queue, conversation) in entries {
            if rows.len() >= limit {
                break;
            }
            let Some(item) = self.item(&queue, &conversation)? else {
                continue;
            };
            let name = match names.get(&queue) {
                Some(n) => n,
                None => names
                    .entry(queue)
                    .or_insert(self.queue(&queue)?.map(|q| q.name).unwrap_or_default()),
            };
            let row = self.row(
                queue,
                name,
                conversation,
                item.interaction,
                Some(agent),
                since_ms,
            )?;
            if matches(&row, search) {
                rows.push(row);
            }
        }
        Ok(rows)
    }

    /// Pending: what waits in the queues `agent` is a member of and logged into, oldest
    /// first across them, as many per queue as its policy shows
    /// (`max_pending_visible`, counted before the search), at most `limit` that match
    /// `search`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn pending(
        &self,
        agent: UserId,
        search: Option<&str>,
        limit: usize,
    ) -> Result<Vec<InteractionRow>, ProjectionError> {
        let mut rows = Vec::new();
        for queue in self.queues_of(&agent)? {
            let Some(view) = self.queue(&queue)? else {
                continue;
            };
            if !view.logged_in.contains(&agent) || !view.members.contains(&agent) {
                continue;
            }
            let shown = view
                .policy
                .max_pending_visible
                .map_or(usize::MAX, |m| m as usize);
            // Oldest first: only the first `limit` that match can be shown.
            let mut matched = 0;
            for w in self.waiting(&queue, shown)? {
                if matched >= limit {
                    break;
                }
                let row = self.row(
                    queue,
                    &view.name,
                    w.conversation,
                    w.interaction,
                    None,
                    w.since_ms,
                )?;
                if matches(&row, search) {
                    matched += 1;
                    rows.push(row);
                }
            }
        }
        rows.sort_by_key(|r| (r.at_ms, r.interaction));
        rows.truncate(limit);
        Ok(rows)
    }

    /// History: closed interactions of the queues `user` is a member of, newest first, at
    /// most `limit` that match `search` (looking at up to [`HISTORY_SCAN_LIMIT`] entries
    /// per queue).
    ///
    /// # Errors
    /// Storage errors.
    pub fn history(
        &self,
        user: UserId,
        search: Option<&str>,
        limit: usize,
    ) -> Result<Vec<InteractionRow>, ProjectionError> {
        let mut rows = Vec::new();
        if limit == 0 {
            return Ok(rows);
        }
        for queue in self.queues_of(&user)? {
            let Some(view) = self.queue(&queue)? else {
                continue;
            };
            if !view.members.contains(&user) {
                continue;
            }
            let (mut matched, mut scanned) = (0, 0);
            self.scan(HISTORY, &keys::queue(&queue), |k, v| {
                let position = !keys::u64_at(k, 16).ok_or_else(|| bad_key(HISTORY))?;
                let closed: Closed = codec::decode(v)?;
                let mut row = self.row(
                    queue,
                    &view.name,
                    closed.conversation,
                    closed.interaction,
                    closed.agent,
                    closed.at_ms,
                )?;
                row.close_reason = Some(closed.reason);
                row.position = Some(position);
                if matches(&row, search) {
                    matched += 1;
                    rows.push(row);
                }
                scanned += 1;
                Ok(matched < limit && scanned < HISTORY_SCAN_LIMIT)
            })?;
        }
        rows.sort_by_key(|r| std::cmp::Reverse(r.position));
        rows.truncate(limit);
        Ok(rows)
    }
}

/// The queue views as [`crate::live::Live`] runs them.
pub struct QueuesModel;

impl ModelKind for QueuesModel {
    const NAME: &'static str = NAME;
    type Db = QueuesDb;
    type Writer = QueuesWriter;

    fn open(path: &Path) -> Result<Arc<QueuesDb>, ProjectionError> {
        Ok(Arc::new(QueuesDb::open(path)?))
    }

    fn writer(db: Arc<QueuesDb>) -> Result<QueuesWriter, ProjectionError> {
        QueuesWriter::new(db)
    }

    fn finish(db: &QueuesDb, writer: QueuesWriter) -> Result<Option<u64>, ProjectionError> {
        drop(writer);
        db.store().flush()?;
        db.checkpoint()
    }
}
