//! Progress bars on stderr for the long-running commands (hidden when stderr is not a
//! terminal): human rates (`12.6 k baskets/s`), and no ETA for boosting, whose rounds are only
//! an upper bound (early stopping usually ends it well before).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use retail_model::progress::Progress;

/// `per_sec` units of work a second as a short human figure: `950 rows/s`, `12.6 k rows/s`,
/// `1.2 M rows/s`.
pub(crate) fn human_rate(per_sec: f64, unit: &str) -> String {
    let (value, prefix) = match per_sec {
        r if !r.is_finite() || r < 0.0 => (0.0, ""),
        r if r >= 1e9 => (r / 1e9, " G"),
        r if r >= 1e6 => (r / 1e6, " M"),
        r if r >= 1e3 => (r / 1e3, " k"),
        r => (r, ""),
    };
    if prefix.is_empty() && value >= 10.0 {
        format!("{value:.0} {unit}/s")
    } else {
        format!("{value:.1}{prefix} {unit}/s")
    }
}

/// The unit of a stage's work: the last word of its name (`generating baskets` → `baskets`).
fn unit(stage: &str) -> String {
    stage.rsplit(' ').next().unwrap_or("items").to_owned()
}

/// The bar's template for a stage: bytes for reading; no ETA when the total is a bound.
fn template(stage: &str) -> &'static str {
    if stage.starts_with("reading") {
        "{prefix:>22} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}"
    } else if stage.contains("rounds") {
        // Early stopping ends most runs long before the last round: an ETA would mislead.
        "{prefix:>22} [{bar:30}] {pos} of at most {len} {rate} {elapsed} {msg}"
    } else {
        "{prefix:>22} [{bar:30}] {pos}/{len} {rate} eta {eta} {msg}"
    }
}

/// Progress bars on stderr.
pub(crate) struct Bars {
    bar: ProgressBar,
}

impl Bars {
    pub(crate) fn new() -> Self {
        Self { bar: ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()) }
    }
}

impl Progress for Bars {
    fn stage(&self, name: &str, total: u64) {
        self.bar.reset();
        self.bar.set_length(total);
        let unit = unit(name);
        if let Ok(style) = ProgressStyle::with_template(template(name)) {
            let style = style.with_key("rate", move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&human_rate(state.per_sec(), &unit));
            });
            self.bar.set_style(style.progress_chars("=> "));
        }
        self.bar.set_prefix(name.to_owned());
        tracing::debug!(stage = name, total, "started");
    }

    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }

    fn message(&self, message: &str) {
        self.bar.set_message(message.to_owned());
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_like_a_person_writes_them() {
        assert_eq!(human_rate(1_234_567.0, "rows"), "1.2 M rows/s");
        assert_eq!(human_rate(12_621.644_3, "rows"), "12.6 k rows/s");
        assert_eq!(human_rate(950.4, "rows"), "950 rows/s");
        assert_eq!(human_rate(3.42, "rounds"), "3.4 rounds/s");
        assert_eq!(human_rate(f64::NAN, "rows"), "0.0 rows/s");
        assert_eq!(unit("generating baskets"), "baskets");
    }

    #[test]
    fn boosting_shows_no_eta() {
        assert!(!template("boosting rounds").contains("eta"));
        assert!(template("boosting rounds").contains("at most"));
        assert!(template("generating baskets").contains("eta"));
        assert!(!template("generating baskets").contains("per_sec"));
    }
}
