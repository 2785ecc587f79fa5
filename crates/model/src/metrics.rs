//! Classification metrics of probabilistic predictions: accuracy, macro-F1, per-class
//! precision/recall/F1, confusion matrix, log loss and expected calibration error (ECE); and
//! regression metrics of predicted values (e.g. units sold): mean Poisson deviance, RMSE, MAE,
//! WAPE and bias.

use serde::{Deserialize, Serialize};

/// Number of equal-width confidence bins used for ECE and the reliability diagram.
pub const CALIBRATION_BINS: usize = 15;

/// Probability floor used in the log loss so a confident mistake costs a finite amount.
const LOG_LOSS_EPS: f64 = 1e-15;

/// Metrics of one set of predictions against labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Number of labelled rows scored.
    pub rows: usize,
    /// Share of rows whose most probable class is the label.
    pub accuracy: f64,
    /// Unweighted mean of the per-class F1 scores.
    pub macro_f1: f64,
    /// Mean negative log probability of the label.
    pub log_loss: f64,
    /// Expected calibration error of the top-class confidence ([`CALIBRATION_BINS`] bins).
    pub ece: f64,
    /// Precision, recall, F1 and support of each class.
    pub per_class: Vec<ClassScores>,
    /// `confusion[true][predicted]` counts, classes in model order.
    pub confusion: Vec<Vec<u64>>,
    /// Reliability diagram: one entry per non-empty confidence bin.
    pub calibration: Vec<CalibrationBin>,
    /// Area under the ROC curve of a binary classifier's second class (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roc_auc: Option<f64>,
}

/// Scores of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    /// Class code.
    pub class: String,
    /// Of rows predicted as this class, the share that are.
    pub precision: f64,
    /// Of rows of this class, the share predicted as it.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Rows of this class.
    pub support: u64,
}

/// One bin of the reliability diagram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Lower edge of the confidence bin.
    pub lower: f64,
    /// Upper edge of the confidence bin.
    pub upper: f64,
    /// Rows whose top-class confidence falls in the bin.
    pub count: u64,
    /// Mean top-class confidence of those rows.
    pub confidence: f64,
    /// Share of those rows predicted correctly.
    pub accuracy: f64,
}

/// Index of the most probable class (first on ties).
pub fn argmax(probabilities: &[f64]) -> usize {
    probabilities
        .iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, &p)| if p > best.1 { (i, p) } else { best })
        .0
}

/// Computes metrics of `probabilities` (row-major, one row of `classes.len()` per label).
pub fn evaluate(classes: &[String], probabilities: &[f64], labels: &[usize]) -> Metrics {
    let k = classes.len();
    assert_eq!(probabilities.len(), labels.len() * k, "one probability row per label");
    let mut confusion = vec![vec![0u64; k]; k];
    let mut log_loss = 0.0;
    let mut bins = [(0u64, 0.0f64, 0u64); CALIBRATION_BINS];
    for (row, &label) in probabilities.chunks(k).zip(labels) {
        let predicted = argmax(row);
        confusion[label][predicted] += 1;
        log_loss -= row[label].max(LOG_LOSS_EPS).ln();
        let confidence = row[predicted];
        let bin = ((confidence * CALIBRATION_BINS as f64) as usize).min(CALIBRATION_BINS - 1);
        bins[bin].0 += 1;
        bins[bin].1 += confidence;
        bins[bin].2 += u64::from(predicted == label);
    }
    let n = labels.len();
    let total = n.max(1) as f64;
    let correct: u64 = (0..k).map(|i| confusion[i][i]).sum();
    let per_class: Vec<ClassScores> = (0..k)
        .map(|c| {
            let tp = confusion[c][c] as f64;
            let predicted: u64 = (0..k).map(|t| confusion[t][c]).sum();
            let support: u64 = confusion[c].iter().sum();
            let precision = ratio(tp, predicted as f64);
            let recall = ratio(tp, support as f64);
            let f1 = ratio(2.0 * precision * recall, precision + recall);
            ClassScores { class: classes[c].clone(), precision, recall, f1, support }
        })
        .collect();
    let mut ece = 0.0;
    let calibration = bins
        .iter()
        .enumerate()
        .filter(|(_, (count, _, _))| *count > 0)
        .map(|(i, &(count, confidence_sum, correct))| {
            let confidence = confidence_sum / count as f64;
            let accuracy = correct as f64 / count as f64;
            ece += count as f64 / total * (accuracy - confidence).abs();
            CalibrationBin {
                lower: i as f64 / CALIBRATION_BINS as f64,
                upper: (i + 1) as f64 / CALIBRATION_BINS as f64,
                count,
                confidence,
                accuracy,
            }
        })
        .collect();
    Metrics {
        rows: n,
        accuracy: correct as f64 / total,
        macro_f1: per_class.iter().map(|c| c.f1).sum::<f64>() / k as f64,
        log_loss: log_loss / total,
        ece,
        per_class,
        confusion,
        calibration,
        roc_auc: None,
    }
}

/// Area under the ROC curve of `scores` (higher: more likely positive) against `positive`
/// flags, ties counted half (the Mann–Whitney statistic); `None` without both classes.
pub fn roc_auc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let mid_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += mid_rank * order[i..=j].iter().filter(|&&r| positive[r]).count() as f64;
        i = j + 1;
    }
    let n_pos = positive.iter().filter(|&&p| p).count() as f64;
    let n_neg = positive.len() as f64 - n_pos;
    (n_pos > 0.0 && n_neg > 0.0).then(|| (rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg))
}

/// Coefficient of determination `1 − SS_res / SS_tot`; `None` when the targets are constant.
pub fn r2(predictions: &[f64], targets: &[f64]) -> Option<f64> {
    let mean = targets.iter().sum::<f64>() / targets.len().max(1) as f64;
    let total: f64 = targets.iter().map(|y| (y - mean) * (y - mean)).sum();
    let residual: f64 = predictions.iter().zip(targets).map(|(p, y)| (y - p) * (y - p)).sum();
    (total > 0.0).then(|| 1.0 - residual / total)
}

fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 { numerator / denominator } else { 0.0 }
}

/// Metrics of regression predictions (e.g. a sales forecast) against their targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionMetrics {
    /// Number of rows scored.
    pub rows: usize,
    /// Mean Poisson deviance, [`poisson_unit_deviance`] averaged over the rows: the loss a
    /// Poisson (count) model minimises; `None` when a target is negative, where it is undefined.
    pub poisson_deviance: Option<f64>,
    /// Root mean squared error.
    pub rmse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Weighted absolute percentage error `Σ|y − ŷ| / Σy`; `None` unless the targets sum above 0.
    pub wape: Option<f64>,
    /// Relative error of the total, `Σŷ / Σy − 1` (above 0: over-forecast); `None` unless the
    /// targets sum above 0.
    pub bias: Option<f64>,
    /// Coefficient of determination ([`r2`]); recorded for tabular regressions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r2: Option<f64>,
}

/// Poisson deviance of one prediction `μ` of a target `y ≥ 0`: `2·(y·ln(y/μ) − (y − μ))`, which
/// is `2μ` for `y = 0`. The prediction is floored at the smallest positive double, so a
/// prediction of 0 (or below) for a positive count costs a large finite amount (≈ 1417·y).
pub fn poisson_unit_deviance(target: f64, prediction: f64) -> f64 {
    let mu = prediction.max(f64::MIN_POSITIVE);
    if target > 0.0 { 2.0 * (target * (target.ln() - mu.ln()) - (target - mu)) } else { 2.0 * mu }
}

/// Computes regression metrics of `predictions` against `targets` (one each per row), summing in
/// row order.
pub fn evaluate_regression(predictions: &[f64], targets: &[f64]) -> RegressionMetrics {
    assert_eq!(predictions.len(), targets.len(), "one prediction per target");
    let (mut deviance, mut squared, mut absolute, mut sum_y, mut sum_p) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (&p, &y) in predictions.iter().zip(targets) {
        deviance += poisson_unit_deviance(y, p);
        squared += (p - y) * (p - y);
        absolute += (p - y).abs();
        sum_y += y;
        sum_p += p;
    }
    let n = targets.len();
    let total = n.max(1) as f64;
    let per_target = |x: f64| (sum_y > 0.0).then(|| x / sum_y);
    RegressionMetrics {
        rows: n,
        poisson_deviance: targets.iter().all(|&y| y >= 0.0).then(|| deviance / total),
        rmse: (squared / total).sqrt(),
        mae: absolute / total,
        wape: per_target(absolute),
        bias: per_target(sum_p).map(|r| r - 1.0),
        r2: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes() -> Vec<String> {
        vec!["LA".into(), "MM".into(), "UM".into()]
    }

    #[test]
    fn roc_auc_and_r2_match_hand_values() {
        let auc = roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]);
        assert_eq!(auc, Some(0.75));
        assert_eq!(roc_auc(&[0.5, 0.5], &[false, true]), Some(0.5));
        assert_eq!(roc_auc(&[0.5], &[true]), None);
        assert_eq!(r2(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), Some(1.0));
        assert_eq!(r2(&[2.0, 2.0, 2.0], &[1.0, 2.0, 3.0]), Some(0.0));
    }

    #[test]
    fn perfect_predictions() {
        let p = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        let m = evaluate(&classes(), &p, &[0, 1, 2]);
        assert_eq!(m.accuracy, 1.0);
        assert_eq!(m.macro_f1, 1.0);
        assert!(m.log_loss < 1e-12);
        assert_eq!(m.ece, 0.0);
        assert_eq!(m.confusion, vec![vec![1, 0, 0], vec![0, 1, 0], vec![0, 0, 1]]);
    }

    #[test]
    fn hand_computed_example() {
        // Rows: (true LA, pred LA 0.6), (true LA, pred MM 0.5), (true MM, pred MM 0.7), (true UM, pred MM 0.4).
        let p = [0.6, 0.3, 0.1, 0.3, 0.5, 0.2, 0.2, 0.7, 0.1, 0.3, 0.4, 0.3];
        let m = evaluate(&classes(), &p, &[0, 0, 1, 2]);
        assert_eq!(m.accuracy, 0.5);
        assert_eq!(m.confusion, vec![vec![1, 1, 0], vec![0, 1, 0], vec![0, 1, 0]]);
        // LA: P=1, R=0.5, F1=2/3. MM: P=1/3, R=1, F1=0.5. UM: 0.
        assert!((m.per_class[0].f1 - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.per_class[1].f1 - 0.5).abs() < 1e-12);
        assert_eq!(m.per_class[2].f1, 0.0);
        assert!((m.macro_f1 - (2.0 / 3.0 + 0.5) / 3.0).abs() < 1e-12);
        let ll = -(0.6f64.ln() + 0.3f64.ln() + 0.7f64.ln() + 0.3f64.ln()) / 4.0;
        assert!((m.log_loss - ll).abs() < 1e-12);
        // Bins: 0.6 (bin 9, correct), 0.5 (bin 7, wrong), 0.7 (bin 10, correct), 0.4 (bin 6, wrong).
        let ece = (0.4 + 0.5 + 0.3 + 0.4) / 4.0;
        assert!((m.ece - ece).abs() < 1e-12, "{}", m.ece);
        assert_eq!(m.calibration.len(), 4);
    }

    #[test]
    fn regression_hand_computed_example() {
        // Errors ŷ − y: 0.5, 0, 1, −1.
        let m = evaluate_regression(&[0.5, 1.0, 3.0, 4.0], &[0.0, 1.0, 2.0, 5.0]);
        assert_eq!(m.rows, 4);
        assert!((m.mae - 0.625).abs() < 1e-15, "{}", m.mae);
        assert!((m.rmse - 0.75).abs() < 1e-15, "{}", m.rmse);
        assert_eq!(m.wape, Some(0.3125));
        assert_eq!(m.bias, Some(0.0625));
        // 2·0.5 (y = 0) + 0 + 2·(2·ln(2/3) + 1) + 2·(5·ln(5/4) − 1), over 4 rows.
        let deviance = m.poisson_deviance.expect("targets are counts");
        assert!((deviance - 0.402_393_770_177_36).abs() < 1e-12, "{deviance}");
        let json = serde_json::to_value(&m).expect("json");
        assert_eq!(json["wape"], 0.3125);
    }

    #[test]
    fn regression_perfect_and_degenerate_predictions() {
        let m = evaluate_regression(&[0.0, 2.0, 7.0], &[0.0, 2.0, 7.0]);
        assert_eq!((m.rmse, m.mae, m.wape, m.bias), (0.0, 0.0, Some(0.0), Some(0.0)));
        assert!(m.poisson_deviance.expect("counts") < 1e-300);
        // A zero prediction of a positive count costs a large finite amount, not infinity.
        let zero = poisson_unit_deviance(3.0, 0.0);
        assert!(zero.is_finite() && zero > 4000.0, "{zero}");
        assert_eq!(poisson_unit_deviance(0.0, 1.5), 3.0);
        // Targets summing to zero have no WAPE or bias; a negative target no Poisson deviance.
        let m = evaluate_regression(&[1.0, 1.0], &[0.0, 0.0]);
        assert_eq!((m.wape, m.bias, m.mae), (None, None, 1.0));
        assert_eq!(evaluate_regression(&[1.0, 1.0], &[-1.0, 3.0]).poisson_deviance, None);
        let empty = evaluate_regression(&[], &[]);
        assert_eq!((empty.rows, empty.rmse, empty.poisson_deviance), (0, 0.0, Some(0.0)));
    }
}
