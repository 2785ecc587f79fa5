//! Evaluating a sales forecast on a sales CSV: the regression metrics of its predictions on every
//! row of the file, with a truth sidecar the same metrics of the true means (the Bayes-optimal
//! prediction, the best any model can do) and the gaps, and the diagnostics the model card draws
//! (predicted against actual by prediction bin, mean error by weekday and by promotion).
//!
//! The rows evaluated are all the rows of the file: to measure a model on data it has not seen,
//! give it a file of a later period (or another seed) than its training data.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use super::calendar::{format_date, weekday};
use super::training::encode_rows;
use crate::artifact::{Artifact, ModelKind};
use crate::metrics::{RegressionMetrics, evaluate_regression};
use crate::progress::Progress;
use crate::training::{EvaluateError, ModelRef};

/// Equal-count bins of the predicted-against-actual chart.
pub const PREDICTION_BINS: usize = 20;

/// Weekday names, Monday first.
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Result of `retail-api evaluate` on a sales forecast.
#[derive(Debug, Clone, Serialize)]
pub struct SalesEvaluation {
    /// Model evaluated.
    pub model: ModelRef,
    /// Data evaluated on (every row of the file).
    pub data: SalesDataSummary,
    /// The model's metrics.
    pub metrics: RegressionMetrics,
    /// Metrics of the true means on the same rows (the Bayes-optimal prediction), with a truth
    /// sidecar.
    pub bayes: Option<RegressionMetrics>,
    /// How far the model is from the Bayes-optimal prediction.
    pub gap_to_bayes: Option<RegressionGap>,
    /// Rows whose `store_id` / `product_id` had no training statistics (scored with the global
    /// defaults).
    pub unseen: std::collections::BTreeMap<String, u64>,
    /// Predicted against actual, and residuals by weekday and promotion.
    pub diagnostics: SalesDiagnostics,
}

/// What was evaluated.
#[derive(Debug, Clone, Serialize)]
pub struct SalesDataSummary {
    /// The data file.
    pub file: String,
    /// Rows scored (all rows of the file).
    pub rows: usize,
    /// First day.
    pub first_date: String,
    /// Last day.
    pub last_date: String,
    /// Distinct stores.
    pub stores: usize,
    /// Distinct products.
    pub products: usize,
}

/// The model's metrics against the Bayes-optimal ones.
#[derive(Debug, Clone, Serialize)]
pub struct RegressionGap {
    /// Mean Poisson deviance above the Bayes deviance, relative: `model / bayes − 1` (0.03 is 3%
    /// above).
    pub poisson_deviance_excess: Option<f64>,
    /// RMSE above the Bayes RMSE, relative.
    pub rmse_excess: f64,
    /// MAE above the Bayes MAE, relative.
    pub mae_excess: f64,
    /// WAPE minus the Bayes WAPE, in percentage points.
    pub wape_points: Option<f64>,
    /// Bias minus the Bayes bias (the sample's own noise), in percentage points.
    pub bias_points: Option<f64>,
}

impl RegressionGap {
    /// The gap of `model` to `bayes`.
    pub fn new(model: &RegressionMetrics, bayes: &RegressionMetrics) -> Self {
        let excess = |m: f64, b: f64| if b > 0.0 { m / b - 1.0 } else { 0.0 };
        let points = |m: Option<f64>, b: Option<f64>| Some(100.0 * (m? - b?));
        Self {
            poisson_deviance_excess: model.poisson_deviance.zip(bayes.poisson_deviance).map(|(m, b)| excess(m, b)),
            rmse_excess: excess(model.rmse, bayes.rmse),
            mae_excess: excess(model.mae, bayes.mae),
            wape_points: points(model.wape, bayes.wape),
            bias_points: points(model.bias, bayes.bias),
        }
    }
}

/// Predicted against actual, and where the errors are.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SalesDiagnostics {
    /// Rows in [`PREDICTION_BINS`] equal-count bins of the prediction: mean predicted and mean
    /// actual of each (a calibrated model has them equal).
    pub calibration: Vec<PredictionBin>,
    /// Mean error by ISO weekday, Monday first.
    pub by_weekday: Vec<ResidualGroup>,
    /// Mean error off promotion, then on promotion.
    pub by_promotion: Vec<ResidualGroup>,
}

/// One bin of predictions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PredictionBin {
    /// Rows in the bin.
    pub rows: usize,
    /// Smallest prediction in the bin.
    pub min_predicted: f64,
    /// Largest prediction in the bin.
    pub max_predicted: f64,
    /// Mean prediction.
    pub mean_predicted: f64,
    /// Mean actual units.
    pub mean_actual: f64,
}

/// Residuals of a group of rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResidualGroup {
    /// The group, e.g. `Mon` or `promotion`.
    pub group: String,
    /// Rows in it.
    pub rows: usize,
    /// Mean actual units.
    pub mean_actual: f64,
    /// Mean prediction.
    pub mean_predicted: f64,
    /// Mean of prediction − actual (above 0: over-forecast).
    pub mean_error: f64,
    /// Mean error / mean actual; `None` when nothing was sold.
    pub relative_error: Option<f64>,
}

/// Sums of a group of rows.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    rows: usize,
    predicted: f64,
    actual: f64,
}

impl Sums {
    fn add(&mut self, predicted: f64, actual: f64) {
        self.rows += 1;
        self.predicted += predicted;
        self.actual += actual;
    }

    fn group(&self, name: &str) -> ResidualGroup {
        let n = self.rows.max(1) as f64;
        ResidualGroup {
            group: name.to_owned(),
            rows: self.rows,
            mean_actual: self.actual / n,
            mean_predicted: self.predicted / n,
            mean_error: (self.predicted - self.actual) / n,
            relative_error: (self.actual > 0.0).then(|| (self.predicted - self.actual) / self.actual),
        }
    }
}

/// The diagnostics of `predictions` against `actual`, for rows on `days` with `promotions`.
pub fn diagnose(predictions: &[f64], actual: &[f64], days: &[i64], promotions: &[bool]) -> SalesDiagnostics {
    let n = predictions.len();
    assert!(actual.len() == n && days.len() == n && promotions.len() == n, "one value per row");
    let mut weekdays = [Sums::default(); 7];
    let mut promoted = [Sums::default(); 2];
    for i in 0..n {
        weekdays[weekday(days[i]) as usize - 1].add(predictions[i], actual[i]);
        promoted[usize::from(promotions[i])].add(predictions[i], actual[i]);
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&a, &b| predictions[a].total_cmp(&predictions[b]).then(a.cmp(&b)));
    let bins = PREDICTION_BINS.min(n);
    let calibration = (0..bins)
        .map(|b| {
            let rows = &order[b * n / bins..(b + 1) * n / bins];
            let mut sums = Sums::default();
            for &i in rows {
                sums.add(predictions[i], actual[i]);
            }
            let k = rows.len().max(1) as f64;
            PredictionBin {
                rows: rows.len(),
                min_predicted: rows.first().map_or(0.0, |&i| predictions[i]),
                max_predicted: rows.last().map_or(0.0, |&i| predictions[i]),
                mean_predicted: sums.predicted / k,
                mean_actual: sums.actual / k,
            }
        })
        .collect();
    SalesDiagnostics {
        calibration,
        by_weekday: weekdays.iter().zip(WEEKDAYS).map(|(s, name)| s.group(name)).collect(),
        by_promotion: vec![promoted[0].group("no promotion"), promoted[1].group("promotion")],
    }
}

/// Maps a sales data error of the file `path`.
fn sales_error(path: &Path) -> impl FnOnce(super::data::SalesDataError) -> EvaluateError + '_ {
    move |source| EvaluateError::SalesData { path: path.to_owned(), source }
}

/// Scores a sales forecast on every row of a sales CSV, optionally against its truth sidecar.
pub fn evaluate_sales(
    artifact: &Artifact,
    data_path: &Path,
    truth_path: Option<&Path>,
    progress: &dyn Progress,
) -> Result<SalesEvaluation, EvaluateError> {
    let stats = artifact.sales().ok_or(EvaluateError::WrongKind(artifact.kind(), ModelKind::SalesForecast))?;
    let (columns, bytes) = super::data::read_sales(data_path, progress).map_err(sales_error(data_path))?;
    drop(bytes);
    let expected = truth_path
        .map(|path| {
            let truth = super::data::read_sales_truth(path).map_err(sales_error(path))?;
            truth.aligned(&columns).map_err(sales_error(path))
        })
        .transpose()?;
    progress.stage("scoring sales rows", 0);
    let all: Vec<usize> = (0..columns.len()).collect();
    let encoded = encode_rows(&columns, &all, stats);
    drop(all);
    let mut predictions = vec![0.0; columns.len()];
    artifact.engine.predict_batch_parallel(&encoded.rows, &mut predictions);
    let metrics = evaluate_regression(&predictions, &encoded.units);
    let bayes = expected.as_ref().map(|mu| evaluate_regression(mu, &encoded.units));
    let gap_to_bayes = bayes.as_ref().map(|b| RegressionGap::new(&metrics, b));
    let diagnostics = diagnose(&predictions, &encoded.units, &columns.day, &columns.promotion);
    let distinct = |ids: &[i64]| ids.iter().collect::<BTreeSet<_>>().len();
    let (first, last) = columns.day.iter().fold((i64::MAX, i64::MIN), |(lo, hi), &d| (lo.min(d), hi.max(d)));
    Ok(SalesEvaluation {
        model: ModelRef { name: artifact.manifest.name.clone(), version: artifact.manifest.version.clone() },
        data: SalesDataSummary {
            file: data_path.display().to_string(),
            rows: columns.len(),
            first_date: format_date(first),
            last_date: format_date(last),
            stores: distinct(&columns.store_id),
            products: distinct(&columns.product_id),
        },
        metrics,
        bayes,
        gap_to_bayes,
        unseen: encoded.unseen,
        diagnostics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::days_from_civil;

    #[test]
    fn diagnostics_bin_predictions_and_group_residuals() {
        let monday = days_from_civil(2024, 1, 1);
        let n = 40;
        let predictions: Vec<f64> = (0..n).map(f64::from).collect();
        let actual: Vec<f64> = (0..n).map(|i| f64::from(i) + 1.0).collect();
        let days: Vec<i64> = (0..n).map(|i| monday + i64::from(i % 7)).collect();
        let promotions: Vec<bool> = (0..n).map(|i| i % 4 == 0).collect();
        let d = diagnose(&predictions, &actual, &days, &promotions);
        assert_eq!(d.calibration.len(), PREDICTION_BINS);
        assert_eq!(d.calibration.iter().map(|b| b.rows).sum::<usize>(), 40);
        assert_eq!((d.calibration[0].min_predicted, d.calibration[0].max_predicted), (0.0, 1.0));
        assert_eq!((d.calibration[0].mean_predicted, d.calibration[0].mean_actual), (0.5, 1.5));
        assert_eq!(d.by_weekday.len(), 7);
        assert_eq!((d.by_weekday[0].group.as_str(), d.by_weekday[0].rows), ("Mon", 6));
        assert!(d.by_weekday.iter().all(|g| g.mean_error == -1.0), "under-forecast by one everywhere");
        assert_eq!((d.by_promotion[1].group.as_str(), d.by_promotion[1].rows), ("promotion", 10));
        let relative = d.by_promotion[1].relative_error.expect("sold");
        assert!((relative + 10.0 / f64::from((0..10).map(|i| 4 * i + 1).sum::<i32>())).abs() < 1e-12);
    }

    #[test]
    fn the_gap_is_relative_for_losses_and_in_points_for_shares() {
        let m = RegressionMetrics {
            rows: 1,
            poisson_deviance: Some(1.03),
            rmse: 2.2,
            mae: 1.1,
            wape: Some(0.30),
            bias: Some(0.01),
            r2: None,
        };
        let b = RegressionMetrics { poisson_deviance: Some(1.0), rmse: 2.0, mae: 1.0, wape: Some(0.29), ..m.clone() };
        let gap = RegressionGap::new(&m, &RegressionMetrics { bias: Some(0.0), ..b });
        assert!((gap.poisson_deviance_excess.expect("defined") - 0.03).abs() < 1e-12);
        assert!((gap.rmse_excess - 0.1).abs() < 1e-12 && (gap.mae_excess - 0.1).abs() < 1e-12);
        assert!((gap.wape_points.expect("defined") - 1.0).abs() < 1e-9);
        assert!((gap.bias_points.expect("defined") - 1.0).abs() < 1e-12);
    }
}
