//! The drift answer (`GET /models/{name}/drift`): statistics of the live window against the
//! artifact's reference, with a verdict per feature, for the prediction and for the dataset.

use serde::Serialize;
use utoipa::ToSchema;

use super::DriftSettings;
use retail_model::drift::{Drift, compare};

/// Drift of a model's recent inputs and predictions against its training reference.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"model": "retail-price-sensitivity", "model_version": "2024.1", "available": true,
    "window": {"rows": 1200, "since": "2025-01-01T10:00:00Z", "max_rows": 10000, "max_seconds": 3600},
    "min_rows": 500, "thresholds": {"psi_warn": 0.1, "psi_alert": 0.2, "js": 0.1},
    "features": [{"name": "SPEND", "psi": 0.31, "js": 0.2, "drifted": true, "status": "alert"}],
    "prediction": {"name": "prediction", "psi": 0.01, "js": 0.03, "linf": 0.02, "drifted": false, "status": "ok"},
    "dataset_drift": false, "drifted_features": 1}))]
pub struct DriftResponse {
    /// The configured model.
    pub model: String,
    /// The version serving (its window starts when it was installed).
    pub model_version: String,
    /// Whether the artifact carries a reference to compare with.
    pub available: bool,
    /// Why drift is unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The rows compared.
    pub window: WindowInfo,
    /// Rows needed before any verdict.
    pub min_rows: u64,
    /// The verdicts' thresholds.
    pub thresholds: Thresholds,
    /// Per feature of the model's feature row.
    pub features: Vec<Statistic>,
    /// The predicted classes (or values).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction: Option<Statistic>,
    /// At least half of the features drifted (as Evidently's dataset drift).
    pub dataset_drift: bool,
    /// Features that drifted.
    pub drifted_features: usize,
}

/// The live window.
#[derive(Debug, Serialize, ToSchema)]
pub struct WindowInfo {
    /// Rows in the window.
    pub rows: u64,
    /// Start of the oldest live sub-window (RFC 3339), none while the window is empty.
    pub since: Option<String>,
    /// Most rows the window holds.
    pub max_rows: u64,
    /// Longest the window spans.
    pub max_seconds: u64,
}

/// Thresholds of the verdicts.
#[derive(Debug, Serialize, ToSchema)]
pub struct Thresholds {
    /// PSI from which a feature is `warn`.
    pub psi_warn: f64,
    /// PSI from which a feature is `alert` (drifted).
    pub psi_alert: f64,
    /// Jensen–Shannon distance from which a feature is `alert` (drifted).
    pub js: f64,
}

/// One feature's (or the prediction's) statistics and verdict.
#[derive(Debug, Serialize, ToSchema)]
pub struct Statistic {
    /// Feature name (`prediction` for the prediction).
    pub name: String,
    /// Population stability index (none while the window is empty).
    pub psi: Option<f64>,
    /// Jensen–Shannon distance, base 2 (none while the window is empty).
    pub js: Option<f64>,
    /// Largest difference of bin shares (categorical features).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linf: Option<f64>,
    /// `alert`, with at least `min_rows` rows.
    pub drifted: bool,
    /// `ok`, `warn`, `alert`, or `insufficient_data` below `min_rows` rows.
    pub status: Status,
}

/// A verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Below the warning threshold.
    Ok,
    /// PSI at or above the warning threshold.
    Warn,
    /// PSI or JS at or above the alert thresholds.
    Alert,
    /// Too few rows for a verdict.
    InsufficientData,
}

impl Statistic {
    /// `observed` counts against `reference` counts with `rows` rows in the window.
    pub fn of(
        name: &str,
        reference: &[u64],
        observed: &[u64],
        categorical: bool,
        rows: u64,
        s: &DriftSettings,
    ) -> Self {
        let drift = (rows > 0).then(|| compare(reference, observed));
        let status = match drift {
            _ if rows < s.min_rows.max(1) => Status::InsufficientData,
            Some(Drift { psi, js, .. }) if psi >= s.psi_alert || js >= s.js_threshold => Status::Alert,
            Some(Drift { psi, .. }) if psi >= s.psi_warn => Status::Warn,
            _ => Status::Ok,
        };
        Self {
            name: name.to_owned(),
            psi: drift.map(|d| d.psi),
            js: drift.map(|d| d.js),
            linf: drift.filter(|_| categorical).map(|d| d.linf),
            drifted: status == Status::Alert,
            status,
        }
    }
}
