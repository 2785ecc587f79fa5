//! Training objectives: what each round's trees descend (the gradients and hessians of the loss
//! in the raw scores), where boosting starts, and the validation loss early stopping watches.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{InputError, Labels};
use crate::engine::{MAX_EXP_SCORE, MAX_SCORE_MAGNITUDE, Output, bounded_exp, softmax};
use crate::metrics::poisson_unit_deviance;

/// LightGBM's default `poisson_max_delta_step`.
pub const POISSON_MAX_DELTA_STEP: f64 = 0.7;

/// Largest |label| of a regression: the engine bounds every raw score by
/// [`MAX_SCORE_MAGNITUDE`] (1e6), so a squared-error model of larger values would not compile;
/// it also keeps sums and squares of labels finite.
pub const MAX_REGRESSION_LABEL: f64 = MAX_SCORE_MAGNITUDE;

/// Mean count a Poisson model starts from when every training count is 0 (`ln` of it, -23, is
/// the init score instead of `-inf`).
const POISSON_MIN_MEAN: f64 = 1e-10;

/// Lowest positive rate (and highest, 1 minus it) a logistic classifier's init score is the
/// log-odds of: ±34.5 when every training label is the same.
const LOGISTIC_MIN_RATE: f64 = 1e-15;

/// Rows per parallel gradient chunk.
const GRADIENT_CHUNK: usize = 8192;

/// What the trees are fitted to, and so how their raw score becomes a prediction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Objective {
    /// Multiclass log loss of softmax probabilities, one tree per class per round; labels are
    /// class indices ([`Labels::Classes`]). Predicts with [`Output::Softmax`].
    Softmax {
        /// Number of classes (at least 2).
        n_classes: usize,
    },
    /// Binary log loss of `σ(f)`, the probability of class 1, one tree per round; labels are
    /// classes 0 and 1 ([`Labels::Classes`]). The gradient is `σ(f) − y`, the hessian
    /// `σ(f)(1 − σ(f))` (floored at 1e-16 like the softmax's), and boosting starts from the
    /// log-odds of the positive rate. Served as a 2-class softmax: init scores `[0, s]` and every
    /// tree on class 1, since `softmax([0, f]) = [1 − σ(f), σ(f)]`.
    Logistic,
    /// Poisson regression of counts on a log link, as LightGBM's `poisson`: the raw score `f` is
    /// the log of the mean, the gradient `e^f − y`, the hessian `e^(f + max_delta_step)` (floored
    /// at 1e-16 like the softmax's, with `f` capped at [`MAX_EXP_SCORE`] like the engine's);
    /// labels are counts in `[0, 1e6]` ([`Labels::Values`]). Predicts `e^f` with [`Output::Exp`].
    Poisson {
        /// Safeguard of the Newton step (LightGBM's `poisson_max_delta_step`, default
        /// [`POISSON_MAX_DELTA_STEP`]): the hessian is taken at `f + max_delta_step`, which
        /// shrinks every leaf by about `e^-max_delta_step`.
        max_delta_step: f64,
    },
    /// Least squares: the raw score is the prediction, the gradient `f − y`, the hessian 1;
    /// labels are values ([`Labels::Values`]). Predicts with [`Output::Identity`].
    SquaredError,
}

impl Objective {
    /// Poisson regression with LightGBM's default safeguard, [`POISSON_MAX_DELTA_STEP`].
    pub fn poisson() -> Self {
        Self::Poisson { max_delta_step: POISSON_MAX_DELTA_STEP }
    }

    /// Raw scores per row, and trees per round: the classes of a softmax, 1 for a logistic
    /// classifier or a regression.
    pub fn n_outputs(&self) -> usize {
        match self {
            Self::Softmax { n_classes } => *n_classes,
            Self::Logistic | Self::Poisson { .. } | Self::SquaredError => 1,
        }
    }

    /// Names a serialized ensemble has: its classes (2 for a logistic classifier), or the one
    /// name of what a regression predicts.
    pub fn n_names(&self) -> usize {
        match self {
            Self::Logistic => 2,
            _ => self.n_outputs(),
        }
    }

    /// Whether the labels are classes ([`Labels::Classes`]) rather than values.
    pub fn is_classifier(&self) -> bool {
        matches!(self, Self::Softmax { .. } | Self::Logistic)
    }

    /// How the engine turns the raw scores into probabilities or a prediction.
    pub fn output(&self) -> Output {
        match self {
            Self::Softmax { .. } | Self::Logistic => Output::Softmax,
            Self::Poisson { .. } => Output::Exp,
            Self::SquaredError => Output::Identity,
        }
    }

    /// Name of the objective, as serialized.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Softmax { .. } => "softmax",
            Self::Logistic => "logistic",
            Self::Poisson { .. } => "poisson",
            Self::SquaredError => "squared_error",
        }
    }

    /// The validation loss early stopping minimises: the mean log loss, mean Poisson deviance or
    /// mean squared error.
    pub fn loss_name(&self) -> &'static str {
        match self {
            Self::Softmax { .. } | Self::Logistic => "log loss",
            Self::Poisson { .. } => "Poisson deviance",
            Self::SquaredError => "squared error",
        }
    }
}

/// Labels checked against their objective.
#[derive(Debug, Clone, Copy)]
pub(super) enum Targets<'a> {
    Softmax { labels: &'a [u8], k: usize },
    Logistic { labels: &'a [u8] },
    Poisson { counts: &'a [f64], max_delta_step: f64 },
    SquaredError { values: &'a [f64] },
}

impl<'a> Targets<'a> {
    /// Checks the labels of the `set` ("training" or "validation") for `objective`.
    pub(super) fn new(objective: Objective, labels: Labels<'a>, set: &'static str) -> Result<Self, InputError> {
        match (objective, labels) {
            (Objective::Softmax { n_classes }, Labels::Classes(labels)) => {
                if n_classes < 2 {
                    return Err(InputError::Classes(n_classes));
                }
                match labels.iter().position(|&y| usize::from(y) >= n_classes) {
                    Some(row) => Err(InputError::Label {
                        set,
                        row,
                        label: f64::from(labels[row]),
                        reason: "is not a class index below n_classes",
                    }),
                    None => Ok(Self::Softmax { labels, k: n_classes }),
                }
            }
            (Objective::Logistic, Labels::Classes(labels)) => match labels.iter().position(|&y| y > 1) {
                Some(row) => {
                    Err(InputError::Label { set, row, label: f64::from(labels[row]), reason: "is not a class 0 or 1" })
                }
                None => Ok(Self::Logistic { labels }),
            },
            (Objective::Poisson { max_delta_step }, Labels::Values(counts)) => {
                if !(max_delta_step.is_finite() && max_delta_step >= 0.0) {
                    return Err(InputError::MaxDeltaStep(max_delta_step));
                }
                check_values(counts, set, 0.0)?;
                Ok(Self::Poisson { counts, max_delta_step })
            }
            (Objective::SquaredError, Labels::Values(values)) => {
                check_values(values, set, -MAX_REGRESSION_LABEL)?;
                Ok(Self::SquaredError { values })
            }
            (objective, _) => Err(InputError::LabelKind {
                objective: objective.name(),
                expected: if objective.is_classifier() { "class" } else { "value" },
            }),
        }
    }

    /// Number of rows.
    pub(super) fn len(&self) -> usize {
        match self {
            Self::Softmax { labels, .. } | Self::Logistic { labels } => labels.len(),
            Self::Poisson { counts: values, .. } | Self::SquaredError { values } => values.len(),
        }
    }

    /// Starting raw scores: the class log priors (add-one smoothed), the log-odds of the
    /// positive rate (kept within [`LOGISTIC_MIN_RATE`] of 0 and 1), the log of the mean count
    /// (at least [`POISSON_MIN_MEAN`]), or the mean value.
    pub(super) fn init_scores(&self) -> Vec<f64> {
        match *self {
            Self::Softmax { labels, k } => {
                let mut counts = vec![1.0; k];
                for &y in labels {
                    counts[usize::from(y)] += 1.0;
                }
                let total_count: f64 = counts.iter().sum();
                counts.iter().map(|c| (c / total_count).ln()).collect()
            }
            Self::Logistic { labels } => {
                let positive = labels.iter().filter(|&&y| y == 1).count() as f64 / labels.len().max(1) as f64;
                let rate = positive.clamp(LOGISTIC_MIN_RATE, 1.0 - LOGISTIC_MIN_RATE);
                vec![(rate / (1.0 - rate)).ln()]
            }
            Self::Poisson { counts, .. } => vec![mean(counts).max(POISSON_MIN_MEAN).ln()],
            Self::SquaredError { values } => vec![mean(values)],
        }
    }

    /// Gradients and hessians of the loss in the raw `scores` (all row-major, `n × k`).
    pub(super) fn gradients(&self, scores: &[f64], grads: &mut [f64], hess: &mut [f64]) {
        match *self {
            Self::Softmax { labels, k } => softmax_gradients(labels, k, scores, grads, hess),
            Self::Logistic { labels } => for_each_row(labels, scores, grads, hess, |y, f| {
                let p = sigmoid(f);
                (p - f64::from(y), (p * (1.0 - p)).max(1e-16))
            }),
            Self::Poisson { counts, max_delta_step } => {
                for_each_row(counts, scores, grads, hess, |y, f| {
                    // Capped like the engine's prediction, so e^f stays finite.
                    let f = f.min(MAX_EXP_SCORE);
                    (f.exp() - y, (f + max_delta_step).exp().max(1e-16))
                });
            }
            Self::SquaredError { values } => for_each_row(values, scores, grads, hess, |y, f| (f - y, 1.0)),
        }
    }

    /// Mean loss of the raw `scores`: log loss (binary for a logistic classifier), Poisson
    /// deviance of `e^f`, or squared error.
    pub(super) fn loss(&self, scores: &[f64]) -> f64 {
        match *self {
            Self::Softmax { labels, k } => log_loss(scores, labels, k),
            Self::Logistic { labels } => {
                // The probability of the label, σ(f) or σ(−f), each computed without cancellation.
                let total: f64 = labels
                    .iter()
                    .zip(scores)
                    .map(|(&y, &f)| -sigmoid(if y == 1 { f } else { -f }).max(1e-15).ln())
                    .sum();
                total / labels.len().max(1) as f64
            }
            Self::Poisson { counts, .. } => {
                let total: f64 =
                    counts.iter().zip(scores).map(|(&y, &f)| poisson_unit_deviance(y, bounded_exp(f))).sum();
                total / counts.len().max(1) as f64
            }
            Self::SquaredError { values } => {
                let total: f64 = values.iter().zip(scores).map(|(&y, &f)| (f - y) * (f - y)).sum();
                total / values.len().max(1) as f64
            }
        }
    }
}

/// Refuses a label that is not finite, is below `lowest` or above [`MAX_REGRESSION_LABEL`].
fn check_values(values: &[f64], set: &'static str, lowest: f64) -> Result<(), InputError> {
    let bad = values.iter().position(|&y| !(lowest..=MAX_REGRESSION_LABEL).contains(&y));
    match bad {
        Some(row) => Err(InputError::Label {
            set,
            row,
            label: values[row],
            reason: if lowest == 0.0 { "is not a count in [0, 1e6]" } else { "is not a finite value in [-1e6, 1e6]" },
        }),
        None => Ok(()),
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// `1 / (1 + e^-f)`.
pub(super) fn sigmoid(f: f64) -> f64 {
    1.0 / (1.0 + (-f).exp())
}

/// Per-row gradient and hessian of a one-output objective, `loss(label, raw score)`, in
/// parallel chunks.
fn for_each_row<Y: Copy + Sync>(
    labels: &[Y],
    scores: &[f64],
    grads: &mut [f64],
    hess: &mut [f64],
    loss: impl Fn(Y, f64) -> (f64, f64) + Sync,
) {
    grads
        .par_chunks_mut(GRADIENT_CHUNK)
        .zip(hess.par_chunks_mut(GRADIENT_CHUNK))
        .zip(scores.par_chunks(GRADIENT_CHUNK))
        .zip(labels.par_chunks(GRADIENT_CHUNK))
        .for_each(|(((g, h), s), labels)| {
            for (r, &y) in labels.iter().enumerate() {
                (g[r], h[r]) = loss(y, s[r]);
            }
        });
}

/// Softmax gradients and hessians, row-major like the scores.
fn softmax_gradients(labels: &[u8], k: usize, scores: &[f64], grads: &mut [f64], hess: &mut [f64]) {
    let hess_factor = k as f64 / (k as f64 - 1.0);
    grads
        .par_chunks_mut(GRADIENT_CHUNK * k)
        .zip(hess.par_chunks_mut(GRADIENT_CHUNK * k))
        .zip(scores.par_chunks(GRADIENT_CHUNK * k))
        .zip(labels.par_chunks(GRADIENT_CHUNK))
        .for_each(|(((g, h), s), labels)| {
            let mut p = vec![0.0; k];
            for (r, &y) in labels.iter().enumerate() {
                p.copy_from_slice(&s[r * k..(r + 1) * k]);
                softmax(&mut p);
                for class in 0..k {
                    let target = f64::from(u8::from(usize::from(y) == class));
                    g[r * k + class] = p[class] - target;
                    h[r * k + class] = (hess_factor * p[class] * (1.0 - p[class])).max(1e-16);
                }
            }
        });
}

fn log_loss(scores: &[f64], labels: &[u8], k: usize) -> f64 {
    let mut p = vec![0.0; k];
    let total: f64 = scores
        .chunks(k)
        .zip(labels)
        .map(|(s, &y)| {
            p.copy_from_slice(s);
            softmax(&mut p);
            -p[usize::from(y)].max(1e-15).ln()
        })
        .sum();
    total / labels.len().max(1) as f64
}
