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
use eventlog::{EventData, EventStore, ExpectedVersion, Metadata, RecordedEvent, StreamName};
use uuid::Uuid;

use domain::attachment::{
    AttachmentErased, AttachmentEvent, AttachmentStored, ATTACHMENT_CATEGORY,
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
    let known = index(&ws.store).await?;
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
async fn index(store: &Arc<dyn EventStore>) -> Result<HashMap<Uuid, Known>, Failure> {
    let mut known: HashMap<Uuid, Known> = HashMap::new();
    let mut from = 0;
    loop {
        let store = store.clone();
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
            match event_codec::decode::<AttachmentEvent>(r) {
                Ok(AttachmentEvent::AttachmentStored(stored)) => {
                    k.stored = Some(stored);
                    k.stored_ms = at_ms;
                }
                Ok(AttachmentEvent::AttachmentReferenced(referenced)) => {
                    k.refs.push((referenced.conversation, at_ms));
                    // Referenced anew after an erasure (the same bytes sent again): live
                    // again.
                    k.erased = false;
                }
                Ok(AttachmentEvent::AttachmentErased(_)) => k.erased = true,
                Ok(AttachmentEvent::AttachmentUnavailable(_)) | Err(_) => {}
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
    let event = erased_record(id, reason, cause).map_err(Failure::Permanent)?;
    match ws
        .store
        .append(stream, ExpectedVersion::Any, vec![event])
        .await
    {
        Ok(_) | Err(eventlog::AppendError::EventIdReused { .. }) => Ok(()),
        Err(e) => Err(Failure::Transient(e.to_string())),
    }
}

/// The log record of attachment `id`'s erasure caused by erasure record `cause` (its id
/// derives from both: written once per attachment and erasure).
fn erased_record(id: Uuid, reason: &str, cause: Uuid) -> Result<EventData, String> {
    let event = AttachmentEvent::AttachmentErased(AttachmentErased {
        reason: reason.to_owned(),
        cause,
    });
    let mut name = b"erased\0".to_vec();
    name.extend_from_slice(cause.as_bytes());
    event_codec::encode(&event, Uuid::new_v5(&id, &name), Metadata::default())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::text::DAY_MS;
    use eventlog::{codec, LogOptions, RocksLog};
    use serde::Serialize;

    /// The records as the gateway and the workers wrote them by hand before they went
    /// through the domain events: the structs (verbatim) encoded bare, version 1.
    #[derive(Serialize)]
    struct OldAttachmentStored {
        org: OrgId,
        hash: String,
        mime: String,
        size: u64,
    }

    #[derive(Serialize)]
    struct OldAttachmentReferenced {
        conversation: ConversationId,
    }

    #[derive(Serialize)]
    struct OldAttachmentErased {
        reason: String,
        cause: Uuid,
    }

    fn old_erased(id: Uuid, reason: &str, cause: Uuid) -> EventData {
        let payload = codec::encode(&OldAttachmentErased {
            reason: reason.to_owned(),
            cause,
        })
        .unwrap();
        let mut name = b"erased\0".to_vec();
        name.extend_from_slice(cause.as_bytes());
        EventData::new("AttachmentErased", 1, payload).with_id(Uuid::new_v5(&id, &name))
    }

    #[test]
    fn the_erasure_record_is_the_bytes_written_before() {
        let (id, cause) = (Uuid::new_v4(), Uuid::new_v4());
        let (new, old) = (
            erased_record(id, "retention", cause).unwrap(),
            old_erased(id, "retention", cause),
        );
        assert_eq!(
            (new.event_type.as_str(), new.schema_version, new.event_id),
            ("AttachmentErased", 1, old.event_id)
        );
        assert_eq!(new.payload, old.payload);
        assert_eq!(new.metadata, old.metadata);
    }

    #[tokio::test]
    async fn the_index_reads_records_written_by_hand_before() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn EventStore> =
            Arc::new(RocksLog::open(dir.path().join("log"), LogOptions::default()).unwrap());
        let (org, conversation) = (OrgId::random(), ConversationId::random());
        let hash = "cd".repeat(32);
        let id = domain::attachment::attachment_id(org, &hash);
        fn old(event_type: &str, payload: &impl Serialize) -> EventData {
            EventData::new(event_type, 1, codec::encode(payload).unwrap())
        }
        let stored = OldAttachmentStored {
            org,
            hash: hash.clone(),
            mime: "image/png".into(),
            size: 7,
        };
        store
            .append(
                StreamName::from_parts(ATTACHMENT_CATEGORY, id).unwrap(),
                ExpectedVersion::NoStream,
                vec![
                    old("AttachmentStored", &stored),
                    old(
                        "AttachmentReferenced",
                        &OldAttachmentReferenced { conversation },
                    ),
                    old_erased(*id.as_uuid(), "customer_erased", Uuid::new_v4()),
                ],
            )
            .await
            .unwrap();
        let known = index(&store).await.unwrap();
        let k = &known[id.as_uuid()];
        assert_eq!(
            k.stored,
            Some(AttachmentStored {
                org,
                hash,
                mime: "image/png".into(),
                size: 7,
            })
        );
        assert_eq!(
            k.refs.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
            [conversation]
        );
        assert!(k.erased);
    }

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
