//! The memory preparing MMS images may take across the whole server: an image posted to a
//! conversation that texts is read whole and decoded ([`carrier::media`]), which for a
//! 25 MiB upload of a large photo is hundreds of MiB. Each preparation first holds its
//! estimate ([`carrier::media::preparation_bytes`]) of an [`ImageBudget`], and waits while
//! others hold the rest; one larger than the whole budget waits for all of it.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// The server's budget for preparing MMS images: room for one image at the decoding
/// limit, or a few ordinary photos at once (a 12 MP JPEG is estimated at about 80 MiB).
pub const IMAGE_PREPARATION_BUDGET: u64 = 256 * 1024 * 1024;

/// Permits are KiB, so that a budget of GiBs fits a semaphore's count.
const UNIT: u64 = 1024;

/// Bytes that preparations may hold at once (see the module docs). Cheap to clone: clones
/// share the budget.
#[derive(Debug, Clone)]
pub struct ImageBudget {
    permits: Arc<Semaphore>,
    /// The whole budget, in [`UNIT`]s.
    units: u32,
}

/// Bytes held of an [`ImageBudget`], given back when dropped.
#[derive(Debug)]
pub struct Held(#[allow(dead_code)] OwnedSemaphorePermit);

impl ImageBudget {
    /// A budget of `bytes` (at least one unit).
    pub fn new(bytes: u64) -> Self {
        let units = u32::try_from(bytes / UNIT)
            .unwrap_or(u32::MAX)
            .clamp(1, u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX));
        Self {
            permits: Arc::new(Semaphore::new(units as usize)),
            units,
        }
    }

    /// Waits until `bytes` more may be held (all of the budget, for more than it), then
    /// holds them until the answer is dropped. Waiters are served in order.
    ///
    /// # Errors
    /// Internal errors (the budget was closed; it never is).
    pub async fn hold(&self, bytes: u64) -> Result<Held, ApiError> {
        let units = u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, self.units);
        self.permits
            .clone()
            .acquire_many_owned(units)
            .await
            .map(Held)
            .map_err(ApiError::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    const MIB: u64 = 1024 * 1024;

    #[tokio::test]
    async fn a_preparation_waits_while_others_hold_the_budget() {
        let budget = ImageBudget::new(10 * MIB);
        let first = budget.hold(6 * MIB).now_or_never().unwrap().unwrap();
        let second = budget.hold(3 * MIB).now_or_never().unwrap().unwrap();
        // 9 MiB are held: 2 more must wait, whoever asks.
        let mut third = Box::pin(budget.hold(2 * MIB));
        assert!((&mut third).now_or_never().is_none());
        drop(second);
        let third = third.now_or_never().expect("room again").unwrap();
        // More than the whole budget waits for all of it.
        let mut huge = Box::pin(budget.hold(1024 * MIB));
        assert!((&mut huge).now_or_never().is_none());
        drop(first);
        assert!((&mut huge).now_or_never().is_none(), "2 MiB still held");
        drop(third);
        let huge = huge.now_or_never().expect("the whole budget").unwrap();
        assert!(budget.hold(1).now_or_never().is_none());
        drop(huge);
        assert!(budget.hold(10 * MIB).now_or_never().is_some());
    }
}
