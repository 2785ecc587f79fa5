//! Progress reporting hooks for long-running work; the CLI renders them as progress bars.

/// Receives progress of a long-running job. Implementations must be cheap and thread-safe.
pub trait Progress: Sync {
    /// A new stage begins with `total` units of work (0 when unknown).
    fn stage(&self, name: &str, total: u64);
    /// `n` more units are done.
    fn advance(&self, n: u64);
    /// A short status message for the current stage.
    fn message(&self, _message: &str) {}
}

/// Discards progress.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {
    fn stage(&self, _name: &str, _total: u64) {}
    fn advance(&self, _n: u64) {}
}
