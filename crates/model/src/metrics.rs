//! Classification metrics of probabilistic predictions: accuracy, macro-F1, per-class
//! precision/recall/F1, confusion matrix, log loss and expected calibration error (ECE).

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
    }
}

fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 { numerator / denominator } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes() -> Vec<String> {
        vec!["LA".into(), "MM".into(), "UM".into()]
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
}
