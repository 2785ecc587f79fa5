//! The drift monitor's settings of `serve` (`DRIFT_…`).

use anyhow::bail;
use clap::Args;
use retail_server::drift::DriftSettings;

/// Largest `DRIFT_WINDOW_ROWS`: keeps each sub-window's 32-bit counters far from overflowing.
const MAX_WINDOW_ROWS: u64 = 100_000_000;

/// Drift window and verdict thresholds.
#[derive(Debug, Args)]
pub struct DriftArgs {
    /// Rows of the rolling window each model's drift statistics cover (reset on a new version).
    #[arg(long, env = "DRIFT_WINDOW_ROWS", default_value_t = DriftSettings::default().window_rows)]
    drift_window_rows: u64,
    /// Longest the drift window spans, in seconds (older rows are forgotten).
    #[arg(long, env = "DRIFT_WINDOW_SECONDS", default_value_t = DriftSettings::default().window_seconds)]
    drift_window_seconds: u64,
    /// Rows the window must hold before any drift verdict (else `insufficient_data`).
    #[arg(long, env = "DRIFT_MIN_ROWS", default_value_t = DriftSettings::default().min_rows)]
    drift_min_rows: u64,
    /// Population stability index from which a feature is `warn`.
    #[arg(long, env = "DRIFT_PSI_WARN", default_value_t = DriftSettings::default().psi_warn)]
    drift_psi_warn: f64,
    /// Population stability index from which a feature is `alert` (drifted).
    #[arg(long, env = "DRIFT_PSI_ALERT", default_value_t = DriftSettings::default().psi_alert)]
    drift_psi_alert: f64,
    /// Jensen–Shannon distance (0 to 1) from which a feature is `alert` (drifted).
    #[arg(long, env = "DRIFT_JS_THRESHOLD", default_value_t = DriftSettings::default().js_threshold)]
    drift_js_threshold: f64,
}

impl DriftArgs {
    /// The settings, checked.
    pub fn settings(&self) -> anyhow::Result<DriftSettings> {
        if !(1..=MAX_WINDOW_ROWS).contains(&self.drift_window_rows) || self.drift_window_seconds == 0 {
            bail!("--drift-window-rows must be 1 to {MAX_WINDOW_ROWS} and --drift-window-seconds positive");
        }
        let thresholds = [self.drift_psi_warn, self.drift_psi_alert, self.drift_js_threshold];
        if thresholds.iter().any(|t| !t.is_finite() || *t <= 0.0) || self.drift_psi_warn > self.drift_psi_alert {
            bail!("drift thresholds must be positive, with --drift-psi-warn at most --drift-psi-alert");
        }
        Ok(DriftSettings {
            window_rows: self.drift_window_rows,
            window_seconds: self.drift_window_seconds,
            min_rows: self.drift_min_rows,
            psi_warn: self.drift_psi_warn,
            psi_alert: self.drift_psi_alert,
            js_threshold: self.drift_js_threshold,
        })
    }
}
