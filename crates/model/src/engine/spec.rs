//! The serialized ensemble (`model.json`): trees of threshold and category splits whose
//! per-class sums become probabilities (a classifier) or whose one sum becomes a prediction (a
//! regression).

use serde::{Deserialize, Serialize};

use super::{MAX_EXP_SCORE, MAX_SCORE_MAGNITUDE};

/// A serialized ensemble: per-class sums of tree outputs, turned into probabilities by
/// [`Output`] (softmax unless stated otherwise). A regression has one "class", the name of
/// what it predicts, and [`Output::Identity`] or [`Output::Exp`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleSpec {
    /// Always [`ENSEMBLE_FORMAT`](super::ENSEMBLE_FORMAT).
    pub format: String,
    /// Length of a feature row.
    pub n_features: usize,
    /// Class names, in score order.
    pub classes: Vec<String>,
    /// Starting raw score of each class (log prior).
    pub init_scores: Vec<f64>,
    /// Trees in boosting order; a class's raw score is its init score plus its trees' outputs,
    /// summed in this order.
    pub trees: Vec<TreeSpec>,
    /// How the class sums become probabilities (or a regression's sum its prediction).
    #[serde(default, skip_serializing_if = "Output::is_softmax")]
    pub output: Output,
}

/// How raw class scores become probabilities, or a regression's raw score its prediction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// Softmax of the raw scores (boosting with a multiclass log loss).
    #[default]
    Softmax,
    /// The raw scores are the probabilities (e.g. a random forest's averaged leaf distributions),
    /// or the raw score is the prediction (a regression on squared error).
    Identity,
    /// The prediction is the exponential of the raw score (a regression on a log link: Poisson
    /// counts); see [`bounded_exp`].
    Exp,
}

impl Output {
    /// Whether this is the default, [`Output::Softmax`].
    pub fn is_softmax(&self) -> bool {
        *self == Self::Softmax
    }

    /// Turns raw scores into probabilities (or predictions) in place; they are always finite.
    pub(crate) fn apply(self, scores: &mut [f64]) {
        debug_assert!(scores.iter().all(|s| s.abs() <= MAX_SCORE_MAGNITUDE), "scores {scores:?} escaped verification");
        match self {
            Self::Softmax => softmax(scores),
            Self::Identity => scores.iter_mut().for_each(|s| *s = bounded(*s)),
            Self::Exp => scores.iter_mut().for_each(|s| *s = bounded_exp(*s)),
        }
    }
}

/// One regression tree. Children `>= 0` index `nodes`, `< 0` are leaves `!child`.
/// A tree without nodes is the single leaf `leaves[0]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeSpec {
    /// Class whose raw score this tree adds to.
    pub class: usize,
    /// Internal nodes; `nodes[0]` is the root.
    pub nodes: Vec<NodeSpec>,
    /// Leaf outputs.
    pub leaves: Vec<f64>,
}

/// An internal node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawNode")]
pub struct NodeSpec {
    /// Feature index tested.
    pub feature: usize,
    /// The test; a row that passes goes left.
    #[serde(flatten)]
    pub test: SplitTest,
    /// Left child.
    pub left: i32,
    /// Right child.
    pub right: i32,
    /// Where a missing value (NaN) goes at a threshold test: left (the default, and what every
    /// artifact written before missing values were supported did), or right. Only serialized
    /// when right. A category test ignores it: a missing code is 255, which goes left exactly
    /// when the set lists 255 (a set can route missing values either way, and saturated codes
    /// above 254 keep going where they always did).
    #[serde(default = "missing_left_default", skip_serializing_if = "is_true")]
    pub missing_left: bool,
}

fn missing_left_default() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// How a [`NodeSpec`] is read: its test as two optional fields rather than a flattened enum.
/// For `#[serde(flatten)]` serde first buffers every field into generic values, which made a
/// 64 MiB `model.json` holding one long `categories` list take 1.25 GB to parse (19×); read
/// this way it takes what the list itself takes.
#[derive(Deserialize)]
struct RawNode {
    feature: usize,
    threshold: Option<f64>,
    categories: Option<Vec<u32>>,
    left: i32,
    right: i32,
    #[serde(default = "missing_left_default")]
    missing_left: bool,
}

impl TryFrom<RawNode> for NodeSpec {
    type Error = &'static str;

    fn try_from(raw: RawNode) -> Result<Self, Self::Error> {
        let test = match (raw.threshold, raw.categories) {
            (Some(threshold), None) => SplitTest::Threshold(threshold),
            (None, Some(categories)) => SplitTest::Categories(categories),
            _ => return Err("a node has either a `threshold` or `categories`"),
        };
        Ok(Self { feature: raw.feature, test, left: raw.left, right: raw.right, missing_left: raw.missing_left })
    }
}

/// What an internal node tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitTest {
    /// Left when `x <= threshold`.
    Threshold(f64),
    /// Left when the category code is in this set.
    Categories(Vec<u32>),
}

/// A raw score within ±[`MAX_SCORE_MAGNITUDE`] (NaN becomes its lower end). Verification keeps
/// every score of a compiled ensemble there already; this guard makes sure a probability is
/// never NaN or infinite even if that ever failed (debug builds assert it in [`Output::apply`]).
pub(super) fn bounded(score: f64) -> f64 {
    if score.is_nan() { -MAX_SCORE_MAGNITUDE } else { score.clamp(-MAX_SCORE_MAGNITUDE, MAX_SCORE_MAGNITUDE) }
}

/// The exponential of a raw score clamped to ±[`MAX_SCORE_MAGNITUDE`] and capped at
/// [`MAX_EXP_SCORE`] first, so it is always finite, in `[0, e^690 ≈ 4.6e299]` (NaN gives 0).
/// Verification keeps the raw scores of an [`Output::Exp`] ensemble below the cap already; this
/// guard holds even if that ever failed.
pub fn bounded_exp(score: f64) -> f64 {
    bounded(score).min(MAX_EXP_SCORE).exp()
}

/// In-place softmax of raw scores, computed stably (shifted by the largest score, so every
/// exponential is in `(0, 1]` and their sum in `[1, n]`); scores are [`bounded`] first, so the
/// probabilities are always finite.
pub fn softmax(scores: &mut [f64]) {
    scores.iter_mut().for_each(|s| *s = bounded(*s));
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    for s in scores.iter_mut() {
        *s /= sum;
    }
}
