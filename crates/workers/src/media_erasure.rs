//! Media erasure: the blobs of attachments only erased texts needed are deleted.
//!
//! Texts are erased by destroying their keys (`workers::retention`); media blobs
//! are content-addressed and may be shared (the same picture sent twice, or by two
//! organizations), so they are not sealed but deleted once nothing live needs them. A
//! follower of the `erasure` category (checkpoint [`CHECKPOINT`]) reads every record and,
//! for a `CustomerErased` or a `RetentionApplied`, reads the attachment index once:
//!
//! - an attachment of that organization is **doomed** when every conversation that
//!   references it is the customer's (one of its external numbers) and referenced it
//!   before the erasure — or, for a retention, when it was stored and last referenced on
//!   a day before the retention's cut;
//! - each doomed attachment gets an `AttachmentErased` record (once: its id derives from
//!   the attachment and the erasure), and its blob is deleted when no attachment that is
//!   not erased (of any organization) has the same bytes.
//!
//! Fetching an attachment whose blob is gone answers 410 `media_erased`. The same bytes
//! stored again later (a new upload, a new MMS) are a blob again and readable where they
//! are referenced anew. Handling a record twice (a crash before the checkpoint moved)
//! deletes nothing more.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::driver::{self, Failure};
use actors::{event_codec, Workspace};
use carrier::blobs::BlobStore;
use domain::erasure::{ErasureEvent, ERASURE_CATEGORY};
use domain::text::day_of;
use domain::{Conversation, ConversationId, OrgId, PhoneNumber};
use eventlog::{codec, EventData, ExpectedVersion, RecordedEvent, StreamName};
use uuid::Uuid;

use domain::attachment::{
    AttachmentErased, AttachmentReferenced, AttachmentStored, ATTACHMENT_CATEGORY,
};

/// Checkpoint of the media erasure follower.
pub const CHECKPOINT: &str = "media_erasure";

/// Events of the attachment index read in one page.
const PAGE: usize = 4096;

/// What the index says of one attachment.
#[derive(Debug, Default)]
struct Known {
    stored: Option<AttachmentStored>,
    stored_ms: u64,
    /// (conversation, when it was referenced).
    refs: Vec<(ConversationId, u64)>,
    erased: bool,
}

/// Runs the follower until the log closes.
pub async fn run(ws: Workspace, blobs: BlobStore) {
    let blobs = Arc::new(blobs);
    driver::run(ws, CHECKPOINT, ERASURE_CATEGORY, move |ws, record| {
        let blobs = blobs.clone();
        async move { handle(&ws, &blobs, &record).await }
    })
    .await;
}

/// What one erasure record dooms.
enum Doom {
    Customer {
        org: OrgId,
        customer: PhoneNumber,
        at_ms: u64,
    },
    Before {
        org: OrgId,
        day: u32,
    },
}

async fn handle(ws: &Workspace, blobs: &BlobStore, record: &RecordedEvent) -> Result<(), Failure> {
    let doom = match event_codec::decode::<ErasureEvent>(record).map_err(Failure::Permanent)? {
        ErasureEvent::CustomerErased(e) => Doom::Customer {
            org: e.org,
            customer: e.customer,
            at_ms: e.at_ms,
        },
        ErasureEvent::RetentionApplied(e) => Doom::Before {
            org: e.org,
            day: e.before_day,
        },
        ErasureEvent::RetentionSet(_) => return Ok(()),
    };
    let known = index(ws).await?;
    let mut customers_of: HashMap<ConversationId, Vec<PhoneNumber>> = HashMap::new();
    let mut doomed = Vec::new();
    for (id, k) in &known {
        let Some(stored) = &k.stored else { continue };
        if k.erased {
            continue;
        }
        let is_doomed = match &doom {
            Doom::Customer {
                org,
                customer,
                at_ms,
            } => {
                if stored.org != *org || k.refs.is_empty() {
                    false
                } else {
                    let mut all = true;
                    for (conv, at) in &k.refs {
                        let theirs = customers(ws, &mut customers_of, *conv).await?;
                        if *at > *at_ms || !theirs.contains(customer) {
                            all = false;
                            break;
                        }
                    }
                    all
                }
            }
            Doom::Before { org, day } => expired(k, *org, *day),
        };
        if is_doomed {
            doomed.push(*id);
        }
    }
    let reason = match doom {
        Doom::Customer { .. } => "customer_erased",
        Doom::Before { .. } => "retention",
    };
    let mut gone: HashSet<Uuid> = HashSet::new();
    for id in doomed {
        record_erased(ws, id, reason, record.event_id).await?;
        gone.insert(id);
    }
    // A blob goes once no attachment still live (of any organization) has its bytes.
    let mut live_hashes: HashSet<&str> = HashSet::new();
    let mut dead_hashes: HashSet<&str> = HashSet::new();
    for (id, k) in &known {
        let Some(stored) = &k.stored else { continue };
        if k.erased || gone.contains(id) {
            dead_hashes.insert(&stored.hash);
        } else {
            live_hashes.insert(&stored.hash);
        }
    }
    let mut deleted = 0;
    for hash in dead_hashes.difference(&live_hashes) {
        let (blobs, hash) = (blobs.clone(), (*hash).to_owned());
        let removed = tokio::task::spawn_blocking(move || blobs.remove(&hash))
            .await
            .map_err(|e| Failure::Transient(e.to_string()))?
            .map_err(|e| Failure::Transient(e.to_string()))?;
        deleted += usize::from(removed);
    }
    if !gone.is_empty() || deleted > 0 {
        tracing::info!(
            attachments = gone.len(),
            blobs = deleted,
            reason,
            "media erased"
        );
    }
    Ok(())
}

/// Whether a retention of `org` up to `day` dooms the attachment: stored and last
/// referenced on a day before.
fn expired(k: &Known, org: OrgId, day: u32) -> bool {
    k.stored.as_ref().is_some_and(|s| s.org == org)
        && day_of(k.stored_ms) < day
        && k.refs.iter().all(|(_, at)| day_of(*at) < day)
}

/// Every attachment of the index: what was stored, its references, whether erased.
async fn index(ws: &Workspace) -> Result<HashMap<Uuid, Known>, Failure> {
    let mut known: HashMap<Uuid, Known> = HashMap::new();
    let mut from = 0;
    loop {
        let store = ws.store.clone();
        let page = tokio::task::spawn_blocking(move || {
            store.read_category_blocking(ATTACHMENT_CATEGORY, from, PAGE)
        })
        .await
        .map_err(|e| Failure::Transient(e.to_string()))?
        .map_err(|e| Failure::Transient(e.to_string()))?;
        for r in &page {
            let Ok(id) = Uuid::try_parse(r.stream.id()) else {
                continue;
            };
            let k = known.entry(id).or_default();
            let at_ms = r.timestamp_us / 1_000;
            match r.event_type.as_str() {
                "AttachmentStored" => {
                    if let Ok(stored) = codec::decode::<AttachmentStored>(&r.payload) {
                        k.stored = Some(stored);
                        k.stored_ms = at_ms;
                    }
                }
                "AttachmentReferenced" => {
                    if let Ok(referenced) = codec::decode::<AttachmentReferenced>(&r.payload) {
                        k.refs.push((referenced.conversation, at_ms));
                        // Referenced anew after an erasure (the same bytes sent again):
                        // live again.
                        k.erased = false;
                    }
                }
                "AttachmentErased" => k.erased = true,
                _ => {}
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE => from = last.position + 1,
            _ => return Ok(known),
        }
    }
}

/// The customers (external numbers) of a conversation, asked of its actor once.
async fn customers<'a>(
    ws: &Workspace,
    cache: &'a mut HashMap<ConversationId, Vec<PhoneNumber>>,
    conv: ConversationId,
) -> Result<&'a Vec<PhoneNumber>, Failure> {
    if let std::collections::hash_map::Entry::Vacant(slot) = cache.entry(conv) {
        let numbers = ws
            .conversations
            .query(&conv, |c: &Conversation, _| {
                c.header()
                    .map(|h| {
                        h.kind
                            .external_numbers()
                            .into_iter()
                            .cloned()
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            })
            .await
            .map_err(|e| Failure::Transient(e.to_string()))?;
        slot.insert(numbers);
    }
    Ok(&cache[&conv])
}

async fn record_erased(ws: &Workspace, id: Uuid, reason: &str, cause: Uuid) -> Result<(), Failure> {
    let stream = StreamName::from_parts(ATTACHMENT_CATEGORY, id)
        .map_err(|e| Failure::Permanent(e.to_string()))?;
    let payload = codec::encode(&AttachmentErased {
        reason: reason.to_owned(),
        cause,
    })
    .map_err(|e| Failure::Permanent(e.to_string()))?;
    let mut name = b"erased\0".to_vec();
    name.extend_from_slice(cause.as_bytes());
    let event = EventData::new("AttachmentErased", 1, payload).with_id(Uuid::new_v5(&id, &name));
    match ws
        .store
        .append(stream, ExpectedVersion::Any, vec![event])
        .await
    {
        Ok(_) | Err(eventlog::AppendError::EventIdReused { .. }) => Ok(()),
        Err(e) => Err(Failure::Transient(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::text::DAY_MS;

    #[test]
    fn a_retention_dooms_media_stored_and_last_referenced_before_its_cut() {
        let org = OrgId::random();
        let known = |stored_day: u64, ref_days: &[u64]| Known {
            stored: Some(AttachmentStored {
                org,
                hash: "00".repeat(32),
                mime: "image/png".into(),
                size: 1,
            }),
            stored_ms: stored_day * DAY_MS,
            refs: ref_days
                .iter()
                .map(|d| (ConversationId::random(), d * DAY_MS + 5))
                .collect(),
            erased: false,
        };
        assert!(expired(&known(3, &[3, 4]), org, 5));
        assert!(
            !expired(&known(3, &[3, 5]), org, 5),
            "referenced on the cut's day"
        );
        assert!(!expired(&known(5, &[]), org, 5), "stored on the cut's day");
        assert!(
            expired(&known(1, &[]), org, 5),
            "never referenced, stored before"
        );
        assert!(
            !expired(&known(1, &[2]), OrgId::random(), 5),
            "another organization's"
        );
    }
}
