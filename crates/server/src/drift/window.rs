//! A rolling window of bin counts: a ring of [`SUB_WINDOWS`] sub-windows of atomic counters.
//! Counting is lock-free (relaxed increments into the current sub-window); the current
//! sub-window moves on when it holds its share of the window's rows or is older than its share
//! of the window's duration, and the one it moves to (the oldest) is cleared first. Moving on
//! takes a small mutex with `try_lock`: a thread that finds it taken counts into the current
//! sub-window. A row counted by a thread that read the generation just before a rotation may
//! land in the sub-window being cleared: an approximation a monitor can live with.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Sub-windows in the ring.
pub const SUB_WINDOWS: usize = 10;

/// Milliseconds since the Unix epoch (injectable for tests).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    })
}

/// The window's size, shared by a slot with every monitor it installs (so settings given after
/// a model was installed still apply).
#[derive(Debug)]
pub struct WindowLimits {
    rows: AtomicU64,
    millis: AtomicU64,
}

impl WindowLimits {
    /// A window of at most `rows` rows and `seconds` seconds.
    pub fn new(rows: u64, seconds: u64) -> Self {
        let limits = Self { rows: AtomicU64::new(0), millis: AtomicU64::new(0) };
        limits.set(rows, seconds);
        limits
    }

    /// Changes the window's size.
    pub fn set(&self, rows: u64, seconds: u64) {
        self.rows.store(rows.max(1), Ordering::Relaxed);
        self.millis.store(seconds.max(1).saturating_mul(1000), Ordering::Relaxed);
    }

    /// Most rows of the window.
    pub fn rows(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }

    /// Longest the window spans, in milliseconds.
    pub fn millis(&self) -> u64 {
        self.millis.load(Ordering::Relaxed)
    }

    fn sub_rows(&self) -> u64 {
        self.rows().div_ceil(SUB_WINDOWS as u64)
    }

    fn sub_millis(&self) -> u64 {
        (self.millis() / SUB_WINDOWS as u64).max(1)
    }
}

#[derive(Debug)]
struct Sub {
    started: AtomicU64,
    rows: AtomicU64,
    counts: Box<[AtomicU32]>,
}

/// The ring of sub-windows, `bins` counters each.
pub struct Window {
    subs: Box<[Sub]>,
    generation: AtomicU64,
    rotating: Mutex<()>,
    limits: Arc<WindowLimits>,
    clock: Clock,
}

impl std::fmt::Debug for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Window").field("bins", &self.bins()).field("rows", &self.totals().rows).finish_non_exhaustive()
    }
}

/// Counts summed over the live sub-windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    /// Rows counted.
    pub rows: u64,
    /// Start of the oldest live sub-window (ms since the epoch), if any is live.
    pub since: Option<u64>,
    /// Per bin.
    pub counts: Vec<u64>,
}

impl Window {
    /// An empty window of `bins` counters per sub-window; the first starts now.
    pub fn new(bins: usize, limits: Arc<WindowLimits>, clock: Clock) -> Self {
        let now = clock();
        let subs = (0..SUB_WINDOWS)
            .map(|i| Sub {
                started: AtomicU64::new(if i == 0 { now } else { 0 }),
                rows: AtomicU64::new(0),
                counts: (0..bins).map(|_| AtomicU32::new(0)).collect(),
            })
            .collect();
        Self { subs, generation: AtomicU64::new(0), rotating: Mutex::new(()), limits, clock }
    }

    /// Counters per sub-window.
    pub fn bins(&self) -> usize {
        self.subs[0].counts.len()
    }

    /// Bytes the counters take.
    pub fn counter_bytes(&self) -> usize {
        SUB_WINDOWS * (self.bins() * size_of::<AtomicU32>() + size_of::<Sub>())
    }

    /// Counts one row: one increment per bin in `bins` (indices below [`Window::bins`]).
    pub fn count(&self, bins: impl Iterator<Item = usize>) {
        let sub = self.current();
        for bin in bins {
            if let Some(counter) = sub.counts.get(bin) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
        sub.rows.fetch_add(1, Ordering::Relaxed);
    }

    /// The sub-window to count into, moving on first when the current one is full or old.
    fn current(&self) -> &Sub {
        let generation = self.generation.load(Ordering::Acquire);
        let sub = &self.subs[(generation % SUB_WINDOWS as u64) as usize];
        let now = (self.clock)();
        let full = sub.rows.load(Ordering::Relaxed) >= self.limits.sub_rows();
        let old = now.saturating_sub(sub.started.load(Ordering::Relaxed)) >= self.limits.sub_millis();
        if (full || old) && self.rotate(generation, now) {
            return &self.subs[((generation + 1) % SUB_WINDOWS as u64) as usize];
        }
        sub
    }

    /// Moves from `generation` to the next sub-window, cleared, unless another thread is doing
    /// so or has done so.
    fn rotate(&self, generation: u64, now: u64) -> bool {
        let Ok(_guard) = self.rotating.try_lock() else { return false };
        if self.generation.load(Ordering::Acquire) != generation {
            return false;
        }
        let next = &self.subs[((generation + 1) % SUB_WINDOWS as u64) as usize];
        next.counts.iter().for_each(|c| c.store(0, Ordering::Relaxed));
        next.rows.store(0, Ordering::Relaxed);
        next.started.store(now, Ordering::Relaxed);
        self.generation.store(generation + 1, Ordering::Release);
        true
    }

    /// The counts of the sub-windows started within the window's duration.
    pub fn totals(&self) -> Totals {
        let now = (self.clock)();
        let span = self.limits.millis();
        let mut totals = Totals { rows: 0, since: None, counts: vec![0; self.bins()] };
        for sub in self.subs.iter() {
            let started = sub.started.load(Ordering::Relaxed);
            let rows = sub.rows.load(Ordering::Relaxed);
            if started == 0 || now.saturating_sub(started) >= span {
                continue;
            }
            totals.since = Some(totals.since.map_or(started, |s: u64| s.min(started)));
            totals.rows += rows;
            for (total, c) in totals.counts.iter_mut().zip(sub.counts.iter()) {
                *total += u64::from(c.load(Ordering::Relaxed));
            }
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(rows: u64, seconds: u64) -> (Window, Arc<AtomicU64>) {
        let time = Arc::new(AtomicU64::new(1_000_000));
        let t = time.clone();
        let clock: Clock = Arc::new(move || t.load(Ordering::Relaxed));
        (Window::new(3, Arc::new(WindowLimits::new(rows, seconds)), clock), time)
    }

    #[test]
    fn the_ring_rotates_by_rows_and_keeps_the_last_window() {
        let (w, _) = window(100, 3600);
        for i in 0..100 {
            w.count([i % 3].into_iter());
        }
        let t = w.totals();
        assert_eq!((t.rows, t.counts.iter().sum::<u64>()), (100, 100));
        assert_eq!(w.generation.load(Ordering::Relaxed), 9, "10 rows per sub-window");
        for _ in 0..35 {
            w.count([2].into_iter());
        }
        // Four rotations: rows 0..40 are gone, 60 old rows and 35 new ones remain.
        assert_eq!(w.generation.load(Ordering::Relaxed), 13);
        let t = w.totals();
        assert_eq!(t.rows, 95);
        assert_eq!(t.counts[2], (40..100).filter(|i| i % 3 == 2).count() as u64 + 35);
    }

    #[test]
    fn the_ring_rotates_by_time_and_forgets_old_rows() {
        let (w, time) = window(1_000_000, 100);
        w.count([0].into_iter());
        let start = w.totals().since.expect("live");
        time.fetch_add(10_000, Ordering::Relaxed);
        w.count([1].into_iter());
        assert_eq!(w.generation.load(Ordering::Relaxed), 1, "a sub-window spans 10 s");
        assert_eq!(w.totals().counts, [1, 1, 0]);
        assert_eq!(w.totals().since, Some(start));
        time.fetch_add(95_000, Ordering::Relaxed);
        let t = w.totals();
        assert_eq!((t.rows, t.counts.clone()), (1, vec![0, 1, 0]), "the first sub-window is older than 100 s");
        time.fetch_add(1_000_000, Ordering::Relaxed);
        assert_eq!(w.totals(), Totals { rows: 0, since: None, counts: vec![0; 3] });
    }
}
