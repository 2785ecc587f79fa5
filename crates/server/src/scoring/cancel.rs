//! Cooperative cancellation: a flag the scoring work checks between chunks of a batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::ScoreError;

/// Set when whoever waits for a scoring call gives up (a timeout, a closed connection); the
/// work checks it between chunks and stops. `Cancel::default()` is never set.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Asks the work to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the work was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once the work was asked to stop.
    pub fn check(&self) -> Result<(), ScoreError> {
        if self.is_cancelled() { Err(ScoreError::Cancelled) } else { Ok(()) }
    }

    /// A guard that cancels when dropped: keep it in the future that awaits the work.
    pub fn on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(self.clone())
    }
}

/// Cancels its [`Cancel`] when dropped.
#[derive(Debug)]
pub struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}
