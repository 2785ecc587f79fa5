//! Drift monitoring: each served version whose artifact carries a reference
//! ([`retail_model::drift::Reference`]) counts the rows it scores — each feature's bin and the
//! predicted class (or value) — into a rolling [`window::Window`], and compares the window with
//! the reference on demand (`GET /models/{name}/drift`, and the gauges `/metrics` renders).
//! A reload installs a new version with an empty window. Scored values outside a numeric
//! feature's training range (widened by [`RANGE_MARGIN`] of its span on each side) are counted
//! in `retail_api_out_of_range_total` and, for basket and sales models, warned about.

pub mod report;
pub mod window;

use std::sync::Arc;

use metrics::{Counter, counter, gauge};
use retail_model::drift::Reference;

use crate::LoadedModel;
pub use report::{DriftResponse, Statistic, Status};
use report::{Thresholds, WindowInfo};
use window::{Clock, Window, WindowLimits};

/// Most features a monitor follows (the rest are not counted): keeps its memory and the
/// `feature` label of its metrics bounded.
pub const MAX_FEATURES: usize = 256;
/// Most bins of one feature (a categorical reference lists at most 64 codes, plus the rest).
pub const MAX_BINS: usize = retail_model::drift::MAX_CODES + 1;
/// Share of a training range's span a value may lie outside it before it counts as out of range.
pub const RANGE_MARGIN: f64 = 0.1;

/// Drift window and verdict settings (`DRIFT_…`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DriftSettings {
    /// Most rows of the window (`DRIFT_WINDOW_ROWS`).
    pub window_rows: u64,
    /// Longest the window spans, in seconds (`DRIFT_WINDOW_SECONDS`).
    pub window_seconds: u64,
    /// Rows needed before any verdict (`DRIFT_MIN_ROWS`).
    pub min_rows: u64,
    /// PSI of a warning (`DRIFT_PSI_WARN`).
    pub psi_warn: f64,
    /// PSI of an alert (`DRIFT_PSI_ALERT`).
    pub psi_alert: f64,
    /// Jensen–Shannon distance of an alert (`DRIFT_JS_THRESHOLD`).
    pub js_threshold: f64,
}

impl Default for DriftSettings {
    fn default() -> Self {
        Self {
            window_rows: 10_000,
            window_seconds: 3600,
            min_rows: 500,
            psi_warn: 0.1,
            psi_alert: 0.2,
            js_threshold: 0.1,
        }
    }
}

/// Whether `x` lies outside `range` widened by [`RANGE_MARGIN`] of its span (NaN never does).
pub fn out_of_range([lo, hi]: [f64; 2], x: f64) -> bool {
    let margin = RANGE_MARGIN * (hi - lo);
    x < lo - margin || x > hi + margin
}

/// One served version's window and out-of-range counters.
pub struct DriftMonitor {
    /// First counter of each followed feature's bins; then the prediction's.
    offsets: Vec<usize>,
    window: Window,
    /// Per followed feature with a training range.
    out_of_range: Vec<Option<Counter>>,
    classifier: bool,
}

impl std::fmt::Debug for DriftMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriftMonitor").field("window", &self.window).finish_non_exhaustive()
    }
}

impl DriftMonitor {
    /// A monitor of `reference` for the configured model `model`, its window sized by `limits`.
    pub fn new(model: &str, reference: &Reference, classifier: bool, limits: Arc<WindowLimits>, clock: Clock) -> Self {
        let followed = &reference.features[..reference.features.len().min(MAX_FEATURES)];
        let mut offsets = Vec::with_capacity(followed.len() + 1);
        let mut bins = 0;
        for histogram in followed.iter().map(|f| &f.histogram).chain([&reference.prediction]) {
            offsets.push(bins);
            bins += histogram.n_bins().min(MAX_BINS);
        }
        let out_of_range = followed
            .iter()
            .map(|f| {
                f.range.map(|_| {
                    counter!("retail_api_out_of_range_total", "model" => model.to_owned(), "feature" => f.name.clone())
                })
            })
            .collect();
        Self { offsets, window: Window::new(bins, limits, clock), out_of_range, classifier }
    }

    /// Bytes its counters take.
    pub fn counter_bytes(&self) -> usize {
        self.window.counter_bytes()
    }

    /// Counts one scored row: its feature values and its prediction (a classifier's class
    /// index from `output`'s probabilities, a regression's value `output[0]`).
    pub fn observe(&self, reference: &Reference, features: &[f64], output: &[f64]) {
        let prediction = if self.classifier {
            retail_model::metrics::argmax(output) as f64
        } else {
            output.first().copied().unwrap_or(f64::NAN)
        };
        let (feature_offsets, prediction_offset) = self.offsets.split_at(self.offsets.len() - 1);
        let bins = reference
            .features
            .iter()
            .zip(features)
            .zip(feature_offsets)
            .map(|((f, &x), offset)| offset + f.histogram.bin(x).min(MAX_BINS - 1))
            .chain([prediction_offset[0] + reference.prediction.bin(prediction).min(MAX_BINS - 1)]);
        self.window.count(bins);
        for ((f, &x), counter) in reference.features.iter().zip(features).zip(&self.out_of_range) {
            if let (Some(range), Some(counter)) = (f.range, counter)
                && out_of_range(range, x)
            {
                counter.increment(1);
            }
        }
    }

    /// The window's statistics against `reference`.
    pub fn report(&self, reference: &Reference, settings: &DriftSettings) -> (WindowInfo, Vec<Statistic>, Statistic) {
        let totals = self.window.totals();
        let rows = totals.rows;
        let stat = |i: usize, name: &str, histogram: &retail_model::drift::Histogram| {
            let start = self.offsets[i];
            let n = histogram.n_bins().min(MAX_BINS);
            let reference_counts = histogram.counts().get(..n).unwrap_or(histogram.counts());
            Statistic::of(
                name,
                reference_counts,
                totals.counts.get(start..start + n).unwrap_or_default(),
                histogram.is_categorical(),
                rows,
                settings,
            )
        };
        let features = reference
            .features
            .iter()
            .take(self.offsets.len() - 1)
            .enumerate()
            .map(|(i, f)| stat(i, &f.name, &f.histogram))
            .collect();
        let prediction = stat(self.offsets.len() - 1, "prediction", &reference.prediction);
        let since = totals.since.and_then(|ms| {
            chrono::DateTime::<chrono::Utc>::from_timestamp_millis(i64::try_from(ms).ok()?)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        });
        let window = WindowInfo { rows, since, max_rows: settings.window_rows, max_seconds: settings.window_seconds };
        (window, features, prediction)
    }
}

/// The drift answer of the configured model `slot_name` serving `model`.
pub fn response(slot_name: &str, model: &LoadedModel, settings: &DriftSettings) -> DriftResponse {
    let thresholds =
        Thresholds { psi_warn: settings.psi_warn, psi_alert: settings.psi_alert, js: settings.js_threshold };
    let mut answer = DriftResponse {
        model: slot_name.to_owned(),
        model_version: model.artifact.manifest.version.clone(),
        available: false,
        reason: None,
        window: WindowInfo {
            rows: 0,
            since: None,
            max_rows: settings.window_rows,
            max_seconds: settings.window_seconds,
        },
        min_rows: settings.min_rows,
        thresholds,
        features: Vec::new(),
        prediction: None,
        dataset_drift: false,
        drifted_features: 0,
    };
    let (Some(reference), Some(monitor)) = (&model.artifact.reference, &model.drift) else {
        answer.reason = Some("the model's artifact has no reference distributions (made before they were recorded): retrain or re-import it".to_owned());
        return answer;
    };
    let (window, features, prediction) = monitor.report(reference, settings);
    answer.drifted_features = features.iter().filter(|f| f.drifted).count();
    answer.dataset_drift =
        !features.is_empty() && window.rows >= settings.min_rows && answer.drifted_features * 2 >= features.len();
    answer.available = true;
    answer.window = window;
    answer.features = features;
    answer.prediction = Some(prediction);
    answer
}

/// Sets the drift gauges of every served model with a reference (before `/metrics` renders).
/// Statistics are NaN while a window is empty.
pub fn publish(models: &crate::Models, settings: &DriftSettings) {
    for slot in models.iter() {
        let Some(model) = slot.model() else { continue };
        let answer = response(slot.name(), &model, settings);
        if !answer.available {
            continue;
        }
        let name = slot.name().to_owned();
        gauge!("retail_api_drift_window_rows", "model" => name.clone()).set(answer.window.rows as f64);
        let values = |s: &Statistic| {
            [("psi", s.psi), ("js", s.js), ("linf", s.linf)]
                .into_iter()
                .filter(|(stat, v)| *stat != "linf" || v.is_some())
                .map(|(stat, v)| (stat, v.unwrap_or(f64::NAN)))
                .collect::<Vec<_>>()
        };
        for feature in &answer.features {
            for (statistic, value) in values(feature) {
                gauge!("retail_api_feature_drift", "model" => name.clone(), "feature" => feature.name.clone(), "statistic" => statistic).set(value);
            }
        }
        if let Some(prediction) = &answer.prediction {
            for (statistic, value) in values(prediction) {
                gauge!("retail_api_prediction_drift", "model" => name.clone(), "statistic" => statistic).set(value);
            }
        }
    }
}

#[cfg(test)]
mod tests;
