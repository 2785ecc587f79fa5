//! Gradient-boosted decision trees for multiclass classification (softmax objective), binary
//! classification (logistic objective) and regression (Poisson counts on a log link, or squared
//! error; see [`Objective`]), in the style of LightGBM: features binned into at most 255
//! histogram bins plus one for missing values (NaN) whose direction each split learns, one tree
//! per class (one for a logistic classifier or a regression) per round grown leaf-wise (best
//! gain first) with a depth limit, second-order gains with L2 regularisation, categorical splits
//! found by sorting categories by gradient ratio, and early stopping on the objective's loss on
//! a validation set.
//!
//! Training is deterministic for a given input whatever the number of threads: parallel work is
//! cut into fixed-size chunks and reduced in order.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

mod bins;
mod objective;
mod tree;

pub use bins::BinMapper;
pub use objective::{MAX_REGRESSION_LABEL, Objective, POISSON_MAX_DELTA_STEP};

use crate::engine::{ENSEMBLE_FORMAT, EnsembleSpec, bounded_exp, softmax};
use crate::progress::Progress;
use bins::{Binned, Columns, Layout};
use objective::Targets;
use tree::{Buffers, Grower, LeafRows, Tree};

/// Hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// Shrinkage applied to every leaf value.
    pub learning_rate: f64,
    /// Most boosting rounds (one tree per class each, one for a regression).
    pub max_rounds: usize,
    /// Stop when the validation loss (log loss of a classifier) has not improved for this many
    /// rounds.
    pub early_stopping_rounds: usize,
    /// Most leaves per tree.
    pub max_leaves: usize,
    /// Most split levels per tree.
    pub max_depth: usize,
    /// Fewest training rows in a leaf.
    pub min_data_in_leaf: usize,
    /// Smallest hessian sum in a leaf.
    pub min_sum_hessian: f64,
    /// L2 regularisation of leaf values.
    pub lambda_l2: f64,
    /// Most histogram bins of a numeric feature (at most 255).
    pub max_bins: usize,
    /// Fewest rows a category needs to be placed on its own side of a split.
    pub min_data_per_category: usize,
    /// Smoothing of the gradient ratio categories are sorted by.
    pub cat_smooth: f64,
    /// Most categories on the left side of a categorical split.
    pub max_cat_threshold: usize,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            // A high rate and shallow trees: on the default data this reaches the same held-out
            // accuracy as 0.1 / depth 6 with 120 instead of 306 trees (docs/decisions.md).
            learning_rate: 0.3,
            max_rounds: 500,
            early_stopping_rounds: 20,
            max_leaves: 31,
            max_depth: 5,
            min_data_in_leaf: 50,
            min_sum_hessian: 1e-3,
            lambda_l2: 1.0,
            max_bins: 255,
            min_data_per_category: 20,
            cat_smooth: 10.0,
            max_cat_threshold: 32,
        }
    }
}

/// Kind of a feature column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureKind {
    /// Ordered numbers.
    Numeric,
    /// Integer codes `0..n_codes`; a missing value needs a code of its own (NaN is refused).
    Categorical {
        /// Number of codes (at most 256).
        n_codes: usize,
    },
}

/// Rows (row-major feature values) with their labels.
#[derive(Debug, Clone, Copy)]
pub struct Dataset<'a> {
    /// `n × n_features` values.
    pub rows: &'a [f64],
    /// One label per row, of the kind the [`Objective`] needs.
    pub labels: Labels<'a>,
}

/// The labels of a [`Dataset`].
#[derive(Debug, Clone, Copy)]
pub enum Labels<'a> {
    /// Class index of each row ([`Objective::Softmax`], 0 or 1 for [`Objective::Logistic`]).
    Classes(&'a [u8]),
    /// Target value of each row: counts for [`Objective::Poisson`], any finite value for
    /// [`Objective::SquaredError`] (both within ±[`MAX_REGRESSION_LABEL`]).
    Values(&'a [f64]),
}

impl Labels<'_> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Self::Classes(labels) => labels.len(),
            Self::Values(values) => values.len(),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a dataset cannot be trained on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    /// The labels are not the kind the objective needs.
    #[error("the {objective} objective needs {expected} labels")]
    LabelKind {
        /// Objective name.
        objective: &'static str,
        /// Kind of labels it needs: "class" or "value".
        expected: &'static str,
    },
    /// A softmax over fewer than two classes.
    #[error("a softmax needs at least 2 classes, got {0}")]
    Classes(usize),
    /// A label the objective cannot take.
    #[error("{set} row {row}: label {label} {reason}")]
    Label {
        /// "training" or "validation".
        set: &'static str,
        /// Row of the label.
        row: usize,
        /// The label.
        label: f64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A Poisson `max_delta_step` that is negative or not finite.
    #[error("the Poisson max_delta_step must be finite and at least 0, got {0}")]
    MaxDeltaStep(f64),
    /// No feature columns.
    #[error("there are no features")]
    NoFeatures,
    /// The feature values are not one row per label.
    #[error("{set} set: {values} feature values are not {rows} rows of {features} features")]
    Shape {
        /// "training" or "validation".
        set: &'static str,
        /// Feature values given.
        values: usize,
        /// Labels given.
        rows: usize,
        /// Features per row.
        features: usize,
    },
    /// No training rows.
    #[error("the training set is empty")]
    Empty,
    /// A categorical value that is not a code: NaN (missing categories need a code of their
    /// own), negative, fractional or not below the feature's `n_codes`.
    #[error("{set} row {row}: categorical feature {feature} value {value} is not an integer code below {n_codes}")]
    Category {
        /// "training" or "validation".
        set: &'static str,
        /// Row of the value.
        row: usize,
        /// Feature (column) index.
        feature: usize,
        /// The value.
        value: f64,
        /// The feature's number of codes.
        n_codes: usize,
    },
}

/// A trained ensemble with its bin mappers.
#[derive(Debug, Clone)]
pub struct Booster {
    mappers: Vec<BinMapper>,
    objective: Objective,
    init_scores: Vec<f64>,
    trees: Vec<Tree>,
    /// Rounds kept (the best validation loss).
    pub best_iteration: usize,
    /// Rounds run before stopping.
    pub rounds_run: usize,
    /// Validation loss of the objective after each round ([`Objective::loss_name`]).
    pub validation_loss: Vec<f64>,
    /// Raw scores of the training rows (one per output, row-major) with the kept trees.
    train_scores: Vec<f64>,
}

/// The bin mappers fitted on the training rows, and both sets binned (the training rows also
/// column-major, for partitions).
struct Binnings {
    mappers: Vec<BinMapper>,
    layout: Layout,
    train: Binned,
    columns: Columns,
    valid: Binned,
}

/// Trains a booster for `objective`; `valid` drives early stopping on the objective's loss.
pub fn train(
    params: &Params,
    kinds: &[FeatureKind],
    objective: Objective,
    train: Dataset<'_>,
    valid: Dataset<'_>,
    progress: &dyn Progress,
) -> Result<Booster, InputError> {
    let targets = Targets::new(objective, train.labels, "training")?;
    let valid_targets = Targets::new(objective, valid.labels, "validation")?;
    let nf = kinds.len();
    if nf == 0 {
        return Err(InputError::NoFeatures);
    }
    for (set, data) in [("training", &train), ("validation", &valid)] {
        let rows = data.labels.len();
        if data.rows.len() != rows * nf {
            return Err(InputError::Shape { set, values: data.rows.len(), rows, features: nf });
        }
    }
    if train.labels.is_empty() {
        return Err(InputError::Empty);
    }
    check_categories(kinds, train.rows, "training")?;
    check_categories(kinds, valid.rows, "validation")?;
    let mappers: Vec<BinMapper> = kinds
        .par_iter()
        .enumerate()
        .map(|(f, &kind)| BinMapper::fit(kind, train.rows.iter().skip(f).step_by(nf).copied(), params.max_bins))
        .collect();
    let train_bins = Binned::new(&mappers, train.rows);
    let binnings = Binnings {
        layout: Layout::new(&mappers),
        columns: Columns::of(&train_bins),
        train: train_bins,
        valid: Binned::new(&mappers, valid.rows),
        mappers,
    };
    let mut booster = Booster {
        mappers: binnings.mappers.clone(),
        objective,
        init_scores: targets.init_scores(),
        trees: Vec::new(),
        best_iteration: 0,
        rounds_run: 0,
        validation_loss: Vec::new(),
        train_scores: Vec::new(),
    };
    boost(params, &binnings, (targets, valid_targets), &mut booster, progress);
    Ok(booster)
}

/// Refuses the first categorical value (in row order) that is not an integer code in
/// `0..n_codes`; NaN included, so a missing category never silently becomes code 0.
fn check_categories(kinds: &[FeatureKind], rows: &[f64], set: &'static str) -> Result<(), InputError> {
    let categorical: Vec<(usize, usize)> = kinds
        .iter()
        .enumerate()
        .filter_map(|(f, kind)| match kind {
            FeatureKind::Categorical { n_codes } => Some((f, *n_codes)),
            FeatureKind::Numeric => None,
        })
        .collect();
    if categorical.is_empty() {
        return Ok(());
    }
    for (row, values) in rows.chunks(kinds.len()).enumerate() {
        for &(feature, n_codes) in &categorical {
            let value = values[feature];
            if !(value >= 0.0 && value < n_codes as f64 && value.fract() == 0.0) {
                return Err(InputError::Category { set, row, feature, value, n_codes });
            }
        }
    }
    Ok(())
}

/// Runs the boosting rounds from the booster's init scores, stopping early, and keeps the trees
/// of the best round.
fn boost(
    params: &Params,
    binnings: &Binnings,
    (targets, valid_targets): (Targets<'_>, Targets<'_>),
    booster: &mut Booster,
    progress: &dyn Progress,
) {
    let (n, k) = (targets.len(), booster.objective.n_outputs());
    let mut scores: Vec<f64> = booster.init_scores.iter().copied().cycle().take(n * k).collect();
    let mut valid_scores: Vec<f64> =
        booster.init_scores.iter().copied().cycle().take(valid_targets.len() * k).collect();
    let mut best = f64::INFINITY;
    let mut grads = vec![0.0; n * k];
    let mut hess = vec![0.0; n * k];
    let buffers = Buffers::default();
    progress.stage("boosting rounds", params.max_rounds as u64);
    for round in 0..params.max_rounds {
        targets.gradients(&scores, &mut grads, &mut hess);
        let grown: Vec<(Tree, LeafRows)> = (0..k)
            .into_par_iter()
            .map(|class| {
                let grower = Grower {
                    params,
                    mappers: &binnings.mappers,
                    layout: &binnings.layout,
                    binned: &binnings.train,
                    columns: &binnings.columns,
                    g: &grads,
                    h: &hess,
                    k,
                    class,
                    buffers: &buffers,
                };
                grower.grow(n)
            })
            .collect();
        for (tree, rows) in grown {
            rows.add_scores(&tree, &mut scores, k);
            add_tree(&mut valid_scores, k, &binnings.valid, &tree);
            booster.trees.push(tree);
        }
        let loss = valid_targets.loss(&valid_scores);
        booster.validation_loss.push(loss);
        booster.rounds_run = round + 1;
        progress.advance(1);
        progress.message(&format!("round {} validation {} {loss:.5}", round + 1, booster.objective.loss_name()));
        if loss < best {
            best = loss;
            booster.best_iteration = round + 1;
        } else if round + 1 - booster.best_iteration >= params.early_stopping_rounds {
            break;
        }
    }
    booster.trees.truncate(booster.best_iteration * k);
    if booster.rounds_run > booster.best_iteration {
        // The trees past the best round are dropped: their scores are summed again without them,
        // in the same order.
        scores = booster.init_scores.iter().copied().cycle().take(n * k).collect();
        for tree in &booster.trees {
            add_tree(&mut scores, k, &binnings.train, tree);
        }
    }
    booster.train_scores = scores;
}

/// Rows per parallel chunk when a tree's leaf values are added to the scores.
const SCORE_CHUNK: usize = 16_384;

/// Adds `tree`'s leaf values to the raw scores (`k` per row) of `binned`'s rows (the validation
/// rows; the training rows take them from the grower's [`LeafRows`]).
fn add_tree(scores: &mut [f64], k: usize, binned: &Binned, tree: &Tree) {
    scores.par_chunks_mut(SCORE_CHUNK * k).enumerate().for_each(|(chunk, scores)| {
        for (i, row_scores) in scores.chunks_exact_mut(k).enumerate() {
            row_scores[tree.class] += tree.leaves[tree.leaf(binned.row(chunk * SCORE_CHUNK + i))];
        }
    });
}

impl Booster {
    /// What the engine compiled from [`Booster::to_spec`] predicts for the training rows
    /// (probabilities, `n_classes` per row, or a regression's value), from the scores boosting
    /// kept: the same sums in the same order, so the same numbers bit for bit, without a pass
    /// over the rows.
    pub fn training_predictions(&self) -> Vec<f64> {
        let k = self.objective.n_outputs();
        // A logistic spec has a first class whose raw score is always 0.
        let first = usize::from(self.objective == Objective::Logistic);
        let output = self.objective.output();
        let rows = self.train_scores.len() / k.max(1);
        let mut out = vec![0.0; rows * (k + first)];
        out.par_chunks_mut(SCORE_CHUNK * (k + first)).zip(self.train_scores.par_chunks(SCORE_CHUNK * k)).for_each(
            |(out, scores)| {
                for (o, s) in out.chunks_exact_mut(k + first).zip(scores.chunks_exact(k)) {
                    o[first..].copy_from_slice(s);
                    output.apply(o);
                }
            },
        );
        out
    }

    /// Raw scores of one row (one per class, or the regression's one), computed over bins (the
    /// trainer's own prediction path).
    pub fn predict_raw(&self, row: &[f64], scores: &mut [f64]) {
        scores.copy_from_slice(&self.init_scores);
        for tree in &self.trees {
            scores[tree.class] += tree.leaves[tree.leaf_of_row(row, &self.mappers)];
        }
    }

    /// Class probabilities of one row of a classifier (the trainer's own prediction path): the
    /// softmax of the raw scores, or of `[0, f]` for a logistic one (`[1 − σ(f), σ(f)]`, as its
    /// spec has it).
    pub fn predict_proba(&self, row: &[f64], probabilities: &mut [f64]) {
        if self.objective == Objective::Logistic {
            probabilities[0] = 0.0;
            self.predict_raw(row, &mut probabilities[1..]);
        } else {
            self.predict_raw(row, probabilities);
        }
        softmax(probabilities);
    }

    /// The prediction of a regression booster for one row (the trainer's own prediction path):
    /// `e^score` for Poisson (capped as the engine's, [`bounded_exp`]), the score for squared
    /// error.
    ///
    /// # Panics
    ///
    /// If the booster is a softmax classifier.
    pub fn predict_value(&self, row: &[f64]) -> f64 {
        let link: fn(f64) -> f64 = match self.objective {
            Objective::Poisson { .. } => bounded_exp,
            Objective::SquaredError => |score| score,
            Objective::Softmax { .. } | Objective::Logistic => {
                panic!("predict_value needs a regression booster, use predict_proba")
            }
        };
        let mut score = [0.0];
        self.predict_raw(row, &mut score);
        link(score[0])
    }

    /// How many training rows reach each leaf of each tree, trees and leaves in
    /// [`Booster::to_spec`]'s order: the covers TreeSHAP needs, without another pass over the rows.
    pub fn leaf_covers(&self) -> Vec<Vec<f64>> {
        self.trees.iter().map(|t| t.covers.clone()).collect()
    }

    /// The objective it was trained for.
    pub fn objective(&self) -> Objective {
        self.objective
    }

    /// Number of trees kept.
    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// The ensemble in the engine's serialized form, thresholds in raw feature units, with
    /// the output of its objective. `names` are the classes of a classifier (negative then
    /// positive for a logistic one), or the one name of what a regression predicts (e.g.
    /// `"units"`). A logistic classifier becomes a 2-class softmax: init scores `[0, s]`, every
    /// tree on class 1.
    ///
    /// # Panics
    ///
    /// If there is not one name per class ([`Objective::n_names`]).
    pub fn to_spec(&self, names: &[String]) -> EnsembleSpec {
        assert_eq!(names.len(), self.objective.n_names(), "one name per class (one for a regression)");
        let mut trees: Vec<_> = self.trees.iter().map(|t| t.to_spec(&self.mappers)).collect();
        let mut init_scores = self.init_scores.clone();
        if self.objective == Objective::Logistic {
            init_scores.insert(0, 0.0);
            trees.iter_mut().for_each(|t| t.class = 1);
        }
        EnsembleSpec {
            format: ENSEMBLE_FORMAT.to_owned(),
            n_features: self.mappers.len(),
            classes: names.to_vec(),
            init_scores,
            trees,
            output: self.objective.output(),
        }
    }
}

#[cfg(test)]
mod tests;
