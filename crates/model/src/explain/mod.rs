//! Exact per-prediction explanations: path-dependent TreeSHAP ([`treeshap`]) over the engine's
//! trees, per class in the raw margin space (the scores softmax takes, "log-odds") of a
//! classifier, or in the link space of a regression (the log of a Poisson forecast's value).
//! Contributions are reported per input field ([`Attribution`]), with a base value such that
//! `base + Σ contributions = margin` for every row.
//!
//! TreeSHAP needs each node's cover (the training rows reaching it). They live in the artifact's
//! optional [`EXPLAIN_FILE`] as each tree's leaf covers (an internal node's cover is the sum of
//! its leaves', exactly), beside global importance (mean |contribution| per field over the
//! training rows). The trainer writes it from its training rows and `import-onnx` from the
//! import's `--data` rows; it is a separate file rather than part of `model.json` because an
//! imported ONNX model is translated again on every load. An artifact without it loads and
//! predicts as before, and answers explanations with [`ExplainError::NoCovers`].

mod attribution;
mod file;
mod forest;
mod treeshap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use attribution::Attribution;
pub use file::{EXPLAIN_FILE, ExplainFile, FieldImportance, IMPORTANCE_ROWS, Importance};

use crate::engine::{EnsembleSpec, Output};
use forest::Forest;
use treeshap::PathElement;

/// Why a model cannot explain.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExplainError {
    /// The artifact carries no node covers (made before explanations existed, or imported
    /// without `--data` rows reaching every leaf).
    #[error("model has no node covers ({EXPLAIN_FILE}), so it cannot explain predictions: {reason}")]
    NoCovers {
        /// Why they are missing.
        reason: String,
    },
    /// The covers do not fit the trees.
    #[error("{EXPLAIN_FILE} does not fit the model: {0}")]
    Covers(String),
}

/// The space contributions are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Space {
    /// A softmax classifier's raw class scores (log-odds up to a per-row constant).
    LogOdds,
    /// A classifier whose raw scores are its probabilities (e.g. a forest).
    Probability,
    /// A regression on squared error: the predicted value itself.
    Value,
    /// A regression on a log link (Poisson): the log of the prediction; `exp(base)` times
    /// `exp(contribution)` of each field is the prediction.
    Log,
}

impl Space {
    fn of(output: Output) -> Self {
        match output {
            Output::Softmax => Self::LogOdds,
            Output::Identity => Self::Probability,
            Output::Exp => Self::Log,
        }
    }

    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LogOdds => "log_odds",
            Self::Probability => "probability",
            Self::Value => "value",
            Self::Log => "log",
        }
    }
}

/// One row's explanation: per output (class, or the regression's one), the base value and each
/// input field's contribution.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// Base value per output: its init score plus each tree's expected output.
    pub base: Vec<f64>,
    /// Contributions, output-major: `contributions[c * n_fields + f]`.
    pub contributions: Vec<f64>,
}

impl Explanation {
    /// The contributions of output `c`, one per field.
    pub fn of_output(&self, c: usize) -> &[f64] {
        let n = self.contributions.len() / self.base.len();
        &self.contributions[c * n..(c + 1) * n]
    }

    /// `base + Σ contributions` of output `c`: the margin.
    pub fn margin(&self, c: usize) -> f64 {
        self.base[c] + self.of_output(c).iter().sum::<f64>()
    }
}

/// A model's trees with covers, ready to explain rows.
#[derive(Debug, Clone)]
pub struct Explainer {
    forest: Forest,
    n_features: usize,
    base: Vec<f64>,
    attribution: Attribution,
    space: Space,
    scratch_len: usize,
}

impl Explainer {
    /// An explainer of `spec` (which the engine compiled, so its trees are well formed) with one
    /// leaf-cover list per tree; every leaf needs a finite positive cover.
    pub fn new(
        spec: &EnsembleSpec,
        leaf_covers: &[Vec<f64>],
        attribution: Attribution,
        regression: bool,
    ) -> Result<Self, ExplainError> {
        check_covers(spec, leaf_covers)?;
        if attribution.parts.len() != spec.n_features {
            let reason = format!("{} features attributed, the model has {}", attribution.parts.len(), spec.n_features);
            return Err(ExplainError::Covers(reason));
        }
        let mut forest = Forest::of(spec);
        forest.set_covers(leaf_covers);
        let mut base = spec.init_scores.clone();
        for tree in &forest.trees {
            base[tree.class] += forest.expected(tree);
        }
        let depth = forest.trees.iter().map(|t| t.depth).max().unwrap_or(0);
        let space = match Space::of(spec.output) {
            Space::Probability if regression => Space::Value,
            space => space,
        };
        Ok(Self {
            forest,
            n_features: spec.n_features,
            base,
            attribution,
            space,
            scratch_len: treeshap::scratch_len(depth),
        })
    }

    /// The input fields contributions are reported for.
    pub fn fields(&self) -> &[String] {
        &self.attribution.fields
    }

    /// The space of the contributions.
    pub fn space(&self) -> Space {
        self.space
    }

    /// Explains one feature row (engine features, `n_features` long).
    ///
    /// # Panics
    ///
    /// If `row` is not `n_features` long.
    pub fn explain(&self, row: &[f64]) -> Explanation {
        let n_out = self.base.len();
        let phi = self.feature_contributions(row);
        let n_fields = self.attribution.fields.len();
        let mut contributions = vec![0.0; n_out * n_fields];
        for (p, c) in phi.chunks(self.n_features).zip(contributions.chunks_mut(n_fields)) {
            self.attribution.add(p, c);
        }
        Explanation { base: self.base.clone(), contributions }
    }

    /// Engine-feature contributions of one row (before attribution to fields), output-major.
    ///
    /// # Panics
    ///
    /// If `row` is not `n_features` long.
    pub fn feature_contributions(&self, row: &[f64]) -> Vec<f64> {
        assert_eq!(row.len(), self.n_features, "feature row length");
        let mut phi = vec![0.0; self.base.len() * self.n_features];
        let mut scratch = vec![PathElement::default(); self.scratch_len];
        for tree in &self.forest.trees {
            let class_phi = &mut phi[tree.class * self.n_features..(tree.class + 1) * self.n_features];
            treeshap::tree_shap(&self.forest, tree, row, class_phi, &mut scratch);
        }
        phi
    }

    /// [`Explainer::explain`] of many rows (row-major), over the rayon thread pool.
    pub fn explain_batch(&self, rows: &[f64]) -> Vec<Explanation> {
        rows.par_chunks(self.n_features).map(|row| self.explain(row)).collect()
    }
}

/// Each tree's leaf covers: one finite positive value per leaf.
fn check_covers(spec: &EnsembleSpec, leaf_covers: &[Vec<f64>]) -> Result<(), ExplainError> {
    if leaf_covers.len() != spec.trees.len() {
        let reason = format!("{} trees of covers, the model has {} trees", leaf_covers.len(), spec.trees.len());
        return Err(ExplainError::Covers(reason));
    }
    for (t, (tree, covers)) in spec.trees.iter().zip(leaf_covers).enumerate() {
        if covers.len() != tree.leaves.len() {
            let reason = format!("tree {t}: {} covers for {} leaves", covers.len(), tree.leaves.len());
            return Err(ExplainError::Covers(reason));
        }
        if let Some(l) = covers.iter().position(|c| !(c.is_finite() && *c > 0.0)) {
            let reason = format!("tree {t} leaf {l}: cover {} is not finite and positive", covers[l]);
            return Err(ExplainError::Covers(reason));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
