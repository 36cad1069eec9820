//! Retention and erasure: destroying the keys message texts are sealed under (see
//! [`actors::sealing`]), with a record of each in the organization's `erasure-<org>`
//! stream ([`domain::erasure`]).
//!
//! - An **erasure** of one customer is recorded first (`CustomerErased`), then every key
//!   of that customer made before it is destroyed: their texts, in every conversation and
//!   as they arrived, read as `[erased]` from then on, and the search index drops them
//!   when it reads the record. A crash in between is finished by the next start
//!   ([`catch_up`] destroys, again, the keys made before every recorded erasure —
//!   destroying what is gone destroys nothing).
//! - **Retention** (`RetentionSet`, in days) is applied at start and every
//!   [`SWEEP_EVERY`] by [`run`]: every key of the organization for a day before
//!   `today − days` is destroyed, then `RetentionApplied` says up to which day.
//!
//! Keys are made per (organization, customer, day) and per (organization, day) for
//! internal chat, so retention keeps texts for `days` to `days + 1` days.

use std::time::Duration;

use domain::erasure::{
    CustomerErased, ErasureEvent, ErasureState, RetentionApplied, RetentionSet, ERASURE_CATEGORY,
};
use domain::text::day_of;
use domain::{OrgId, PhoneNumber, UserId};
use eventlog::{Direction, ExpectedVersion, Metadata, StreamName};
use uuid::Uuid;

use actors::event_codec;
use actors::sealing::{wall_ms, Sealer};
use actors::workspace::Workspace;

/// How often the retention runs.
pub const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Why an erasure or a retention could not be done.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// Texts are not sealed on this log (it has no keyring): nothing can be erased.
    #[error("texts are not sealed on this server, so nothing can be erased")]
    NotSealed,
    #[error("{0}")]
    Failed(String),
}

/// `erasure-<org>`.
pub fn stream(org: OrgId) -> StreamName {
    StreamName::from_parts(ERASURE_CATEGORY, org).expect("a uuid is a valid stream id")
}

/// The organization's retention and erasures so far.
///
/// # Errors
/// When the log cannot be read or holds an undecodable record.
pub async fn state(ws: &Workspace, org: OrgId) -> Result<ErasureState, RetentionError> {
    let mut state = ErasureState::default();
    let mut from = 0;
    loop {
        let page = eventlog::store::nonblocking::read_stream(
            &ws.store,
            &stream(org),
            from,
            Direction::Forward,
            500,
        )
        .await
        .map_err(|e| RetentionError::Failed(e.to_string()))?;
        for r in &page {
            let e = event_codec::decode::<ErasureEvent>(r).map_err(RetentionError::Failed)?;
            state.apply(&e);
        }
        match page.last() {
            Some(last) if page.len() == 500 => from = last.version + 1,
            _ => return Ok(state),
        }
    }
}

async fn append(ws: &Workspace, org: OrgId, event: &ErasureEvent) -> Result<u64, RetentionError> {
    let data = event_codec::encode(event, Uuid::new_v4(), Metadata::default())
        .map_err(|e| RetentionError::Failed(e.to_string()))?;
    ws.store
        .append(stream(org), ExpectedVersion::Any, vec![data])
        .await
        .map(|r| r.last_position)
        .map_err(|e| RetentionError::Failed(e.to_string()))
}

fn sealed(ws: &Workspace) -> Result<Sealer, RetentionError> {
    let sealer = ws.sealer.clone();
    if sealer.keyring().is_none() {
        return Err(RetentionError::NotSealed);
    }
    Ok(sealer)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, eventlog::keyring::KeyringError> + Send + 'static,
) -> Result<T, RetentionError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RetentionError::Failed(e.to_string()))?
        .map_err(|e| RetentionError::Failed(e.to_string()))
}

/// What an erasure did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Erased {
    pub at_ms: u64,
    /// Position of its record.
    pub position: u64,
    /// Keys destroyed.
    pub keys: usize,
}

/// Erases `customer`'s texts in `org`: records the erasure, then destroys their keys.
///
/// # Errors
/// [`RetentionError::NotSealed`], or the log or keyring failed (the erasure, once
/// recorded, is finished by the next start).
pub async fn erase_customer(
    ws: &Workspace,
    org: OrgId,
    customer: PhoneNumber,
    by: UserId,
) -> Result<Erased, RetentionError> {
    let sealer = sealed(ws)?;
    let at_ms = wall_ms();
    let event = ErasureEvent::CustomerErased(CustomerErased {
        org,
        customer: customer.clone(),
        by,
        at_ms,
    });
    let position = append(ws, org, &event).await?;
    let keys =
        blocking(move || sealer.erase_customer_blocking(org, &customer, at_ms.saturating_add(1)))
            .await?;
    tracing::info!(%org, keys, "customer erased");
    Ok(Erased {
        at_ms,
        position,
        keys,
    })
}

/// Sets how many days `org` keeps message texts (`None`: for ever) and applies it at once.
/// Returns the state after, and the keys destroyed.
///
/// # Errors
/// [`RetentionError::NotSealed`], or the log or keyring failed.
pub async fn set_retention(
    ws: &Workspace,
    org: OrgId,
    days: Option<u32>,
    by: UserId,
) -> Result<(ErasureState, usize), RetentionError> {
    sealed(ws)?;
    let event = ErasureEvent::RetentionSet(RetentionSet {
        org,
        days,
        by,
        at_ms: wall_ms(),
    });
    append(ws, org, &event).await?;
    let keys = apply_retention(ws, org).await?;
    Ok((state(ws, org).await?, keys))
}

/// Destroys the keys of `org`'s texts older than its retention; records how far it got
/// when it destroyed any. Returns how many.
///
/// # Errors
/// The log or keyring failed.
pub async fn apply_retention(ws: &Workspace, org: OrgId) -> Result<usize, RetentionError> {
    let sealer = sealed(ws)?;
    let Some(days) = state(ws, org).await?.retention_days else {
        return Ok(0);
    };
    let now = wall_ms();
    let before_day = day_of(now).saturating_sub(days);
    let keys = blocking(move || sealer.erase_before_blocking(org, before_day)).await?;
    if keys > 0 {
        let event = ErasureEvent::RetentionApplied(RetentionApplied {
            org,
            before_day,
            keys: keys as u64,
            at_ms: now,
        });
        append(ws, org, &event).await?;
        tracing::info!(%org, keys, before_day, "retention applied");
    }
    Ok(keys)
}

/// Finishes every recorded erasure of an organization that has keys: destroys the keys of
/// its customer made before it (a crash may have come between the record and the keys).
///
/// # Errors
/// The log or keyring failed.
pub async fn catch_up(ws: &Workspace) -> Result<usize, RetentionError> {
    let sealer = sealed(ws)?;
    let orgs = {
        let sealer = sealer.clone();
        blocking(move || sealer.organizations_blocking()).await?
    };
    let mut destroyed = 0;
    for org in orgs {
        for (customer, at_ms) in state(ws, org).await?.erased {
            let sealer = sealer.clone();
            destroyed += blocking(move || {
                sealer.erase_customer_blocking(org, &customer, at_ms.saturating_add(1))
            })
            .await?;
        }
    }
    Ok(destroyed)
}

/// Finishes interrupted erasures, then applies every organization's retention now and
/// every `every`, until the log closes. Does nothing where texts are not sealed.
pub async fn run(ws: Workspace, every: Duration) {
    if ws.sealer.keyring().is_none() {
        return;
    }
    match catch_up(&ws).await {
        Ok(0) => {}
        Ok(keys) => tracing::warn!(keys, "finished erasures a crash interrupted"),
        Err(e) => tracing::error!(error = %e, "cannot finish earlier erasures"),
    }
    loop {
        let orgs = {
            let sealer = ws.sealer.clone();
            blocking(move || sealer.organizations_blocking()).await
        };
        match orgs {
            Ok(orgs) => {
                for org in orgs {
                    if let Err(e) = apply_retention(&ws, org).await {
                        tracing::error!(%org, error = %e, "retention not applied");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "retention cannot list organizations"),
        }
        tokio::time::sleep(every).await;
    }
}
